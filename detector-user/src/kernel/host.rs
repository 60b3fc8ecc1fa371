//! The host's namespaces, taken from a reference process (PID 1 by default). On hosts where
//! PID 1's namespaces cannot be read (sandboxed VMs) the agent's own are used, and the log
//! says so: the agent must then run in the host's namespaces.

use detector_common::{FileId, Namespaces};

use std::path::Path;

use crate::state::{file_id, procfs};

pub struct HostReference {
    pub namespaces: Namespaces,
    /// Its root directory: the host's, which a chroot into it ends at.
    pub root: FileId,
    /// The pid whose namespaces were used.
    pub pid: u32,
}

pub fn host_reference(configured_pid: u32) -> std::io::Result<HostReference> {
    let (namespaces, pid) = match procfs::namespaces(Some(configured_pid)) {
        Ok(namespaces) => (namespaces, configured_pid),
        Err(e) => {
            let own = std::process::id();
            log::warn!(
                "cannot read the namespaces of host reference pid {configured_pid} ({e}); \
                 using the agent's own (pid {own}): run the agent in the host's namespaces"
            );
            (procfs::namespaces(None)?, own)
        }
    };
    let root = file_id::of_path(Path::new(&format!("/proc/{pid}/root")))
        .ok_or_else(|| std::io::Error::other(format!("cannot stat /proc/{pid}/root")))?;
    Ok(HostReference {
        namespaces,
        root,
        pid,
    })
}
