//! `cargo xtask vmtest`: the e2e tests on other kernels than the host's. Boots a Debian cloud
//! kernel (bookworm's 6.1 or bullseye's 5.10) under QEMU from an initramfs holding the release detector, the e2e test binaries and their
//! escape-act helper, runc and busybox; the guest's /init (init.sh) runs `escape-detector probe`
//! and every test binary, and the host reads the outcome from the serial console.

mod artifacts;
mod cpio;
mod initramfs;
mod kernel;
mod kmod;
mod ldd;
mod qemu;
mod report;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use crate::{
    build, setup,
    table::{self, seconds},
};

#[derive(clap::Args)]
pub struct Options {
    /// The guest's kernel: Debian 12's 6.1 or Debian 11's 5.10 cloud kernel
    #[arg(long, value_enum, default_value = "6.1")]
    pub kernel: kernel::Version,
    /// bpf boots with `lsm=lockdown,capability,bpf` (BPF LSM programs run); stock with the
    /// kernel's built-in LSM list, which has no BPF LSM on Debian's kernels
    #[arg(long, value_enum, default_value_t = Lsm::Bpf)]
    lsm: Lsm,
    /// Stop the guest after this many seconds; TCG emulates every instruction, so the whole
    /// suite takes minutes
    #[arg(long, default_value_t = 1200)]
    timeout: u64,
    /// The guest's cgroup layout: hybrid is the development VMs' (v1 controllers, cgroup2 at
    /// /sys/fs/cgroup/unified), unified is cgroup2 alone at /sys/fs/cgroup
    #[arg(long, value_enum, default_value_t = Cgroups::Hybrid)]
    cgroups: Cgroups,
    /// Arguments for every test binary in the guest, after `--` (e.g. a test's name to run only
    /// that test)
    #[arg(last = true)]
    test_args: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Cgroups {
    Hybrid,
    Unified,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Lsm {
    Bpf,
    Stock,
}

impl Lsm {
    /// The kernel's `lsm=` parameter. Only the BPF LSM matters to the detector; lockdown and
    /// capability are what Debian's kernels keep first anyway.
    fn parameter(self) -> Option<&'static str> {
        match self {
            Lsm::Bpf => Some("lockdown,capability,bpf"),
            Lsm::Stock => None,
        }
    }
}

impl Cgroups {
    /// As init.sh reads it from `vmtest_cgroups`.
    fn name(self) -> &'static str {
        match self {
            Cgroups::Hybrid => "hybrid",
            Cgroups::Unified => "unified",
        }
    }
}

/// `cargo xtask vmtest`: set up, then the lane.
pub fn run(options: &Options) -> Result<()> {
    setup::run()?;
    lane(options)
}

/// The VM lane on a machine that is set up (`cargo xtask test` has run setup already).
pub fn lane(options: &Options) -> Result<()> {
    let artifacts = artifacts::build()?;
    let boot = Boot {
        dir: "vmtest",
        mode: "tests",
        kernel: options.kernel,
        lsm: options.lsm,
        extra: &[],
        args: &options.test_args,
        cgroups: options.cgroups,
        timeout: Duration::from_secs(options.timeout),
    };
    let report = boot.run(&artifacts)?;
    report.verdict(artifacts.tests.len())
}

/// `cargo xtask bench` in the guest, with `args`, on the detector and programs `extra` puts at
/// their guest paths (the xtask binary at /bin/xtask among them).
pub fn bench(extra: &[(&str, &Path)], args: &[String], timeout: Duration) -> Result<()> {
    let boot = Boot {
        dir: "vmbench",
        mode: "bench",
        kernel: kernel::Version::V6_1,
        lsm: Lsm::Bpf,
        extra,
        args,
        cgroups: Cgroups::Hybrid,
        timeout,
    };
    boot.run(&artifacts::build()?)?.verdict(1)
}

/// One boot of the guest, which runs the tests or the bench and powers off.
struct Boot<'a> {
    /// Under target/xtask/: the initramfs cache and the console log.
    dir: &'a str,
    /// `vmtest_mode` for init.sh.
    mode: &'a str,
    kernel: kernel::Version,
    lsm: Lsm,
    extra: &'a [(&'a str, &'a Path)],
    args: &'a [String],
    cgroups: Cgroups,
    timeout: Duration,
}

