//! `sensitive-mount`: a container process mounts a kernel filesystem or a block device.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostDisk, Profile, exclusive, scenario, technique,
};

#[test]
fn a_procfs_mount_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    a_procfs_mount_is_reported(By::ExecSession)
}

#[test]
fn a_procfs_mount_by_the_workload_is_reported() -> anyhow::Result<()> {
    a_procfs_mount_is_reported(By::Workload)
}

fn a_procfs_mount_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        by,
        || technique::mount_procfs(&container, by),
    )?;
    Ok(())
}

#[test]
fn a_procfs_made_with_the_new_mount_api_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let alert = scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("escape-act"),
        By::ExecSession,
        || technique::mount_procfs_with_new_api(&container, By::ExecSession),
    )?;
    assert_eq!(alert["details"]["fstype"], "proc", "{alert:#}");
    Ok(())
}

#[test]
fn a_host_block_device_mount_is_reported_with_the_device() -> anyhow::Result<()> {
    let _machine = exclusive();
    let disk = HostDisk::attach()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let alert = scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        By::ExecSession,
        || technique::mount_host_disk(&container, By::ExecSession, &disk),
    )?;
    let details = alert["details"].to_string();
    assert!(
        details.contains("/dev/hostdisk") || details.contains(&disk.device().to_string()),
        "the details name neither /dev/hostdisk nor device {}: {details}",
        disk.device()
    );
    Ok(())
}
