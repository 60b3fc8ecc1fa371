//! deploy/systemd: `systemd-analyze verify` accepts the unit, and `systemd-analyze security`
//! rates its exposure no worse than [`MAX_EXPOSURE`].

use std::fs;

use anyhow::{Context as _, Result, bail};

use crate::{
    build::{self, Profile},
    cmd,
};

const UNIT: &str = "deploy/systemd/escape-detector.service";
/// Where the unit's install instructions put the binary.
const INSTALLED_BINARY: &str = "/usr/local/bin/escape-detector";
/// `systemd-analyze security`'s exposure times ten (its --threshold scale): 2.1 now. A change
/// that loosens the unit must raise this on purpose.
const MAX_EXPOSURE: u32 = 21;

pub fn check() -> Result<()> {
    verify()?;
    let report = cmd::output(cmd::new("systemd-analyze").args([
        "security",
        "--offline=yes",
        "--no-pager",
        &format!("--threshold={MAX_EXPOSURE}"),
        UNIT,
    ]))
    .with_context(|| {
        format!(
            "the exposure of {UNIT} is above {MAX_EXPOSURE}/10: \
             `systemd-analyze security --offline=yes {UNIT}` shows each item"
        )
    })?;
    let overall = report
        .lines()
        .find(|line| line.contains("Overall exposure level"))
        .context("systemd-analyze security printed no overall exposure")?;
    println!(
        "{UNIT}: {}",
        overall.trim_start_matches(|c: char| !c.is_ascii()).trim()
    );
    Ok(())
}

/// verify checks that the commands exist, so it sees the unit as installed on this machine: the
/// built agent stands where the install instructions put it. Warnings fail too.
fn verify() -> Result<()> {
    let agent = build::agent_path(Profile::Release);
    let text = fs::read_to_string(UNIT)?;
    if !text.contains(INSTALLED_BINARY) {
        bail!("{UNIT} no longer runs {INSTALLED_BINARY}: update this check");
    }
    let dir = build::target_dir().join("xtask").join("systemd");
    fs::create_dir_all(&dir)?;
    let copy = dir.join("escape-detector.service");
    fs::write(
        &copy,
        text.replace(INSTALLED_BINARY, &agent.display().to_string()),
    )?;
    let shown = format!("systemd-analyze verify {}", copy.display());
    println!("$ {shown}");
    let output = cmd::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .with_context(|| format!("running {shown}"))?;
    let complaints = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !complaints.trim().is_empty() {
        bail!("{shown} ({}): {}", output.status, complaints.trim());
    }
    println!("{UNIT}: systemd-analyze verify accepts it");
    Ok(())
}
