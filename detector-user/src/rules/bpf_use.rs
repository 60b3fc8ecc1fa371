//! bpf-from-container: a container process used the bpf() system call. With BPF a process can
//! read kernel memory, watch or rewrite every process on the host, and blind this detector.

use detector_common::BpfEvent;
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const BPF_FROM_CONTAINER: RuleInfo = RuleInfo {
    id: "bpf-from-container",
    severity: Severity::High,
    mitre: &["T1611", "T1014"],
    description: "uses the bpf() system call",
};

/// `enum bpf_cmd` names of the commands a caller reaches first.
fn command_name(cmd: u32) -> &'static str {
    match cmd {
        0 => "BPF_MAP_CREATE",
        5 => "BPF_PROG_LOAD",
        6 => "BPF_OBJ_PIN",
        7 => "BPF_OBJ_GET",
        8 => "BPF_PROG_ATTACH",
        9 => "BPF_PROG_DETACH",
        10 => "BPF_PROG_TEST_RUN",
        11 => "BPF_PROG_GET_NEXT_ID",
        12 => "BPF_MAP_GET_NEXT_ID",
        13 => "BPF_PROG_GET_FD_BY_ID",
        14 => "BPF_MAP_GET_FD_BY_ID",
        15 => "BPF_OBJ_GET_INFO_BY_FD",
        16 => "BPF_PROG_QUERY",
        17 => "BPF_RAW_TRACEPOINT_OPEN",
        18 => "BPF_BTF_LOAD",
        19 => "BPF_BTF_GET_FD_BY_ID",
        20 => "BPF_TASK_FD_QUERY",
        22 => "BPF_MAP_FREEZE",
        23 => "BPF_BTF_GET_NEXT_ID",
        28 => "BPF_LINK_CREATE",
        29 => "BPF_LINK_UPDATE",
        30 => "BPF_LINK_GET_FD_BY_ID",
        31 => "BPF_LINK_GET_NEXT_ID",
        32 => "BPF_ENABLE_STATS",
        33 => "BPF_ITER_CREATE",
        34 => "BPF_LINK_DETACH",
        35 => "BPF_PROG_BIND_MAP",
        36 => "BPF_TOKEN_CREATE",
        _ => "unknown",
    }
}

pub fn bpf_use(e: &BpfEvent, subject: &Subject) -> Option<Finding> {
    let command = command_name(e.cmd);
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
            _pad: 0,
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
