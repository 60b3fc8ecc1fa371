//! `host-fd-leak` for files: a container process opens, for writing, a file on a mount outside
//! its container, here the host's, reached through `/proc/PID/root` of a host process.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer, exclusive,
    rootfs::ACT, scenario, technique, temp_dir::TempDir,
};

#[test]
fn writing_a_host_file_through_proc_root_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    writing_a_host_file_through_proc_root_is_reported(By::ExecSession)
}

#[test]
fn writing_a_host_file_through_proc_root_from_the_workload_is_reported() -> anyhow::Result<()> {
    writing_a_host_file_through_proc_root_is_reported(By::Workload)
}

fn writing_a_host_file_through_proc_root_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("host-file")?;
    let file = dir.path().join("crontab");
    std::fs::write(&file, "")?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let path = format!("/proc/{}/root{}", host.pid(), file.display());
    let alert = scenario::expect_alert(
        &detector,
        "host-fd-leak",
        &container,
        Some("escape-act"),
        by,
        || technique::open_file(&container, by, &path, true),
    )?;
    assert_eq!(alert["details"]["file"]["name"], "crontab", "{alert:#}");
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("on a mount of the host's mount namespace")),
        "{alert:#}"
    );
    Ok(())
}

/// A sandbox inside the container (its own mount namespace) writing the container's files
/// through `/proc/1/root` stays inside the container.
#[test]
fn a_sandbox_writing_its_containers_files_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok(&format!(
        "touch /tmp/shared && unshare -m {ACT} open /proc/1/root/tmp/shared write"
    ))?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}
