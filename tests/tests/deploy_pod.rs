//! The DaemonSet's pod, run on this host: the image `cargo xtask image` built, with exactly the
//! manifest's security context, namespaces and mounts (see `pod_spec`), catches an escape from
//! another container, attributes it to that container's pod, and names the node.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Profile, RunningContainer, alert, exclusive, ids, pod::Pod,
    scenario, technique,
};

#[test]
fn the_daemonset_pod_catches_an_escape_from_another_container_and_names_the_node()
-> anyhow::Result<()> {
    let _machine = exclusive();
    let node = format!("escdet-node-{}", ids::random_hex(3));
    let pod = Pod::start(&node)?;
    pod.check_runs_as_specified()?;
    for kind in ["liveness", "readiness"] {
        let probe = pod.probe(kind)?;
        let (status, body) = pod.get(probe)?;
        assert_eq!(status, 200, "{kind} probe {}: {body}", probe.path);
    }

    let layout = CgroupLayout::kubepods();
    let CgroupLayout::Kubepods { pod_uid, .. } = &layout else {
        unreachable!("kubepods() makes a Kubepods layout")
    };
    let pod_uid = pod_uid.clone();
    let container = Container::start(Profile::Privileged, layout)?;
    technique::mount_procfs(&container, By::ExecSession)?;
    let alert = pod.wait_for_alert(
        &format!("sensitive-mount alert for container {}", container.id()),
        |a| {
            alert::alert_matches(a, "sensitive-mount", container.id())
                && alert::process_named(a, "mount")
        },
        scenario::ALERT_TIMEOUT,
    )?;
    alert::check_contract(&alert)?;
    assert_eq!(alert["hostname"], node.as_str(), "{alert:#}");
    assert_eq!(
        alert["container"]["pod"]["uid"],
        pod_uid.as_str(),
        "{alert:#}"
    );
    // runc's state, read through the /run mount, names the runtime.
    assert_eq!(alert["container"]["runtime"], "runc", "{alert:#}");
    // The pod sees host processes through /proc, those with more privileges than it too.
    assert!(alert::names_this_test_as_ancestor(&alert), "{alert:#}");
    Ok(())
}
