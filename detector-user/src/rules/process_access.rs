//! ptrace-outside-container: a container process gained ptrace-level access to a process
//! outside its container (ptrace attach, process_vm_readv/writev, /proc/PID/mem). Whoever can
//! write another process's memory runs code as that process: on the host, as root.

use detector_common::{PtraceEvent, ptrace_access};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};

pub const PTRACE_OUTSIDE_CONTAINER: RuleInfo = RuleInfo {
    id: "ptrace-outside-container",
    severity: Severity::High,
    mitre: &["T1611", "T1055.008"],
    description: "ptraces, or reads/writes the memory of, a process outside its container",
};

pub fn process_access(e: &PtraceEvent, subject: &Subject) -> Option<Finding> {
    let target = subject.target.as_ref()?;
    if target.container_id.as_deref() == Some(subject.container_id) {
        return None;
    }
    let whose = match &target.container_id {
        Some(id) => format!("container {}", super::short_id(id)),
        None => "the host".to_string(),
    };
    let how = ptrace_access::name(e.access);
    Some(Finding {
        rule: &PTRACE_OUTSIDE_CONTAINER,
        message: format!(
            "{} gained {how} to {} (pid {}) of {whose}",
            subject.describe(),
            target.comm,
            target.pid
        ),
        details: json!({
            "access": how,
            "target_pid": target.pid,
            "target_comm": target.comm,
            "target_container_id": target.container_id,
        }),
        // process_vm_readv in a loop is one act per target.
        repeat: Repeat::OncePerProcess(target.pid.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::{
            Target,
            test_support::{header, subject},
        },
        state::filesystems::Filesystems,
    };
    use detector_common::EventKind;

    fn event(access: u32) -> PtraceEvent {
        PtraceEvent {
            header: header(EventKind::Ptrace),
            access,
            target_tgid: 1,
            target_vpid: 0,
            caller_pid_ns: 0,
        }
    }

    #[test]
    fn fires_for_targets_outside_the_container_only() {
        let fs = Filesystems::default();
        let mut s = subject(&fs);
        let e = event(ptrace_access::ATTACH);
        assert!(process_access(&e, &s).is_none(), "unknown target");
        s.target = Some(Target {
            pid: 1,
            comm: "systemd".into(),
            container_id: None,
        });
        let host = process_access(&e, &s).unwrap();
        assert!(
            host.message
                .ends_with("gained ptrace attach to systemd (pid 1) of the host")
        );
        assert_eq!(host.details["target_container_id"], serde_json::Value::Null);
        s.target = Some(Target {
            pid: 77,
            comm: "sh".into(),
            container_id: Some(s.container_id.to_string()),
        });
        assert!(process_access(&e, &s).is_none(), "same container");
        s.target = Some(Target {
            pid: 78,
            comm: "nginx".into(),
            container_id: Some("aa".repeat(32)),
        });
        let other = process_access(&event(ptrace_access::VM_READ), &s).unwrap();
        assert!(
            other
                .message
                .contains("process_vm_readv to nginx (pid 78) of container aaaa")
        );
    }
}
