//! `namespace-escape`: a process runs in the host's mount namespace while its cgroup says it
//! belongs to a container, however it got there; `userns-creation`: a container process makes a
//! user namespace. Both invariants are checked where the agent sees the process anew, so no
//! particular hook has to have seen how it got there.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer, alert,
    alert_matches, exclusive,
    scenario::{self, ALERT_TIMEOUT},
    technique::{self, CgroupDestination},
};

/// A host process a container slips into its own cgroup is a container process in the host's
/// mount namespace: no setns anywhere.
#[test]
fn a_host_process_slipped_into_a_container_s_cgroup_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let host_shell = HostProcess::busy_shell()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    technique::move_to_cgroups(
        &container,
        By::Workload,
        &host_shell.pid().to_string(),
        CgroupDestination::Own,
    )?;
    let escaped = detector.wait_for_alert(
        "namespace-escape alert for the host shell moved into the container",
        |a| alert_matches(a, "namespace-escape", container.id()),
        ALERT_TIMEOUT,
    )?;
    alert::check_contract(&escaped)?;
    assert!(
        alert::involves_pid(&escaped, host_shell.pid()),
        "the alert is not about the host shell (pid {}) or a child of it: {escaped:#}",
        host_shell.pid()
    );
    assert_eq!(escaped["details"]["namespaces"][0], "mnt", "{escaped:#}");
    Ok(())
}

#[test]
fn a_user_namespace_made_by_the_workload_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let mut inside = String::new();
    let created = scenario::expect_alert(
        &detector,
        "userns-creation",
        &container,
        None,
        By::Workload,
        || {
            inside = container.run(
                By::Workload,
                "readlink /proc/self/ns/user; unshare -U /bin/sh -c 'readlink /proc/self/ns/user'",
            )?;
            Ok(())
        },
    )?;
    let namespaces: Vec<&str> = inside.lines().collect();
    anyhow::ensure!(
        namespaces.len() == 2 && namespaces[0] != namespaces[1],
        "unshare -U made no user namespace: {inside}"
    );
    assert_eq!(created["severity"], "medium", "{created:#}");
    Ok(())
}
