//! Capability sets as /proc/PID/status shows them, by name.

use std::fs;

use anyhow::Context;

/// Capability names by number, up to CAP_CHECKPOINT_RESTORE (40, `cap_last_cap` on the kernels
/// we run on).
const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities in `mask`.
pub fn names(mask: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask >> bit & 1 == 1)
        .map(|(_, name)| *name)
        .collect()
}

/// A capability set of process `pid` ("self" for this one): `CapBnd`, `CapEff`, ...
pub fn set_of(pid: &str, set: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = format!("{set}:");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&field))
        .with_context(|| format!("no {set} in /proc/{pid}/status"))?;
    Ok(u64::from_str_radix(hex.trim(), 16)?)
}

/// "Every capability" as far as the host allows: runc cannot grant one missing from its own
/// bounding set (the development VMs' root lacks CAP_SYS_RESOURCE).
pub fn bounding_set(pid: &str) -> anyhow::Result<u64> {
    set_of(pid, "CapBnd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_bit_numbers() {
        assert_eq!(
            names(1 << 19 | 1 << 38 | 1 << 39),
            ["CAP_SYS_PTRACE", "CAP_PERFMON", "CAP_BPF"]
        );
        assert!(names(0).is_empty());
    }
}
