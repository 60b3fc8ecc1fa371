//! `open-by-handle`: a container process calls `open_by_handle_at` (the "shocker" technique),
//! whether the kernel lets it open the file or not.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, exclusive, scenario, technique,
};

#[test]
fn opening_by_handle_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    opening_by_handle_is_reported(By::ExecSession)
}

#[test]
fn opening_by_handle_from_the_workload_is_reported() -> anyhow::Result<()> {
    opening_by_handle_is_reported(By::Workload)
}

fn opening_by_handle_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    // Privileged: CAP_DAC_READ_SEARCH, which the call needs.
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let alert = scenario::expect_alert(
        &detector,
        "open-by-handle",
        &container,
        Some("escape-act"),
        by,
        || technique::open_by_handle(&container, by, "/etc/hostname", false),
    )?;
    assert_eq!(alert["details"]["result"], "opened", "{alert:#}");
    assert_eq!(alert["details"]["name"], "hostname", "{alert:#}");
    Ok(())
}

/// Runtimes drop CAP_DAC_READ_SEARCH: the attempt fails, and is still an attempt.
#[test]
fn a_refused_attempt_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    let by = By::Workload;
    let alert = scenario::expect_alert(
        &detector,
        "open-by-handle",
        &container,
        Some("escape-act"),
        by,
        || technique::open_by_handle(&container, by, "/etc/hostname", true),
    )?;
    assert_eq!(alert["details"]["result"], "refused", "{alert:#}");
    assert_eq!(alert["details"]["errno"], libc::EPERM, "{alert:#}");
    Ok(())
}
