//! `kernel-module-load`: a container process loads a kernel module, which runs outside every
//! namespace.

use escape_detector_e2e::{
    CgroupLayout, Container, Detector, Profile, exclusive, kernel_module, scenario, technique,
};

use kernel_module::{DUMMY as MODULE, DUMMY_FILE as MODULE_FILE};

#[test]
fn a_module_loaded_from_a_privileged_container_is_reported() -> anyhow::Result<()> {
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
        eprintln!("this kernel has no module support; checked the detector says so");
        return Ok(());
    }
    let module = kernel_module::file(MODULE_FILE)?;
    let _unload = kernel_module::UnloadOnDrop::new(MODULE)?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    // busybox's shell runs a lone `insmod` in its own process, so the process is `sh -c insmod`.
    let alert = scenario::expect_alert(&detector, "kernel-module-load", &container, None, || {
        technique::load_module(&container, &module, MODULE)
    })?;
    let args = alert["process"]["args"].to_string();
    assert!(args.contains("insmod /module.ko"), "process args {args}");
    assert_eq!(alert["action"], "alert");
    Ok(())
}
