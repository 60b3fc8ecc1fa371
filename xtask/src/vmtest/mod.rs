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

use crate::{build, setup, table::seconds, testlog};

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
    testlog::print_table(&report.binaries);
    println!("console log: {}", log.display());
}
