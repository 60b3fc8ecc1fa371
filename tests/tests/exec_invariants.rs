//! Invariants the agent checks when a container process execs: `host-root-chroot` (its root is
//! the host's), `host-fd-leak` (its working directory is on a host mount), and
//! `privilege-escalation` (uid 0 beyond what its container started with); and
//! `usermode-helper-exec`, the kernel starting a program that is no helper of the host's.

use std::{fs, os::unix::fs::PermissionsExt};

use anyhow::{Context as _, ensure};
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer, alert,
    alert_matches, exclusive, ids,
    rootfs::ACT,
    scenario::{self, ALERT_TIMEOUT, SETTLE},
    technique,
    temp_dir::TempDir,
};

#[test]
fn a_chroot_into_the_host_s_root_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let host_only = TempDir::new("host-only")?;
    let secret = ids::random_hex(8);
    let file = host_only.path().join("secret");
    fs::write(&file, &secret)?;
    let host_process = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let mut read = String::new();
    scenario::expect_alert(
        &detector,
        "host-root-chroot",
        &container,
        Some("cat"),
        By::Workload,
        || {
            read = container.run(
                By::Workload,
                &format!(
                    "chroot /proc/{}/root /bin/cat {}",
                    host_process.pid(),
                    file.display()
                ),
            )?;
            Ok(())
        },
    )?;
    ensure!(
        read.trim() == secret,
        "the chroot did not reach the host's files: {read:?}"
    );
    Ok(())
}

/// A working directory reached through another process's root, as a leaked descriptor gives
/// it (runc CVE-2024-21626), is on a mount of the host's mount namespace.
#[test]
fn a_working_directory_on_a_host_mount_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let host_process = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::kubepods())?;
    scenario::expect_alert(
        &detector,
        "host-fd-leak",
        &container,
        Some("escape-act"),
        By::Workload,
        || {
            container
                .run(
                    By::Workload,
                    &format!(
                        "cd /proc/{}/root/tmp && {ACT} print-pid",
                        host_process.pid()
                    ),
                )
                .map(drop)
        },
    )?;
    Ok(())
}

/// A setuid-root copy of a program, in the root filesystem of a container started as a user.
fn install_setuid_act(container: &Container) -> anyhow::Result<()> {
    let copy = container.rootfs_on_host().join("bin/suid-act");
    fs::copy(
        container.rootfs_on_host().join(ACT.trim_start_matches('/')),
        &copy,
    )?;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755))?;
    Ok(())
}

#[test]
fn a_setuid_root_program_in_a_user_s_container_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::User, CgroupLayout::Docker)?;
    install_setuid_act(&container)?;
    let mut ids = String::new();
    let alert = scenario::expect_alert(
        &detector,
        "privilege-escalation",
        &container,
        Some("suid-act"),
        By::Workload,
        || {
            ids = container.run(By::Workload, "/bin/suid-act ids")?;
            Ok(())
        },
    )?;
    ensure!(
        ids.trim() == "uid 1000 euid 0",
        "no escalation happened: {ids}"
    );
    assert_eq!(alert["severity"], "medium", "{alert:#}");
    Ok(())
}

/// sudo or su in a container started as root raise nothing beyond its start.
#[test]
fn a_setuid_program_in_a_root_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    install_setuid_act(&container)?;
    container.run(By::Workload, "/bin/suid-act ids")?;
    detector.assert_no_alert(
        |a| alert_matches(a, "privilege-escalation", container.id()),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}

/// A helper the host's configuration names (`extra_usermode_helpers`) is the host's own: its
/// run is silent, while the container's write that armed it is still reported.
#[test]
fn a_helper_the_configuration_allows_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let helper = technique::release_agent_path(&container);
    let detector = Detector::start_with_config(
        &format!(
            "extra_usermode_helpers = [{:?}]\n",
            helper.display().to_string()
        ),
        &[],
    )?;
    scenario::expect_alert(
        &detector,
        "cgroup-release-agent",
        &container,
        Some("sh"),
        By::Workload,
        || technique::abuse_release_agent(&container, By::Workload),
    )?;
    detector.assert_no_alert(|a| a["rule"] == "usermode-helper-exec", SETTLE);
    Ok(())
}

/// The release-agent escape pays off when the kernel runs the agent, a script in the
/// container's files, as a usermode helper: that moment is reported on its own.
#[test]
fn a_release_agent_run_by_the_kernel_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::abuse_release_agent(&container, By::Workload)?;
    let helper = detector.wait_for_alert(
        "usermode-helper-exec alert for the release agent",
        |a| {
            a["rule"] == "usermode-helper-exec"
                && a["details"]["helper"]
                    .as_str()
                    .is_some_and(|h| h.ends_with("escdet-release-agent"))
        },
        ALERT_TIMEOUT,
    )?;
    alert::check_contract(&helper)?;
    assert!(helper["container"].is_null(), "{helper:#}");
    assert_eq!(helper["process"]["uid"], 0, "{helper:#}");
    // The helper pays off the container's release_agent write: one incident (the mount and the
    // move into the private hierarchy's cgroup are links too), which the helper's alert lists
    // whole.
    let armed = detector
        .alerts()
        .into_iter()
        .find(|a| alert_matches(a, "cgroup-release-agent", container.id()))
        .context("no cgroup-release-agent alert for the container")?;
    assert_eq!(
        helper["incident"]["id"], armed["incident"]["id"],
        "{helper:#}"
    );
    let chain: Vec<&str> = helper["incident"]["chain"]
        .as_array()
        .context("no incident chain")?
        .iter()
        .filter_map(|link| link["rule"].as_str())
        .collect();
    assert!(
        chain.contains(&"cgroup-release-agent") && chain.last() == Some(&"usermode-helper-exec"),
        "{helper:#}"
    );
    Ok(())
}
