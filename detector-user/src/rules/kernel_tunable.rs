//! kernel-tunable-write: a container process opened a knob of the whole kernel for writing:
//! `/proc/sys/kernel/*`, `/proc/sysrq-trigger` or `/sys/kernel/*`, reached through any procfs
//! or sysfs mount. The files whose content the kernel executes are kernel-helper-hijack's,
//! which speaks first. The sysctls the kernel keeps per IPC or UTS namespace are the
//! container's own and stay silent.

use detector_common::{FileOpenEvent, magic};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, opened_file::OpenedFile};

pub const KERNEL_TUNABLE_WRITE: RuleInfo = RuleInfo {
    id: "kernel-tunable-write",
    severity: Severity::High,
    mitre: &["T1611", "T1562"],
    description: "writes /proc/sys/kernel/*, /proc/sysrq-trigger or /sys/kernel/* (other than \
                  the helper paths)",
};

/// `kernel.*` sysctls that belong to the writer's IPC or UTS namespace (ipc/ipc_sysctl.c,
/// kernel/utsname_sysctl.c).
const NAMESPACED_SYSCTLS: &[&str] = &[
    "hostname",
    "domainname",
    "shmmax",
    "shmall",
    "shmmni",
    "shm_rmid_forced",
    "msgmax",
    "msgmni",
    "msgmnb",
    "auto_msgmni",
    "sem",
    "sem_next_id",
    "msg_next_id",
    "shm_next_id",
];

pub fn kernel_tunable_write(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    let file = OpenedFile::from_event(e);
    let knob = match e.magic {
        magic::PROC_SUPER_MAGIC => proc_knob(&file)?,
        magic::SYSFS_MAGIC if file.below_root_dir("kernel") => "a /sys/kernel file",
        _ => return None,
    };
    Some(Finding {
        rule: &KERNEL_TUNABLE_WRITE,
        message: format!(
            "{} opened {knob} for writing ({})",
            subject.describe(),
            file.path_in_filesystem()
        ),
        details: json!({ "file": file.details() }),
        repeat: Repeat::EveryAct,
    })
}

/// `/proc/sysrq-trigger`, or a `/proc/sys/kernel` sysctl the kernel keeps for all namespaces.
fn proc_knob(file: &OpenedFile) -> Option<&'static str> {
    if file.names == ["sysrq-trigger", "/"] {
        return Some("/proc/sysrq-trigger");
    }
    // /proc/sys is the one "sys" of a procfs: "kernel" right below it is /proc/sys/kernel, even
    // where the names stop short of the root.
    let below_sys_kernel = file
        .names
        .windows(2)
        .any(|pair| pair[0] == "kernel" && pair[1] == "sys");
    let namespaced = file.names.get(1).is_some_and(|parent| parent == "kernel")
        && NAMESPACED_SYSCTLS.contains(&file.name());
    (below_sys_kernel && !namespaced).then_some("a kernel sysctl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::opened_file::tests::open_event, rules::test_support::subject,
        state::filesystems::Filesystems,
    };

    fn finds(magic: u64, names: &[&str]) -> bool {
        let fs = Filesystems::default();
        kernel_tunable_write(&open_event(magic, names), &subject(&fs)).is_some()
    }

    #[test]
    fn whole_kernel_knobs_through_any_mount() {
        let (proc, sys) = (magic::PROC_SUPER_MAGIC, magic::SYSFS_MAGIC);
        assert!(finds(proc, &["sysrq-trigger", "/"]));
        assert!(finds(proc, &["panic", "kernel", "sys", "/"]));
        assert!(finds(
            proc,
            &["perf_event_max_sample_rate", "kernel", "sys", "/"]
        ));
        // Deeper than the names reach: still /proc/sys/kernel.
        assert!(finds(proc, &["x", "y", "z", "random", "kernel", "sys"]));
        assert!(finds(
            sys,
            &["enabled", "transparent_hugepage", "mm", "kernel", "/"]
        ));
    }

    #[test]
    fn the_containers_own_namespaces_and_other_files_are_silent() {
        let (proc, sys) = (magic::PROC_SUPER_MAGIC, magic::SYSFS_MAGIC);
        assert!(!finds(proc, &["hostname", "kernel", "sys", "/"]));
        assert!(!finds(proc, &["shmmax", "kernel", "sys", "/"]));
        assert!(!finds(proc, &["ip_forward", "ipv4", "net", "sys"]));
        assert!(!finds(proc, &["oom_score_adj", "4242", "/"]));
        assert!(!finds(sys, &["uevent", "eth0", "net", "class"]));
        assert!(!finds(magic::CGROUP_SUPER_MAGIC, &["kernel", "/"]));
    }
}
