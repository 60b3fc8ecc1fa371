//! The host's namespaces, taken from a reference process (PID 1 by default). On hosts where
//! PID 1's namespaces cannot be read (sandboxed VMs) the agent's own are used, and the log
//! says so: the agent must then run in the host's namespaces.

use detector_common::Namespaces;

use crate::state::procfs;

pub struct HostReference {
    pub namespaces: Namespaces,
    /// The pid whose namespaces were used.
    pub pid: u32,
}

pub fn host_reference(configured_pid: u32) -> std::io::Result<HostReference> {
    match procfs::namespaces(Some(configured_pid)) {
        Ok(namespaces) => Ok(HostReference {
            namespaces,
            pid: configured_pid,
        }),
        Err(e) => {
            let own = std::process::id();
            log::warn!(
                "cannot read the namespaces of host reference pid {configured_pid} ({e}); \
                 using the agent's own (pid {own}): run the agent in the host's namespaces"
            );
            Ok(HostReference {
                namespaces: procfs::namespaces(None)?,
                pid: own,
            })
        }
    }
}
