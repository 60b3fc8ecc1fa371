//! Least privilege, proven: the core scenarios are caught, and attributed, with the detector
//! running as root holding only the capabilities the README lists for the DaemonSet; every
//! other capability is out of its bounding set (`setpriv`).

use std::path::Path;

use anyhow::ensure;
use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, capability, exclusive,
    identity::Identity, scenario, technique,
};

#[test]
fn core_scenarios_are_caught_with_only_the_readmes_capabilities() -> anyhow::Result<()> {
    let _machine = exclusive();
    // The DaemonSet gets tracefs from the host; mounting it is what CAP_SYS_ADMIN would be for.
    ensure_tracefs_mounted()?;
    let identity = Identity::readme_root()?;
    let detector = Detector::start_as(&identity, &[])?;
    let mut held = capability::names(capability::set_of(&detector.pid().to_string(), "CapEff")?);
    let mut listed = identity.ambient.clone();
    held.sort_unstable();
    listed.sort_unstable();
    assert_eq!(held, listed, "the detector holds other capabilities");

    let by = By::ExecSession;
    let privileged = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    let alert = scenario::expect_alert(
        &detector,
        "cgroup-release-agent",
        &privileged,
        Some("sh"),
        by,
        || technique::abuse_release_agent(&privileged, by),
    )?;
    ensure!(
        alert["container"]["runtime"] == "runc",
        "attribution: {alert:#}"
    );
    scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &privileged,
        Some("mount"),
        by,
        || technique::mount_procfs(&privileged, by),
    )?;
    scenario::expect_alert(
        &detector,
        "bpf-from-container",
        &privileged,
        Some("escape-act"),
        by,
        || technique::create_bpf_map(&privileged, by),
    )?;
    // Its own programs, maps and links, known from its descriptors without CAP_SYS_ADMIN:
    // taking any of them by id is tampering.
    scenario::expect_bpf_objects_tamper(&detector, &privileged, by)?;

    let host = HostProcess::sleep()?;
    let host_pid = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    scenario::expect_alert(
        &detector,
        "host-namespace-entry",
        &host_pid,
        Some("nsenter"),
        by,
        || technique::enter_host_namespaces(&host_pid, by, &host),
    )?;
    let attach = scenario::expect_alert(
        &detector,
        "ptrace-outside-container",
        &host_pid,
        Some("escape-act"),
        by,
        || technique::ptrace_attach(&host_pid, by, host.pid()),
    )?;
    // The target's name comes from /proc: readable without CAP_DAC_OVERRIDE and the rest.
    ensure!(attach["details"]["target_comm"] == "sleep", "{attach:#}");
    detector.stop()?;
    Ok(())
}

fn ensure_tracefs_mounted() -> anyhow::Result<()> {
    let tracefs = Path::new("/sys/kernel/tracing");
    if tracefs.join("events").exists() {
        return Ok(());
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "tracefs"])
        .arg(tracefs)
        .status()?;
    ensure!(status.success(), "mounting tracefs: {status}");
    Ok(())
}
