//! The Prometheus metrics of CONTRACT.md. Every label value the agent can produce is created
//! up front, so series exist at zero before the first event (alerting on absent series is
//! error-prone).

use detector_common::{EventKind, LossReason};
use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::rules::CATALOGUE;

pub struct Metrics {
    registry: Registry,
    pub alerts_total: IntCounterVec,
    pub alerts_folded_total: IntCounterVec,
    pub exceptions_suppressed_total: IntCounterVec,
    pub config_reloads_total: IntCounterVec,
    pub alert_latency_seconds: HistogramVec,
    pub events_total: IntCounterVec,
    events_lost_total: IntCounterVec,
    acts_dropped_total: IntCounterVec,
    pub unclassified_acts_total: IntCounter,
    pub probe_attached: IntGaugeVec,
    pub tracked_processes: IntGauge,
    pub tracked_containers: IntGauge,
    pub process_cache_misses_total: IntCounter,
    pub output_errors_total: IntCounterVec,
    pub alerts_dropped_total: IntCounterVec,
    pub build_info: IntGaugeVec,
    bpf_program_runs_total: IntCounterVec,
    bpf_program_run_seconds_total: CounterVec,
}

const PREFIX: &str = "escape_detector_";

/// The `reason` of a record the agent could not decode, whose kind is its header's when the
/// header names one.
pub const DECODE_ERROR: &str = "decode_error";
/// The `kind` of a record whose header names no kind the agent knows.
pub const UNKNOWN_KIND: &str = "unknown";

/// Why the agent dropped an act it received, unjudged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActDropped {
    /// The kernel sent it as a container process's, but the agent found no container for it,
    /// in its tables or in /proc.
    ActorUnknown,
    /// The process it was aimed at could not be found.
    TargetUnknown,
}

impl ActDropped {
    const ALL: [ActDropped; 2] = [ActDropped::ActorUnknown, ActDropped::TargetUnknown];

    fn name(self) -> &'static str {
        match self {
            ActDropped::ActorUnknown => "actor_unknown",
            ActDropped::TargetUnknown => "target_unknown",
        }
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("{PREFIX}{name}"), help)
}

