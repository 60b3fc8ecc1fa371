//! host-namespace-entry: a container process joined a namespace of the host.

use detector_common::{NamespaceEvent, Namespaces, syscall};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const HOST_NAMESPACE_ENTRY: RuleInfo = RuleInfo {
    id: "host-namespace-entry",
    severity: Severity::Critical,
    mitre: &["T1611"],
    description: "joins a namespace of the host (setns, nsenter, via /proc/PID/ns or a pidfd)",
};

/// Names in the order of the `ns_bit` bits.
const NAMESPACE_NAMES: [&str; 8] = ["mnt", "pid", "net", "ipc", "uts", "cgroup", "user", "time"];

pub fn names(mask: u32) -> Vec<&'static str> {
    NAMESPACE_NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

fn inodes(ns: &Namespaces) -> serde_json::Value {
    NAMESPACE_NAMES
        .iter()
        .zip(ns.as_array())
        .map(|(name, inum)| (name.to_string(), json!(inum)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn host_namespace_entry(e: &NamespaceEvent, subject: &Subject) -> Option<Finding> {
    let entered = names(e.after.entered(&e.before, subject.host_ns));
    if entered.is_empty() {
        return None;
    }
    let message = format!(
        "{} joined the host {} namespace{}",
        subject.describe(),
        entered.join(", "),
        if entered.len() > 1 { "s" } else { "" }
    );
    Some(Finding {
        rule: &HOST_NAMESPACE_ENTRY,
        message,
        details: json!({
            "syscall": syscall::name(e.syscall),
            "namespaces": entered,
            "nstype": e.nstype,
            "before": inodes(&e.before),
            "after": inodes(&e.after),
        }),
        repeat: Repeat::EveryAct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{HOST_NS, header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::EventKind;

    const CONTAINER_NS: Namespaces = Namespaces {
        mnt: 11,
        pid_for_children: 12,
        net: 13,
        ipc: 14,
        uts: 15,
        cgroup: 16,
        user: HOST_NS.user,
        time: HOST_NS.time,
    };

    #[test]
    fn names_each_namespace_that_became_the_hosts() {
        let fs = Filesystems::default();
        let event = NamespaceEvent {
            header: header(EventKind::Namespace),
            syscall: syscall::SETNS,
            nstype: 0,
            before: CONTAINER_NS,
            after: Namespaces {
                mnt: HOST_NS.mnt,
                net: HOST_NS.net,
                ..CONTAINER_NS
            },
        };
        let f = host_namespace_entry(&event, &subject(&fs)).unwrap();
        assert_eq!(f.rule.id, "host-namespace-entry");
        assert_eq!(f.details["namespaces"], json!(["mnt", "net"]));
        assert_eq!(f.details["after"]["mnt"], HOST_NS.mnt);
        assert!(
            f.message.ends_with("joined the host mnt, net namespaces"),
            "{}",
            f.message
        );
    }

    /// The user and time namespaces were the host's all along: not joined.
    #[test]
    fn no_namespace_that_became_the_hosts_is_no_finding() {
        let fs = Filesystems::default();
        let event = NamespaceEvent {
            header: header(EventKind::Namespace),
            syscall: syscall::SETNS,
            nstype: 0,
            before: CONTAINER_NS,
            after: CONTAINER_NS,
        };
        assert!(host_namespace_entry(&event, &subject(&fs)).is_none());
    }
}
