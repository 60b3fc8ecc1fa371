//! The escape-detector agent. The binary (`main.rs`) only calls [`run`]; the code is a library
//! so that the fuzz targets (`fuzz/`) reach its parsers, through [`fuzz`].

mod alert;
mod cli;
mod commands;
mod config;
mod enforce;
mod enforcement;
mod exceptions;
mod folds;
pub mod fuzz;
mod health;
mod http;
mod incidents;
mod ingest;
mod kernel;
mod metrics;
mod outputs;
mod pipeline;
mod redaction;
mod rules;
mod state;
mod truncation;
mod webhook;

use std::process::ExitCode;

use clap::Parser;

/// `escape-detector` with the process's command line.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    ExitCode::from(match &cli.command {
        cli::Command::Run(args) => commands::run::run(args),
        cli::Command::CheckConfig { config } => commands::check_config::check(config),
        cli::Command::Rules => commands::rules::print(),
        cli::Command::Probe => commands::probe::report(),
    })
}
