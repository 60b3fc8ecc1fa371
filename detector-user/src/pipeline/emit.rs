//! Emit, the last stage: a finding about an actor becomes an alert, linked to its incident,
//! written to the outputs and counted; repeats of an act are folded into a count.

use std::{sync::Arc, time::SystemTime};

use detector_common::{Header, Namespaces};

use super::judge::Who;
use crate::{
    alert::{Action, Alert, ContainerInfo, ProcessInfo, alert_id, timestamp},
    folds::{self, Folds},
    incidents::{Incidents, Raised},
    metrics::Metrics,
    outputs::Outputs,
    redaction::Redaction,
    rules::{Finding, Repeat},
    state::container::Origin,
};

/// A container process as it was when it acted: what the alert tells of it.
pub struct Actor {
    /// When the kernel saw the act (`CLOCK_BOOTTIME`).
    pub seen_ns: u64,
    /// When its process started, as the kernel's events say (0 when unknown).
    pub start_ns: u64,
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
    incidents: Incidents,
    folds: Folds,
    redaction: Redaction,
}

impl Emitter {
    pub fn new(
        outputs: Outputs,
        metrics: Arc<Metrics>,
        hostname: String,
        boot_id: String,
        redaction: Redaction,
    ) -> Self {
        Emitter {
            outputs,
            metrics,
            hostname,
            boot_id,
            incidents: Incidents::default(),
            folds: Folds::default(),
            redaction,
        }
    }

    /// Waits until the outputs have written what was emitted.
    #[cfg(test)]
    pub fn wait_written(&self) {
        self.outputs.wait_written();
    }

    /// A reload's outputs and node name.
    pub fn reconfigure(&mut self, outputs: Outputs, hostname: String, redaction: Redaction) {
        self.outputs = outputs;
        self.hostname = hostname;
        self.redaction = redaction;
    }

    /// True, and counted, when the act repeats one of the same process alerted lately.
    pub fn folded(&mut self, finding: &Finding, actor: &Header) -> bool {
        let repeat = self.folds.repeat(&fold_act(finding, actor), actor.ktime_ns);
        if repeat {
            self.metrics
                .alerts_folded_total
                .with_label_values(&[finding.rule.id])
                .inc();
        }
        repeat
    }

    /// The process ended or replaced its image: the alerts for its folded repeats.
    pub fn end_process(&mut self, tgid: u32) {
        let folded = self.folds.end_process(tgid);
        self.emit_folded(folded);
    }

    /// Periodic work: the alerts for the repeats of fold windows that ended.
    pub fn tick(&mut self) {
        let folded = self.folds.due(boottime_ns());
        self.emit_folded(folded);
    }

    /// At shutdown: every fold's repeats.
    pub fn drain_folds(&mut self) {
        let folded = self.folds.drain();
        self.emit_folded(folded);
    }

    pub fn raise(&mut self, finding: Finding, actor: Actor, action: Action) {
        let act = folds::Act {
            tgid: actor.process.pid,
            start_ns: actor.start_ns,
            rule: finding.rule.id,
            key: fold_key(&finding),
        };
        let time = timestamp(SystemTime::now());
        let incident = self.incidents.link(&Raised {
            container_id: Some(actor.container_id.as_str()),
            rule: finding.rule.id,
            pid: actor.process.pid,
            seen_ns: actor.seen_ns,
            time: &time,
        });
        let alert = Alert {
            id: alert_id(
                &self.boot_id,
                actor.seen_ns,
                actor.process.pid,
                actor.process.tid,
                finding.rule.id,
            ),
            time,
            rule: finding.rule.id,
            severity: finding.rule.severity,
            mitre: finding.rule.mitre,
            message: finding.message,
            hostname: self.hostname.clone(),
            action,
            container: actor.container,
            process: actor.process,
            details: finding.details,
            incident,
            count: 1,
            truncated: actor.truncated,
        };
        self.emit(&alert);
        if let Some(since_act) = boottime_ns().checked_sub(actor.seen_ns) {
            self.metrics
                .alert_latency_seconds
                .with_label_values(&[alert.rule])
                .observe(since_act as f64 / 1e9);
        }
        let replaced = self.folds.open(act, alert, actor.seen_ns);
        self.emit_folded(replaced.into_iter().collect());
    }

    /// A fold's alert is the first one's, told now: its own time and id.
    fn emit_folded(&mut self, alerts: Vec<Alert>) {
        for mut alert in alerts {
            alert.time = timestamp(SystemTime::now());
            alert.id = alert_id(
                &self.boot_id,
                boottime_ns(),
                alert.process.pid,
                alert.process.tid,
                alert.rule,
            );
            self.emit(&alert);
        }
    }

    fn emit(&mut self, alert: &Alert) {
        self.metrics
            .alerts_total
            .with_label_values(&[alert.rule, alert.severity.as_str()])
            .inc();
        // Masked last, so no output, webhook or fold holds a secret.
        let alert = self.redaction.apply(alert.clone());
        self.outputs.emit(&alert.to_json_line(), &self.metrics);
    }
}

/// The same act of the same process (its tgid and start, so a reused pid is another process).
fn fold_act(finding: &Finding, actor: &Header) -> folds::Act {
    folds::Act {
        tgid: actor.tgid,
        start_ns: actor.start_ns,
        rule: finding.rule.id,
        key: fold_key(finding),
    }
}

/// What makes an act the same as an earlier one: the rule's key where it has one (the socket
/// connected to), else everything the alert says.
fn fold_key(finding: &Finding) -> String {
    match &finding.repeat {
        Repeat::OncePerProcess(key) => key.clone(),
        Repeat::EveryAct => finding.message.clone(),
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
