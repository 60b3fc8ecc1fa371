//! The container's own program: a shell that runs the jobs a test hands it, each in a subshell
//! of the container's init, the way a compromised application acts from inside (no `runc exec`
//! involved). Jobs arrive as paths through a FIFO in the container's root; each leaves its
//! output and exit status next to it.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::{Context, bail, ensure};

use crate::poll;

/// The FIFO the init reads job paths from, inside the container.
const JOBS: &str = "/.escdet-jobs";

/// How long a job may take (the release-agent technique waits for the kernel to run its
/// agent).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// The container's command: make the FIFO, then run every job that comes through it. A job's
/// `exit` ends its subshell, not the init.
pub fn command() -> Vec<String> {
    let script = format!(
        "mkfifo {JOBS} && while :; do read -r job < {JOBS} || continue; \
         ( . \"$job\" ) > \"$job.out\" 2>&1; echo $? > \"$job.status\"; done"
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

static NEXT_JOB: AtomicU32 = AtomicU32::new(0);

/// Runs `script` as a job of the container whose root is `rootfs` on the host; returns its
/// output, or fails with it when the job exits non-zero.
pub fn run(rootfs: &Path, script: &str) -> anyhow::Result<String> {
    let name = format!(
        "/.escdet-job-{}-{}.sh",
        std::process::id(),
        NEXT_JOB.fetch_add(1, Ordering::Relaxed)
    );
    let on_host = |suffix: &str| rootfs.join(format!("{}{suffix}", name.trim_start_matches('/')));
    fs::write(on_host(""), script)?;
    hand_over(&rootfs.join(JOBS.trim_start_matches('/')), &name)?;
    let status_file = on_host(".status");
    ensure!(
        poll::eventually(JOB_TIMEOUT, || status_file.exists()),
        "the container's workload did not finish `{script}` within {JOB_TIMEOUT:?}"
    );
    // The status line is written in one go, but may be seen before its newline.
    let mut status = String::new();
    poll::eventually(Duration::from_secs(1), || {
        status = fs::read_to_string(&status_file).unwrap_or_default();
        status.ends_with('\n')
    });
    let output = fs::read_to_string(on_host(".out")).unwrap_or_default();
    for suffix in ["", ".out", ".status"] {
        let _ = fs::remove_file(on_host(suffix));
    }
    if status.trim() != "0" {
        bail!(
            "in the container's workload: `{script}` failed (exit {})\n{}",
            status.trim(),
            output.trim()
        );
    }
    Ok(output)
}

/// Writes the job's path into the FIFO once the init has it open for reading (it does between
/// jobs): a non-blocking open fails until then, instead of hanging should the init be gone.
fn hand_over(fifo: &Path, job: &str) -> anyhow::Result<()> {
    let mut writer = None;
    let opened = poll::eventually(Duration::from_secs(10), || {
        writer = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .ok();
        writer.is_some()
    });
    ensure!(
        opened,
        "the container's workload does not read {} (is its init running?)",
        fifo.display()
    );
    let mut writer = writer.context("opened above")?;
    writer.write_all(format!("{job}\n").as_bytes())?;
    Ok(())
}
