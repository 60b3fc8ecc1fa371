//! Loads the kernel object with the agent's configuration written into it.

use anyhow::{Context, bail};
use aya::{Ebpf, EbpfLoader};
use detector_common::Config;
use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/detector-ebpf"));

/// Loads maps and the object; programs are loaded and attached one by one in `probes`.
/// `kernel_log` is the programs' aya-log level (`kernel_log::level`).
pub fn load(config: &Config, ring_buffer_bytes: u32, kernel_log: u8) -> anyhow::Result<Ebpf> {
    if OBJECT.is_empty() {
        bail!(
            "this binary was built without its kernel programs (bpf-linker was missing at \
             build time): run `cargo xtask setup` and rebuild"
        );
    }
    raise_memlock_limit();
    EbpfLoader::new()
        .override_global("CONFIG", config, true)
        .override_global(aya_log::LEVEL, &kernel_log, true)
        .map_max_entries("EVENTS", ring_buffer_bytes)
        .load(OBJECT)
        .context("loading the kernel object")
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones ignore it.
fn raise_memlock_limit() {
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        log::debug!("could not raise RLIMIT_MEMLOCK: {e}");
    }
}
