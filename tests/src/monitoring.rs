//! A real Prometheus and Alertmanager (Debian's `prometheus` and `prometheus-alertmanager`) on
//! loopback, each with its own configuration and storage in a temp dir, stopped on drop.

use std::{
    fs::{self, File},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::{detector::free_loopback_addr, http, poll, temp_dir::TempDir};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Scrapes and rule evaluations this often, so that a test waits seconds, not minutes.
const INTERVAL: &str = "1s";

/// A server process with its directory; killed on drop.
pub struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Server {
    /// Writes `config` (YAML) into a fresh directory, starts `program` with `args` (which may
    /// name `{dir}` and `{addr}`) and waits until its /-/ready answers 200.
    fn start(
        name: &'static str,
        program: &str,
        config: &Value,
        args: &[&str],
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        let dir = TempDir::new(name)?;
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, serde_yaml_ng::to_string(config)?)?;
        let dir_text = dir.path().to_str().context("temp dir path is not UTF-8")?;
        let child = Command::new(program)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(args.iter().map(|a| a.replace("{dir}", dir_text)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("log"))?)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let mut server = Server {
            name,
            child,
            addr,
            dir,
        };
        let ready = poll::eventually(READY_TIMEOUT, || {
            matches!(http::get(addr, "/-/ready"), Ok((200, _)))
                || server.child.try_wait().ok().flatten().is_some()
        });
        ensure!(
            ready && server.child.try_wait()?.is_none(),
            "{name} did not become ready\n{}",
            server.log()
        );
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// GET `path` and its JSON answer.
    fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = http::get(self.addr, path)?;
        ensure!(
            status == 200,
            "{} answered {status} to {path}: {body}",
            self.name
        );
        serde_json::from_str(&body).with_context(|| format!("{} answered {body}", self.name))
    }

    pub fn log(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        format!("--- {} log ---\n{log}", self.name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own unreaped child: its pid cannot belong to anyone else yet.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Alertmanager(Server);

impl Alertmanager {
    /// One route to a receiver that sends nothing anywhere: the test reads what arrived
    /// through the API. Clustering off, so that nothing listens beyond loopback.
    pub fn start() -> anyhow::Result<Alertmanager> {
        Self::start_at(free_loopback_addr()?)
    }

    /// On `addr`, which something may already have been told to send to.
    pub fn start_at(addr: SocketAddr) -> anyhow::Result<Alertmanager> {
        let config = json!({
            "route": {"receiver": "test", "group_wait": "0s"},
            "receivers": [{"name": "test"}],
        });
        let server = Server::start(
            "alertmanager",
            "prometheus-alertmanager",
            &config,
            &["--storage.path={dir}/data", "--cluster.listen-address="],
            addr,
        )?;
        Ok(Alertmanager(server))
    }

    /// The alerts Alertmanager holds.
    pub fn alerts(&self) -> anyhow::Result<Vec<Value>> {
        let alerts = self.0.get_json("/api/v2/alerts")?;
        alerts
            .as_array()
            .cloned()
            .context("/api/v2/alerts is not a list")
    }

    pub fn log(&self) -> String {
        self.0.log()
    }
}

pub struct Prometheus(Server);

impl Prometheus {
    /// Scrapes `target` as job `escape-detector` with the rules in `rule_file`, and sends
    /// alerts to `alertmanager`.
    pub fn start(
        target: SocketAddr,
        rule_file: &Path,
        alertmanager: &Alertmanager,
    ) -> anyhow::Result<Prometheus> {
        let config = json!({
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [rule_file],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.0.addr().to_string()]}]}
            ]},
            "scrape_configs": [{
                "job_name": "escape-detector",
                "static_configs": [{"targets": [target.to_string()]}],
            }],
        });
        let server = Server::start(
            "prometheus",
            "prometheus",
            &config,
            &["--storage.tsdb.path={dir}/data"],
            free_loopback_addr()?,
        )?;
        Ok(Prometheus(server))
    }

    /// The instant vector `expr` evaluates to now; fails on a query Prometheus rejects.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!(
            "/api/v1/query?query={}",
            utf8_percent_encode(expr, NON_ALPHANUMERIC)
        );
        let answer = self.0.get_json(&path)?;
        if answer["status"] != "success" {
            bail!("Prometheus rejected {expr}: {answer}");
        }
        answer["data"]["result"]
            .as_array()
            .cloned()
            .with_context(|| format!("no result for {expr}: {answer}"))
    }

    /// The alerts Prometheus' rules hold, pending or firing.
    pub fn alerts(&self) -> anyhow::Result<Vec<Value>> {
        let answer = self.0.get_json("/api/v1/alerts")?;
        answer["data"]["alerts"]
            .as_array()
            .cloned()
            .context("no alerts in /api/v1/alerts")
    }

    pub fn log(&self) -> String {
        self.0.log()
    }
}
