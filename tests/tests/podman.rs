//! Containers made by a real runtime client, Debian's podman (runc, cgroupfs manager): its
//! containers are attributed, from podman's own cgroup layout, and their escapes reported,
//! whether the container's program acts or a `podman exec` session.

use escape_detector_e2e::{
    By, Detector, RunningContainer, exclusive,
    podman::{self, PodmanContainer},
    scenario, skip, technique,
};

#[test]
fn a_podman_container_s_workload_mounting_procfs_is_reported() -> anyhow::Result<()> {
    a_podman_container_mounting_procfs_is_reported(By::Workload)
}

#[test]
fn a_podman_exec_session_mounting_procfs_is_reported() -> anyhow::Result<()> {
    a_podman_container_mounting_procfs_is_reported(By::ExecSession)
}

fn a_podman_container_mounting_procfs_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    if !podman::available() {
        return skip::skipped(
            "podman is not installed here (`cargo xtask setup` installs it on the host)",
        );
    }
    let detector = Detector::start(&[])?;
    let container = PodmanContainer::start_privileged()?;
    let alert = scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        by,
        || technique::mount_procfs(&container, by),
    )?;
    assert_eq!(alert["container"]["runtime"], "podman", "{alert:#}");
    assert_eq!(alert["container"]["id"], container.id(), "{alert:#}");
    Ok(())
}
