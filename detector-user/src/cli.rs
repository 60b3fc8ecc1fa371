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
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::config::parse_metrics_addr)]
    pub metrics_addr: Option<SocketAddr>,
    /// Kill the offending process when a critical rule fires.
    #[arg(long)]
    pub enforce: bool,
    /// The node name written in alerts, over the config's `hostname` and the kernel's. Inside a
    /// pod the kernel's hostname is the pod's, so a DaemonSet passes the node's name in
    /// NODE_NAME (downward API).
    #[arg(long, value_name = "NAME", env = "NODE_NAME", value_parser = non_blank)]
    pub hostname: Option<String>,
}

/// An empty NODE_NAME (a manifest that forgot its fieldRef) must not blank every alert's host.
fn non_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("expected a non-empty name".to_owned());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = ["escape-detector", "run"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(run) => Ok(run),
            _ => unreachable!("parsed `run`"),
        }
    }

    #[test]
    fn hostname_comes_from_the_flag_or_node_name() {
        assert_eq!(
            run_args(&["--hostname", "node-7"])
                .unwrap()
                .hostname
                .as_deref(),
            Some("node-7")
        );
        assert!(run_args(&["--hostname", " "]).is_err());
        // The flag's fallback is NODE_NAME; the tests do not set process-wide variables, so
        // the declaration is what is checked here (the pod-spec e2e test sets it for real).
        let command = Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let hostname = run
            .get_arguments()
            .find(|arg| arg.get_id() == "hostname")
            .unwrap();
        assert_eq!(hostname.get_env(), Some(std::ffi::OsStr::new("NODE_NAME")));
    }
}
