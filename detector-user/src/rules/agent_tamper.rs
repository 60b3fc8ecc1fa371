//! agent-tamper: a container process signals, ptraces or takes hold of the detector's BPF
//! objects. Whoever can stop, kill or trace the detector, or reach its programs and maps, can
//! blind it before the escape that follows.

use detector_common::{BpfEvent, PtraceEvent, SignalEvent, bpf_cmd, ptrace_access};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const AGENT_TAMPER: RuleInfo = RuleInfo {
    id: "agent-tamper",
    severity: Severity::High,
    mitre: &["T1562.001"],
    description: "signals, ptraces or tries to detach the detector itself",
};

/// `TRACE_SIGNAL_*` of the kernel's signal tracepoint.
fn signal_result(result: i32) -> &'static str {
    match result {
        0 => "delivered",
        1 => "ignored",
        2 => "already pending",
        3 => "queue overflow",
        4 => "delivered without its information",
        _ => "unknown",
    }
}

pub fn signal(e: &SignalEvent, subject: &Subject) -> Option<Finding> {
    let name = nix::sys::signal::Signal::try_from(e.sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {}", e.sig));
    let result = signal_result(e.result);
    Some(Finding {
        rule: &AGENT_TAMPER,
        message: format!(
            "{} sent {name} to the detector (pid {}): {result}",
            subject.describe(),
            subject.agent.pid
        ),
        details: json!({
            "tamper": "signal",
            "signal": name,
            "result": result,
            "agent_pid": subject.agent.pid,
        }),
        repeat: Repeat::OncePerProcess(e.sig.to_string()),
    })
}

pub fn ptrace(e: &PtraceEvent, subject: &Subject) -> Option<Finding> {
    let target = subject.target.as_ref()?;
    if target.pid != subject.agent.pid {
        return None;
    }
    let how = ptrace_access::name(e.access);
    Some(Finding {
        rule: &AGENT_TAMPER,
        message: format!(
            "{} gained {how} to the detector (pid {})",
            subject.describe(),
            subject.agent.pid
        ),
        details: json!({ "tamper": "ptrace", "access": how, "agent_pid": subject.agent.pid }),
        repeat: Repeat::OncePerProcess(format!("ptrace {how}")),
    })
}

/// A by-id `bpf()` command naming one of the detector's objects: how a process gets a
/// descriptor to detach our links, rewrite our maps or replace our programs.
pub fn bpf(e: &BpfEvent, subject: &Subject) -> Option<Finding> {
    if !subject.agent.owns(e.cmd, e.object_id) {
        return None;
    }
    let command = bpf_cmd::name(e.cmd);
    Some(Finding {
        rule: &AGENT_TAMPER,
        message: format!(
            "{} took hold of the detector's BPF object {} ({command})",
            subject.describe(),
            e.object_id
        ),
        details: json!({ "tamper": "bpf", "command": command, "object_id": e.object_id }),
        // bpftool walks every object: one alert per process for each kind.
        repeat: Repeat::OncePerProcess(command.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{
        rules::{
            Target,
            test_support::{header, subject},
        },
        state::{agent_self::AgentSelf, filesystems::Filesystems},
    };
    use detector_common::EventKind;

    #[test]
    fn names_the_signal_and_whether_it_landed() {
        let fs = Filesystems::default();
        let e = SignalEvent {
            header: header(EventKind::Signal),
            sig: 19,
            result: 0,
        };
        let finding = signal(&e, &subject(&fs)).unwrap();
        assert_eq!(finding.rule.id, "agent-tamper");
        assert_eq!(finding.details["signal"], "SIGSTOP");
        assert_eq!(finding.details["result"], "delivered");
        let odd = SignalEvent { sig: 64, ..e };
        assert_eq!(
            signal(&odd, &subject(&fs)).unwrap().details["signal"],
            "signal 64"
        );
    }

    #[test]
    fn ptrace_fires_for_the_detector_only() {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        let e = PtraceEvent {
            header: header(EventKind::Ptrace),
            access: ptrace_access::ATTACH,
            target_tgid: 1,
            target_vpid: 0,
            caller_pid_ns: 0,
        };
        assert!(ptrace(&e, &s).is_none(), "no target");
        s.target = Some(Target {
            pid: 1,
            comm: "systemd".into(),
            container_id: None,
        });
        assert!(ptrace(&e, &s).is_none(), "another host process");
        s.target = Some(Target {
            pid: s.agent.pid,
            comm: "escape-detector".into(),
            container_id: None,
        });
        let finding = ptrace(&e, &s).unwrap();
        assert_eq!(finding.details["access"], "ptrace attach");
    }

    #[test]
    fn bpf_fires_for_the_detectors_objects_only() {
        let fs = Filesystems::default();
        let mut agent = AgentSelf::this_process();
        agent.bpf.links = HashSet::from([31]);
        let mut s = subject(&fs);
        s.agent = &agent;
        let e = BpfEvent {
            header: header(EventKind::Bpf),
            cmd: bpf_cmd::LINK_GET_FD_BY_ID,
            object_id: 31,
        };
        assert_eq!(
            bpf(&e, &s).unwrap().details["command"],
            "BPF_LINK_GET_FD_BY_ID"
        );
        let other = BpfEvent { object_id: 32, ..e };
        assert!(bpf(&other, &s).is_none());
        let program = BpfEvent {
            cmd: bpf_cmd::PROG_GET_FD_BY_ID,
            ..e
        };
        assert!(
            bpf(&program, &s).is_none(),
            "31 is a link id, not a program's"
        );
    }
}
