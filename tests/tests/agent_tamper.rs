//! `agent-tamper`: a container process signals, ptraces or reaches the BPF objects of the
//! detector itself.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, exclusive, rootfs::ACT,
    scenario, technique,
};

const SIGCONT: i32 = 18;

#[test]
fn a_signal_to_the_detector_from_an_exec_session_is_reported() -> anyhow::Result<()> {
    a_signal_to_the_detector_is_reported(By::ExecSession)
}

#[test]
fn a_signal_to_the_detector_from_the_workload_is_reported() -> anyhow::Result<()> {
    a_signal_to_the_detector_is_reported(By::Workload)
}

/// SIGCONT: harmless to a running detector, yet proof the container could have sent SIGSTOP.
fn a_signal_to_the_detector_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    // The host's pid namespace is what lets a container name the detector at all.
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let alert = scenario::expect_alert(
        &detector,
        "agent-tamper",
        &container,
        Some("escape-act"),
        by,
        || technique::send_signal(&container, by, detector.pid(), SIGCONT),
    )?;
    assert_eq!(alert["details"]["tamper"], "signal", "{alert:#}");
    assert_eq!(alert["details"]["signal"], "SIGCONT", "{alert:#}");
    // SIGCONT's default action is none for a running process: the kernel drops it as ignored.
    assert_eq!(alert["details"]["result"], "ignored", "{alert:#}");
    assert_eq!(alert["details"]["agent_pid"], detector.pid(), "{alert:#}");
    Ok(())
}

#[test]
fn ptrace_of_the_detector_is_reported_as_tampering() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let by = By::Workload;
    let alert = scenario::expect_alert(
        &detector,
        "agent-tamper",
        &container,
        Some("escape-act"),
        by,
        || technique::ptrace_attach(&container, by, detector.pid()),
    )?;
    assert_eq!(alert["details"]["tamper"], "ptrace", "{alert:#}");
    // The syscall on tracepoint kernels, the kernel's granted access with fexit.
    assert!(
        ["ptrace attach", "ptrace or process_vm access"]
            .contains(&alert["details"]["access"].as_str().unwrap_or_default()),
        "{alert:#}"
    );
    // One act, one alert: the more general rule is named, not raised.
    assert_eq!(
        alert["details"]["also"],
        serde_json::json!(["ptrace-outside-container"]),
        "{alert:#}"
    );
    detector.assert_no_alert(
        |a| a["rule"] == "ptrace-outside-container",
        scenario::SETTLE,
    );
    Ok(())
}

#[test]
fn taking_the_detectors_bpf_objects_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    scenario::expect_bpf_objects_tamper(&detector, &container, By::ExecSession)?;
    Ok(())
}

/// Signals between a container's own processes, and the host's signals to the detector, are
/// everyday process management.
#[test]
fn signals_that_do_not_reach_the_detector_from_a_container_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    container.exec_ok(&format!(
        "sleep 30 & {ACT} signal $! {SIGCONT} && kill $!; wait"
    ))?;
    detector.while_stopped(|| ());
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}
