//! `cargo xtask bench`: what watching the host costs, side by side in one run.
//!
//! Every round runs every system (no agent, escape-detector with its default config, auditd with
//! rules for the same acts, bpftrace on the same hooks) on every workload, in an order that
//! rotates round by round, so that a machine that speeds up or slows down hits them all alike.
//! Each system starts fresh, is fully ready before the workloads and is stopped after them. The
//! report gives per workload the median throughput of each system with its spread, and the median
//! of the per-round ratios to no agent; beside them the detector's own figures: its CPU per 1,000
//! execs, peak RSS with 10,000 tracked processes, time to `/readyz` and alert latency.
//!
//! Once built, the bench needs no workspace: with `--bin-dir` it runs where there is no cargo
//! (a VM guest), so the programs it runs while measuring are plain `Command`s, not `cmd::new`'s,
//! which run from the workspace root.

mod baseline;
mod binaries;
mod cpu;
mod daemon;
mod extras;
mod kernel_cost;
mod process;
mod profile;
mod prometheus;
mod redis;
mod report;
mod rounds;
mod stats;
mod system;
mod wait;
mod workload;

use std::path::PathBuf;

use anyhow::{Result, ensure};

use crate::cmd;
use binaries::Binaries;
use system::SystemKind;

#[derive(clap::Args)]
pub struct Options {
    /// Rounds, each running every system on every workload [default: 5, 1 with --quick]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: Option<u32>,
    /// Small counts: shows that the bench works and that its numbers are sane, not what they
    /// are (`cargo xtask test` runs this)
    #[arg(long)]
    quick: bool,
    /// The systems compared with no agent [default: all]
    #[arg(long, value_delimiter = ',', value_enum)]
    systems: Vec<SystemKind>,
    /// Only the throughput table: leaves out the detector's own figures, which need runc
    #[arg(long)]
    ratios_only: bool,
    /// Instead of the bench, profile the getppid loop (perf record) with no agent and under
    /// escape-detector, and print the top symbols of each
    #[arg(long, conflicts_with_all = ["quick", "ratios_only", "systems"])]
    profile: bool,
    /// Leave the CPUs' idle states as they are; by default idle CPUs poll while the bench runs,
    /// since waking a halted CPU of a VM costs more than the work measured
    #[arg(long)]
    keep_idle_states: bool,
    /// Take escape-detector, bench-load and escape-act from DIR instead of setting up and
    /// building them: for a machine without cargo, such as a VM guest
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Run the bench in the VM lane's guest (Debian's 6.1 kernel under TCG, BPF LSM and fentry)
    /// instead of on this machine: throughput ratios only, quick counts, no bpftrace
    #[arg(long, conflicts_with_all = ["profile", "bin_dir"])]
    vm: bool,
}

/// How much work each measurement does: enough for a second or more per workload in a full run,
/// a fraction of that in a quick one.
#[derive(Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub getppid: u64,
    pub open_close: u64,
    pub exec_storm: u64,
    pub redis_requests: u64,
    /// Sleeping processes in one container while the detector's peak RSS is read.
    pub tracked_processes: u64,
    /// Acts in a container, each by a fresh process, whose alert latency is measured.
    pub alert_acts: u64,
}

impl Counts {
    const FULL: Counts = Counts {
        getppid: 5_000_000,
        open_close: 500_000,
        exec_storm: 3_000,
        redis_requests: 100_000,
        tracked_processes: 10_000,
        alert_acts: 200,
    };

    const QUICK: Counts = Counts {
        getppid: 200_000,
        open_close: 20_000,
        exec_storm: 200,
        redis_requests: 5_000,
        tracked_processes: 500,
        alert_acts: 20,
    };
}

