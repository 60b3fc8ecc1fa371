//! The systemd unit's privileges, tried without booting systemd: the agent run as the unit's
//! user (a stand-in for its dynamic user) with exactly the unit's capabilities catches an escape
//! and attributes it fully. The unit itself is checked by `systemd-analyze` in its own stage.

use std::path::Path;

use escape_detector_e2e::{
    CgroupLayout, Detector, alert, capability, exclusive, identity::Identity, scenario,
};

#[test]
fn the_units_user_and_capabilities_are_enough_to_catch_an_escape() -> anyhow::Result<()> {
    let _machine = exclusive();
    let unit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/escape-detector.service");
    let identity = Identity::of_unit(&unit)?;
    let detector = Detector::start_as(&identity, &[])?;
    let pid = detector.pid().to_string();
    let effective = capability::names(capability::set_of(&pid, "CapEff")?);
    assert_eq!(effective.len(), identity.ambient.len(), "{effective:?}");
    assert!(
        identity
            .ambient
            .iter()
            .all(|c| effective.contains(&c.as_str())),
        "{effective:?}"
    );

    let alert = scenario::expect_procfs_mount_alert(&detector, CgroupLayout::kubepods())?;
    // runc's state under /run/runc is root's alone: read with CAP_DAC_READ_SEARCH.
    assert_eq!(alert["container"]["runtime"], "runc", "{alert:#}");
    assert!(alert::names_this_test_as_ancestor(&alert), "{alert:#}");
    Ok(())
}
