//! `kernel-module-load`: a container process loads a kernel module, which runs outside every
//! namespace.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, Profile, exclusive, kernel_module, scenario, skip,
    technique,
};

use kernel_module::{DUMMY as MODULE, DUMMY_FILE as MODULE_FILE};

#[test]
fn a_module_loaded_in_an_exec_session_of_a_privileged_container_is_reported() -> anyhow::Result<()>
{
    a_module_loaded_from_a_privileged_container_is_reported(By::ExecSession)
}

#[test]
fn a_module_loaded_by_a_privileged_container_workload_is_reported() -> anyhow::Result<()> {
    a_module_loaded_from_a_privileged_container_is_reported(By::Workload)
}

fn a_module_loaded_from_a_privileged_container_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    if !kernel_module::supported() {
        // Nothing can be loaded here: the detector must say the sensor is not needed rather
        // than claim one or report it missing.
        assert!(
            detector.log().contains("module loads not needed"),
            "{}",
            detector.log_tail()
        );
        return skip::skipped(
            "this kernel has no module support (checked: the detector says the sensor is not needed)",
        );
    }
    let module = kernel_module::file(MODULE_FILE)?;
    let _unload = kernel_module::UnloadOnDrop::new(MODULE)?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    // busybox's shell runs a lone `insmod` in its own process without exec, so an exec
    // session's process is `sh -c insmod`, and the workload's its subshell (expect_alert checks
    // that it descends from the container's init).
    let alert = scenario::expect_alert(
        &detector,
        "kernel-module-load",
        &container,
        None,
        by,
        || technique::load_module(&container, by, &module, MODULE),
    )?;
    if by == By::ExecSession {
        let args = alert["process"]["args"].to_string();
        assert!(args.contains("insmod /module.ko"), "process args {args}");
    }
    assert_eq!(alert["action"], "alert");
    Ok(())
}
