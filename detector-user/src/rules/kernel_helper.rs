//! kernel-helper-hijack: a container process opened for writing a setting that names a
//! program the kernel runs as root on the host (core dump pipe, module loader, uevent and
//! hotplug helpers, binfmt_misc interpreters). Matched by filesystem and dentry names, so a
//! second procfs mount at any path is caught as well.

use detector_common::{FileOpenEvent, helper_files::HelperFile};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, opened_file::OpenedFile};

pub const KERNEL_HELPER_HIJACK: RuleInfo = RuleInfo {
    id: "kernel-helper-hijack",
    severity: Severity::Critical,
    mitre: &["T1611", "T1547.006"],
    description: "writes a path the kernel executes as root: core_pattern, modprobe, \
                  uevent_helper, binfmt_misc registration, hotplug",
};

pub fn helper_path_write(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    let helper = match HelperFile::identify(e.magic, &e.names[0], &e.names[1])? {
        // Those arm the cgroup release agent: cgroup-release-agent speaks for them.
        HelperFile::ReleaseAgent | HelperFile::NotifyOnRelease => return None,
        helper => helper.name(),
    };
    let file = OpenedFile::from_event(e);
    Some(Finding {
        rule: &KERNEL_HELPER_HIJACK,
        message: format!(
            "{} opened the kernel's {helper} setting for writing",
            subject.describe()
        ),
        details: json!({ "helper": helper, "file": file.details() }),
        repeat: Repeat::EveryAct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::opened_file::tests::open_event, rules::test_support::subject,
        state::filesystems::Filesystems,
    };
    use detector_common::magic;

    #[test]
    fn recognises_each_helper_setting_by_filesystem_and_names() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let cases: &[(u64, &[&str], &str)] = &[
            (
                magic::PROC_SUPER_MAGIC,
                &["core_pattern", "kernel", "sys", "/"],
                "core_pattern",
            ),
            (
                magic::PROC_SUPER_MAGIC,
                &["modprobe", "kernel", "sys", "/"],
                "modprobe",
            ),
            (
                magic::PROC_SUPER_MAGIC,
                &["hotplug", "kernel", "sys", "/"],
                "hotplug",
            ),
            (
                magic::SYSFS_MAGIC,
                &["uevent_helper", "kernel", "/"],
                "uevent_helper",
            ),
            (magic::BINFMTFS_MAGIC, &["register", "/"], "binfmt_misc"),
        ];
        for (fs_magic, names, helper) in cases {
            let f = helper_path_write(&open_event(*fs_magic, names), &s).expect(helper);
            assert_eq!(f.details["helper"], *helper);
        }
    }

    #[test]
    fn ignores_lookalikes() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let lookalikes: &[(u64, &[&str])] = &[
            // A regular file named like the setting, e.g. inside a container image.
            (0xef53, &["core_pattern", "kernel", "sys", "/"]),
            // A neighbouring sysctl.
            (
                magic::PROC_SUPER_MAGIC,
                &["core_uses_pid", "kernel", "sys", "/"],
            ),
            // A per-process file that happens to be called modprobe.
            (magic::PROC_SUPER_MAGIC, &["modprobe", "42", "/"]),
            (magic::BINFMTFS_MAGIC, &["status", "/"]),
        ];
        for (fs_magic, names) in lookalikes {
            assert!(
                helper_path_write(&open_event(*fs_magic, names), &s).is_none(),
                "{names:?}"
            );
        }
    }
}
