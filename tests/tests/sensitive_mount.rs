//! `sensitive-mount`: a container process mounts a kernel filesystem or a block device.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostDisk, HostProcess, Profile, RunningContainer,
    alert::alert_matches, exclusive, rootfs::ACT, scenario, skip, technique, temp_dir::TempDir,
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
fn an_exec_session_remounting_procfs_read_write_is_reported() -> anyhow::Result<()> {
    a_read_write_remount_is_reported(By::ExecSession, "mount -o remount,rw /proc")
}

#[test]
fn the_workload_remounting_sysfs_read_write_is_reported() -> anyhow::Result<()> {
    a_read_write_remount_is_reported(By::Workload, "mount -o remount,bind,rw /sys")
}

/// A remount makes no new filesystem: the superblock's own remount (`/proc`), and a mount's
/// flags alone (`bind`: how a read-only /proc/sys or /sys is made writable). A read-only
/// remount, as runtimes make when they set a container up, is silent.
fn a_read_write_remount_is_reported(by: By, remount: &str) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.run(by, "mount -o remount,bind,ro /sys/fs/cgroup")?;
    let alert = scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        by,
        || container.run(by, remount).map(drop),
    )?;
    assert_eq!(alert["details"]["kind"], "remount", "{alert:#}");
    detector.assert_no_alert(
        |a| alert_matches(a, "sensitive-mount", container.id()) && a != &alert,
        scenario::SETTLE,
    );
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

#[test]
fn a_bind_of_a_host_path_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    a_bind_of_a_host_path_is_reported(By::ExecSession)
}

#[test]
fn a_bind_of_a_host_path_by_the_workload_is_reported() -> anyhow::Result<()> {
    a_bind_of_a_host_path_is_reported(By::Workload)
}

/// `mount --bind /proc/PID/root/DIR` of a host process, from a container sharing the host's pid
/// namespace, would make the host's files a mount of the container's own. The kernel refuses
/// binds of another namespace's mounts (EINVAL): the attempt is the alert.
fn a_bind_of_a_host_path_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("bind-source")?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let source = format!("/proc/{}/root{}", host.pid(), dir.path().display());
    let alert = scenario::expect_alert(&detector, "sensitive-mount", &container, None, by, || {
        container.run(
            by,
            &format!(
                "mkdir -p /mnt/host && if mount --bind {source} /mnt/host; then \
                 umount /mnt/host; fi"
            ),
        )?;
        Ok(())
    })?;
    assert_eq!(alert["details"]["kind"], "host-bind", "{alert:#}");
    eprintln!("bind: {}", alert["details"]["result"]);
    Ok(())
}

/// The new mount API's bind (open_tree, then move_mount) is seen where the kernel's own objects
/// are (fexit on `__do_loopback`); syscall tracepoints have no string to go by.
#[test]
fn a_bind_of_a_host_path_by_the_new_mount_api_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("bind-source")?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    if detector.sensor_backend("mounts")?.as_deref() != Some("fentry") {
        return skip::skipped("mounts on syscall tracepoints: open_tree has no string to judge");
    }
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let source = format!("/proc/{}/root{}", host.pid(), dir.path().display());
    let by = By::Workload;
    let alert = scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("escape-act"),
        by,
        || {
            container.run(
                by,
                &format!(
                    "mkdir -p /mnt/host && if {ACT} bind-tree {source} /mnt/host; then \
                     umount /mnt/host; fi"
                ),
            )?;
            Ok(())
        },
    )?;
    assert_eq!(alert["details"]["kind"], "host-bind", "{alert:#}");
    assert_eq!(
        alert["details"]["syscall"], "mount --bind/open_tree",
        "{alert:#}"
    );
    Ok(())
}

/// Binds inside the container's own tree, and the kernel's automount of tracefs under a
/// debugfs the container mounted, are not the container mounting anything sensitive.
#[test]
fn own_binds_and_automounts_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok(
        "mkdir -p /mnt/a /mnt/b && mount --bind /mnt/a /mnt/b && umount /mnt/b \
         && mkdir -p /mnt/debug && mount -t debugfs debugfs /mnt/debug \
         && (ls /mnt/debug/tracing >/dev/null 2>&1; true); umount -l /mnt/debug",
    )?;
    // The debugfs mount itself is sensitive: exactly that one alert.
    detector.wait_for_alert(
        "sensitive-mount alert for the debugfs mount",
        |a| {
            alert_matches(a, "sensitive-mount", container.id())
                && a["details"]["fstype"] == "debugfs"
        },
        scenario::ALERT_TIMEOUT,
    )?;
    detector.assert_no_alert(
        |a| {
            alert_matches(a, "sensitive-mount", container.id())
                && a["details"]["fstype"] != "debugfs"
        },
        scenario::SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}
