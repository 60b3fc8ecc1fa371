//! Syscall tracepoints are attached by id, which the kernel publishes in tracefs. Hosts that do
//! not mount tracefs (this development VM among them) get it mounted at its standard place.

use std::{io, path::Path};

use nix::mount::{MsFlags, mount};

const TRACEFS: &str = "/sys/kernel/tracing";

/// True when `category/name` exists as a tracepoint in tracefs.
pub fn has_tracepoint(category: &str, name: &str) -> bool {
    Path::new(TRACEFS)
        .join("events")
        .join(category)
        .join(name)
        .exists()
}

pub fn is_mounted() -> bool {
    Path::new(TRACEFS).join("events").exists()
}

/// Mounts tracefs when it is not mounted; says whether it did.
pub fn ensure_mounted() -> io::Result<bool> {
    if is_mounted() {
        return Ok(false);
    }
    mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    Ok(true)
}
