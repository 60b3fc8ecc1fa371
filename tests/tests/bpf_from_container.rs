//! `bpf-from-container`: a container process uses the bpf() system call.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, RunningContainer, alert_matches, exclusive,
    rootfs::ACT,
    scenario::{self, ALERT_TIMEOUT, SETTLE},
    technique,
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

/// One process calling bpf() fifty times makes one alert at once and, when it exits, one more
/// that counts the other 49: never fifty alerts.
#[test]
fn repeats_of_one_process_are_folded_into_a_count() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let first = scenario::expect_alert(
        &detector,
        "bpf-from-container",
        &container,
        Some("escape-act"),
        By::Workload,
        || {
            container
                .run(By::Workload, &format!("{ACT} repeat 50 bpf"))
                .map(drop)
        },
    )?;
    let folded = detector.wait_for_alert(
        "the alert that counts the repeats",
        |a| alert_matches(a, "bpf-from-container", container.id()) && a["count"] != 1,
        ALERT_TIMEOUT,
    )?;
    assert_eq!(first["count"], 1, "{first:#}");
    assert_eq!(folded["count"], 49, "{folded:#}");
    assert_eq!(
        folded["process"]["pid"], first["process"]["pid"],
        "{folded:#}"
    );
    detector.assert_no_alert(
        |a| alert_matches(a, "bpf-from-container", container.id()) && a != &first && a != &folded,
        SETTLE,
    );
    let metrics = detector.metrics()?;
    let sample = "escape_detector_alerts_folded_total{rule=\"bpf-from-container\"} 49";
    assert!(
        metrics.lines().any(|l| l == sample),
        "no `{sample}` in\n{metrics}"
    );
    Ok(())
}

/// An exception quiets one workload's acts of the rules it names, counted in a metric: the
/// same container's other acts are still reported.
#[test]
fn an_exception_quiets_the_program_it_names_and_nothing_else() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start_with_config(
        "[[exceptions]]\nname = \"bpf-tool\"\nrules = [\"bpf-from-container\"]\n\
         exes = [\"*/escape-act\"]\n",
        &[],
    )?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    technique::create_bpf_map(&container, By::Workload)?;
    scenario::expect_alert(
        &detector,
        "sensitive-mount",
        &container,
        Some("mount"),
        By::Workload,
        || technique::mount_procfs(&container, By::Workload),
    )?;
    detector.assert_no_alert(
        |a| alert_matches(a, "bpf-from-container", container.id()),
        SETTLE,
    );
    let metrics = detector.metrics()?;
    let sample = "escape_detector_exceptions_suppressed_total{exception=\"bpf-tool\",rule=\"bpf-from-container\"} 1";
    assert!(
        metrics.lines().any(|l| l == sample),
        "no `{sample}` in\n{metrics}"
    );
    Ok(())
}
