//! `runtime-binary-overwrite`: a container process opens a container runtime's binary, or the
//! program of a host process (through `/proc/PID/exe`), for writing. The technique opens and
//! closes; nothing is ever written.

use escape_detector_e2e::{
    By, CgroupLayout, Container, Detector, HostProcess, Profile, RunningContainer, exclusive,
    host_process, runc, scenario, technique, temp_dir::TempDir,
};

/// Through `/proc/PID/root` of a host process, from a container sharing the host's pid
/// namespace. The workload only: an exec session's `runc exec` runs the runc binary for as long
/// as the session lasts, and the kernel refuses to open a running program for writing, which is
/// why the real attack waits for runc to exit.
#[test]
fn opening_the_runc_binary_for_writing_is_reported() -> anyhow::Result<()> {
    let _machine = exclusive();
    let runc = runc::binary()?;
    let host = HostProcess::sleep()?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::Docker)?;
    let by = By::Workload;
    let path = format!("/proc/{}/root{}", host.pid(), runc.display());
    let alert = scenario::expect_alert(
        &detector,
        "runtime-binary-overwrite",
        &container,
        Some("escape-act"),
        by,
        || technique::open_file(&container, by, &path, true),
    )?;
    assert_eq!(
        alert["details"]["path"],
        runc.display().to_string(),
        "{alert:#}"
    );
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("the container runtime's binary")),
        "{alert:#}"
    );
    Ok(())
}

#[test]
fn overwriting_a_host_program_through_proc_exe_in_an_exec_session_is_reported() -> anyhow::Result<()>
{
    overwriting_a_host_program_through_proc_exe_is_reported(By::ExecSession)
}

#[test]
fn overwriting_a_host_program_through_proc_exe_from_the_workload_is_reported() -> anyhow::Result<()>
{
    overwriting_a_host_program_through_proc_exe_is_reported(By::Workload)
}

/// The host program is a copy of `sleep` that runs for eight seconds: the container keeps its
/// `/proc/PID/exe` and opens it for writing once it has exited. Eight, as a `runc exec` session
/// under TCG took more than two to start on 5.10, by when the program and its
/// `/proc/PID/exe` were gone.
fn overwriting_a_host_program_through_proc_exe_is_reported(by: By) -> anyhow::Result<()> {
    let _machine = exclusive();
    let dir = TempDir::new("decoy")?;
    // Named `sleep`: where sleep is busybox, the copy must still be called so to run as sleep.
    let decoy = dir.path().join("sleep");
    std::fs::copy(host_process::program_on_path("sleep")?, &decoy)?;
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::HostPid, CgroupLayout::kubepods())?;
    let host = HostProcess::run(&decoy, &["8"])?;
    let alert = scenario::expect_alert(
        &detector,
        "runtime-binary-overwrite",
        &container,
        Some("escape-act"),
        by,
        || technique::overwrite_exe(&container, by, host.pid()),
    )?;
    assert_eq!(alert["details"]["file"]["name"], "sleep", "{alert:#}");
    // The path inside its filesystem, which may be mounted below the host's root.
    let dir_name = dir.path().file_name().unwrap_or_default().to_string_lossy();
    assert!(
        alert["details"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("{dir_name}/sleep"))),
        "{alert:#}"
    );
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("an executable outside its container")),
        "{alert:#}"
    );
    Ok(())
}

/// A container that writes its own programs (a package manager, a build) is not reaching out.
#[test]
fn a_container_writing_its_own_programs_is_silent() -> anyhow::Result<()> {
    let _machine = exclusive();
    let detector = Detector::start(&[])?;
    let container = Container::start(Profile::Privileged, CgroupLayout::Docker)?;
    container.exec_ok(
        "cp /bin/busybox /bin/copy && echo '#!/bin/sh' > /bin/tool && chmod +x /bin/tool",
    )?;
    scenario::expect_no_alert_for(&detector, container.id());
    scenario::expect_detector_alerts(&detector)
}
