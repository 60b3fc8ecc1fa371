//! `cargo xtask deploy-check`: the offline checks of deploy/: the Kubernetes manifests (API
//! schemas, checkov, consistency), the systemd unit (systemd-analyze) and the Grafana dashboard
//! (Grafana's schema). The tests that run them for real are tests/tests/deploy_*.rs.

mod dashboard;
mod kubernetes;
mod systemd;

use anyhow::Result;

use crate::{
    build::{self, Profile},
    setup,
};

pub use dashboard::check as dashboard;
pub use kubernetes::check as kubernetes;
pub use systemd::check as systemd_unit;

/// `cargo xtask deploy-check`: set up, build the agent (its `check-config` and `--version` are
/// part of the checks), then every check.
pub fn run() -> Result<()> {
    setup::run()?;
    build::agent(Profile::Release)?;
    kubernetes()?;
    systemd_unit()?;
    dashboard()
}
