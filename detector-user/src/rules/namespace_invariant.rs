//! Invariants on a container process's namespaces, checked at each of its execs and when it
//! becomes a container process by a cgroup move, whichever hook saw (or missed) how it got
//! there.
//!
//! - namespace-escape: its cgroup says container, yet its mount namespace (or its pid
//!   namespace, for a container that has its own) is the host's.
//! - userns-creation: it made a user namespace (unshare, clone, clone3). Also checked where
//!   the kernel sees the namespace made, so a process that never execs is no blind spot.
//!
//! Both speak on the change: against the process's namespaces before the exec (or the
//! `unshare`, or, for a new process, its creator's at the `clone`), or, for a
//! process the agent sees for the first time, against its container's own. Its descendants,
//! which start where it ended, repeat nothing; a `setns` into the host that host-namespace-entry
//! reported updates what the agent knows, so the shell nsenter starts is no second alert.

use detector_common::{Namespaces, ns_bit};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject, namespace::names};

pub const NAMESPACE_ESCAPE: RuleInfo = RuleInfo {
    id: "namespace-escape",
    severity: Severity::Critical,
    mitre: &["T1611"],
    description: "runs in a host mount or pid namespace while its cgroup says it belongs to a \
                  container, however it got there",
};

pub const USERNS_CREATION: RuleInfo = RuleInfo {
    id: "userns-creation",
    severity: Severity::Medium,
    mitre: &["T1611", "T1068"],
    description: "creates a user namespace (unshare, clone, clone3)",
};

/// What the process is compared with: itself before, else its container.
fn reference(subject: &Subject) -> Option<Namespaces> {
    subject.ns_before.or(subject.origin.map(|o| o.ns))
}

pub fn namespace_escape(subject: &Subject) -> Option<Finding> {
    let (now, host, was) = (&subject.ns, subject.host_ns, reference(subject)?);
    let own = subject.origin.map_or(was, |o| o.ns);
    // Only a namespace its container does not share with the host: a host-pid container's
    // processes live in the host's pid namespace by design.
    let escaped = |bit: u32, pick: fn(&Namespaces) -> u32| {
        let host = pick(host);
        (host != 0 && pick(now) == host && pick(&was) != host && pick(&own) != host).then_some(bit)
    };
    let mask = escaped(ns_bit::MNT, |ns| ns.mnt).unwrap_or(0)
        | escaped(ns_bit::PID, |ns| ns.pid_for_children).unwrap_or(0);
    if mask == 0 {
        return None;
    }
    let which = names(mask);
    Some(Finding {
        rule: &NAMESPACE_ESCAPE,
        message: format!(
            "{} runs in the host {} namespace{} while its cgroup is its container's",
            subject.describe(),
            which.join(", "),
            if which.len() > 1 { "s" } else { "" }
        ),
        details: json!({
            "namespaces": which,
            "mnt": now.mnt,
            "pid": now.pid_for_children,
            "container_mnt": own.mnt,
            "container_pid": own.pid_for_children,
        }),
        repeat: Repeat::EveryAct,
    })
}

pub fn userns_creation(subject: &Subject) -> Option<Finding> {
    let was = reference(subject)?.user;
    let now = subject.ns.user;
    if now == 0 || was == 0 || now == was || now == subject.host_ns.user {
        return None;
    }
    Some(Finding {
        rule: &USERNS_CREATION,
        message: format!(
            "{} runs in a user namespace of its own making ({now}, was {was})",
            subject.describe()
        ),
        details: json!({ "user_ns": now, "was": was }),
        repeat: Repeat::EveryAct,
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

    const CONTAINER: Namespaces = Namespaces {
        mnt: 11,
        pid_for_children: 12,
        net: 13,
        ipc: 14,
        uts: 15,
        cgroup: 16,
        user: HOST_NS.user,
        time: HOST_NS.time,
    };

    fn judge(
        rule: fn(&Subject) -> Option<Finding>,
        now: Namespaces,
        before: Option<Namespaces>,
        container: Namespaces,
    ) -> Option<Finding> {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        s.ns = now;
        s.ns_before = before;
        s.origin = Some(Origin {
            ns: container,
            root: FileId::default(),
            euid: Some(0),
            cap_effective: 0,
        });
        rule(&s)
    }

    #[test]
    fn a_container_process_in_the_host_mount_namespace_has_escaped() {
        let in_host = Namespaces {
            mnt: HOST_NS.mnt,
            ..CONTAINER
        };
        let f = judge(namespace_escape, in_host, Some(CONTAINER), CONTAINER).unwrap();
        assert_eq!(f.details["namespaces"], json!(["mnt"]));
        // Seen for the first time: against its container.
        assert!(judge(namespace_escape, in_host, None, CONTAINER).is_some());
        // Already there before this exec (a descendant, or a reported setns): no news.
        assert!(judge(namespace_escape, in_host, Some(in_host), CONTAINER).is_none());
        assert!(judge(namespace_escape, CONTAINER, Some(CONTAINER), CONTAINER).is_none());
    }

    #[test]
    fn the_host_pid_namespace_counts_only_for_containers_with_their_own() {
        let host_pid = Namespaces {
            pid_for_children: HOST_NS.pid_for_children,
            ..CONTAINER
        };
        let f = judge(namespace_escape, host_pid, Some(CONTAINER), CONTAINER).unwrap();
        assert_eq!(f.details["namespaces"], json!(["pid"]));
        assert!(judge(namespace_escape, host_pid, Some(host_pid), host_pid).is_none());
    }

    #[test]
    fn a_new_user_namespace_is_reported_once() {
        let own_userns = Namespaces {
            user: 99,
            ..CONTAINER
        };
        let f = judge(userns_creation, own_userns, Some(CONTAINER), CONTAINER).unwrap();
        assert_eq!(f.details["user_ns"], 99);
        assert!(judge(userns_creation, own_userns, Some(own_userns), CONTAINER).is_none());
        assert!(judge(userns_creation, CONTAINER, Some(own_userns), CONTAINER).is_none());
    }
}
