//! Files whose content names a program the kernel runs as root on the host. One definition
//! for both sides: the kernel denies writes to them under enforcement, the agent's rules name
//! them in alerts.

use crate::magic;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperFile {
    /// cgroup v1 `release_agent`: run when a cgroup empties.
    ReleaseAgent,
    /// cgroup v1 `notify_on_release`: arms the release agent.
    NotifyOnRelease,
    CorePattern,
    Modprobe,
    Hotplug,
    UeventHelper,
    /// binfmt_misc `register`: adds an interpreter the kernel runs for matching binaries.
    BinfmtRegister,
}

impl HelperFile {
    pub const fn name(self) -> &'static str {
        match self {
            HelperFile::ReleaseAgent => "release_agent",
            HelperFile::NotifyOnRelease => "notify_on_release",
            HelperFile::CorePattern => "core_pattern",
            HelperFile::Modprobe => "modprobe",
            HelperFile::Hotplug => "hotplug",
            HelperFile::UeventHelper => "uevent_helper",
            HelperFile::BinfmtRegister => "binfmt_misc",
        }
    }

    /// The [`refusal`](crate::refusal) bit of the rule whose act a write to this file is.
    pub const fn refusal(self) -> u32 {
        match self {
            HelperFile::ReleaseAgent | HelperFile::NotifyOnRelease => crate::refusal::RELEASE_AGENT,
            _ => crate::refusal::KERNEL_HELPER,
        }
    }

    /// Which helper file this is, from its filesystem's magic, its own dentry name and its
    /// parent's (NUL-terminated buffers or exact slices).
    #[inline(always)]
    pub fn identify(fs_magic: u64, name: &[u8], parent: &[u8]) -> Option<HelperFile> {
        match fs_magic {
            magic::CGROUP_SUPER_MAGIC if is(name, b"release_agent") => {
                Some(HelperFile::ReleaseAgent)
            }
            magic::CGROUP_SUPER_MAGIC if is(name, b"notify_on_release") => {
                Some(HelperFile::NotifyOnRelease)
            }
            magic::PROC_SUPER_MAGIC if is(parent, b"kernel") => {
                if is(name, b"core_pattern") {
                    Some(HelperFile::CorePattern)
                } else if is(name, b"modprobe") {
                    Some(HelperFile::Modprobe)
                } else if is(name, b"hotplug") {
                    Some(HelperFile::Hotplug)
                } else {
                    None
                }
            }
            magic::SYSFS_MAGIC if is(parent, b"kernel") && is(name, b"uevent_helper") => {
                Some(HelperFile::UeventHelper)
            }
            magic::BINFMTFS_MAGIC if is(name, b"register") => Some(HelperFile::BinfmtRegister),
            _ => None,
        }
    }
}

/// `name` (up to its NUL, if any) equals `want`. A byte loop: BPF programs cannot call memcmp.
#[inline(always)]
fn is(name: &[u8], want: &[u8]) -> bool {
    let mut i = 0;
    while i < want.len() {
        match name.get(i) {
            Some(&b) if b == want[i] => i += 1,
            _ => return false,
        }
    }
    matches!(name.get(i), None | Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_by_filesystem_name_and_parent() {
        let p = magic::PROC_SUPER_MAGIC;
        assert_eq!(
            HelperFile::identify(p, b"core_pattern\0xx", b"kernel\0"),
            Some(HelperFile::CorePattern)
        );
        assert_eq!(
            HelperFile::identify(p, b"modprobe", b"kernel"),
            Some(HelperFile::Modprobe)
        );
        assert_eq!(
            HelperFile::identify(p, b"hotplug", b"kernel"),
            Some(HelperFile::Hotplug)
        );
        let c = magic::CGROUP_SUPER_MAGIC;
        assert_eq!(
            HelperFile::identify(c, b"release_agent", b"/"),
            Some(HelperFile::ReleaseAgent)
        );
        assert_eq!(
            HelperFile::identify(c, b"notify_on_release", b"x"),
            Some(HelperFile::NotifyOnRelease)
        );
        assert_eq!(
            HelperFile::identify(magic::SYSFS_MAGIC, b"uevent_helper", b"kernel"),
            Some(HelperFile::UeventHelper)
        );
        assert_eq!(
            HelperFile::identify(magic::BINFMTFS_MAGIC, b"register", b"/"),
            Some(HelperFile::BinfmtRegister)
        );
    }

    #[test]
    fn lookalikes_are_not_helpers() {
        let p = magic::PROC_SUPER_MAGIC;
        // A prefix, a longer name, another directory, another filesystem, cgroup v2.
        assert_eq!(HelperFile::identify(p, b"core_pattern_x", b"kernel"), None);
        assert_eq!(HelperFile::identify(p, b"core_patter", b"kernel"), None);
        assert_eq!(HelperFile::identify(p, b"modprobe", b"42"), None);
        assert_eq!(
            HelperFile::identify(0xef53, b"core_pattern", b"kernel"),
            None
        );
        assert_eq!(
            HelperFile::identify(magic::CGROUP2_SUPER_MAGIC, b"release_agent", b"/"),
            None
        );
        assert_eq!(
            HelperFile::identify(magic::BINFMTFS_MAGIC, b"status", b"/"),
            None
        );
    }
}