impl Metrics {
    pub fn new() -> prometheus::Result<Metrics> {
        let m = Metrics {
            registry: Registry::new(),
            alerts_total: IntCounterVec::new(
                opts("alerts_total", "Alerts raised, by rule and severity."),
                &["rule", "severity"],
            )?,
            alerts_folded_total: IntCounterVec::new(
                opts(
                    "alerts_folded_total",
                    "Acts folded into an earlier alert of the same process and act, by rule.",
                ),
                &["rule"],
            )?,
            exceptions_suppressed_total: IntCounterVec::new(
                opts(
                    "exceptions_suppressed_total",
                    "Acts a configured exception kept from being alerted, by exception and rule.",
                ),
                &["exception", "rule"],
            )?,
            config_reloads_total: IntCounterVec::new(
                opts(
                    "config_reloads_total",
                    "Configuration reloads on SIGHUP, by result (ok, failed: the running one kept).",
                ),
                &["result"],
            )?,
            alert_latency_seconds: HistogramVec::new(
                HistogramOpts::new(
                    format!("{PREFIX}alert_latency_seconds"),
                    "From the kernel seeing the act to the alert being written, by rule.",
                )
                // From 100 µs: an alert usually follows its act within a millisecond, and
                // quantiles interpolated inside a first bucket of 1 ms would say nothing finer.
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ]),
                &["rule"],
            )?,
            events_total: IntCounterVec::new(
                opts("events_total", "Events received from the kernel, by kind."),
                &["kind"],
            )?,
            events_lost_total: IntCounterVec::new(
                opts(
                    "events_lost_total",
                    "Events lost before the agent could judge them, by kind and reason: in the \
                     kernel ring_full (the ring buffer had no room), handover_lost (a syscall's \
                     arguments found no room from entry to exit), read_failed (a kernel read the \
                     act needed failed), map_full (a container process or cgroup found no room \
                     in the kernel's maps, so its later acts may pass for the host's); in the \
                     agent decode_error.",
                ),
                &["kind", "reason"],
            )?,
            acts_dropped_total: IntCounterVec::new(
                opts(
                    "acts_dropped_total",
                    "Acts the agent received but could not judge, by kind and reason: \
                     actor_unknown (no container found for a process the kernel sent as a \
                     container's), target_unknown (the process acted on was not found).",
                ),
                &["kind", "reason"],
            )?,
            unclassified_acts_total: IntCounter::with_opts(opts(
                "unclassified_acts_total",
                "Acts the kernel forwarded from a cgroup the agent had not classified yet, \
                 which the agent then found to be a container's.",
            ))?,
            probe_attached: IntGaugeVec::new(
                opts(
                    "probe_attached",
                    "1 when the kernel probe is attached, 0 when a sensor is degraded (no \
                     implementation attached: its last resort's probes). Optional probes for what \
                     the kernel lacks (a syscall, /proc/kcore) are absent.",
                ),
                &["probe"],
            )?,
            tracked_processes: IntGauge::with_opts(opts(
                "tracked_processes",
                "Live processes in the process table.",
            ))?,
            tracked_containers: IntGauge::with_opts(opts(
                "tracked_containers",
                "Containers with at least one tracked process.",
            ))?,
            process_cache_misses_total: IntCounter::with_opts(opts(
                "process_cache_misses_total",
                "Events about a process the table did not know, looked up in /proc.",
            ))?,
            output_errors_total: IntCounterVec::new(
                opts("output_errors_total", "Alerts an output failed to write."),
                &["output"],
            )?,
            alerts_dropped_total: IntCounterVec::new(
                opts(
                    "alerts_dropped_total",
                    "Alerts an output lost, by output and reason: queue_full (the output had \
                     fallen behind; the event loop never waits for it) or output_failed (the \
                     write failed, also counted in output_errors_total).",
                ),
                &["output", "reason"],
            )?,
            build_info: IntGaugeVec::new(
                opts("build_info", "Version and detection backend; always 1."),
                &["version", "backend"],
            )?,
            bpf_program_runs_total: IntCounterVec::new(
                opts(
                    "bpf_program_runs_total",
                    "Runs of each of the agent's BPF programs, as the kernel counts them: only \
                     while the sysctl kernel.bpf_stats_enabled is 1.",
                ),
                &["program"],
            )?,
            bpf_program_run_seconds_total: CounterVec::new(
                opts(
                    "bpf_program_run_seconds_total",
                    "Time the kernel spent in each of the agent's BPF programs: only while the \
                     sysctl kernel.bpf_stats_enabled is 1, which adds about 20 ns to every run.",
                ),
                &["program"],
            )?,
        };
        m.register_all()?;
        m.create_series();
        Ok(m)
    }

    fn register_all(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.alerts_total.clone()))?;
        r.register(Box::new(self.alerts_folded_total.clone()))?;
        r.register(Box::new(self.exceptions_suppressed_total.clone()))?;
        r.register(Box::new(self.config_reloads_total.clone()))?;
        r.register(Box::new(self.alert_latency_seconds.clone()))?;
        r.register(Box::new(self.events_total.clone()))?;
        r.register(Box::new(self.events_lost_total.clone()))?;
        r.register(Box::new(self.acts_dropped_total.clone()))?;
        r.register(Box::new(self.unclassified_acts_total.clone()))?;
        r.register(Box::new(self.probe_attached.clone()))?;
        r.register(Box::new(self.tracked_processes.clone()))?;
        r.register(Box::new(self.tracked_containers.clone()))?;
        r.register(Box::new(self.process_cache_misses_total.clone()))?;
        r.register(Box::new(self.output_errors_total.clone()))?;
        r.register(Box::new(self.alerts_dropped_total.clone()))?;
        r.register(Box::new(self.build_info.clone()))?;
        r.register(Box::new(self.bpf_program_runs_total.clone()))?;
        r.register(Box::new(self.bpf_program_run_seconds_total.clone()))
    }

    /// A SIGHUP reload that took (`true`) or kept the running configuration.
    pub fn config_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.config_reloads_total.with_label_values(&[result]).inc();
    }

    fn create_series(&self) {
        for result in ["ok", "failed"] {
            self.config_reloads_total.with_label_values(&[result]);
        }
        for kind in EventKind::ALL {
            self.events_total.with_label_values(&[kind.name()]);
            for reason in LossReason::ALL {
                self.events_lost_total
                    .with_label_values(&[kind.name(), reason.name()]);
            }
            self.events_lost_total
                .with_label_values(&[kind.name(), DECODE_ERROR]);
            for reason in ActDropped::ALL {
                self.acts_dropped_total
                    .with_label_values(&[kind.name(), reason.name()]);
            }
        }
        self.events_lost_total
            .with_label_values(&[UNKNOWN_KIND, DECODE_ERROR]);
        for rule in CATALOGUE {
            self.alerts_total
                .with_label_values(&[rule.id, rule.severity.as_str()]);
            self.alert_latency_seconds.with_label_values(&[rule.id]);
            self.alerts_folded_total.with_label_values(&[rule.id]);
        }
    }

    /// `count` events of `kind` lost for `reason` (see `events_lost_total`).
    pub fn events_lost(&self, kind: &str, reason: &str, count: u64) {
        self.events_lost_total
            .with_label_values(&[kind, reason])
            .inc_by(count);
    }

    /// An act of `kind` the agent received and dropped unjudged.
    pub fn act_dropped(&self, kind: EventKind, reason: ActDropped) {
        self.acts_dropped_total
            .with_label_values(&[kind.name(), reason.name()])
            .inc();
    }

    /// BPF program `program` ran `runs` more times, for `nanoseconds` more in all.
    pub fn program_ran(&self, program: &str, runs: u64, nanoseconds: u64) {
        self.bpf_program_runs_total
            .with_label_values(&[program])
            .inc_by(runs);
        self.bpf_program_run_seconds_total
            .with_label_values(&[program])
            .inc_by(nanoseconds as f64 / 1e9);
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // The text encoder only fails on a broken writer; a Vec never is.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_contract_metric_name() {
        let m = Metrics::new().unwrap();
        m.probe_attached
            .with_label_values(&["sched_process_exec"])
            .set(1);
        m.output_errors_total.with_label_values(&["stdout"]);
        m.alerts_dropped_total
            .with_label_values(&["stdout", "queue_full"]);
        m.build_info
            .with_label_values(&["0.1.0", "tracepoint"])
            .set(1);
        let text = m.render();
        for name in [
            "escape_detector_alerts_total{rule=\"host-namespace-entry\",severity=\"critical\"} 0",
            "escape_detector_events_total{kind=\"exec\"} 0",
            "escape_detector_events_lost_total{kind=\"mount\",reason=\"ring_full\"} 0",
            "escape_detector_events_lost_total{kind=\"exec\",reason=\"map_full\"} 0",
            "escape_detector_events_lost_total{kind=\"unknown\",reason=\"decode_error\"} 0",
            "escape_detector_acts_dropped_total{kind=\"ptrace\",reason=\"target_unknown\"} 0",
            "escape_detector_unclassified_acts_total 0",
            "escape_detector_probe_attached{probe=\"sched_process_exec\"} 1",
            "escape_detector_tracked_processes 0",
            "escape_detector_tracked_containers 0",
            "escape_detector_process_cache_misses_total 0",
            "escape_detector_output_errors_total{output=\"stdout\"} 0",
            "escape_detector_alerts_dropped_total{output=\"stdout\",reason=\"queue_full\"} 0",
            "escape_detector_build_info{backend=\"tracepoint\",version=\"0.1.0\"} 1",
            "escape_detector_alert_latency_seconds_count{rule=\"sensitive-mount\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
