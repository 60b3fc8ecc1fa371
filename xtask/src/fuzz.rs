//! `cargo xtask fuzz`: the fuzz targets under fuzz/, with cargo-fuzz (libFuzzer, nightly). Each
//! starts from its committed seeds (`fuzz/seeds/TARGET`) and keeps what it finds under
//! `target/fuzz/corpus/TARGET`, so fuzzing never changes the repository; an input that crashes
//! a target is saved under `target/fuzz/artifacts/TARGET` and fails the task.

use std::{
    fs::{self, File},
    path::PathBuf,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{build, cmd, setup, table};

/// Every fuzz target (`fuzz/fuzz_targets/TARGET.rs`).
const TARGETS: &[&str] = &[
    "event_decode",
    "cgroup_path",
    "config_file",
    "btf",
    "runtime_state",
];
/// The short run of `cargo xtask test`.
const QUICK_SECONDS: u32 = 10;
/// An input that takes longer than this is a hang.
const INPUT_TIMEOUT_SECONDS: u32 = 5;

#[derive(clap::Args)]
pub struct Options {
    /// How long to fuzz each target
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    seconds: u32,
    /// The targets to fuzz [default: all]
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    targets: Vec<String>,
}

pub fn run(options: &Options) -> Result<()> {
    setup::run()?;
    let targets: Vec<&str> = if options.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        options.targets.iter().map(String::as_str).collect()
    };
    fuzz(&targets, options.seconds)
}

/// Every target for [`QUICK_SECONDS`]: a stage of `cargo xtask test`.
pub fn quick() -> Result<()> {
    fuzz(TARGETS, QUICK_SECONDS)
}

fn fuzz(targets: &[&str], seconds: u32) -> Result<()> {
    cmd::run(cargo_fuzz().arg("build").args(target_dir_args()))?;
    let mut rows = Vec::new();
    for target in targets {
        let started = Instant::now();
        let result = fuzz_one(target, seconds);
        let took = table::seconds(started.elapsed());
        match result {
            Ok(figures) => rows.push(vec![target.to_string(), took, figures]),
            Err(error) => {
                rows.push(vec![target.to_string(), took, "FAILED".to_owned()]);
                table::print(&["target", "time", "libFuzzer's last line"], &rows);
                return Err(error);
            }
        }
    }
    table::print(&["target", "time", "libFuzzer's last line"], &rows);
    Ok(())
}

/// Fuzzes `target` for `seconds`; returns libFuzzer's closing figures (runs, coverage, corpus).
fn fuzz_one(target: &str, seconds: u32) -> Result<String> {
    let work = fuzz_work_dir();
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    let logs = work.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let seeds = cmd::workspace_root().join("fuzz/seeds").join(target);
    let log_path = logs.join(format!("{target}.log"));
    let log = File::create(&log_path)?;
    let mut command = cargo_fuzz();
    command
        .arg("run")
        .args(target_dir_args())
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        // libFuzzer joins the prefix and the file name as they are.
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(log.try_clone()?)
        .stderr(log);
    println!(
        "$ {}  (log: {})",
        cmd::display(&command),
        log_path.display()
    );
    let status = command.status().context("could not start cargo fuzz")?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        bail!(
            "fuzz target {target} failed ({status}); the input is in {}\n{}",
            artifacts.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let done = text
        .lines()
        .rfind(|line| line.contains("DONE"))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    Ok(done)
}

fn cargo_fuzz() -> std::process::Command {
    let mut command = cmd::new("cargo");
    // The fuzz targets exercise the agent's parsers, not its kernel programs: a stub object.
    command
        .env("ESCAPE_DETECTOR_EBPF_STUB", "1")
        .args(["+nightly", "fuzz"]);
    command
}

fn target_dir_args() -> [String; 2] {
    [
        "--target-dir".to_owned(),
        fuzz_work_dir().join("build").display().to_string(),
    ]
}

/// Builds, corpora, crash inputs and logs: all under the target directory.
fn fuzz_work_dir() -> PathBuf {
    build::target_dir().join("fuzz")
}
