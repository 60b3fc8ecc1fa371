//! `cgroup-release-agent`: a container process sets a cgroup v1 `release_agent` (and
//! `notify_on_release`), making the kernel run a program of its choice on the host as root.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, cgroup, exclusive, scenario, technique,
};

#[test]
fn release_agent_escape_from_an_exec_session_in_a_privileged_pod_is_reported() -> anyhow::Result<()>
{
    release_agent_escape_from_a_privileged_pod_is_reported(By::ExecSession)
}

#[test]
fn release_agent_escape_by_a_privileged_pod_workload_is_reported() -> anyhow::Result<()> {
    release_agent_escape_from_a_privileged_pod_is_reported(By::Workload)
}

fn release_agent_escape_from_a_privileged_pod_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let layout = CgroupLayout::kubepods();
    let CgroupLayout::Kubepods { pod_uid, .. } = &layout else {
        unreachable!("kubepods() is the Kubepods layout")
    };
    let pod_uid = pod_uid.clone();
    let container = Container::start(Profile::Privileged, layout)?;
    // The technique returns only once the agent has run on the host.
    let alert = scenario::expect_alert(
        &detector,
        "cgroup-release-agent",
        &container,
        Some("sh"),
        by,
        || technique::abuse_release_agent(&container, by),
    )?;
    // A Kubernetes container is attributed to its pod through the kubelet's cgroup layout.
    assert_eq!(alert["container"]["pod"]["uid"], pod_uid.as_str());
    assert_eq!(cgroup::stray_hierarchies(), Vec::<String>::new());
    Ok(())
}
