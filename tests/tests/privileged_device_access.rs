//! `privileged-device-access`: a container process creates a block device node, or opens a
//! block device, `/dev/mem` or `/proc/kcore`. Known by device number, whatever the node's name.

use std::path::Path;

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostDisk, Profile, RunningContainer, exclusive,
    scenario, skip, technique,
};

#[test]
fn making_and_opening_a_host_disk_node_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    making_and_opening_a_host_disk_node_is_reported(By::ExecSession)
}

#[test]
fn making_and_opening_a_host_disk_node_from_the_workload_is_reported() -> anyhow::Result<()> {
    making_and_opening_a_host_disk_node_is_reported(By::Workload)
}

fn making_and_opening_a_host_disk_node_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let disk = HostDisk::attach()?;
    let device = disk.device();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    // A name no rule could know.
    let node = "/tmp/innocent";
    // busybox's shell runs a lone applet in its own process without exec: the actor is `sh`.
    let made = scenario::expect_alert(
        &detector,
        "privileged-device-access",
        &container,
        None,
        by,
        || technique::make_block_node(&container, by, device, node),
    )?;
    assert_eq!(made["details"]["access"], "mknod", "{made:#}");
    assert_eq!(made["details"]["device"], device.to_string(), "{made:#}");
    // The path the caller gave (tracepoints), or the node's path in its filesystem (fentry),
    // which holds the container's root directory.
    assert!(
        made["details"]["node"]
            .as_str()
            .is_some_and(|n| n.ends_with(node)),
        "{made:#}"
    );

    let opened = scenario::expect_alert(
        &detector,
        "privileged-device-access",
        &container,
        Some("escape-act"),
        by,
        || technique::open_file(&container, by, node, false),
    )?;
    assert_eq!(opened["details"]["kind"], "block", "{opened:#}");
    assert_eq!(opened["details"]["access"], "reading", "{opened:#}");
    assert_eq!(
        opened["details"]["device"],
        device.to_string(),
        "{opened:#}"
    );
    Ok(())
}

/// `/dev/mem` by its number (1:1) under another name; kernels built without it skip.
#[test]
fn opening_physical_memory_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    if !Path::new("/sys/dev/char/1:1").exists() {
        return skip::skipped("this kernel has no /dev/mem");
    }
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok("mknod /tmp/memory c 1 1")?;
    let by = By::Workload;
    let alert = scenario::expect_alert(
        &detector,
        "privileged-device-access",
        &container,
        Some("escape-act"),
        by,
        || technique::open_file(&container, by, "/tmp/memory", false),
    )?;
    assert_eq!(alert["details"]["kind"], "memory", "{alert:#}");
    assert_eq!(alert["details"]["device"], "1:1", "{alert:#}");
    Ok(())
}

/// Through the container's own procfs; kernels built without /proc/kcore skip.
#[test]
fn opening_kcore_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    if !Path::new("/proc/kcore").exists() {
        return skip::skipped("this kernel has no /proc/kcore");
    }
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let by = By::ExecSession;
    let alert = scenario::expect_alert(
        &detector,
        "privileged-device-access",
        &container,
        Some("escape-act"),
        by,
        || technique::open_file(&container, by, "/proc/kcore", false),
    )?;
    assert_eq!(alert["details"]["kind"], "kcore", "{alert:#}");
    Ok(())
}

/// The devices every container has (null, zero, random, tty) are not the host's.
#[test]
fn everyday_devices_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok(
        "mknod /tmp/null c 1 3 && head -c 8 /dev/urandom > /tmp/null && cat /dev/zero | head -c 8 >/dev/null",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}
