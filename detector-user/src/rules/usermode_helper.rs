//! usermode-helper-exec: the kernel started a usermode helper (a program it runs as root in the
//! host's namespaces: a core_pattern pipe, modprobe, a cgroup release agent, a uevent helper)
//! that is not one of the helpers a host installs. Several escapes pay off at this moment: the
//! write that pointed the kernel at the program may have gone unseen, the program never is.

use std::path::PathBuf;

use detector_common::ExecEvent;
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, text};
use crate::state::procfs;

pub const USERMODE_HELPER_EXEC: RuleInfo = RuleInfo {
    id: "usermode-helper-exec",
    severity: Severity::Critical,
    mitre: &["T1611", "T1547"],
    description: "(kernel side) the kernel starts a usermode helper whose binary lives in \
                  container storage or outside the configured allowlist",
};

/// The helpers distributions point the kernel at (modprobe, request-key, coredump handlers,
/// systemd's cgroup v1 release agent, poweroff, bridge STP).
pub const DEFAULT_ALLOWLIST: &[&str] = &[
    "/sbin/modprobe",
    "/usr/sbin/modprobe",
    "/bin/kmod",
    "/usr/bin/kmod",
    "/sbin/request-key",
    "/usr/sbin/request-key",
    "/sbin/poweroff",
    "/usr/sbin/poweroff",
    "/sbin/reboot",
    "/usr/sbin/reboot",
    "/lib/systemd/systemd-coredump",
    "/usr/lib/systemd/systemd-coredump",
    "/lib/systemd/systemd-cgroups-agent",
    "/usr/lib/systemd/systemd-cgroups-agent",
    "/usr/share/apport/apport",
    "/usr/libexec/abrt-hook-ccpp",
    "/sbin/bridge-stp",
    "/usr/sbin/bridge-stp",
    "/sbin/hotplug",
];

/// `extra`: the host's own helpers (`extra_usermode_helpers`), allowed besides
/// [`DEFAULT_ALLOWLIST`].
pub fn usermode_helper_exec(e: &ExecEvent, extra: &[PathBuf]) -> Option<Finding> {
    let path = text(&e.filename);
    if DEFAULT_ALLOWLIST.contains(&path.as_str())
        || extra.iter().any(|p| p.as_os_str() == path.as_str())
    {
        return None;
    }
    Some(Finding {
        rule: &USERMODE_HELPER_EXEC,
        message: format!(
            "the kernel ran {path} (pid {}) as a usermode helper, as root on the host; it is not \
             a helper this host installs",
            e.header.tgid
        ),
        details: json!({
            "helper": path,
            "args": procfs::split_args(e.argv()),
        }),
        repeat: Repeat::EveryAct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::buf;

    fn helper(path: &str) -> ExecEvent {
        // SAFETY: plain data; all-zero is a valid ExecEvent.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.filename = buf(path);
        e
    }

    #[test]
    fn helpers_outside_the_allowlist_are_reported() {
        assert!(usermode_helper_exec(&helper("/sbin/modprobe"), &[]).is_none());
        let f =
            usermode_helper_exec(&helper("/var/lib/docker/overlay2/x/merged/cmd"), &[]).unwrap();
        assert_eq!(f.details["helper"], "/var/lib/docker/overlay2/x/merged/cmd");
    }

    #[test]
    fn the_hosts_own_helpers_are_allowed_by_configuration() {
        let collector = helper("/usr/local/bin/crash-collector");
        assert!(usermode_helper_exec(&collector, &[]).is_some());
        let extra = [PathBuf::from("/usr/local/bin/crash-collector")];
        assert!(usermode_helper_exec(&collector, &extra).is_none());
        assert!(usermode_helper_exec(&helper("/usr/local/bin/crash"), &extra).is_some());
    }
}
