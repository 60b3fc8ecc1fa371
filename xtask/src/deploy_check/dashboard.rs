//! deploy/grafana: the dashboard against Grafana's schema. No Grafana server is packaged for
//! Debian or PyPI; the Grafana Foundation SDK (PyPI) holds the schema as typed models generated
//! from Grafana's own definitions, and dashboard_schema.py decodes the dashboard into them. The
//! alerting e2e test runs every panel's query on a real Prometheus.

use std::fs;

use anyhow::Result;

use crate::{build, cmd, setup};

const DASHBOARD: &str = "deploy/grafana/escape-detector.json";
const SCHEMA_CHECK: &str = include_str!("dashboard_schema.py");

pub fn check() -> Result<()> {
    let script = build::target_dir()
        .join("xtask")
        .join("dashboard_schema.py");
    fs::write(&script, SCHEMA_CHECK)?;
    cmd::run(
        cmd::new(setup::python_tool("python"))
            .arg(&script)
            .arg(DASHBOARD),
    )?;
    println!("{DASHBOARD}: every field, type and plugin is in Grafana's schema");
    Ok(())
}
