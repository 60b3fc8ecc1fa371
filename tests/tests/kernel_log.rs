//! The kernel programs' own log (aya-log, `kernel_log` in the config): on, their records reach
//! the agent's log; off, the default, the programs the kernel runs hold no logging code.

use std::time::Duration;

use anyhow::ensure;
use escape_detector_e2e::{CgroupLayout, Container, Detector, Profile, exclusive, poll};

/// The program whose records this test reads: a container's start makes its cgroup.
const PROGRAM: &str = "cgroup_mkdir";

#[test]
fn the_kernel_programs_log_when_asked_and_hold_no_logging_code_when_off() -> anyhow::Result<()> {
    let _machine = exclusive();
    let off = Detector::start(&[])?;
    let size_off = off.translated_program_size(PROGRAM)?;
    off.stop()?;

    let on = Detector::start_with_config("kernel_log = \"debug\"\n", &[])?;
    let size_on = on.translated_program_size(PROGRAM)?;
    let _container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    let logged = poll::eventually(Duration::from_secs(10), || {
        on.log().lines().any(|line| {
            line.contains("DEBUG detector_ebpf::lifecycle] cgroup ")
                && line.contains(" made below ")
        })
    });
    ensure!(
        logged,
        "no record of the new cgroup from the kernel program in the log:\n{}",
        on.log_tail()
    );
    println!("{PROGRAM}: {size_off} bytes with the kernel log off, {size_on} with it on");
    ensure!(
        size_off < size_on,
        "{PROGRAM} is {size_off} bytes with the kernel log off and {size_on} with it on: the \
         verifier should have removed the logging code"
    );
    Ok(())
}
