//! The runc command line (the state directory is runc's default, so `runc list` shows the tests'
//! containers next to anyone else's).

use std::{
    fs::{self, File},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::temp_dir::TempDir;

/// How long one runc command may take. A `runc exec` whose process left a child stopped for
/// good (a ptrace race in a technique once did) waited for it, and the whole suite with it.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running command is checked on: runc commands take tens of milliseconds, and a
/// test makes dozens.
const CHECK_EVERY: Duration = Duration::from_millis(2);

/// The runc binary `command` runs, links resolved.
pub fn binary() -> anyhow::Result<std::path::PathBuf> {
    crate::host_process::program_on_path("runc")?
        .canonicalize()
        .context("resolving runc's path")
}

pub fn command() -> Command {
    let mut cmd = Command::new("runc");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `runc <args>` and captures its output, whatever the exit code; fails when it takes
/// longer than [`TIMEOUT`], after killing it. The output goes to files, not pipes, so that a
/// process left behind holding them cannot keep the reading open.
pub fn output(args: &[&str]) -> anyhow::Result<Output> {
    let what = || format!("runc {}", args.join(" "));
    let dir = TempDir::new("runc")?;
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command()
        .args(args)
        .stdout(File::create(&stdout)?)
        .stderr(File::create(&stderr)?)
        .spawn()
        .with_context(|| format!("running {}", what()))?;
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not end within {TIMEOUT:?}, killed\nstdout: {}\nstderr: {}",
                what(),
                fs::read_to_string(&stdout).unwrap_or_default().trim(),
                fs::read_to_string(&stderr).unwrap_or_default().trim()
            );
        }
        thread::sleep(CHECK_EVERY);
    };
    Ok(Output {
        status,
        stdout: fs::read(&stdout)?,
        stderr: fs::read(&stderr)?,
    })
}

/// Runs `runc <args>`, returns stdout, and fails with runc's stderr on a non-zero exit.
pub fn stdout_of(args: &[&str]) -> anyhow::Result<String> {
    let out = output(args)?;
    if !out.status.success() {
        bail!(
            "runc {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The host pid of a container's init process.
pub fn init_pid(id: &str) -> anyhow::Result<u32> {
    let state: serde_json::Value = serde_json::from_str(&stdout_of(&["state", id])?)?;
    let pid = state["pid"].as_u64().context("runc state has no pid")?;
    Ok(u32::try_from(pid)?)
}

/// Ids of every container runc knows of.
pub fn list_ids() -> anyhow::Result<Vec<String>> {
    Ok(stdout_of(&["list", "--quiet"])?
        .lines()
        .map(str::to_owned)
        .collect())
}
