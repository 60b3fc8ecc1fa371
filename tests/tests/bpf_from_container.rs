//! `bpf-from-container`: a container process uses the bpf() system call.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, exclusive, rootfs::ACT,
    scenario, technique,
};

#[test]
fn creating_a_bpf_map_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    creating_a_bpf_map_is_reported(By::ExecSession)
}

#[test]
fn creating_a_bpf_map_from_the_workload_is_reported() -> anyhow::Result<()> {
    creating_a_bpf_map_is_reported(By::Workload)
}

fn creating_a_bpf_map_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let alert = scenario::expect_alert(
        &detector,
        "bpf-from-container",
        &container,
        Some("escape-act"),
        by,
        || technique::create_bpf_map(&container, by),
    )?;
    assert_eq!(alert["details"]["command"], "BPF_MAP_CREATE", "{alert:#}");
    assert_eq!(alert["details"]["syscall"], "bpf", "{alert:#}");
    Ok(())
}

/// The agent's own bpf() calls and the runtime's are not the container's.
#[test]
fn containers_that_do_not_call_bpf_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    container.exec_ok(&format!("ls /sys/fs; test -x {ACT}"))?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}
