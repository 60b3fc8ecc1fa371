//! The webhook output: each alert POSTed as JSON in the format of what receives it:
//! Alertmanager's v2 API, a Falcosidekick, or the alert as it is. It runs on its output's own
//! thread (outputs.rs), so a receiver that is down delays nothing else: a failed POST is retried
//! with backoff for a while, and the alerts behind it wait in the output's bounded queue, whose
//! overflow is counted.

use std::{
    io, thread,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};

/// The first retry's wait; each next one doubles, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// How long one alert is retried before it is dropped (and counted): a receiver down longer
/// than this loses alerts, which the metric says.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10 * 60);
/// One POST's bound, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `POST /api/v2/alerts`: a list of one alert with labels and annotations.
    Alertmanager,
    /// Falco's alert fields, which Falcosidekick forwards to its outputs.
    Falcosidekick,
    /// The alert line itself.
    Raw,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Alertmanager, Format::Falcosidekick, Format::Raw];

    pub fn name(self) -> &'static str {
        match self {
            Format::Alertmanager => "alertmanager",
            Format::Falcosidekick => "falcosidekick",
            Format::Raw => "raw",
        }
    }

    /// What to POST for `alert` (the contract's alert object).
    fn payload(self, alert: &Value) -> Value {
        match self {
            Format::Alertmanager => alertmanager(alert),
            Format::Falcosidekick => falcosidekick(alert),
            Format::Raw => alert.clone(),
        }
    }
}

pub struct Webhook {
    url: String,
    format: Format,
    agent: ureq::Agent,
}

impl Webhook {
    pub fn new(url: &str, format: Format) -> Webhook {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Webhook {
            url: url.to_owned(),
            format,
            agent: config.into(),
        }
    }

    /// POSTs the alert `line`, retrying what may pass later (no answer, 5xx, 429) with backoff.
    pub fn post(&self, line: &str) -> io::Result<()> {
        let alert: Value = serde_json::from_str(line)?;
        let body = self.format.payload(&alert).to_string();
        let started = Instant::now();
        let mut wait = FIRST_WAIT;
        loop {
            let error = match self
                .agent
                .post(&self.url)
                .header("content-type", "application/json")
                .send(&body)
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if !may_pass_later(&error) || started.elapsed() + wait > GIVE_UP_AFTER {
                return Err(io::Error::other(format!("POST {}: {error}", self.url)));
            }
            thread::sleep(wait);
            wait = (wait * 2).min(LONGEST_WAIT);
        }
    }
}

/// A refusal of the alert itself (400, 404, 401) will not change by asking again.
fn may_pass_later(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::StatusCode(code) => *code == 429 || *code >= 500,
        _ => true,
    }
}

/// Labels identify an alert to Alertmanager, which merges alerts with the same ones: the
/// process and the incident keep two acts apart.
fn alertmanager(alert: &Value) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), "ContainerEscape".into());
    let mut label = |name: &str, value: &Value| {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        labels.insert(name.into(), text.into());
    };
    label("rule", &alert["rule"]);
    label("severity", &alert["severity"]);
    label("hostname", &alert["hostname"]);
    label("action", &alert["action"]);
    label("container_id", &alert["container"]["id"]);
    label("pod", &alert["container"]["pod"]["name"]);
    label("namespace", &alert["container"]["pod"]["namespace"]);
    label("pid", &alert["process"]["pid"]);
    label("incident", &alert["incident"]["id"]);
    json!([{
        "labels": labels,
        "annotations": {
            "summary": alert["message"],
            "alert": alert.to_string(),
        },
        "startsAt": alert["time"],
    }])
}

/// Falco's priorities for the contract's severities.
fn falco_priority(severity: &Value) -> &'static str {
    match severity.as_str() {
        Some("critical") => "Critical",
        Some("high") => "Error",
        Some("medium") => "Warning",
        Some("low") => "Notice",
        _ => "Informational",
    }
}

fn falcosidekick(alert: &Value) -> Value {
    json!({
        "output": alert["message"],
        "priority": falco_priority(&alert["severity"]),
        "rule": alert["rule"],
        "time": alert["time"],
        "source": "escape-detector",
        "hostname": alert["hostname"],
        "tags": alert["mitre"],
        "output_fields": {
            "container.id": alert["container"]["id"],
            "k8s.pod.name": alert["container"]["pod"]["name"],
            "k8s.ns.name": alert["container"]["pod"]["namespace"],
            "proc.pid": alert["process"]["pid"],
            "proc.name": alert["process"]["comm"],
            "proc.exepath": alert["process"]["exe"],
            "evt.details": alert["details"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Value {
        json!({
            "time": "2026-11-28T09:30:00.123456789Z", "rule": "host-namespace-entry",
            "severity": "critical", "mitre": ["T1611"], "message": "nsenter joined the host",
            "hostname": "node-1", "action": "alert",
            "container": {"id": "3f2a", "pod": {"name": "web-1", "namespace": "shop", "uid": null}},
            "process": {"pid": 4242, "comm": "nsenter", "exe": "/usr/bin/nsenter"},
            "details": {"namespaces": ["mnt"]}, "incident": {"id": "3f2a-1", "chain": []},
            "count": 1, "truncated": []
        })
    }

    #[test]
    fn alertmanager_gets_labels_that_keep_acts_apart() {
        let payload = Format::Alertmanager.payload(&alert());
        let labels = &payload[0]["labels"];
        assert_eq!(labels["alertname"], "ContainerEscape");
        assert_eq!(labels["rule"], "host-namespace-entry");
        assert_eq!(labels["container_id"], "3f2a");
        assert_eq!(labels["namespace"], "shop");
        assert_eq!(labels["pid"], "4242");
        assert_eq!(labels["incident"], "3f2a-1");
        assert_eq!(payload[0]["startsAt"], "2026-11-28T09:30:00.123456789Z");
        assert_eq!(
            payload[0]["annotations"]["summary"],
            "nsenter joined the host"
        );
        let host = Format::Alertmanager.payload(&json!({"rule": "r", "container": null}));
        assert!(
            host[0]["labels"].get("container_id").is_none(),
            "no null labels"
        );
    }

    #[test]
    fn falcosidekick_gets_falcos_fields() {
        let payload = Format::Falcosidekick.payload(&alert());
        assert_eq!(payload["priority"], "Critical");
        assert_eq!(payload["rule"], "host-namespace-entry");
        assert_eq!(payload["output"], "nsenter joined the host");
        assert_eq!(payload["output_fields"]["k8s.pod.name"], "web-1");
        assert_eq!(payload["output_fields"]["proc.pid"], 4242);
        assert_eq!(payload["tags"], json!(["T1611"]));
    }

    #[test]
    fn refusals_are_not_retried() {
        assert!(may_pass_later(&ureq::Error::StatusCode(503)));
        assert!(may_pass_later(&ureq::Error::StatusCode(429)));
        assert!(!may_pass_later(&ureq::Error::StatusCode(400)));
        assert!(may_pass_later(&ureq::Error::ConnectionFailed));
    }
}
