//! cgroup-escape: a container process moved a process into a cgroup outside its own
//! container's: the host's root or a service's cgroup, or another container's. A process that
//! leaves its container's cgroups leaves its limits and, in many tools, its attribution; here it
//! stays its container's process, and the move is the alert.

use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const CGROUP_ESCAPE: RuleInfo = RuleInfo {
    id: "cgroup-escape",
    severity: Severity::High,
    mitre: &["T1611"],
    description: "moves a process into a cgroup outside its own container's cgroup",
};

/// `path`: the destination cgroup; the subject's target is the moved process, with the
/// container of the destination.
pub fn cgroup_escape(path: &str, subject: &Subject) -> Option<Finding> {
    let moved = subject.target.as_ref()?;
    if moved.container_id.as_deref() == Some(subject.container_id) {
        return None;
    }
    let whom = if moved.pid == subject.pid {
        "itself".to_owned()
    } else {
        format!("process {} (pid {})", moved.comm, moved.pid)
    };
    let into = match &moved.container_id {
        None => "a host cgroup".to_owned(),
        Some(other) => format!("container {}'s cgroup", super::short_id(other)),
    };
    Some(Finding {
        rule: &CGROUP_ESCAPE,
        message: format!("{} moved {whom} into {into} ({path})", subject.describe()),
        details: json!({
            "cgroup": path,
            "moved_pid": moved.pid,
            "moved_comm": moved.comm,
            "to_container_id": moved.container_id,
        }),
        repeat: Repeat::OncePerProcess(format!("{}:{path}", moved.pid)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::{Target, test_support::subject},
        state::filesystems::Filesystems,
    };

    fn judge(moved: u32, to: Option<&str>) -> Option<Finding> {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        s.target = Some(Target {
            pid: moved,
            comm: "sh".into(),
            container_id: to.map(str::to_owned),
        });
        cgroup_escape("/", &s)
    }

    #[test]
    fn a_move_out_of_the_container_is_an_escape() {
        let own = subject(&Filesystems::default()).container_id.to_owned();
        let f = judge(4242, None).unwrap();
        assert!(
            f.message.ends_with("moved itself into a host cgroup (/)"),
            "{}",
            f.message
        );
        assert!(judge(77, Some("9".repeat(64).as_str())).is_some());
        assert!(judge(4242, Some(&own)).is_none(), "within its container");
    }
}
