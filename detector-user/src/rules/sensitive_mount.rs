//! sensitive-mount: a container process mounted a filesystem that exposes the host: a block
//! device (the host's disks), or a pseudo filesystem holding kernel or host state.

use detector_common::{MountEvent, syscall};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, text};

pub const SENSITIVE_MOUNT: RuleInfo = RuleInfo {
    id: "sensitive-mount",
    severity: Severity::High,
    mitre: &["T1611"],
    description: "mounts a block device, or a cgroup/proc/sys/debug/security/bpf/binfmt_misc \
                  filesystem",
};

/// Pseudo filesystems whose new instance hands the container host or kernel state.
const SENSITIVE_PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "debugfs",
    "tracefs",
    "securityfs",
    "bpf",
    "binfmt_misc",
    "devtmpfs",
];

/// Flags with which `mount` does not create a new filesystem instance, so the type argument
/// means nothing: remount, bind, move, and propagation changes.
const NOT_A_NEW_MOUNT: u64 = libc::MS_REMOUNT
    | libc::MS_BIND
    | libc::MS_MOVE
    | libc::MS_SHARED
    | libc::MS_PRIVATE
    | libc::MS_SLAVE
    | libc::MS_UNBINDABLE;

pub fn sensitive_mount(e: &MountEvent, subject: &Subject) -> Option<Finding> {
    if e.flags & NOT_A_NEW_MOUNT != 0 {
        return None;
    }
    let fstype = text(&e.fstype);
    let (source, target) = (text(&e.source), text(&e.target));
    let kind = if subject.filesystems.needs_block_device(&fstype) {
        "block-device"
    } else if SENSITIVE_PSEUDO.contains(&fstype.as_str()) {
        "pseudo-filesystem"
    } else {
        return None;
    };
    let device = (e.dev != 0).then(|| super::device_name(e.dev));
    let what = match (kind, &device) {
        ("block-device", Some(device)) => format!("block device {source} ({device}, {fstype})"),
        ("block-device", None) => format!("block device {source} ({fstype})"),
        _ => format!("a {fstype} filesystem"),
    };
    let on = if target.is_empty() {
        String::new()
    } else {
        format!(" on {target}")
    };
    Some(Finding {
        rule: &SENSITIVE_MOUNT,
        message: format!("{} mounted {what}{on}", subject.describe()),
        details: json!({
            "syscall": syscall::name(e.syscall),
            "kind": kind,
            "fstype": fstype,
            "source": source,
            "target": target,
            "device": device,
            "flags": e.flags,
        }),
        repeat: Repeat::EveryAct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{buf, header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::EventKind;

    fn mount(fstype: &str, source: &str, flags: u64) -> MountEvent {
        MountEvent {
            header: header(EventKind::Mount),
            syscall: syscall::MOUNT,
            dev: 0,
            flags,
            fstype: buf(fstype),
            source: buf(source),
            target: buf("/mnt/x"),
        }
    }

    #[test]
    fn block_devices_and_sensitive_pseudo_filesystems_fire() {
        let fs = Filesystems::parse("nodev\tproc\n\text4\nnodev\ttmpfs\n");
        let s = subject(&fs);
        let disk = sensitive_mount(&mount("ext4", "/dev/hostdisk", libc::MS_RDONLY), &s).unwrap();
        assert_eq!(disk.details["kind"], "block-device");
        assert_eq!(disk.details["source"], "/dev/hostdisk");
        let proc = sensitive_mount(&mount("proc", "proc", 0), &s).unwrap();
        assert_eq!(proc.details["kind"], "pseudo-filesystem");
        assert!(proc.message.contains("mounted a proc filesystem on /mnt/x"));
    }

    #[test]
    fn the_kernel_view_names_the_device_and_may_lack_the_mount_point() {
        let fs = Filesystems::parse("nodev\tproc\n\text4\n");
        let s = subject(&fs);
        let e = MountEvent {
            syscall: syscall::MOUNT_OR_FSCONFIG,
            dev: (7 << 20) | 3,
            target: [0; detector_common::MOUNT_PATH_LEN],
            ..mount("ext4", "/dev/hostdisk", 0)
        };
        let disk = sensitive_mount(&e, &s).unwrap();
        assert_eq!(disk.details["device"], "7:3");
        assert_eq!(disk.details["syscall"], "mount/fsconfig");
        assert!(
            disk.message
                .ends_with("mounted block device /dev/hostdisk (7:3, ext4)"),
            "{}",
            disk.message
        );
    }

    #[test]
    fn ordinary_mounts_and_non_creating_flags_are_silent() {
        let fs = Filesystems::parse("nodev\tproc\n\text4\nnodev\ttmpfs\n");
        let s = subject(&fs);
        assert!(sensitive_mount(&mount("tmpfs", "tmpfs", 0), &s).is_none());
        assert!(sensitive_mount(&mount("proc", "proc", libc::MS_REMOUNT), &s).is_none());
        assert!(sensitive_mount(&mount("ext4", "/data", libc::MS_BIND), &s).is_none());
    }
}
