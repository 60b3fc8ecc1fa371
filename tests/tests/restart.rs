//! A detector killed outright (SIGKILL: no clean detach) while containers run, then started
//! again: the next escape is alerted and attributed to its container, and alert ids name acts,
//! not reports.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, exclusive, scenario, technique,
};

#[test]
fn after_a_sigkill_the_restarted_detector_attributes_the_next_escape() -> anyhow::Result<()> {
    let _machine = exclusive();
    let target = HostProcess::sleep()?;
    let first = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let before = scenario::expect_alert(
        &first,
        "ptrace-outside-container",
        &container,
        Some("escape-act"),
        By::Workload,
        || technique::ptrace_attach(&container, By::Workload, target.pid()),
    )?;
    first.kill()?;

    // The container's init predates this detector: it is known from /proc alone.
    let second = Detector::start(&[])?;
    let after = scenario::expect_alert(
        &second,
        "ptrace-outside-container",
        &container,
        Some("escape-act"),
        By::Workload,
        || technique::read_process_memory(&container, By::Workload, target.pid()),
    )?;
    assert_eq!(after["details"]["target_pid"], target.pid(), "{after:#}");
    assert_eq!(
        after["container"]["runtime"],
        before["container"]["runtime"]
    );
    assert_ne!(
        before["id"], after["id"],
        "two acts, one id: {before:#}\n{after:#}"
    );
    Ok(())
}
