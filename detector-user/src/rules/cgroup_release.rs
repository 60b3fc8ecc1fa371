//! cgroup-release-agent: a container process opened a cgroup v1 `release_agent` or
//! `notify_on_release` for writing. The kernel runs the release agent as root in the host's
//! namespaces, so whoever writes it runs code on the host.

use detector_common::{FileOpenEvent, helper_files::HelperFile};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, opened_file::OpenedFile};

pub const CGROUP_RELEASE_AGENT: RuleInfo = RuleInfo {
    id: "cgroup-release-agent",
    severity: Severity::Critical,
    mitre: &["T1611"],
    description: "writes a cgroup v1 release_agent or notify_on_release",
};

pub fn release_agent_write(e: &FileOpenEvent, subject: &Subject) -> Option<Finding> {
    let (HelperFile::ReleaseAgent | HelperFile::NotifyOnRelease) =
        HelperFile::identify(e.magic, &e.names[0], &e.names[1])?
    else {
        return None;
    };
    let file = OpenedFile::from_event(e);
    Some(Finding {
        rule: &CGROUP_RELEASE_AGENT,
        message: format!(
            "{} opened cgroup v1 {} for writing",
            subject.describe(),
            file.name()
        ),
        details: json!({ "file": file.details() }),
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
    fn fires_on_either_file_of_a_cgroup_v1_superblock_only() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        for name in ["release_agent", "notify_on_release"] {
            let e = open_event(magic::CGROUP_SUPER_MAGIC, &[name, "x", "/"]);
            let f = release_agent_write(&e, &s).expect(name);
            assert_eq!(f.details["file"]["name"], name);
            assert_eq!(f.details["file"]["filesystem"], "cgroup");
        }
        // The same name on another filesystem is just a file.
        let tmpfs = open_event(0x0102_1994, &["release_agent", "tmp", "/"]);
        assert!(release_agent_write(&tmpfs, &s).is_none());
        let other = open_event(magic::CGROUP_SUPER_MAGIC, &["cgroup.procs", "/"]);
        assert!(release_agent_write(&other, &s).is_none());
    }
}
