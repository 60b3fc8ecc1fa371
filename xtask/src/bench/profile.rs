//! `cargo xtask bench --profile`: where the getppid loop spends its time with no agent and under
//! escape-detector, from `perf record` of kernel and user space, so that what a syscall hook
//! costs shows by symbol name. The recordings stay under target/xtask/bench/profile/ for
//! `perf report -i`.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result};

use super::{binaries::Binaries, system::start_detector, workload::load_throughput};
use crate::{build, cmd};

/// Symbols printed per profile.
const TOP: usize = 25;
/// Samples per second: enough for a few thousand samples over the loop.
const FREQUENCY: &str = "4999";

pub fn run(binaries: &Binaries, calls: u64) -> Result<()> {
    let dir = build::target_dir().join("xtask/bench/profile");
    fs::create_dir_all(&dir)?;
    let event = sampling_event()?;
    record("no agent", "no-agent", &binaries.load, calls, event, &dir)?;
    let detector = start_detector()?;
    record(
        "escape-detector",
        "escape-detector",
        &binaries.load,
        calls,
        event,
        &dir,
    )?;
    detector.stop()?;
    Ok(())
}

/// Records the loop, then prints its rate and the symbols with the most samples.
fn record(
    label: &str,
    file_stem: &str,
    load: &Path,
    calls: u64,
    event: &str,
    dir: &Path,
) -> Result<()> {
    let data = dir.join(format!("{file_stem}.data"));
    let printed = cmd::output(
        Command::new("perf")
            .args([
                "record", "--quiet", "-e", event, "-F", FREQUENCY, "-g", "-o",
            ])
            .arg(&data)
            .arg("--")
            .arg(load)
            .args(["getppid", &calls.to_string()]),
    )?;
    let loop_rate = load_throughput("getppid", &printed)?.per_second();
    let report = cmd::output(
        Command::new("perf")
            .args(["report", "--stdio", "--no-children", "-g", "none"])
            .args(["--sort", "dso,symbol", "-i"])
            .arg(&data),
    )?;
    println!(
        "\n== {label}: getppid loop at {:.0} calls/s ({:.0} ns a call); top symbols by {event} \
         samples ({})",
        loop_rate,
        1e9 / loop_rate,
        data.display()
    );
    let symbols = report
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .take(TOP);
    for line in symbols {
        println!("{line}");
    }
    Ok(())
}

/// `cycles` where the CPU's counters are there, else the `cpu-clock` timer: VMs often lack the
/// counters, and perf then says `<not supported>`.
fn sampling_event() -> Result<&'static str> {
    let probe = Command::new("perf")
        .args(["stat", "-e", "cycles", "-x", ",", "--", "true"])
        .output()
        .context("could not run perf (package linux-perf)")?;
    let printed = String::from_utf8_lossy(&probe.stderr);
    Ok(
        if probe.status.success() && !printed.contains("<not supported>") {
            "cycles"
        } else {
            "cpu-clock"
        },
    )
}
