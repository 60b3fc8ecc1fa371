//! The ids of the BPF objects the detector loaded and attached, as the kernel numbers them.
//! Read from what the agent holds: its programs' info and its descriptors' fdinfo. The
//! kernel's by-id calls (`BPF_PROG_GET_FD_BY_ID` behind a program's map ids, the link walk)
//! need CAP_SYS_ADMIN, which the least-privilege deployments (the systemd unit, the DaemonSet)
//! leave out.

use aya::{Ebpf, programs::ProgramInfo};

use super::fdinfo;
use crate::state::agent_self::OwnBpfObjects;

/// Read once every program is attached: links exist only then.
pub fn collect(ebpf: &Ebpf) -> OwnBpfObjects {
    let mut own = OwnBpfObjects::default();
    let infos: Vec<ProgramInfo> = ebpf
        .programs()
        .filter_map(|(name, program)| {
            program
                .info()
                .map_err(|e| log::debug!("program {name}: no info ({e}); not loaded"))
                .ok()
        })
        .collect();
    for info in &infos {
        own.programs.insert(info.id());
        own.btf.extend(info.btf_id());
    }
    match fdinfo::own() {
        Ok(fdinfos) => {
            for fdinfo in &fdinfos {
                own.maps.extend(id_in(fdinfo, "map_id:"));
                own.links.extend(id_in(fdinfo, "link_id:"));
            }
        }
        Err(e) => {
            log::warn!("reading /proc/self/fdinfo: {e}; the agent's maps and links are unknown")
        }
    }
    log::debug!(
        "own BPF objects: {} programs, {} maps, {} links",
        own.programs.len(),
        own.maps.len(),
        own.links.len()
    );
    own
}

/// A 32-bit object id an fdinfo gives after `key`.
fn id_in(fdinfo: &str, key: &str) -> Option<u32> {
    fdinfo::field(fdinfo, key).and_then(|id| id.try_into().ok())
}
