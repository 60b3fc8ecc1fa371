//! Exact loss accounting: every event the kernel makes is either received by the agent or
//! counted lost, by kind and reason, as /metrics shows it.

use std::time::Duration;

use anyhow::Context;
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, exclusive, poll, rootfs::ACT,
};

/// bpf() calls the container makes while the agent is stopped: far more than a one-page ring
/// buffer holds.
const BURST: u64 = 2000;

#[test]
fn a_burst_against_a_stalled_reader_is_received_or_counted_lost_exactly() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start_with_config("ring_buffer_bytes = 4096\n", &[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    // SIGSTOP stalls the reader: the kernel fills the ring and counts the rest.
    detector
        .while_stopped(|| container.run(By::ExecSession, &format!("{ACT} repeat {BURST} bpf")))?;
    let mut seen = (0, 0);
    poll::eventually(Duration::from_secs(10), || {
        seen = bpf_events(&detector).unwrap_or_default();
        seen.0 + seen.1 >= BURST
    });
    let (received, lost) = bpf_events(&detector)?;
    eprintln!("{BURST} bpf calls: {received} received, {lost} counted lost");
    assert!(lost > 0, "a stalled one-page ring buffer lost nothing");
    assert_eq!(received + lost, BURST, "received {received}, lost {lost}");
    Ok(())
}

/// (received, lost for any reason) bpf events, from /metrics.
fn bpf_events(detector: &Detector) -> anyhow::Result<(u64, u64)> {
    let metrics = detector.metrics()?;
    let sum = |prefix: &str| -> anyhow::Result<u64> {
        metrics
            .lines()
            .filter(|line| line.starts_with(prefix))
            .map(|line| {
                let value = line.rsplit(' ').next().context("sample without a value")?;
                Ok(value.parse::<f64>()? as u64)
            })
            .sum()
    };
    Ok((
        sum("escape_detector_events_total{kind=\"bpf\"}")?,
        sum("escape_detector_events_lost_total{kind=\"bpf\",")?,
    ))
}
