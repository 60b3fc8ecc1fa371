//! `kernel-tunable-write`: a container process writes a knob of the whole kernel. Each test
//! writes the knob's own value back, so the host keeps its setting; the guard restores it
//! anyway, also when the test fails.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, KernelSetting, Profile, RunningContainer, alert_matches,
    exclusive,
    scenario::{self, SETTLE},
    technique,
};

const SAMPLE_RATE: &str = "kernel/perf_event_max_sample_rate";
const KSM_RUN: &str = "/sys/kernel/mm/ksm/run";

#[test]
fn a_kernel_sysctl_written_through_a_second_procfs_by_the_workload_is_reported()
-> anyhow::Result<()> {
    let _machine = exclusive();
    let setting = KernelSetting::save(format!("/proc/sys/{SAMPLE_RATE}"))?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    let alert = scenario::expect_alert(
        &detector,
        "kernel-tunable-write",
        &container,
        Some("sh"),
        By::Workload,
        || {
            technique::write_sysctl_through_second_procfs(
                &container,
                By::Workload,
                SAMPLE_RATE,
                setting.saved(),
            )
        },
    )?;
    assert_eq!(
        alert["details"]["file"]["path_in_filesystem"],
        format!("/{}", SAMPLE_RATE.replace("kernel/", "sys/kernel/")),
        "{alert:#}"
    );
    setting.restore_now()
}

#[test]
fn a_sys_kernel_file_written_in_an_exec_session_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let setting = KernelSetting::save(KSM_RUN)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    scenario::expect_alert(
        &detector,
        "kernel-tunable-write",
        &container,
        Some("sh"),
        By::ExecSession,
        || technique::write_kernel_file(&container, By::ExecSession, KSM_RUN, setting.saved()),
    )?;
    setting.restore_now()
}

/// The hostname and the IPC limits are the container's own (its UTS and IPC namespaces):
/// writing them escapes nothing.
#[test]
fn the_container_s_own_namespaced_sysctls_are_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.run(
        By::Workload,
        "echo escdet-uts > /proc/sys/kernel/hostname \
         && cat /proc/sys/kernel/shmmni > /proc/sys/kernel/shmmni",
    )?;
    detector.assert_no_alert(
        |a| alert_matches(a, "kernel-tunable-write", container.id()),
        SETTLE,
    );
    scenario::expect_detector_alerts(&detector)
}
