//! The alert as CONTRACT.md defines it: one JSON object per line.

use serde::Serialize;
use serde_json::Value;

use crate::{incidents::IncidentRef, rules::Severity};

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
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
}
