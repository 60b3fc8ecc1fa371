//! bpf-from-container: a container process used the bpf() system call. With BPF a process can
//! read kernel memory, watch or rewrite every process on the host, and blind this detector.

use detector_common::{BpfEvent, bpf_cmd};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const BPF_FROM_CONTAINER: RuleInfo = RuleInfo {
    id: "bpf-from-container",
    severity: Severity::High,
    mitre: &["T1611", "T1014"],
    description: "uses the bpf() system call",
};

pub fn bpf_use(e: &BpfEvent, subject: &Subject) -> Option<Finding> {
    let command = bpf_cmd::name(e.cmd);
    Some(Finding {
        rule: &BPF_FROM_CONTAINER,
        message: format!(
            "{} used the bpf() system call ({command})",
            subject.describe()
        ),
        details: json!({ "syscall": "bpf", "cmd": e.cmd, "command": command }),
        // A BPF tool makes dozens of calls: the first one speaks for the process.
        repeat: Repeat::OncePerProcess(String::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{header, subject},
        state::filesystems::Filesystems,
    };
    use detector_common::EventKind;

    #[test]
    fn names_the_command_and_speaks_once_per_process() {
        let fs = Filesystems::default();
        let e = BpfEvent {
            header: header(EventKind::Bpf),
            cmd: 5,
            object_id: 0,
        };
        let finding = bpf_use(&e, &subject(&fs)).unwrap();
        assert_eq!(finding.details["command"], "BPF_PROG_LOAD");
        assert!(
            finding
                .message
                .ends_with("used the bpf() system call (BPF_PROG_LOAD)")
        );
        assert_eq!(finding.repeat, Repeat::OncePerProcess(String::new()));
        let odd = BpfEvent { cmd: 999, ..e };
        assert_eq!(
            bpf_use(&odd, &subject(&fs)).unwrap().details["command"],
            "unknown"
        );
    }
}