pub fn run(options: &Options) -> Result<()> {
    ensure!(
        cmd::is_root(),
        "the bench loads eBPF programs, changes audit rules and starts runc containers: run it \
         as root"
    );
    if options.vm {
        return in_vm(options);
    }
    let binaries = Binaries::obtain(options.bin_dir.as_deref())?;
    // Other e2e runs on this machine would add their detectors to the baseline, and see our
    // containers: one at a time.
    let _machine = escape_detector_e2e::exclusive();
    binaries.export_for_harness();
    let _idle = if options.keep_idle_states {
        None
    } else {
        Some(cpu::hold_idle_polling()?)
    };
    if options.profile {
        return profile::run(&binaries, Counts::FULL.getppid);
    }
    let (counts, rounds) = if options.quick {
        (Counts::QUICK, options.rounds.unwrap_or(1))
    } else {
        (Counts::FULL, options.rounds.unwrap_or(5))
    };
    let kinds = if options.systems.is_empty() {
        SystemKind::ALL.to_vec()
    } else {
        options.systems.clone()
    };
    let other_watchers = baseline::other_watchers();
    if !other_watchers.is_empty() {
        println!(
            "warning: other watchers run on this machine, in the baseline too: {}",
            other_watchers.join(", ")
        );
    }
    let systems = system::with_baseline(&kinds, &binaries)?;
    let runs = rounds::run(&systems, &counts, &binaries.load, rounds)?;
    let extras = if options.ratios_only {
        None
    } else {
        Some(extras::measure(&counts, rounds, &binaries)?)
    };
    let kernel_cost = if kinds.contains(&SystemKind::EscapeDetector) {
        Some(kernel_cost::measure(&counts, &binaries.load)?)
    } else {
        None
    };
    let setting = report::Setting {
        quick: options.quick,
        rounds,
        idle_polling: !options.keep_idle_states,
        other_watchers,
        counts,
        detector_backend: system::backend(&binaries.detector)?,
    };
    let measured = report::Measured {
        runs,
        extras,
        kernel_cost,
    };
    let report = report::Report::new(setting, measured)?;
    report.print();
    let path = report.write_json()?;
    println!("\nwritten: {}", path.display());
    report.check_sane()
}

/// Files of Debian's packages the guest's bench runs, at the same paths: redis, and auditd
/// with the user and group names its config names. bpftrace stays out: its LLVM libraries
/// would add 200 MB to the initramfs.
const VM_FILES: [&str; 6] = [
    "/usr/bin/redis-server",
    "/usr/bin/redis-benchmark",
    "/usr/sbin/auditd",
    "/usr/sbin/auditctl",
    "/etc/passwd",
    "/etc/group",
];

/// Under TCG every instruction is emulated: the quick counts take minutes there already.
const VM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `--vm`: this xtask binary and the bench's programs, booted in the VM lane's guest, which runs
/// the bench with `--bin-dir`.
fn in_vm(options: &Options) -> Result<()> {
    let binaries = Binaries::obtain(None)?;
    let xtask = std::env::current_exe()?;
    let mut extra: Vec<(&str, &std::path::Path)> = vec![
        ("/bin/xtask", &xtask),
        ("/bin/escape-detector", &binaries.detector),
        ("/bin/bench-load", &binaries.load),
        ("/bin/escape-act", &binaries.act),
    ];
    extra.extend(VM_FILES.iter().map(|p| (*p, std::path::Path::new(p))));
    ensure!(
        !options.systems.contains(&SystemKind::Bpftrace),
        "bpftrace is not in the VM's bench (its libraries would add 200 MB to the initramfs)"
    );
    let systems = if options.systems.is_empty() {
        vec![SystemKind::EscapeDetector, SystemKind::Auditd]
    } else {
        options.systems.clone()
    };
    let systems: Vec<String> = systems
        .iter()
        .map(|kind| clap::ValueEnum::to_possible_value(kind).map(|v| v.get_name().to_owned()))
        .collect::<Option<_>>()
        .unwrap_or_default();
    let mut args: Vec<String> = ["--bin-dir", "/bin", "--ratios-only", "--quick"]
        .map(str::to_owned)
        .to_vec();
    args.extend([
        "--rounds".to_owned(),
        options.rounds.unwrap_or(5).to_string(),
        "--systems".to_owned(),
        systems.join(","),
    ]);
    if options.keep_idle_states {
        args.push("--keep-idle-states".to_owned());
    }
    crate::vmtest::bench(&extra, &args, VM_TIMEOUT)
}

/// The stage `cargo xtask test` runs: every system and workload once, with small counts.
pub fn quick() -> Result<()> {
    use clap::{Args, FromArgMatches};
    let command = Options::augment_args(clap::Command::new("bench"));
    let options = Options::from_arg_matches(&command.get_matches_from(["bench", "--quick"]))?;
    run(&options)
}
