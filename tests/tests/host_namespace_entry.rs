//! `host-namespace-entry`: a container process joins namespaces of the host.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer, alert_matches,
    exclusive,
    scenario::{self, SETTLE},
    technique,
};

#[test]
fn nsenter_from_an_exec_session_of_a_host_pid_container_is_reported() -> anyhow::Result<()> {
    nsenter_from_a_host_pid_container_into_host_namespaces_is_reported(By::ExecSession)
}

#[test]
fn nsenter_by_the_workload_of_a_host_pid_container_is_reported() -> anyhow::Result<()> {
    nsenter_from_a_host_pid_container_into_host_namespaces_is_reported(By::Workload)
}

fn nsenter_from_a_host_pid_container_into_host_namespaces_is_reported(
    by: By,
) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let host_process = HostProcess::sleep()?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    scenario::expect_alert(
        &detector,
        "host-namespace-entry",
        &container,
        Some("nsenter"),
        by,
        || technique::enter_host_namespaces(&container, by, &host_process),
    )?;
    // One technique, one alert: the shell nsenter starts in the host's namespaces is no news.
    detector.assert_no_alert(
        |a| alert_matches(a, "namespace-escape", container.id()),
        SETTLE,
    );
    Ok(())
}

/// Without the host's pid namespace and CAP_SYS_ADMIN the attempt fails; the detector must
/// neither report a join that did not happen nor stumble over the failure.
#[test]
fn a_default_pod_container_cannot_enter_and_the_detector_carries_on() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let host_process = HostProcess::sleep()?;
    let container = Container::start(Profile::Default, CgroupLayout::kubepods())?;
    assert!(technique::enter_host_namespaces(&container, By::ExecSession, &host_process).is_err());
    detector.assert_no_alert(
        |a| alert_matches(a, "host-namespace-entry", container.id()),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}
