//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::{
    io::{self, Read, Write as _},
    process::Command,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build::{self, Profile},
    cmd, deploy_check, image, setup,
    table::{self, seconds},
    testlog,
};

#[derive(clap::Args)]
pub struct Options {
    /// Leave out the end-to-end tests and the quick bench (they need root); CI never passes this
    #[arg(long)]
    skip_e2e: bool,
}

struct Stage {
    name: &'static str,
    action: Action,
}

impl Stage {
    fn new(name: &'static str, action: Action) -> Stage {
        Stage { name, action }
    }
}

enum Action {
    Run(fn() -> Result<()>),
    Skip(&'static str),
}

enum Outcome {
    Passed(Duration),
    Failed(Duration),
    Skipped(&'static str),
    NotRun,
}

pub fn run(options: &Options) -> Result<()> {
    let stages = stages(options);
    let mut outcomes = Vec::with_capacity(stages.len());
    let mut failure = None;
    for (index, stage) in stages.iter().enumerate() {
        if failure.is_some() {
            outcomes.push(Outcome::NotRun);
            continue;
        }
        let run = match stage.action {
            Action::Run(run) => run,
            Action::Skip(reason) => {
                println!(
                    "\n==> [{}/{}] {}: skipped ({reason})",
                    index + 1,
                    stages.len(),
                    stage.name
                );
                outcomes.push(Outcome::Skipped(reason));
                continue;
            }
        };
        println!("\n==> [{}/{}] {}", index + 1, stages.len(), stage.name);
        let started = Instant::now();
        let result = run();
        let took = started.elapsed();
        match result {
            Ok(()) => {
                println!("<== {}: ok ({})", stage.name, seconds(took));
                outcomes.push(Outcome::Passed(took));
            }
            Err(error) => {
                println!("<== {}: FAILED ({})\n{error:#}", stage.name, seconds(took));
                outcomes.push(Outcome::Failed(took));
                failure = Some(stage.name);
            }
        }
    }
    print_summary(&stages, &outcomes);
    match failure {
        Some(stage) => bail!("stage `{stage}` failed"),
        None => Ok(()),
    }
}

fn stages(options: &Options) -> Vec<Stage> {
    let (e2e, bench, vm_6_1, vm_5_10) = if options.skip_e2e {
        let skip = || Action::Skip("--skip-e2e");
        (skip(), skip(), skip(), skip())
    } else {
        (
            Action::Run(e2e_tests),
            Action::Run(crate::bench::quick),
            Action::Run(vm_tests_6_1),
            Action::Run(vm_tests_5_10),
        )
    };
    let podman = image::podman_present();
    let container_image = if podman {
        Action::Run(container_image)
    } else {
        Action::Skip("podman is not installed")
    };
    let deploy_e2e = match (options.skip_e2e, podman) {
        (true, _) => Action::Skip("--skip-e2e"),
        (false, false) => Action::Skip("podman is not installed"),
        (false, true) => Action::Run(deploy_e2e_tests),
    };
    vec![
        Stage::new("setup", Action::Run(setup::run)),
        Stage::new("fmt", Action::Run(fmt)),
        Stage::new("clippy (host crates)", Action::Run(clippy_host)),
        Stage::new(
            "clippy (kernel crate, BPF target)",
            Action::Run(clippy_kernel),
        ),
        Stage::new("unit tests", Action::Run(unit_tests)),
        Stage::new("prometheus rules (promtool)", Action::Run(prometheus_rules)),
        Stage::new("release build", Action::Run(release_build)),
        Stage::new(
            "kubernetes manifests (schemas, checkov)",
            Action::Run(deploy_check::kubernetes),
        ),
        Stage::new(
            "systemd unit (systemd-analyze)",
            Action::Run(deploy_check::systemd_unit),
        ),
        Stage::new(
            "grafana dashboard (Grafana's schema)",
            Action::Run(deploy_check::dashboard),
        ),
        Stage::new("container image (podman)", container_image),
        Stage::new("e2e tests (root)", e2e),
        Stage::new(
            "deploy e2e: pod spec, alerting, systemd privileges (root)",
            deploy_e2e,
        ),
        // One round with small counts: the bench keeps working; its figures are not judged.
        Stage::new("bench, quick (root)", bench),
        // One VM at a time: each keeps both CPUs busy under TCG.
        Stage::new("e2e tests in a Debian 12 VM, 6.1 (BPF LSM)", vm_6_1),
        Stage::new("e2e tests in a Debian 11 VM, 5.10 (BPF LSM)", vm_5_10),
    ]
}

fn fmt() -> Result<()> {
    cmd::run(cmd::new("cargo").args(["fmt", "--all", "--", "--check"]))
}

fn clippy_host() -> Result<()> {
    // The kernel crate is no_std/no_main for the BPF target and cannot be checked for the host.
    // Every feature, so that the e2e crate's deployment tests are linted too.
    cmd::run(cmd::new("cargo").args([
        "clippy",
        "--workspace",
        "--exclude",
        "detector-ebpf",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))
}

fn clippy_kernel() -> Result<()> {
    // The cfg aya-build passes when it compiles the kernel crate, so clippy sees the same code.
    let target_arch = format!("--cfg bpf_target_arch=\"{}\"", std::env::consts::ARCH);
    cmd::run(
        cmd::new("cargo")
            .env("RUSTFLAGS", target_arch)
            .args(["+nightly", "clippy", "--package", "detector-ebpf"])
            .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
            .args(["--", "-D", "warnings"]),
    )
}

fn unit_tests() -> Result<()> {
    // --no-fail-fast: one run shows every failing test binary, not just the first.
    cmd::run(cmd::new("cargo").args([
        "test",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "detector-ebpf",
        "--exclude",
        "escape-detector-e2e",
    ]))
}

/// The alerting rules shipped under deploy/ must load and pass their own unit tests.
fn prometheus_rules() -> Result<()> {
    let dir = "deploy/prometheus";
    cmd::run(
        cmd::new("promtool")
            .args(["check", "rules"])
            .arg(format!("{dir}/escape-detector.rules.yml")),
    )?;
    cmd::run(
        cmd::new("promtool")
            .args(["test", "rules"])
            .arg(format!("{dir}/escape-detector.rules.test.yml")),
    )
}

fn release_build() -> Result<()> {
    build::agent(Profile::Release).map(drop)
}

fn require_root() -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "the end-to-end tests need root (they load eBPF programs and start runc containers): \
             run `cargo xtask test` as root, or pass --skip-e2e to leave them out"
        );
    }
    Ok(())
}

