//! `kernel-helper-hijack`: a container process rewrites a path the kernel executes as root.
//! Each test saves the setting before anything can touch it; the guard restores it even when
//! the test fails, and the test checks the restore explicitly.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, KernelSetting, Profile, exclusive, scenario, technique,
};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// The detector knows the file by superblock and dentry names, so a procfs mounted elsewhere
/// than /proc must not hide the write.
#[test]
fn core_pattern_written_through_a_second_procfs_in_an_exec_session_is_reported()
-> anyhow::Result<()> {
    core_pattern_written_through_a_second_procfs_is_reported(By::ExecSession)
}

#[test]
fn core_pattern_written_through_a_second_procfs_by_the_workload_is_reported() -> anyhow::Result<()>
{
    core_pattern_written_through_a_second_procfs_is_reported(By::Workload)
}

fn core_pattern_written_through_a_second_procfs_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let core_pattern = KernelSetting::save(CORE_PATTERN)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    scenario::expect_core_pattern_hijack(&detector, &container, by)?;
    core_pattern.restore_now()
}

#[test]
fn a_kernel_helper_written_directly_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let helper_path = technique::direct_kernel_helper();
    eprintln!("writing {helper_path}");
    let helper = KernelSetting::save(helper_path)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::kubepods())?;
    scenario::expect_alert(
        &detector,
        "kernel-helper-hijack",
        &container,
        Some("sh"),
        By::ExecSession,
        || {
            technique::write_kernel_file(
                &container,
                By::ExecSession,
                helper_path,
                "/tmp/escdet-helper",
            )
        },
    )?;
    helper.restore_now()
}
