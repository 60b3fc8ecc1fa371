//! The runc command line (the state directory is runc's default, so `runc list` shows the tests'
//! containers next to anyone else's).

use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

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

/// Runs `runc <args>` and captures its output, whatever the exit code.
pub fn output(args: &[&str]) -> anyhow::Result<Output> {
    command()
        .args(args)
        .output()
        .with_context(|| format!("running runc {}", args.join(" ")))
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
