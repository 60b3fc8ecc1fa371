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
    cmd, deploy_check, image, rounds, setup,
    table::{self, seconds},
    testlog,
};

#[derive(clap::Args)]
pub struct Options {
    /// Leave out the end-to-end tests and the quick bench (they need root); CI never passes this
    #[arg(long)]
    skip_e2e: bool,
    /// Only what the host end-to-end tests need: setup, the release build and the e2e stage
    #[arg(long, conflicts_with = "skip_e2e")]
    e2e_only: bool,
    /// Run the host e2e stage N times in a row, stopping at the first failing round (flakes)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// With --e2e-only: only this e2e test file (tests/tests/FILE.rs); may be repeated
    #[arg(long = "e2e-test", value_name = "FILE", requires = "e2e_only")]
    e2e_tests: Vec<String>,
    /// With --e2e-only: test name filters for the e2e tests, after `--`
    #[arg(last = true, requires = "e2e_only")]
    e2e_filters: Vec<String>,
}

/// Which e2e tests to run and how often.
struct E2e {
    repeat: u32,
    files: Vec<String>,
    filters: Vec<String>,
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
    Run(Box<dyn Fn() -> Result<()>>),
    Skip(&'static str),
    /// Run unless the check names something missing. It is checked when the stage's turn
    /// comes, not before: setup installs what later stages need on a fresh machine.
    Needs(fn() -> Option<&'static str>, Box<dyn Fn() -> Result<()>>),
}

fn task(action: fn() -> Result<()>) -> Action {
    Action::Run(Box::new(action))
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
        let skipped = match &stage.action {
            Action::Run(run) => Ok(run),
            Action::Skip(reason) => Err(*reason),
            Action::Needs(missing, run) => missing().map_or(Ok(run), Err),
        };
        let run = match skipped {
            Ok(run) => run,
            Err(reason) => {
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
    let e2e = E2e {
        repeat: options.repeat,
        files: options.e2e_tests.clone(),
        filters: options.e2e_filters.clone(),
    };
    let (e2e, bench, systemd_boot, vms) = if options.skip_e2e {
        let skip = || Action::Skip("--skip-e2e");
        (skip(), skip(), skip(), skip())
    } else {
        (
            Action::Run(Box::new(move || e2e_rounds(&e2e))),
            task(crate::bench::quick),
            task(crate::vmtest::systemd_boot),
            task(vm_tests),
        )
    };
    let container_image = Action::Needs(podman_missing, Box::new(container_image));
    let deploy_e2e = if options.skip_e2e {
        Action::Skip("--skip-e2e")
    } else {
        Action::Needs(podman_missing, Box::new(deploy_e2e_tests))
    };
    let stages = vec![
        Stage::new("setup", task(setup::run)),
        Stage::new("fmt", task(fmt)),
        Stage::new("clippy (host crates)", task(clippy_host)),
        Stage::new("clippy (kernel crate, BPF target)", task(clippy_kernel)),
        Stage::new("unit tests", task(unit_tests)),
        Stage::new(
            "fuzz, 10 s per target (cargo-fuzz)",
            task(crate::fuzz::quick),
        ),
        Stage::new("prometheus rules (promtool)", task(prometheus_rules)),
        Stage::new(RELEASE_BUILD, task(release_build)),
        Stage::new(
            "kubernetes manifests (schemas, checkov)",
            task(deploy_check::kubernetes),
        ),
        Stage::new(
            "systemd unit (systemd-analyze)",
            task(deploy_check::systemd_unit),
        ),
        Stage::new(
            "grafana dashboard (Grafana's schema)",
            task(deploy_check::dashboard),
        ),
        Stage::new("container image (podman)", container_image),
        Stage::new(E2E, e2e),
        Stage::new(
            "deploy e2e: pod spec, alerting, systemd privileges (root)",
            deploy_e2e,
        ),
        Stage::new(
            "deploy e2e: the systemd unit under systemd (Debian 12 VM, root)",
            systemd_boot,
        ),
        // One round with small counts: the bench keeps working; its figures are not judged.
        Stage::new("bench, quick (root)", bench),
        Stage::new(VM_TESTS, vms),
    ];
    if !options.e2e_only {
        return stages;
    }
    stages
        .into_iter()
        .map(|stage| match stage.name {
            "setup" | RELEASE_BUILD | E2E => stage,
            _ => Stage::new(stage.name, Action::Skip("--e2e-only")),
        })
        .collect()
}

fn podman_missing() -> Option<&'static str> {
    (!image::podman_present()).then_some("podman is not installed")
}

const RELEASE_BUILD: &str = "release build";
const VM_TESTS: &str = "e2e tests in Debian VMs (BPF LSM): 12's 6.1 all, 11's 5.10 and 6.1 on cgroup2 \
                        representative";
const E2E: &str = "e2e tests (root)";

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

/// The host e2e tests `e2e.repeat` times in a row, stopping at the first failing round.
fn e2e_rounds(e2e: &E2e) -> Result<()> {
    require_root()?;
    let binary = build::agent_path(Profile::Release);
    let act = build::act()?;
    // The backend each kernel gives the detector belongs in the test output.
    cmd::run(cmd::new(&binary).arg("probe"))?;
    rounds::in_a_row(e2e.repeat, "e2e", || e2e_tests(e2e, &binary, &act))
}

fn e2e_tests(e2e: &E2e, binary: &std::path::Path, act: &std::path::Path) -> Result<()> {
    let mut command = cmd::new("cargo");
    command
        .env("ESCAPE_DETECTOR_BIN", binary)
        .env("ESCAPE_ACT_BIN", act)
        .args(["test", "--package", "escape-detector-e2e", "--release"]);
    for file in &e2e.files {
        command.args(["--test", file]);
    }
    command.args(["--", "--test-threads=1"]).args(&e2e.filters);
    run_e2e(command)
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

/// The whole suite on 6.1 (`cargo xtask vmtest`), the representative subset on 5.10
/// (`cargo xtask vmtest --kernel 5.10 --representative`) and on 6.1 with cgroup2 alone, as
/// systemd mounts it on current distributions (`--cgroups unified`; the rest run on these VMs'
/// hybrid layout), on two queues, one per host CPU: TCG runs each guest on one thread, and the
/// 6.1 suite takes five times a subset's guest time, so it is split in two by test binary and
/// each queue ends with a shard, the planner balancing them.
fn vm_tests() -> Result<()> {
    use clap::{Args, FromArgMatches};
    let lane = |args: &[&str]| -> Result<crate::vmtest::Options> {
        let command = crate::vmtest::Options::augment_args(clap::Command::new("vmtest"));
        let matches = command.get_matches_from(["vmtest"].iter().chain(args));
        Ok(crate::vmtest::Options::from_arg_matches(&matches)?)
    };
    let subset = lane(&["--kernel", "5.10", "--representative", "--timeout", "1800"])?;
    let unified = lane(&[
        "--kernel",
        "6.1",
        "--representative",
        "--cgroups",
        "unified",
        "--timeout",
        "1800",
    ])?;
    // Each shard keeps the whole suite's timeout, not half of it: a guest's time follows the
    // machine's load (the whole suite has taken 15 to 25 minutes).
    let split = lane(&["--kernel", "6.1", "--timeout", "2400"])?;
    crate::vmtest::queues_side_by_side(&[vec![unified], vec![subset]], &split)
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
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Cli::try_parse_from(["test"].iter().chain(args)).map(|cli| cli.options)
    }

    fn runs(stages: &[Stage]) -> Vec<&str> {
        stages
            .iter()
            .filter(|stage| matches!(stage.action, Action::Run(_)))
            .map(|stage| stage.name)
            .collect()
    }

    #[test]
    fn e2e_only_runs_setup_the_build_and_the_e2e_stage() {
        let options = parse(&["--e2e-only", "--repeat", "20", "--e2e-test", "lifecycle"]).unwrap();
        assert_eq!(options.repeat, 20);
        assert_eq!(runs(&stages(&options)), ["setup", RELEASE_BUILD, E2E]);
        let options = parse(&["--e2e-only", "--", "sigterm"]).unwrap();
        assert_eq!(options.e2e_filters, ["sigterm"]);
    }

    #[test]
    fn what_setup_installs_is_looked_for_when_the_stage_comes() {
        // Looked for before setup, podman was missing on every fresh machine.
        let stages = stages(&parse(&[]).unwrap());
        let podman_stages: Vec<_> = stages
            .iter()
            .filter(|stage| stage.name.contains("podman") || stage.name.contains("pod spec"))
            .collect();
        assert_eq!(podman_stages.len(), 2);
        assert!(
            podman_stages
                .iter()
                .all(|stage| matches!(stage.action, Action::Needs(..)))
        );
    }

    #[test]
    fn rejects_zero_rounds_and_e2e_choices_without_e2e_only() {
        assert!(parse(&["--repeat", "0"]).is_err());
        assert!(parse(&["--e2e-test", "lifecycle"]).is_err());
        assert!(parse(&["--e2e-only", "--skip-e2e"]).is_err());
        assert_eq!(parse(&[]).unwrap().repeat, 1);
    }

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
