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
mod queues;
mod report;
mod representative;
mod shard;
mod systemd_boot;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use artifacts::{Artifacts, TestBinary};

use crate::{build, rounds, setup, table::seconds, testlog};

pub use queues::queues_side_by_side;

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
    /// Only the representative subset: one workload scenario per sensor, one enforcement, the
    /// loss accounting and the benign suite (xtask/src/vmtest/representative.rs)
    #[arg(long)]
    representative: bool,
    /// Instead of the e2e tests: boot 6.1 with a Debian 12 root and systemd as PID 1, the unit
    /// from deploy/systemd installed and enabled, and check it there (start, an escape alerted,
    /// reload, stop; xtask/src/vmtest/systemd_boot.rs)
    #[arg(long, conflicts_with_all = ["representative", "kernel", "test_args"])]
    pub systemd: bool,
    /// Boot the guest N times in a row, stopping at the first failing boot (flakes on this
    /// kernel); a filter after `--` keeps each boot short. With --systemd, N systemd boots
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
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
    if options.systemd {
        let (guest, timeout) = (
            systemd_boot::prepare()?,
            Duration::from_secs(options.timeout),
        );
        return rounds::in_a_row(options.repeat, "vmtest --systemd", || {
            guest.boot(options.lsm.parameter(), timeout)
        });
    }
    let artifacts = artifacts::build()?;
    let tests = selected(options, &artifacts)?;
    let boot = Boot::tests(options, &artifacts, tests, Share::All, true)?;
    rounds::in_a_row(options.repeat, &format!("vmtest {}", boot.name), || {
        boot.run()?.finish()
    })
}

/// `cargo xtask vmtest --systemd` on a machine that is set up, as `cargo xtask test` runs it.
pub fn systemd_boot() -> Result<()> {
    systemd_boot::prepare()?.boot(Lsm::Bpf.parameter(), Duration::from_secs(900))
}

/// The test binaries `options` selects: the representative subset, or all.
fn selected(options: &Options, artifacts: &Artifacts) -> Result<Vec<TestBinary>> {
    if options.representative {
        representative::select(artifacts.tests.clone(), artifacts::list_tests)
    } else {
        Ok(artifacts.tests.clone())
    }
}

/// `cargo xtask bench` in the guest, with `args`, on the detector and programs `extra` puts at
/// their guest paths (the xtask binary at /bin/xtask among them).
pub fn bench(extra: &[(&str, &Path)], args: &[String], timeout: Duration) -> Result<()> {
    let artifacts = artifacts::build()?;
    let boot = Boot {
        dir: "vmbench".to_owned(),
        name: "bench on 6.1".to_owned(),
        mode: "bench",
        kernel: kernel::Version::V6_1,
        lsm: Lsm::Bpf,
        extra,
        args,
        cgroups: Cgroups::Hybrid,
        timeout,
        image: PathBuf::new(),
        initramfs: PathBuf::new(),
        echo: true,
        expected: 1,
    };
    boot.prepared(&artifacts)?.run()?.finish()
}

/// Which of the tests its options select a boot runs.
#[derive(Clone, Copy)]
enum Share {
    All,
    /// (which, of how many), from 1.
    Shard(usize, usize),
}

/// One boot of the guest, which runs the tests or the bench and powers off.
struct Boot<'a> {
    /// Under target/xtask/: the initramfs cache and the console log.
    dir: String,
    /// What the summary and the errors call it.
    name: String,
    /// `vmtest_mode` for init.sh.
    mode: &'a str,
    kernel: kernel::Version,
    lsm: Lsm,
    extra: &'a [(&'a str, &'a Path)],
    args: &'a [String],
    cgroups: Cgroups,
    timeout: Duration,
    /// The kernel image and the initramfs, from [`Boot::prepared`].
    image: PathBuf,
    initramfs: PathBuf,
    /// The console on stdout too.
    echo: bool,
    /// How many test binaries the guest must run and pass.
    expected: usize,
}

/// A guest that has powered off or been stopped.
struct Booted {
    name: String,
    report: report::Report,
    console: qemu::Console,
    cgroups: Cgroups,
    took: Duration,
    log: PathBuf,
    timeout: Duration,
    expected: usize,
}

impl<'a> Boot<'a> {
    /// The e2e `tests`, the `share` of those `options` selects, with the rest of `artifacts`.
    /// The whole suite, the subset and each shard keep their files in directories of their own,
    /// so that any of them can run at once.
    fn tests(
        options: &'a Options,
        artifacts: &Artifacts,
        tests: Vec<TestBinary>,
        share: Share,
        echo: bool,
    ) -> Result<Self> {
        let mut dir = "vmtest".to_owned();
        let mut name = options.kernel.name().to_owned();
        if options.representative {
            dir.push_str("-representative");
            name.push_str(" representative");
        }
        if matches!(options.cgroups, Cgroups::Unified) {
            dir.push_str("-unified");
            name.push_str(" on cgroup2 alone");
        }
        if let Share::Shard(which, of) = share {
            dir.push_str(&format!("-shard-{which}"));
            name.push_str(&format!(" shard {which} of {of}"));
        }
        let artifacts = Artifacts {
            tests,
            ..artifacts.clone()
        };
        let boot = Boot {
            dir,
            name,
            mode: "tests",
            kernel: options.kernel,
            lsm: options.lsm,
            extra: &[],
            args: &options.test_args,
            cgroups: options.cgroups,
            timeout: Duration::from_secs(options.timeout),
            image: PathBuf::new(),
            initramfs: PathBuf::new(),
            echo,
            expected: artifacts.tests.len(),
        };
        boot.prepared(&artifacts)
    }

    /// With the kernel fetched and the initramfs built.
    fn prepared(mut self, artifacts: &Artifacts) -> Result<Self> {
        let kernel = kernel::ensure_fetched(self.kernel)?;
        let dir = build::target_dir().join("xtask").join(&self.dir);
        self.initramfs = initramfs::build(&dir, &kernel, artifacts, self.extra)?;
        self.image = kernel.image;
        Ok(self)
    }

    fn run(&self) -> Result<Booted> {
        let started = Instant::now();
        let log = build::target_dir()
            .join("xtask")
            .join(&self.dir)
            .join(format!("console-{}.log", self.kernel.name()));
        let guest = qemu::Guest {
            kernel: &self.image,
            initramfs: &self.initramfs,
            lsm: self.lsm.parameter(),
            init_env: &[
                ("vmtest_cgroups", self.cgroups.name()),
                ("vmtest_mode", self.mode),
            ],
            init_args: self.args,
            echo: self.echo,
        };
        let console = qemu::run(&guest, &log, self.timeout, report::BOOTED)?;
        Ok(Booted {
            name: self.name.clone(),
            report: report::parse(&console.text),
            console,
            cgroups: self.cgroups,
            took: started.elapsed(),
            log,
            timeout: self.timeout,
            expected: self.expected,
        })
    }
}

impl Booted {
    /// Prints the summary; ok only if the guest ended in time and ran and passed everything.
    fn finish(self) -> Result<()> {
        print_summary(
            &self.name,
            &self.report,
            self.cgroups,
            &self.console,
            self.took,
            &self.log,
        );
        if self.console.timed_out {
            bail!(
                "the guest did not finish within {} s (raise it with --timeout)",
                self.timeout.as_secs()
            );
        }
        self.report.verdict(self.expected)
    }
}

fn print_summary(
    name: &str,
    report: &report::Report,
    cgroups: Cgroups,
    console: &qemu::Console,
    total: Duration,
    log: &Path,
) {
    println!("\nvmtest summary: {name}");
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
