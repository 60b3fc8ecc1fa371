//! The alert as CONTRACT.md defines it: one JSON object per line.

use serde::Serialize;
use serde_json::Value;

use crate::{incidents::IncidentRef, rules::Severity};

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// The act's stable id ([`alert_id`]): the same act has the same id whoever reports it and
    /// however often, so consumers can de-duplicate across restarts.
    pub id: String,
    pub time: String,
    pub rule: &'static str,
    pub severity: Severity,
    pub mitre: &'static [&'static str],
    pub message: String,
    pub hostname: String,
    pub action: Action,
    pub container: Option<ContainerInfo>,
    pub process: ProcessInfo,
    pub details: Value,
    /// The attack this act belongs to, when it is one of a container's (or the kernel's
    /// helper a container armed).
    pub incident: Option<IncidentRef>,
    /// How many acts the alert stands for: 1, or the repeats folded into it.
    pub count: u64,
    /// The values the kernel cut at its buffers' sizes (`truncation`); empty when none was.
    pub truncated: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Alert,
    /// `--enforce` killed the process after the act.
    Killed,
    /// `--enforce` with an LSM hook refused the act itself.
    Denied,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub runtime: &'static str,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: PodInfo,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PodInfo {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub comm: String,
    pub exe: Option<String>,
    pub args: Vec<String>,
    pub cgroup: Option<String>,
    pub ancestors: Vec<Ancestor>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ancestor {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
}

impl Alert {
    pub fn to_json_line(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// The namespace of alert ids (a UUID of our own, fixed forever).
const ALERT_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("6f1c2a3e-9b7d-5e40-8a21-3c5d7e9f0b14");

/// A name-based (v5) UUID of what makes an act unique on this host: the boot (the kernel's
/// clock restarts with it), when the kernel saw the act (`CLOCK_BOOTTIME`), the thread that
/// acted and the rule that reported it.
pub fn alert_id(boot_id: &str, seen_ns: u64, pid: u32, tid: u32, rule: &str) -> String {
    let name = format!("{boot_id}/{seen_ns}/{pid}/{tid}/{rule}");
    uuid::Uuid::new_v5(&ALERT_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// RFC 3339 UTC with nanoseconds, as in the contract's example.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_nanos(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_every_contract_field_with_nulls_where_unknown() {
        let alert = Alert {
            id: alert_id("boot", 1, 2, 3, "host-namespace-entry"),
            time: timestamp(std::time::UNIX_EPOCH),
            rule: "host-namespace-entry",
            severity: Severity::Critical,
            mitre: &["T1611"],
            message: "m".into(),
            hostname: "node-1".into(),
            action: Action::Alert,
            container: None,
            process: ProcessInfo {
                pid: 2,
                tid: 3,
                ppid: 1,
                uid: Some(0),
                euid: None,
                comm: "sh".into(),
                exe: None,
                args: vec![],
                cgroup: None,
                ancestors: vec![],
            },
            details: serde_json::json!({}),
            incident: None,
            count: 1,
            truncated: vec![crate::truncation::ARGS],
        };
        let v: Value = serde_json::from_str(alert.to_json_line().trim_end()).unwrap();
        assert_eq!(v["id"], alert_id("boot", 1, 2, 3, "host-namespace-entry"));
        assert_eq!(v["time"], "1970-01-01T00:00:00.000000000Z");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["action"], "alert");
        assert!(v["container"].is_null());
        assert!(v["process"]["euid"].is_null());
        assert_eq!(v["truncated"], serde_json::json!(["process.args"]));
        for key in [
            "pid",
            "tid",
            "ppid",
            "uid",
            "euid",
            "comm",
            "exe",
            "args",
            "cgroup",
            "ancestors",
        ] {
            assert!(v["process"].get(key).is_some(), "process.{key} missing");
        }
    }

    #[test]
    fn an_act_has_one_id_and_another_act_another() {
        let id = alert_id("b1", 100, 7, 7, "bpf-from-container");
        assert_eq!(id, alert_id("b1", 100, 7, 7, "bpf-from-container"));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 5);
        for other in [
            alert_id("b2", 100, 7, 7, "bpf-from-container"),
            alert_id("b1", 101, 7, 7, "bpf-from-container"),
            alert_id("b1", 100, 8, 8, "bpf-from-container"),
            alert_id("b1", 100, 7, 7, "agent-tamper"),
        ] {
            assert_ne!(id, other);
        }
    }
}
