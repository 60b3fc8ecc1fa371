//! Invariants checked when a container process execs, on facts the kernel reads at that moment:
//!
//! - host-fd-leak: its working directory is on a mount outside its own mount namespace, as a
//!   descriptor leaked from the host leaves it (runc CVE-2024-21626: `runc exec --cwd
//!   /proc/self/fd/7`).
//! - host-root-chroot: its root directory is the host's, which its container's is not (a
//!   chroot or pivot_root into `/proc/1/root` of a host-pid container).
//! - privilege-escalation: it gained uid 0, or capabilities, beyond what its container started
//!   with (a setuid binary in a container started as another user).

use detector_common::ExecEvent;
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, device_name};

pub const HOST_FD_LEAK: RuleInfo = RuleInfo {
    id: "host-fd-leak",
    severity: Severity::Critical,
    mitre: &["T1611"],
    description: "holds a working directory or file on a mount outside its own mount namespace \
                  (e.g. runc CVE-2024-21626)",
};

pub const HOST_ROOT_CHROOT: RuleInfo = RuleInfo {
    id: "host-root-chroot",
    severity: Severity::Critical,
    mitre: &["T1611"],
    description: "chroots or pivots into the host's root filesystem",
};

pub const PRIVILEGE_ESCALATION: RuleInfo = RuleInfo {
    id: "privilege-escalation",
    severity: Severity::Medium,
    mitre: &["T1548", "T1068"],
    description: "gains uid 0 or capabilities beyond what its container started with",
};

pub fn host_fd_leak(e: &ExecEvent, subject: &Subject) -> Option<Finding> {
    let (cwd_ns, own) = (e.cwd_mnt_ns, e.ns.mnt);
    // 0: a detached mount, or unknown.
    if cwd_ns == 0 || own == 0 || cwd_ns == own {
        return None;
    }
    let whose = if cwd_ns == subject.host_ns.mnt {
        "the host's"
    } else {
        "another"
    };
    Some(Finding {
        rule: &HOST_FD_LEAK,
        message: format!(
            "{} runs with its working directory on a mount of {whose} mount namespace",
            subject.describe()
        ),
        details: json!({ "cwd_mnt_ns": cwd_ns, "own_mnt_ns": own, "exe": super::text(&e.filename) }),
        repeat: Repeat::OncePerProcess("cwd".to_owned()),
    })
}

pub fn host_root_chroot(e: &ExecEvent, subject: &Subject) -> Option<Finding> {
    let host = subject.host_root;
    if host.ino == 0 || e.root != host || subject.origin.is_some_and(|o| o.root == host) {
        return None;
    }
    Some(Finding {
        rule: &HOST_ROOT_CHROOT,
        message: format!(
            "{} runs with the host's root directory as its root",
            subject.describe()
        ),
        details: json!({
            "root_inode": e.root.ino,
            "root_dev": device_name(e.root.dev),
            "exe": super::text(&e.filename),
        }),
        repeat: Repeat::OncePerProcess("root".to_owned()),
    })
}

pub fn privilege_escalation(e: &ExecEvent, subject: &Subject) -> Option<Finding> {
    // Where the runtime hands over (`runc exec --user 0`), the credentials are its choice.
    if e.header.identity.entered() {
        return None;
    }
    let origin = subject.origin?;
    let became_root = e.euid == 0 && origin.euid.is_some_and(|euid| euid != 0);
    let new_caps = e.cap_effective & !origin.cap_effective;
    if !became_root && new_caps == 0 {
        return None;
    }
    let what = match (became_root, new_caps) {
        (true, 0) => "uid 0".to_owned(),
        (true, caps) => format!("uid 0 and capabilities {caps:#x}"),
        (false, caps) => format!("capabilities {caps:#x}"),
    };
    Some(Finding {
        rule: &PRIVILEGE_ESCALATION,
        message: format!(
            "{} gained {what} beyond what its container started with",
            subject.describe()
        ),
        details: json!({
            "euid": e.euid,
            "uid": e.uid,
            "container_euid": origin.euid,
            "cap_effective": format!("{:#x}", e.cap_effective),
            "container_cap_effective": format!("{:#x}", origin.cap_effective),
            "exe": super::text(&e.filename),
        }),
        repeat: Repeat::OncePerProcess("privileges".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{HOST_NS, subject},
        state::{container::Origin, filesystems::Filesystems},
    };
    use detector_common::FileId;

    const HOST_ROOT: FileId = FileId {
        dev: 1,
        _pad: 0,
        ino: 2,
    };
    const CONTAINER_ROOT: FileId = FileId {
        dev: 1,
        _pad: 0,
        ino: 99,
    };

    fn exec() -> ExecEvent {
        // SAFETY: plain data; all-zero is a valid ExecEvent.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.ns.mnt = 11;
        e.cwd_mnt_ns = 11;
        e.root = CONTAINER_ROOT;
        e.euid = 1000;
        e.cap_effective = 0;
        e
    }

    fn judge(rule: fn(&ExecEvent, &Subject) -> Option<Finding>, e: &ExecEvent) -> bool {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        s.host_root = HOST_ROOT;
        s.origin = Some(Origin {
            ns: HOST_NS,
            root: CONTAINER_ROOT,
            euid: Some(1000),
            cap_effective: 0x3,
        });
        rule(e, &s).is_some()
    }

    #[test]
    fn a_working_directory_on_another_namespace_s_mount_has_leaked() {
        assert!(!judge(host_fd_leak, &exec()));
        let leaked = ExecEvent {
            cwd_mnt_ns: HOST_NS.mnt,
            ..exec()
        };
        assert!(judge(host_fd_leak, &leaked));
        let detached = ExecEvent {
            cwd_mnt_ns: 0,
            ..exec()
        };
        assert!(!judge(host_fd_leak, &detached));
    }

    #[test]
    fn the_host_s_root_is_reported_unless_the_container_started_there() {
        assert!(!judge(host_root_chroot, &exec()));
        let chrooted = ExecEvent {
            root: HOST_ROOT,
            ..exec()
        };
        assert!(judge(host_root_chroot, &chrooted));
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        s.host_root = HOST_ROOT;
        s.origin = Some(Origin {
            ns: HOST_NS,
            root: HOST_ROOT,
            euid: Some(0),
            cap_effective: 0,
        });
        assert!(host_root_chroot(&chrooted, &s).is_none());
    }

    #[test]
    fn uid_0_or_new_capabilities_beyond_the_start_are_an_escalation() {
        assert!(!judge(privilege_escalation, &exec()));
        assert!(judge(
            privilege_escalation,
            &ExecEvent { euid: 0, ..exec() }
        ));
        assert!(judge(
            privilege_escalation,
            &ExecEvent {
                cap_effective: 0x4,
                ..exec()
            }
        ));
        assert!(!judge(
            privilege_escalation,
            &ExecEvent {
                cap_effective: 0x2,
                ..exec()
            }
        ));
    }
}