fn e2e_tests() -> Result<()> {
    require_root()?;
    let binary = build::agent_path(Profile::Release);
    let act = build::act()?;
    // The backend each kernel gives the detector belongs in the test output.
    cmd::run(cmd::new(&binary).arg("probe"))?;
    let mut cargo = cmd::new("cargo");
    cargo
        .env("ESCAPE_DETECTOR_BIN", &binary)
        .env("ESCAPE_ACT_BIN", &act)
        .args(["test", "--package", "escape-detector-e2e", "--release"])
        .args(["--", "--test-threads=1"]);
    run_e2e(cargo)
}

/// Runs an e2e `cargo test`, its output shown as it comes and read back into the per-binary
/// table (skips and their reasons included) printed at the end; fails if cargo does.
fn run_e2e(mut cargo: Command) -> Result<()> {
    let shown = cmd::display(&cargo);
    println!("$ {shown}");
    // One pipe for both streams, as a terminal would show them: cargo names each binary on
    // stderr, the binaries print their tests on stdout.
    let (mut output, writer) = io::pipe()?;
    cargo.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cargo
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    // The command holds the pipe's writing ends; the reader sees the end only once they close.
    drop(cargo);
    let run = Arc::new(Mutex::new(testlog::CargoTestRun::default()));
    let (done, finished) = mpsc::channel();
    let reader = {
        let run = run.clone();
        thread::spawn(move || {
            let copied = copy_and_read(&mut output, &run);
            let _ = done.send(());
            copied
        })
    };
    let status = child.wait()?;
    // A process a test left behind may hold the pipe open: the table then shows what cargo's
    // own run printed.
    match finished.recv_timeout(Duration::from_secs(5)) {
        Ok(()) => reader
            .join()
            .map_err(|_| anyhow::anyhow!("the output reader panicked"))??,
        Err(_) => println!("(the output is still open, held by a process a test left behind)"),
    }
    println!();
    let run = run
        .lock()
        .map_err(|_| anyhow::anyhow!("the output reader panicked"))?;
    testlog::print_table(&run.binaries);
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Copies `output` to stdout as it comes (a test's "test NAME ... " shows before its outcome)
/// and reads it line by line into `run`.
fn copy_and_read(output: &mut impl Read, run: &Mutex<testlog::CargoTestRun>) -> io::Result<()> {
    let mut line = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let read = output.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        let mut stdout = io::stdout().lock();
        stdout.write_all(&chunk[..read])?;
        stdout.flush()?;
        for &byte in &chunk[..read] {
            if byte == b'\n' {
                if let Ok(mut run) = run.lock() {
                    run.read_line(&String::from_utf8_lossy(&line));
                }
                line.clear();
            } else {
                line.push(byte);
            }
        }
    }
}

fn container_image() -> Result<()> {
    image::build().map(drop)
}

/// The DaemonSet's pod run with podman from the image, Prometheus with Alertmanager, and the
/// systemd unit's privileges: the tests that need tools the VM lane lacks (built with the e2e
/// crate's `deploy` feature).
fn deploy_e2e_tests() -> Result<()> {
    require_root()?;
    let mut cargo = cmd::new("cargo");
    cargo
        .env("ESCAPE_DETECTOR_BIN", build::agent_path(Profile::Release))
        .env("ESCAPE_ACT_BIN", build::act()?)
        .env("ESCAPE_DETECTOR_IMAGE", image::reference())
        .args(["test", "--package", "escape-detector-e2e", "--release"])
        .args(["--features", "deploy", "--test", "deploy_pod"])
        .args(["--test", "deploy_alerting", "--test", "deploy_systemd"])
        .args(["--", "--test-threads=1"]);
    run_e2e(cargo)
}

fn vm_tests_6_1() -> Result<()> {
    vm_tests("6.1")
}

fn vm_tests_5_10() -> Result<()> {
    vm_tests("5.10")
}

/// `cargo xtask vmtest --kernel KERNEL` with its other defaults: the same scenarios on another
/// kernel.
fn vm_tests(kernel: &str) -> Result<()> {
    use clap::{Args, FromArgMatches};
    let command = crate::vmtest::Options::augment_args(clap::Command::new("vmtest"));
    let matches = command.get_matches_from(["vmtest", "--kernel", kernel]);
    crate::vmtest::lane(&crate::vmtest::Options::from_arg_matches(&matches)?)
}

fn print_summary(stages: &[Stage], outcomes: &[Outcome]) {
    let rows: Vec<Vec<String>> = stages
        .iter()
        .zip(outcomes)
        .map(|(stage, outcome)| {
            let (result, took) = match outcome {
                Outcome::Passed(took) => ("ok".to_owned(), seconds(*took)),
                Outcome::Failed(took) => ("FAILED".to_owned(), seconds(*took)),
                Outcome::Skipped(reason) => (format!("skipped ({reason})"), String::new()),
                Outcome::NotRun => ("not run".to_owned(), String::new()),
            };
            vec![stage.name.to_owned(), result, took]
        })
        .collect();
    println!("\nsummary");
    table::print(&["stage", "result", "time"], &rows);
    let total: Duration = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Passed(took) | Outcome::Failed(took) => *took,
            Outcome::Skipped(_) | Outcome::NotRun => Duration::ZERO,
        })
        .sum();
    let failed = outcomes
        .iter()
        .any(|outcome| matches!(outcome, Outcome::Failed(_)));
    let skipped = outcomes
        .iter()
        .any(|outcome| matches!(outcome, Outcome::Skipped(_)));
    let verdict = match (failed, skipped) {
        (true, _) => "FAILED",
        (false, true) => "PASSED (some stages skipped)",
        (false, false) => "PASSED",
    };
    println!("overall: {verdict} in {}", seconds(total));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn an_e2e_run_fails_exactly_when_cargo_does() {
        let printed = "echo '     Running tests/a.rs (t/a-1)' >&2; echo 'test t ... ok'";
        assert!(run_e2e(sh(printed)).is_ok());
        assert!(run_e2e(sh(&format!("{printed}; exit 3"))).is_err());
    }

    #[test]
    fn a_process_left_holding_the_output_does_not_hang_the_run() {
        let started = Instant::now();
        // The background sleep keeps both streams open after the shell exits.
        assert!(run_e2e(sh("sleep 8 & echo 'test t ... ok'")).is_ok());
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
