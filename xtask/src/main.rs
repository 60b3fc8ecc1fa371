//! Developer and CI tasks for escape-detector, run as `cargo xtask <command>`.

mod bench;
mod build;
mod cmd;
mod deploy_check;
mod fuzz;
mod image;
mod rounds;
mod run;
mod setup;
mod table;
mod test;
mod testlog;
mod vmtest;

use std::{ffi::OsString, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Developer and CI tasks for escape-detector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing to build and test (apt packages, nightly components, bpf-linker)
    Setup,
    /// Set up, then build escape-detector (its build script compiles the kernel programs)
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Set up, build in release mode and run `escape-detector run [ARGS]` (needs root)
    Run {
        /// Arguments for `escape-detector run`, after `--`
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Set up, then run every check: fmt, clippy, unit tests, release build, root e2e tests
    Test(test::Options),
    /// Measure what the agent costs the host (needs root)
    Bench(bench::Options),
    /// Run the e2e tests on Debian's 6.1 or 5.10 cloud kernel under QEMU
    Vmtest(vmtest::Options),
    /// Set up, then build the agent's OCI image with podman (static binary, empty base)
    Image,
    /// Set up, then check deploy/: Kubernetes schemas and checkov, systemd-analyze, dashboard
    DeployCheck,
    /// Set up, then fuzz the agent's parsers (cargo-fuzz, nightly) for --seconds each
    Fuzz(fuzz::Options),
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(error) => {
            // Printed by hand: anyhow's Debug output would add a backtrace whenever
            // RUST_BACKTRACE is set, burying the message.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Setup => setup::run()?,
        Command::Build { release } => {
            let profile = if release {
                build::Profile::Release
            } else {
                build::Profile::Debug
            };
            build::run(profile)?;
        }
        Command::Run { args } => return run::run(&args),
        Command::Test(options) => test::run(&options)?,
        Command::Bench(options) => bench::run(&options)?,
        Command::Vmtest(options) => vmtest::run(&options)?,
        Command::Image => image::run()?,
        Command::DeployCheck => deploy_check::run()?,
        Command::Fuzz(options) => fuzz::run(&options)?,
    }
    Ok(ExitCode::SUCCESS)
}
