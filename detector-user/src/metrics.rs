//! The Prometheus metrics of CONTRACT.md. Every label value the agent can produce is created
//! up front, so series exist at zero before the first event (alerting on absent series is
//! error-prone).

use detector_common::EventKind;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::rules::CATALOGUE;

pub struct Metrics {
    registry: Registry,
    pub alerts_total: IntCounterVec,
    pub alerts_folded_total: IntCounterVec,
    pub exceptions_suppressed_total: IntCounterVec,
    pub alert_latency_seconds: HistogramVec,
    pub events_total: IntCounterVec,
    pub events_lost_total: IntCounterVec,
    pub decode_errors_total: IntCounter,
    pub container_marks_failed_total: IntCounter,
    pub container_cgroups_failed_total: IntCounter,
    pub unclassified_acts_total: IntCounter,
    pub probe_attached: IntGaugeVec,
    pub tracked_processes: IntGauge,
    pub tracked_containers: IntGauge,
    pub process_cache_misses_total: IntCounter,
    pub output_errors_total: IntCounterVec,
    pub alerts_dropped_total: IntCounterVec,
    pub build_info: IntGaugeVec,
}

const PREFIX: &str = "escape_detector_";

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
                    "Events the kernel could not queue because the ring buffer was full, by kind.",
                ),
                &["kind"],
            )?,
            decode_errors_total: IntCounter::with_opts(opts(
                "decode_errors_total",
                "Ring-buffer records that could not be decoded.",
            ))?,
            container_marks_failed_total: IntCounter::with_opts(opts(
                "container_marks_failed_total",
                "Container processes the kernel's container-task map had no room for; should \
                 they leave their container's cgroup, their acts go unseen.",
            ))?,
            container_cgroups_failed_total: IntCounter::with_opts(opts(
                "container_cgroups_failed_total",
                "Cgroups the kernel's container-cgroup map had no room for; acts in them are \
                 taken for the host's.",
            ))?,
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
        r.register(Box::new(self.alert_latency_seconds.clone()))?;
        r.register(Box::new(self.events_total.clone()))?;
        r.register(Box::new(self.events_lost_total.clone()))?;
        r.register(Box::new(self.decode_errors_total.clone()))?;
        r.register(Box::new(self.container_marks_failed_total.clone()))?;
        r.register(Box::new(self.container_cgroups_failed_total.clone()))?;
        r.register(Box::new(self.unclassified_acts_total.clone()))?;
        r.register(Box::new(self.probe_attached.clone()))?;
        r.register(Box::new(self.tracked_processes.clone()))?;
        r.register(Box::new(self.tracked_containers.clone()))?;
        r.register(Box::new(self.process_cache_misses_total.clone()))?;
        r.register(Box::new(self.output_errors_total.clone()))?;
        r.register(Box::new(self.alerts_dropped_total.clone()))?;
        r.register(Box::new(self.build_info.clone()))
    }

    fn create_series(&self) {
        for kind in EventKind::ALL {
            self.events_total.with_label_values(&[kind.name()]);
            self.events_lost_total.with_label_values(&[kind.name()]);
        }
        for rule in CATALOGUE {
            self.alerts_total
                .with_label_values(&[rule.id, rule.severity.as_str()]);
            self.alert_latency_seconds.with_label_values(&[rule.id]);
            self.alerts_folded_total.with_label_values(&[rule.id]);
        }
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
            "escape_detector_events_lost_total{kind=\"mount\"} 0",
            "escape_detector_container_marks_failed_total 0",
            "escape_detector_container_cgroups_failed_total 0",
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
