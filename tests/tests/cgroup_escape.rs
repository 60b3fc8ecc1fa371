//! `cgroup-escape`: a container process moves itself out of its container's cgroups, into the
//! host's root cgroups, through hierarchies it mounted itself.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, alert_matches, exclusive,
    scenario::{self, SETTLE},
    technique::{self, CgroupDestination},
};

#[test]
fn a_workload_moving_itself_into_the_host_s_root_cgroup_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let alert = scenario::expect_alert(
        &detector,
        "cgroup-escape",
        &container,
        Some("sh"),
        By::Workload,
        || {
            technique::move_to_cgroups(&container, By::Workload, "0", CgroupDestination::HostRoot)
                .map(drop)
        },
    )?;
    assert_eq!(
        alert["details"]["to_container_id"],
        serde_json::Value::Null,
        "{alert:#}"
    );
    assert_eq!(
        alert["process"]["pid"], alert["details"]["moved_pid"],
        "{alert:#}"
    );
    Ok(())
}

/// A move within the container's own cgroups (here: back into them) escapes nothing.
#[test]
fn a_move_within_the_container_s_cgroups_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    technique::move_to_cgroups(&container, By::ExecSession, "0", CgroupDestination::Own)?;
    detector.assert_no_alert(
        |a| alert_matches(a, "cgroup-escape", container.id()),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}
