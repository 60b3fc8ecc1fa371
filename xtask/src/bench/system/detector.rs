//! escape-detector as a system under comparison: the e2e harness's detector (the release binary,
//! `run` with the default config on a loopback port of its own), and what its /metrics says.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result};
use escape_detector_e2e::Detector;

use super::{System, Watcher};
use crate::{bench::prometheus, cmd};

pub struct EscapeDetector;

impl System for EscapeDetector {
    fn name(&self) -> &'static str {
        "escape-detector"
    }

    /// It tracks container processes: the host's make no events, or (before it filtered them
    /// in the kernel) some.
    fn sees_host_processes(&self) -> bool {
        false
    }

    fn start(&self) -> Result<Box<dyn Watcher>> {
        Ok(Box::new(start_detector()?))
    }
}

/// Starts the detector with its default config; returns once `/readyz` answers 200.
pub fn start_detector() -> Result<Detector> {
    Detector::start(&[])
}

impl Watcher for Detector {
    fn pid(&self) -> Option<u32> {
        Some(Detector::pid(self))
    }

    fn stop(self: Box<Self>) -> Result<Option<u64>> {
        let received = DetectorMetrics::scrape(&self)?.events_received();
        // Fails unless it exits 0, as the contract says it does on SIGTERM.
        Detector::stop(*self)?;
        Ok(Some(received))
    }
}

/// One scrape of the detector's /metrics.
pub struct DetectorMetrics(String);

const EVENTS: &str = "escape_detector_events_total";
const EVENTS_LOST: &str = "escape_detector_events_lost_total";
const ALERTS: &str = "escape_detector_alerts_total";
const TRACKED: &str = "escape_detector_tracked_processes";
const ALERT_LATENCY: &str = "escape_detector_alert_latency_seconds";

impl DetectorMetrics {
    pub fn scrape(detector: &Detector) -> Result<DetectorMetrics> {
        Ok(DetectorMetrics(detector.metrics()?))
    }

    /// Events received from the kernel, all kinds.
    pub fn events_received(&self) -> u64 {
        self.count(EVENTS, &[])
    }

    /// Events lost before the agent judged them, all kinds and reasons.
    pub fn events_lost(&self) -> u64 {
        self.count(EVENTS_LOST, &[])
    }

    pub fn alerts(&self, rule: &str) -> u64 {
        self.count(ALERTS, &[("rule", rule)])
    }

    pub fn tracked_processes(&self) -> u64 {
        self.count(TRACKED, &[])
    }

    /// The cumulative buckets of the alert latency histogram of `rule`: (bound in seconds,
    /// alerts at or below it).
    pub fn alert_latency_buckets(&self, rule: &str) -> Vec<(f64, f64)> {
        prometheus::histogram_buckets(&self.0, ALERT_LATENCY, &[("rule", rule)])
    }

    fn count(&self, metric: &str, labels: &[(&str, &str)]) -> u64 {
        // Counters and gauges of things are whole numbers, whatever notation the exporter uses.
        prometheus::sum(&self.0, metric, labels).round() as u64
    }
}

/// The backend `escape-detector probe` says it would use on this kernel (the last line of its
/// report reads `backend: tracepoint (...)`).
pub fn backend(detector: &Path) -> Result<String> {
    let report = cmd::output(Command::new(detector).arg("probe"))?;
    report
        .lines()
        .find_map(|line| line.strip_prefix("backend: "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .with_context(|| format!("`{} probe` names no backend:\n{report}", detector.display()))
}
