//! The alert outputs and the stop: a full disk leaves whole alerts only, and a SIGTERM at any
//! moment is a clean exit that loses nothing the kernel had queued.

use std::{fs, thread, time::Duration};

use anyhow::{Context, ensure};
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, Tmpfs, alert_matches,
    exclusive, poll, rootfs::ACT, technique,
};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);

/// The alerts file on a 16 KiB disk, 40 alerts of about a kilobyte each: the file takes what
/// fits, whole lines only (writes the disk took part of are cut back), each alert it could not
/// take is counted, and stdout, the other output, gets every one.
#[test]
fn a_full_disk_leaves_whole_alerts_only_and_counts_the_rest() -> anyhow::Result<()> {
    const ALERTS: usize = 40;
    let _machine = exclusive();
    let disk = Tmpfs::mount(16 * 1024)?;
    let alerts_file = disk.path().join("alerts.jsonl");
    let detector = Detector::start_with_alerts_file(&alerts_file, &[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    // One process per call: the rule speaks once per process.
    container.exec_ok(&format!("for i in $(seq {ALERTS}); do {ACT} bpf; done"))?;

    let bpf = |alerts: &[Value]| {
        alerts
            .iter()
            .filter(|a| alert_matches(a, "bpf-from-container", container.id()))
            .count()
    };
    let written = poll::eventually(SETTLE, || bpf(&detector.stdout_alerts()) == ALERTS);
    ensure!(
        written,
        "stdout has {} of {ALERTS} alerts\n{}",
        bpf(&detector.stdout_alerts()),
        detector.log_tail()
    );
    let errors_sample = r#"escape_detector_output_errors_total{output="file"}"#;
    let failed = || detector.metric(errors_sample).unwrap_or(0.0) as usize;
    let everyone = detector.stdout_alerts().len();
    let accounted = poll::eventually(SETTLE, || detector.alerts().len() + failed() == everyone);
    ensure!(
        accounted,
        "{} alerts in the file and {} failed of {everyone}\n{}",
        detector.alerts().len(),
        failed(),
        detector.log_tail()
    );

    let text = fs::read_to_string(&alerts_file)?;
    ensure!(text.ends_with('\n'), "the file ends in half a line");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).with_context(|| format!("a broken line: {line}"))?;
    }
    ensure!(failed() > 0, "the disk never filled up");
    let dropped = detector
        .metric(r#"escape_detector_alerts_dropped_total{output="file",reason="output_failed"}"#)?;
    assert_eq!(dropped as usize, failed());
    // A write the disk took part of happened and was cut back: the case this test is about.
    ensure!(
        detector.log().contains("cut back"),
        "no partial write\n{}",
        detector.log_tail()
    );
    Ok(())
}

/// The detector is stopped (SIGSTOP) while a container acts and while SIGTERM arrives; on
/// SIGCONT both wait for it, and the act is still judged and written before the exit.
#[test]
fn sigterm_right_after_an_act_still_reports_it_and_exits_0() -> anyhow::Result<()> {
    let _machine = exclusive();
    let mut detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    detector.while_stopped(|| {
        let acted = technique::create_bpf_map(&container, By::ExecSession);
        detector.request_stop();
        acted
    })?;
    detector.terminate()?;
    let reported = detector
        .alerts()
        .iter()
        .any(|a| alert_matches(a, "bpf-from-container", container.id()));
    ensure!(reported, "the queued act was lost\n{}", detector.log_tail());
    Ok(())
}

/// SIGTERM at moments all through the start (loading, attaching, reading /proc) and once
/// ready: always exit code 0.
#[test]
fn sigterm_at_any_moment_of_the_start_exits_0() -> anyhow::Result<()> {
    let _machine = exclusive();
    for delay_ms in [5, 50, 300, 1000, 2500] {
        let mut detector = Detector::launch(&[])?;
        detector.wait_holding_stop_signals()?;
        thread::sleep(Duration::from_millis(delay_ms));
        detector
            .terminate()
            .with_context(|| format!("SIGTERM {delay_ms} ms after the start"))?;
    }
    Ok(())
}
