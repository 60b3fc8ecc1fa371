//! Emit, the last stage: a finding about an actor becomes an alert, written to the outputs and
//! counted.

use std::{sync::Arc, time::SystemTime};

use detector_common::Namespaces;

use super::judge::Who;
use crate::{
    alert::{Action, Alert, ContainerInfo, ProcessInfo, alert_id, timestamp},
    metrics::Metrics,
    outputs::Outputs,
    rules::Finding,
    state::container::Origin,
};

/// A container process as it was when it acted: what the alert tells of it.
pub struct Actor {
    /// When the kernel saw the act (`CLOCK_BOOTTIME`).
    pub seen_ns: u64,
    pub process: ProcessInfo,
    /// Its namespaces when it acted.
    pub ns: Namespaces,
    pub container_id: String,
    pub container: Option<ContainerInfo>,
    /// Values of the alert the kernel cut.
    pub truncated: Vec<&'static str>,
}

impl Actor {
    /// The actor as the rules see it; `origin` is what its container started as.
    pub fn who(&self, origin: Option<Origin>) -> Who<'_> {
        Who {
            pid: self.process.pid,
            comm: &self.process.comm,
            container_id: &self.container_id,
            ns: self.ns,
            origin,
        }
    }
}

pub struct Emitter {
    outputs: Outputs,
    metrics: Arc<Metrics>,
    hostname: String,
    /// This boot's id, which alert ids include.
    boot_id: String,
}

impl Emitter {
    pub fn new(outputs: Outputs, metrics: Arc<Metrics>, hostname: String, boot_id: String) -> Self {
        Emitter {
            outputs,
            metrics,
            hostname,
            boot_id,
        }
    }

    pub fn raise(&mut self, finding: Finding, actor: Actor, action: Action) {
        let alert = Alert {
            id: alert_id(
                &self.boot_id,
                actor.seen_ns,
                actor.process.pid,
                actor.process.tid,
                finding.rule.id,
            ),
            time: timestamp(SystemTime::now()),
            rule: finding.rule.id,
            severity: finding.rule.severity,
            mitre: finding.rule.mitre,
            message: finding.message,
            hostname: self.hostname.clone(),
            action,
            container: actor.container,
            process: actor.process,
            details: finding.details,
            truncated: actor.truncated,
        };
        self.metrics
            .alerts_total
            .with_label_values(&[alert.rule, alert.severity.as_str()])
            .inc();
        self.outputs.emit(&alert.to_json_line(), &self.metrics);
        if let Some(since_act) = boottime_ns().checked_sub(actor.seen_ns) {
            self.metrics
                .alert_latency_seconds
                .with_label_values(&[alert.rule])
                .observe(since_act as f64 / 1e9);
        }
    }
}

/// Now on the clock the kernel stamps events with (`bpf_ktime_get_boot_ns`).
fn boottime_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
