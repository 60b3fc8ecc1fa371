//! Steps the scenario tests share: expecting an alert, expecting silence, proving the detector
//! is alive.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    alert::{self, alert_matches},
    container::{By, Container, RunningContainer},
    detector::Detector,
    spec::{CgroupLayout, Profile},
    technique,
};

/// How long a technique may take to be reported.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a benign activity must stay unreported.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Runs `technique`, then waits for alert `rule` about `container` (raised by a process running
/// `program`, when given; see [`alert::process_named`]) and checks it against the contract, and
/// that the acting process is what `by` says: the container's init or one of its descendants
/// for [`By::Workload`], neither for [`By::ExecSession`]. Prints the latency from the start of
/// the technique, an upper bound: the alert is usually written before the technique returns.
pub fn expect_alert(
    detector: &Detector,
    rule: &str,
    container: &dyn RunningContainer,
    program: Option<&str>,
    by: By,
    technique: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let raised_by = program
        .map(|p| format!(" raised by {p}"))
        .unwrap_or_default();
    expect_alert_where(
        detector,
        rule,
        container,
        by,
        &raised_by,
        |a| program.is_none_or(|p| alert::process_named(a, p)),
        technique,
    )
}

/// The container walks every BPF object by id (`escape-act bpf-walk`): taking the detector's
/// programs, maps and links is tampering, one agent-tamper alert per kind, programs first.
pub fn expect_bpf_objects_tamper(
    detector: &Detector,
    container: &dyn RunningContainer,
    by: By,
) -> anyhow::Result<Value> {
    let alert = expect_alert(
        detector,
        "agent-tamper",
        container,
        Some("escape-act"),
        by,
        || technique::walk_bpf_objects(container, by),
    )?;
    anyhow::ensure!(alert["details"]["tamper"] == "bpf", "{alert:#}");
    anyhow::ensure!(
        alert["details"]["command"] == "BPF_PROG_GET_FD_BY_ID",
        "{alert:#}"
    );
    for command in ["BPF_MAP_GET_FD_BY_ID", "BPF_LINK_GET_FD_BY_ID"] {
        detector.wait_for_alert(
            &format!("agent-tamper alert for {command}"),
            |a| a["rule"] == "agent-tamper" && a["details"]["command"] == command,
            ALERT_TIMEOUT,
        )?;
    }
    Ok(alert)
}

/// Like [`expect_alert`], for the alert that also satisfies `which`, described in errors by
/// `described` (" raised by ..."): several acts of one container, told apart by their process.
pub fn expect_alert_where(
    detector: &Detector,
    rule: &str,
    container: &dyn RunningContainer,
    by: By,
    described: &str,
    which: impl Fn(&Value) -> bool,
    technique: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    technique()?;
    let alert = detector.wait_for_alert(
        &format!("{rule} alert for container {}{described}", container.id()),
        |a| alert_matches(a, rule, container.id()) && which(a),
        ALERT_TIMEOUT,
    )?;
    eprintln!(
        "latency {rule} ({by:?}): {} ms",
        started.elapsed().as_millis()
    );
    alert::check_contract(&alert)?;
    let from_init = alert::involves_pid(&alert, container.init_pid());
    anyhow::ensure!(
        from_init == (by == By::Workload),
        "the {rule} alert names a process that {} the container's init (pid {}), though the act \
         was {by:?}'s: {alert:#}",
        if from_init {
            "is or descends from"
        } else {
            "is not and does not descend from"
        },
        container.init_pid()
    );
    Ok(alert)
}

/// A core_pattern pipe handler that does not exist on the host, so a crash meanwhile runs
/// nothing.
pub const CORE_PATTERN_HANDLER: &str = "|/tmp/escdet-handler";

/// The kernel-helper-hijack technique a privileged `container` can always do: it writes
/// core_pattern through a second procfs mount; the detector must report it. The caller saves
/// core_pattern first ([`crate::KernelSetting`]) and restores it.
pub fn expect_core_pattern_hijack(
    detector: &Detector,
    container: &Container,
    by: By,
) -> anyhow::Result<Value> {
    expect_alert(
        detector,
        "kernel-helper-hijack",
        container,
        Some("sh"),
        by,
        || {
            technique::write_sysctl_through_second_procfs(
                container,
                by,
                "kernel/core_pattern",
                CORE_PATTERN_HANDLER,
            )
        },
    )
}

/// Asserts that no alert names container `id` for [`SETTLE`].
pub fn expect_no_alert_for(detector: &Detector, id: &str) {
    detector.assert_no_alert(|a| a["container"]["id"] == id, SETTLE);
}

/// Proves the detector is alive and alerting, so that an earlier silence means something: a
/// fresh privileged container mounts a procfs and the detector must report it.
pub fn expect_detector_alerts(detector: &Detector) -> anyhow::Result<()> {
    expect_procfs_mount_alert(detector, CgroupLayout::Docker).map(drop)
}

/// A fresh privileged container in cgroup `layout` mounts a procfs; returns the alert the
/// detector must raise.
pub fn expect_procfs_mount_alert(
    detector: &Detector,
    layout: CgroupLayout,
) -> anyhow::Result<Value> {
    let container = Container::start(Profile::Privileged, layout)?;
    expect_alert(
        detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        By::ExecSession,
        || technique::mount_procfs(&container, By::ExecSession),
    )
}
