//! Alert latency: acts in a container, each by a fresh process (the detector reports a process
//! once per act), read from the detector's histogram of the time from the kernel's timestamp of
//! the act to the alert being written.

use std::time::Duration;

use anyhow::Result;
use escape_detector_e2e::{CgroupLayout, Container, Detector, Profile, rootfs::ACT};

use crate::bench::{stats::histogram_quantile, system::DetectorMetrics, wait};

/// An act every container may make and the detector reports from every backend: creating a BPF
/// map (`escape-act bpf`), which a privileged container is allowed to.
const RULE: &str = "bpf-from-container";
/// Acts are spaced so that the figure is the latency of one alert, not of a queue.
const PAUSE_MICROSECONDS: u32 = 5_000;
const ALERT_LIMIT: Duration = Duration::from_secs(30);

#[derive(serde::Serialize)]
pub struct AlertLatency {
    pub rule: &'static str,
    pub acts: u64,
    pub alerts: u64,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
    /// The histogram of these acts alone: (upper bound in seconds, alerts at or below it).
    pub buckets: Vec<(f64, f64)>,
}

pub fn measure(detector: &Detector, acts: u64) -> Result<AlertLatency> {
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let before = DetectorMetrics::scrape(detector)?;
    container.exec_ok(&format!(
        "i=0; while [ $i -lt {acts} ]; do {ACT} bpf >/dev/null || exit 1; \
         usleep {PAUSE_MICROSECONDS}; i=$((i + 1)); done"
    ))?;
    let mut after = DetectorMetrics::scrape(detector)?;
    wait::until(&format!("{acts} {RULE} alerts"), ALERT_LIMIT, || {
        after = DetectorMetrics::scrape(detector)?;
        Ok(after.alerts(RULE) - before.alerts(RULE) >= acts)
    })?;
    let buckets = difference(
        &after.alert_latency_buckets(RULE),
        &before.alert_latency_buckets(RULE),
    );
    let latency = AlertLatency {
        rule: RULE,
        acts,
        alerts: after.alerts(RULE) - before.alerts(RULE),
        p50_seconds: histogram_quantile(0.5, &buckets),
        p99_seconds: histogram_quantile(0.99, &buckets),
        buckets,
    };
    let millis =
        |seconds: Option<f64>| seconds.map_or("-".to_owned(), |s| format!("{:.2} ms", s * 1e3));
    println!(
        "{} alerts for {acts} acts; latency p50 {}, p99 {}",
        latency.alerts,
        millis(latency.p50_seconds),
        millis(latency.p99_seconds)
    );
    Ok(latency)
}

/// The observations between two scrapes of one histogram (same bounds, in order).
fn difference(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(earlier_bound, _)| *earlier_bound == bound)
                .map_or(0.0, |(_, count)| *count);
            (bound, count - earlier)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_subtracts_bucket_by_bucket() {
        let before = [(0.001, 1.0), (f64::INFINITY, 2.0)];
        let after = [(0.001, 4.0), (f64::INFINITY, 9.0)];
        assert_eq!(
            difference(&after, &before),
            [(0.001, 3.0), (f64::INFINITY, 7.0)]
        );
        assert_eq!(difference(&after, &[]), after);
    }
}
