//! `ptrace-outside-container`: a container process reaches into the memory of a host process.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer,
    alert::{self, alert_matches},
    exclusive,
    rootfs::ACT,
    scenario::{self, ALERT_TIMEOUT},
    skip, technique,
};

#[test]
fn ptrace_and_memory_reads_of_a_host_process_by_an_exec_session_are_reported() -> anyhow::Result<()>
{
    ptrace_and_memory_reads_of_a_host_process_are_reported(By::ExecSession)
}

#[test]
fn ptrace_and_memory_reads_of_a_host_process_by_the_workload_are_reported() -> anyhow::Result<()> {
    ptrace_and_memory_reads_of_a_host_process_are_reported(By::Workload)
}

fn ptrace_and_memory_reads_of_a_host_process_are_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    // Sharing the host's pid namespace is what makes host processes reachable at all.
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let attach = scenario::expect_alert(
        &detector,
        "ptrace-outside-container",
        &container,
        Some("escape-act"),
        by,
        || technique::ptrace_attach(&container, by, target.pid()),
    )?;
    assert_eq!(attach["details"]["target_pid"], target.pid(), "{attach:#}");
    assert_eq!(attach["details"]["target_comm"], "sleep", "{attach:#}");
    assert!(
        attach["details"]["target_container_id"].is_null(),
        "{attach:#}"
    );

    technique::read_process_memory(&container, by, target.pid())?;
    let read = detector.wait_for_alert(
        "ptrace-outside-container alert for escape-act vm-read",
        |a| {
            alert_matches(a, "ptrace-outside-container", container.id())
                && a["process"]["args"][1] == "vm-read"
        },
        ALERT_TIMEOUT,
    )?;
    alert::check_contract(&read)?;
    assert_eq!(read["details"]["target_pid"], target.pid(), "{read:#}");
    Ok(())
}

/// Debuggers inside a container trace the container's own processes: no escape.
#[test]
fn tracing_a_process_of_the_same_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok(&format!(
        "sleep 30 & {ACT} ptrace $! && {ACT} vm-read $!; status=$?; kill $!; exit $status"
    ))?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

/// pidfd_getfd copies a descriptor out of a host process: whatever it had open (a socket, a
/// file outside the container) is the container's now.
#[test]
fn copying_a_host_process_descriptor_with_pidfd_getfd_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let by = By::Workload;
    let alert = scenario::expect_alert(
        &detector,
        "ptrace-outside-container",
        &container,
        Some("escape-act"),
        by,
        || {
            container.run(by, &format!("{ACT} pidfd-getfd {} 1", target.pid()))?;
            Ok(())
        },
    )?;
    assert_eq!(alert["details"]["target_pid"], target.pid(), "{alert:#}");
    Ok(())
}

/// Read-mode access to a host process's memory: its environment (secrets, tokens). Seen in the
/// kernel (fexit `proc_mem_open`); syscall tracepoints do not see which /proc file is opened.
#[test]
fn reading_a_host_process_environment_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    if detector.sensor_backend("process access")?.as_deref() != Some("fentry") {
        return skip::skipped("process access on syscall tracepoints: /proc opens are not theirs");
    }
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let by = By::ExecSession;
    let alert = scenario::expect_alert(
        &detector,
        "ptrace-outside-container",
        &container,
        Some("escape-act"),
        by,
        || {
            technique::open_file(
                &container,
                by,
                &format!("/proc/{}/environ", target.pid()),
                false,
            )
        },
    )?;
    assert_eq!(
        alert["details"]["access"], "/proc/PID/environ or auxv read",
        "{alert:#}"
    );
    assert_eq!(alert["details"]["target_pid"], target.pid(), "{alert:#}");
    Ok(())
}
