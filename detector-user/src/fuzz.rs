//! Entry points for the fuzz targets (`fuzz/`): each hands untrusted bytes to one of the agent's
//! parsers, which must not panic, loop or balloon whatever the bytes.

use std::path::Path;

use crate::{
    config,
    kernel::{btf::Btf, offsets},
    state::{cgroup, runtime_state},
};

/// A configuration file's text.
pub fn config_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::parse(Path::new("fuzz.toml"), text);
    }
}

/// A cgroup path, as /proc/PID/cgroup and the kernel programs give it.
pub fn cgroup_path(data: &[u8]) {
    if let Ok(path) = std::str::from_utf8(data) {
        let _ = cgroup::classify(path);
    }
}

/// The kernel's BTF blob, and every lookup the agent makes in it.
pub fn btf(data: &[u8]) {
    if let Ok(btf) = Btf::parse(data) {
        let _ = offsets::resolve(&btf);
    }
}

/// A runtime's state file (runc's state.json, crun's status, the OCI state format): its
/// annotations, its bundle, and the container they describe.
pub fn runtime_state(data: &[u8]) {
    let Ok(state) = serde_json::from_slice(data) else {
        return;
    };
    let _ = runtime_state::bundle_of(&state);
    let annotations = runtime_state::annotations_in_state(&state);
    let _ = runtime_state::state_from_annotations(cgroup::Runtime::Runc, &annotations);
}
