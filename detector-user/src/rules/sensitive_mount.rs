//! sensitive-mount: a container process mounted a filesystem that exposes the host: a block
//! device (the host's disks), a pseudo filesystem holding kernel or host state, or a bind of a
//! host path (which makes the host's files the container's own mount, out of reach of the
//! rules that watch for writes outside the container).
//!
//! Binds are seen in the kernel where trampolines work: the mount copied belongs to another
//! mount namespace than the container's. On syscall tracepoints only `mount`'s strings are
//! there, and a bind whose source goes through `/proc/PID/root` or `/proc/PID/cwd` of a
//! numbered process, in a container that shares the host's pid namespace, stands for one.

use detector_common::{MountEvent, syscall};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, text};

pub const SENSITIVE_MOUNT: RuleInfo = RuleInfo {
    id: "sensitive-mount",
    severity: Severity::High,
    mitre: &["T1611"],
    description: "mounts a block device, a cgroup/proc/sys/debug/security/bpf/binfmt_misc \
                  filesystem, or bind-mounts a host path",
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
    if e.syscall == syscall::REMOUNT || e.flags & libc::MS_REMOUNT != 0 {
        return writable_remount(e, subject);
    }
    if e.syscall == syscall::BIND {
        return host_bind(e, subject);
    }
    if e.flags & libc::MS_BIND != 0 {
        return bind_through_proc(e, subject);
    }
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

/// A remount that leaves host or kernel state writable: how a container undoes the read-only
/// /proc/sys or /sys its runtime gave it, before it writes a kernel setting. The kernel's view
/// names the superblock's type whatever the caller passed; on tracepoints `mount`'s type
/// argument may be empty (busybox passes none), and the mount point stands in: /proc, /sys and
/// below, as the container names them.
fn writable_remount(e: &MountEvent, subject: &Subject) -> Option<Finding> {
    if e.flags & libc::MS_RDONLY != 0 {
        return None;
    }
    let (fstype, target) = (text(&e.fstype), text(&e.target));
    let by_type = SENSITIVE_PSEUDO.contains(&fstype.as_str());
    let by_path = e.syscall == syscall::MOUNT && under_kernel_state(&target);
    if !by_type && !by_path {
        return None;
    }
    let what = if by_type {
        format!("the {fstype} filesystem")
    } else {
        "the mount".to_owned()
    };
    Some(Finding {
        rule: &SENSITIVE_MOUNT,
        message: format!(
            "{} remounted {what} at {target} read-write",
            subject.describe()
        ),
        details: json!({
            "syscall": syscall::name(e.syscall),
            "kind": "remount",
            "fstype": fstype,
            "target": target,
            "device": (e.dev != 0).then(|| super::device_name(e.dev)),
            "flags": e.flags,
        }),
        repeat: Repeat::EveryAct,
    })
}

fn under_kernel_state(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ["/proc", "/sys"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// A bind the kernel saw copy a mount of another mount namespace than the container's.
fn host_bind(e: &MountEvent, subject: &Subject) -> Option<Finding> {
    let from = e.source_mnt_ns;
    if from == subject.ns.mnt || subject.origin.is_some_and(|o| o.ns.mnt == from) {
        return None;
    }
    let whose = if from == subject.host_ns.mnt {
        "the host's"
    } else {
        "another"
    };
    let (fstype, source, device) = (text(&e.fstype), text(&e.source), super::device_name(e.dev));
    Some(bind_finding(
        e,
        subject,
        format!("{source} ({fstype} on {device}) from a mount of {whose} mount namespace"),
        json!({ "source_mnt_ns": from, "fstype": fstype, "device": device }),
    ))
}

/// The tracepoints' stand-in: a bind through another process's root or working directory in
/// a container that shares the host's pid namespace.
fn bind_through_proc(e: &MountEvent, subject: &Subject) -> Option<Finding> {
    let shares_host_pids = subject
        .origin
        .is_some_and(|o| o.ns.pid_for_children == subject.host_ns.pid_for_children);
    let source = text(&e.source);
    if !shares_host_pids || !through_another_process(&source) {
        return None;
    }
    Some(bind_finding(
        e,
        subject,
        format!("{source}, another process's root or working directory"),
        json!({}),
    ))
}

/// `/proc/<number>/root...` or `/proc/<number>/cwd...`.
fn through_another_process(source: &str) -> bool {
    let mut parts = source.trim_start_matches('/').split('/');
    parts.next() == Some("proc")
        && parts
            .next()
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts.next(), Some("root" | "cwd"))
}

fn bind_finding(
    e: &MountEvent,
    subject: &Subject,
    what: String,
    mut details: serde_json::Value,
) -> Finding {
    let target = text(&e.target);
    let on = if target.is_empty() {
        String::new()
    } else {
        format!(" on {target}")
    };
    let (did, refused) = match e.result {
        0 => ("bind-mounted", None),
        errno => (
            "tried to bind-mount",
            Some(nix::errno::Errno::from_raw(-errno).to_string()),
        ),
    };
    details["result"] = if refused.is_some() {
        "refused"
    } else {
        "mounted"
    }
    .into();
    details["error"] = refused.clone().into();
    details["syscall"] = syscall::name(e.syscall).into();
    details["kind"] = "host-bind".into();
    details["source"] = text(&e.source).into();
    details["target"] = target.into();
    details["flags"] = e.flags.into();
    Finding {
        rule: &SENSITIVE_MOUNT,
        message: format!(
            "{} {did} {what}{on}{}",
            subject.describe(),
            refused
                .map(|why| format!(" (refused: {why})"))
                .unwrap_or_default()
        ),
        details,
        repeat: Repeat::EveryAct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::HOST_NS;
    use crate::{
        rules::test_support::{buf, header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::{EventKind, Namespaces};

    fn mount(fstype: &str, source: &str, flags: u64) -> MountEvent {
        MountEvent {
            header: header(EventKind::Mount),
            syscall: syscall::MOUNT,
            dev: 0,
            flags,
            source_mnt_ns: 0,
            result: 0,
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
        let read_only = libc::MS_REMOUNT | libc::MS_RDONLY;
        assert!(sensitive_mount(&mount("proc", "proc", read_only), &s).is_none());
        assert!(sensitive_mount(&mount("ext4", "/data", libc::MS_BIND), &s).is_none());
    }

    #[test]
    fn remounts_that_leave_kernel_state_writable_fire() {
        let fs = Filesystems::parse("nodev\tproc\n\text4\nnodev\ttmpfs\n");
        let s = subject(&fs);
        // The kernel's view: the superblock's type, the mount point's own name.
        let kernel = MountEvent {
            syscall: syscall::REMOUNT,
            target: buf("sys"),
            ..mount("proc", "", libc::MS_REMOUNT | libc::MS_BIND)
        };
        let finding = sensitive_mount(&kernel, &s).unwrap();
        assert_eq!(finding.details["kind"], "remount");
        assert!(
            finding
                .message
                .ends_with("remounted the proc filesystem at sys read-write")
        );
        let tmpfs = MountEvent {
            fstype: buf("tmpfs"),
            ..kernel
        };
        assert!(sensitive_mount(&tmpfs, &s).is_none());
        // Tracepoints: no type from busybox, the path as the container names it.
        let untyped = |target| MountEvent {
            target: buf(target),
            ..mount("", "", libc::MS_REMOUNT)
        };
        assert!(sensitive_mount(&untyped("/proc/sys"), &s).is_some());
        assert!(sensitive_mount(&untyped("/sys/"), &s).is_some());
        assert!(sensitive_mount(&untyped("/system"), &s).is_none());
        assert!(sensitive_mount(&untyped("/data"), &s).is_none());
    }

    fn sharing_host_pids(fs: &Filesystems) -> Subject<'_> {
        let mut s = subject(fs);
        s.ns.mnt = 11;
        s.origin = Some(crate::state::container::Origin {
            ns: Namespaces { mnt: 11, ..HOST_NS },
            root: detector_common::FileId::default(),
            euid: Some(0),
            cap_effective: 0,
        });
        s
    }

    #[test]
    fn a_bind_the_kernel_saw_copy_a_foreign_mount_fires() {
        let fs = Filesystems::default();
        let s = sharing_host_pids(&fs);
        let bind = MountEvent {
            syscall: syscall::BIND,
            dev: (253 << 20) | 1,
            source_mnt_ns: HOST_NS.mnt,
            target: [0; detector_common::MOUNT_PATH_LEN],
            ..mount("ext4", "etc", libc::MS_BIND)
        };
        let f = sensitive_mount(&bind, &s).unwrap();
        assert_eq!(f.details["kind"], "host-bind");
        assert!(
            f.message.ends_with(
                "bind-mounted etc (ext4 on 253:1) from a mount of the host's mount namespace"
            ),
            "{}",
            f.message
        );
        assert_eq!(f.details["result"], "mounted");
        let refused = MountEvent {
            result: -libc::EINVAL,
            ..bind
        };
        let f = sensitive_mount(&refused, &s).unwrap();
        assert_eq!(f.details["result"], "refused");
        assert!(
            f.message.contains("tried to bind-mount etc"),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with("(refused: EINVAL: Invalid argument)"),
            "{}",
            f.message
        );
        let own = MountEvent {
            source_mnt_ns: 11,
            ..bind
        };
        assert!(
            sensitive_mount(&own, &s).is_none(),
            "the container's own mount"
        );
    }

    #[test]
    fn on_tracepoints_a_bind_through_a_host_process_root_fires() {
        let fs = Filesystems::default();
        let s = sharing_host_pids(&fs);
        let through = mount("", "/proc/4321/root/etc", libc::MS_BIND | libc::MS_REC);
        let f = sensitive_mount(&through, &s).unwrap();
        assert!(
            f.message
                .contains("bind-mounted /proc/4321/root/etc, another process's root")
        );
        for source in ["/proc/self/root/etc", "/data", "/proc/4321/environ"] {
            assert!(
                sensitive_mount(&mount("", source, libc::MS_BIND), &s).is_none(),
                "{source}"
            );
        }
        // A container with its own pid namespace reaches only its own processes.
        let own_pids = subject(&fs);
        assert!(sensitive_mount(&through, &own_pids).is_none());
    }
}
