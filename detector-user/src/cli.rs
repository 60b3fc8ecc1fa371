//! Command-line interface, as CONTRACT.md defines it.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "escape-detector",
    version,
    about = "Detects container escapes as they happen, with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the detector in the foreground (alerts on stdout, logs on stderr).
    Run(RunArgs),
    /// Validate a configuration file without touching the kernel.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// List every rule: id, severity, MITRE techniques, description.
    Rules,
    /// Report the kernel hooks and helpers this host offers and the backend that would be used.
    Probe,
}

#[derive(Args)]
pub struct RunArgs {
    /// Configuration file (TOML); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also append alerts, one JSON object per line, to this file.
    #[arg(long, value_name = "FILE")]
    pub alerts_file: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz [default: 127.0.0.1:9560].
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Kill the offending process when a critical rule fires.
    #[arg(long)]
    pub enforce: bool,
}
