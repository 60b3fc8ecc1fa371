//! `cgroup-release-agent`: a container process sets a cgroup v1 `release_agent` (and
//! `notify_on_release`), making the kernel run a program of its choice on the host as root.

use escape_detector_e2e::{
    CgroupLayout, Container, Detector, Profile, cgroup, exclusive, scenario, technique,
};

#[test]
fn release_agent_escape_from_a_privileged_pod_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    // The technique returns only once the agent has run on the host.
    scenario::expect_alert(
        &detector,
        "cgroup-release-agent",
        &container,
        Some("sh"),
        || technique::abuse_release_agent(&container),
    )?;
    assert_eq!(cgroup::stray_hierarchies(), Vec::<String>::new());
    Ok(())
}
