//! Alerts as CONTRACT.md defines them.

use anyhow::{Context, ensure};
use serde_json::Value;

/// Fields every alert carries, `null` where unknown.
const FIELDS: [&str; 14] = [
    "id",
    "time",
    "rule",
    "severity",
    "mitre",
    "message",
    "hostname",
    "action",
    "container",
    "process",
    "details",
    "incident",
    "count",
    "truncated",
];

/// The contract's rule catalogue: id and severity.
const RULES: [(&str, &str); 20] = [
    ("host-namespace-entry", "critical"),
    ("namespace-escape", "critical"),
    ("host-fd-leak", "critical"),
    ("cgroup-release-agent", "critical"),
    ("kernel-helper-hijack", "critical"),
    ("usermode-helper-exec", "critical"),
    ("runtime-binary-overwrite", "critical"),
    ("host-root-chroot", "critical"),
    ("kernel-module-load", "critical"),
    ("sensitive-mount", "high"),
    ("runtime-socket-access", "high"),
    ("bpf-from-container", "high"),
    ("open-by-handle", "high"),
    ("ptrace-outside-container", "high"),
    ("privileged-device-access", "high"),
    ("kernel-tunable-write", "high"),
    ("cgroup-escape", "high"),
    ("agent-tamper", "high"),
    ("privilege-escalation", "medium"),
    ("userns-creation", "medium"),
];

/// The alerts in `text`, one JSON object a line; a last line without its newline may still be
/// being written and is left out. Panics on a line that is not JSON: that breaks the contract.
pub fn parse_lines(text: &str) -> Vec<Value> {
    let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
    complete
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("alert line is not JSON ({e}): {line}"))
        })
        .collect()
}

/// True when `alert` is rule `rule` about container `container_id`.
pub fn alert_matches(alert: &Value, rule: &str, container_id: &str) -> bool {
    alert["rule"] == rule && alert["container"]["id"] == container_id
}

/// True when the alert's process is `name`: by its kernel name, or by `argv[0]` for busybox
/// applets, which busybox's shell runs by re-executing `/proc/self/exe` (kernel name `exe`).
pub fn process_named(alert: &Value, name: &str) -> bool {
    let process = &alert["process"];
    process["comm"] == name
        || process["args"][0]
            .as_str()
            .is_some_and(|arg0| arg0.rsplit('/').next() == Some(name))
}

/// True when process `pid` is the alert's process or one of its ancestors.
pub fn involves_pid(alert: &Value, pid: u32) -> bool {
    let process = &alert["process"];
    process["pid"] == pid
        || process["ppid"] == pid
        || process["ancestors"]
            .as_array()
            .is_some_and(|ancestors| ancestors.iter().any(|a| a["pid"] == pid))
}

/// True when the alert's ancestors include this test process with its executable. The agent
/// reads that from /proc/PID/exe of a process that started before it and holds more
/// capabilities than it, which takes CAP_SYS_PTRACE: so this shows that the agent's privileges
/// reach every process.
pub fn names_this_test_as_ancestor(alert: &Value) -> bool {
    let exe = std::env::current_exe().ok();
    let exe = exe.as_deref().and_then(|e| e.to_str());
    alert["process"]["ancestors"]
        .as_array()
        .is_some_and(|ancestors| {
            ancestors
                .iter()
                .any(|a| a["pid"] == std::process::id() && a["exe"].as_str() == exe)
        })
}

/// Fails when `alert` lacks a contract field or contradicts the catalogue.
pub fn check_contract(alert: &Value) -> anyhow::Result<()> {
    for field in FIELDS {
        ensure!(alert.get(field).is_some(), "alert lacks `{field}`: {alert}");
    }
    let rule = alert["rule"].as_str().context("`rule` is not a string")?;
    let (_, severity) = RULES
        .iter()
        .find(|(id, _)| *id == rule)
        .with_context(|| format!("rule {rule:?} is not in the contract's catalogue"))?;
    ensure!(
        alert["severity"] == *severity,
        "{rule} must be {severity}: {alert}"
    );
    ensure!(
        alert["action"] == "alert" || alert["action"] == "killed",
        "bad action: {alert}"
    );
    ensure!(alert["mitre"].is_array(), "`mitre` is not a list: {alert}");
    ensure!(alert["id"].is_string(), "`id` is not a string: {alert}");
    ensure!(
        alert["truncated"].is_array(),
        "`truncated` is not a list: {alert}"
    );
    ensure!(alert["process"]["pid"].is_u64(), "no process.pid: {alert}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_contract_example_passes_and_a_wrong_severity_does_not() {
        let mut alert = json!({
            "id": "5d0c0a1e-0000-5000-8000-000000000000",
            "time": "2026-11-28T09:30:00.123456789Z", "rule": "host-namespace-entry",
            "severity": "critical", "mitre": ["T1611"], "message": "m", "hostname": "node-1",
            "action": "alert", "container": {"id": "3f2a"},
            "process": {"pid": 4242, "comm": "nsenter"}, "details": {}, "incident": null,
            "count": 1, "truncated": []
        });
        check_contract(&alert).unwrap();
        assert!(alert_matches(&alert, "host-namespace-entry", "3f2a"));
        assert!(process_named(&alert, "nsenter"));
        alert["process"] = json!({"pid": 4242, "comm": "exe", "args": ["/bin/mount", "-t"]});
        assert!(process_named(&alert, "mount"));
        assert!(!process_named(&alert, "nsenter"));
        alert["process"]["ancestors"] = json!([{"pid": 4200, "comm": "sh"}]);
        assert!(involves_pid(&alert, 4242) && involves_pid(&alert, 4200));
        assert!(!involves_pid(&alert, 1));
        alert["severity"] = json!("high");
        assert!(check_contract(&alert).is_err());
    }
}
