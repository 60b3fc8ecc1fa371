//! What containers and operators do every day must not raise alerts. Each test ends with a
//! canary escape, so that silence cannot come from a dead or blind detector.

use std::process::{Command, Stdio};

use anyhow::ensure;
use escape_detector_e2e::{
    CgroupLayout, Container, Detector, Profile, RunningContainer,
    alert::involves_pid,
    exclusive,
    scenario::{self, SETTLE},
};

#[test]
fn an_ordinary_workload_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    // The container's network namespace has only a loopback that is down: wget fails at once.
    container.exec_ok(
        "ls / ; cat /etc/passwd; echo hi > /tmp/f; ps; wget -q -O- http://127.0.0.1:1 || true",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

#[test]
fn runc_exec_into_a_running_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::kubepods())?;
    for script in [
        "true",
        "cat /proc/self/status",
        "ls /proc",
        "id",
        "hostname",
    ] {
        container.exec_ok(script)?;
    }
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}

/// An operator entering a container from the host crosses namespaces the other way: the
/// process belongs to the host by its cgroup, so it is no escape.
#[test]
fn nsenter_from_the_host_into_a_container_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    let nsenter = Command::new("nsenter")
        .args(["-t", &container.init_pid().to_string()])
        .args(["-m", "-u", "-i", "-n", "-p", "--", "/bin/sh", "-c", "ls /"])
        .stdout(Stdio::piped())
        .spawn()?;
    let nsenter_pid = nsenter.id();
    let nsenter = nsenter.wait_with_output()?;
    ensure!(nsenter.status.success(), "host nsenter failed: {nsenter:?}");
    ensure!(
        String::from_utf8(nsenter.stdout)? == container.exec_ok("ls /")?,
        "nsenter did not land in the container's root"
    );
    detector.assert_no_alert(
        |a| a["container"]["id"] == container.id() || involves_pid(a, nsenter_pid),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}

/// runc's own set-up mounts proc, sysfs and cgroups and changes namespaces inside the
/// container's cgroup; none of it is the container escaping.
#[test]
fn starting_and_deleting_containers_of_every_profile_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let mut ids = Vec::new();
    for profile in [Profile::Default, Profile::Privileged, Profile::HostPid] {
        for layout in [CgroupLayout::Docker, CgroupLayout::kubepods()] {
            let container = Container::start(profile, layout)?;
            ids.push(container.id().to_owned());
        }
    }
    detector.assert_no_alert(|a| ids.iter().any(|id| a["container"]["id"] == *id), SETTLE);
    scenario::expect_detector_alerts(&detector)
}