impl Boot<'_> {
    fn run(&self, artifacts: &artifacts::Artifacts) -> Result<report::Report> {
        let started = Instant::now();
        let kernel = kernel::ensure_fetched(self.kernel)?;
        let dir = build::target_dir().join("xtask").join(self.dir);
        let initramfs = initramfs::build(&dir, &kernel, artifacts, self.extra)?;
        let log = dir.join(format!("console-{}.log", self.kernel.name()));
        let guest = qemu::Guest {
            kernel: &kernel.image,
            initramfs: &initramfs,
            lsm: self.lsm.parameter(),
            init_env: &[
                ("vmtest_cgroups", self.cgroups.name()),
                ("vmtest_mode", self.mode),
            ],
            init_args: self.args,
        };
        let console = qemu::run(&guest, &log, self.timeout, report::BOOTED)?;
        let report = report::parse(&console.text);
        print_summary(&report, self.cgroups, &console, started.elapsed(), &log);
        if console.timed_out {
            bail!(
                "the guest did not finish within {} s (raise it with --timeout)",
                self.timeout.as_secs()
            );
        }
        Ok(report)
    }
}

fn print_summary(
    report: &report::Report,
    cgroups: Cgroups,
    console: &qemu::Console,
    total: Duration,
    log: &Path,
) {
    println!("\nvmtest summary");
    println!(
        "kernel: {} (LSMs: {}; cgroups: {})",
        report
            .kernel
            .as_deref()
            .unwrap_or("unknown: the guest never said"),
        report.lsm.as_deref().unwrap_or("unknown"),
        cgroups.name()
    );
    let booted = console
        .booted_after
        .map_or("never booted".to_owned(), |took| {
            format!("booted in {}", seconds(took))
        });
    println!(
        "time: {booted}, guest ran {}, vmtest took {} in all",
        seconds(console.ran_for),
        seconds(total)
    );
    let probe = match report.probe_exit {
        Some(0) => "ok".to_owned(),
        Some(code) => format!("FAILED (exit {code})"),
        None => "did not run".to_owned(),
    };
    println!("escape-detector probe: {probe}");
    let mut rows: Vec<Vec<String>> = report
        .binaries
        .iter()
        .map(|binary| {
            let result = match binary.exit {
                Some(0) => "ok".to_owned(),
                Some(code) => format!("FAILED (exit {code})"),
                None => "did not finish".to_owned(),
            };
            let time = binary
                .seconds
                .map_or(String::new(), |seconds| format!("{seconds} s"));
            vec![
                binary.name.clone(),
                result,
                count_tests(&binary.tests),
                time,
            ]
        })
        .collect();
    let every_test: Vec<(String, String)> = report
        .binaries
        .iter()
        .flat_map(|binary| binary.tests.iter().cloned())
        .collect();
    rows.push(vec![
        "all".to_owned(),
        String::new(),
        count_tests(&every_test),
        String::new(),
    ]);
    table::print(&["test binary", "result", "tests", "time"], &rows);
    for binary in &report.binaries {
        for (test, why) in &binary.skips {
            println!("skipped: {}::{test}: {why}", binary.name);
        }
        for (test, _) in binary
            .tests
            .iter()
            .filter(|(_, outcome)| outcome == "FAILED")
        {
            println!("failed: {}::{test}", binary.name);
        }
    }
    println!("console log: {}", log.display());
}

/// "12 ok, 1 FAILED, 3 skipped, 2 ignored", leaving out zero counts but for ok.
fn count_tests(tests: &[(String, String)]) -> String {
    let count = |wanted: &str| {
        tests
            .iter()
            .filter(|(_, outcome)| outcome.split(',').next() == Some(wanted))
            .count()
    };
    let mut counts = vec![format!("{} ok", count("ok"))];
    for outcome in ["FAILED", "skipped", "ignored"] {
        let n = count(outcome);
        if n > 0 {
            counts.push(format!("{n} {outcome}"));
        }
    }
    counts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_leaving_out_zeros() {
        let tests = |outcomes: &[&str]| -> Vec<(String, String)> {
            outcomes
                .iter()
                .map(|outcome| ("t".to_owned(), (*outcome).to_owned()))
                .collect()
        };
        assert_eq!(count_tests(&tests(&[])), "0 ok");
        assert_eq!(
            count_tests(&tests(&[
                "ok",
                "FAILED",
                "skipped",
                "ok",
                "ignored, needs a disk"
            ])),
            "2 ok, 1 FAILED, 1 skipped, 1 ignored"
        );
    }
}
