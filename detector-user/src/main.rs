//! `escape-detector`: wires the command line to the sub-commands.

mod alert;
mod cli;
mod commands;
mod config;
mod enforce;
mod exceptions;
mod folds;
mod health;
mod http;
mod incidents;
mod ingest;
mod kernel;
mod metrics;
mod outputs;
mod pipeline;
mod rules;
mod state;
mod truncation;
mod webhook;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ExitCode::from(match &cli.command {
        cli::Command::Run(args) => commands::run::run(args),
        cli::Command::CheckConfig { config } => commands::check_config::check(config),
        cli::Command::Rules => commands::rules::print(),
        cli::Command::Probe => commands::probe::report(),
    })
}
