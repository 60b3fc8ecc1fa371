//! The `escape-detector` binary under test, run as a child process with its own alerts file,
//! log and metrics port.

use std::{
    env, fs,
    fs::File,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{alert, http, identity::Identity, poll, temp_dir::TempDir};

/// Names the binary to test; `cargo xtask test` sets it to the freshly built one.
pub const BIN_ENV: &str = "ESCAPE_DETECTOR_BIN";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 40;

pub struct Detector {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
    alerts_file: PathBuf,
}

impl Detector {
    /// Starts `escape-detector run` and waits until /readyz answers 200.
    pub fn start(extra_args: &[&str]) -> anyhow::Result<Detector> {
        let mut detector = Self::launch(extra_args)?;
        detector.wait_ready()?;
        Ok(detector)
    }

    /// Starts `escape-detector run` and returns at once, ready or not.
    pub fn launch(extra_args: &[&str]) -> anyhow::Result<Detector> {
        let dir = TempDir::new("detector")?;
        let alerts_file = dir.path().join("alerts.jsonl");
        Self::spawn_in(dir, command()?, &alerts_file, extra_args)
    }

    /// Like [`Detector::start`], appending alerts to `alerts_file` (on a filesystem of the
    /// test's choosing) rather than to a file in the detector's own directory.
    pub fn start_with_alerts_file(
        alerts_file: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Detector> {
        let mut detector = Self::spawn_in(
            TempDir::new("detector")?,
            command()?,
            alerts_file,
            extra_args,
        )?;
        detector.wait_ready()?;
        Ok(detector)
    }

    /// Like [`Detector::start`], run as `identity` (a systemd unit's user and capabilities).
    pub fn start_as(identity: &Identity, extra_args: &[&str]) -> anyhow::Result<Detector> {
        let dir = TempDir::new("detector")?;
        // The agent creates its alerts file there as that user.
        std::os::unix::fs::chown(dir.path(), Some(identity.uid), Some(identity.uid))?;
        Self::start_in(dir, identity.command(&binary()?), extra_args)
    }

    /// Like [`Detector::start`], with a configuration file holding `config` (TOML).
    pub fn start_with_config(config: &str, extra_args: &[&str]) -> anyhow::Result<Detector> {
        let dir = TempDir::new("detector")?;
        let path = dir.path().join("escape-detector.toml");
        std::fs::write(&path, config)?;
        let path = path
            .to_str()
            .context("temp dir path is not UTF-8")?
            .to_owned();
        let args: Vec<&str> = ["--config", path.as_str()]
            .into_iter()
            .chain(extra_args.iter().copied())
            .collect();
        Self::start_in(dir, command()?, &args)
    }

    fn start_in(dir: TempDir, command: Command, extra_args: &[&str]) -> anyhow::Result<Detector> {
        let alerts_file = dir.path().join("alerts.jsonl");
        let mut detector = Self::spawn_in(dir, command, &alerts_file, extra_args)?;
        detector.wait_ready()?;
        Ok(detector)
    }

    fn spawn_in(
        dir: TempDir,
        mut command: Command,
        alerts_file: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Detector> {
        let addr = free_loopback_addr()?;
        let child = command
            .arg("run")
            .arg("--metrics-addr")
            .arg(addr.to_string())
            .arg("--alerts-file")
            .arg(alerts_file)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("stdout.jsonl"))?)
            .stderr(File::create(dir.path().join("detector.log"))?)
            .spawn()
            .context("spawning the detector")?;
        Ok(Detector {
            child,
            addr,
            dir,
            alerts_file: alerts_file.to_owned(),
        })
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let addr = self.addr;
        let mut exited = None;
        let ready = poll::eventually(READY_TIMEOUT, || {
            exited = self.child.try_wait().ok().flatten();
            exited.is_some() || matches!(http::get(addr, "/readyz"), Ok((200, _)))
        });
        if let Some(status) = exited {
            bail!(
                "the detector exited ({status}) before it was ready\n{}",
                self.log_tail()
            );
        }
        ensure!(
            ready,
            "the detector was not ready after {READY_TIMEOUT:?}\n{}",
            self.log_tail()
        );
        Ok(())
    }

    /// Waits until the agent's own code runs and holds SIGTERM (blocked, later caught): before
    /// that, the process is still in exec or the dynamic loader, where no program can catch a
    /// signal (systemd and the kubelet count a SIGTERM death there as a clean stop).
    pub fn wait_holding_stop_signals(&mut self) -> anyhow::Result<()> {
        let status = format!("/proc/{}/status", self.pid());
        let sigterm_bit = 1u64 << (libc::SIGTERM - 1);
        let held = poll::eventually(READY_TIMEOUT, || {
            fs::read_to_string(&status).is_ok_and(|text| {
                text.lines()
                    .filter_map(|line| {
                        line.strip_prefix("SigBlk:")
                            .or_else(|| line.strip_prefix("SigCgt:"))
                    })
                    .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                    .any(|mask| mask & sigterm_bit != 0)
            })
        });
        ensure!(
            held,
            "the detector did not block SIGTERM within {READY_TIMEOUT:?}\n{}",
            self.log_tail()
        );
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The size in bytes of the detector's program `name` as the kernel runs it (after the
    /// verifier's rewrites, dead code removed), found among the BPF objects its descriptors
    /// hold.
    pub fn translated_program_size(&self, name: &str) -> anyhow::Result<u32> {
        let mut ids = Vec::new();
        for fd in fs::read_dir(format!("/proc/{}/fdinfo", self.pid()))? {
            let info = fs::read_to_string(fd?.path()).unwrap_or_default();
            ids.extend(
                info.lines()
                    .filter_map(|line| line.strip_prefix("prog_id:"))
                    .filter_map(|id| id.trim().parse::<u32>().ok()),
            );
        }
        let program = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .find(|p| ids.contains(&p.id()) && p.name_as_str() == Some(name))
            .with_context(|| format!("the detector holds no program {name}"))?;
        program
            .size_translated()
            .with_context(|| format!("the kernel gives no translated size for {name}"))
    }

    /// Where /metrics, /healthz and /readyz are served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every complete line of the alerts file. Panics on a line that is not JSON: that breaks
    /// the contract.
    pub fn alerts(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.alerts_file).unwrap_or_default();
        alert::parse_lines(&text)
    }

    /// Every complete line the detector wrote to its stdout, the other alert output.
    pub fn stdout_alerts(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.dir.path().join("stdout.jsonl")).unwrap_or_default();
        alert::parse_lines(&text)
    }

    /// Polls the alerts until one satisfies `pred`, and returns it.
    /// `what` names the expected alert in the error.
    pub fn wait_for_alert(
        &self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            if let Some(alert) = self.alerts().into_iter().find(|a| pred(a)) {
                return Ok(alert);
            }
            if started.elapsed() > timeout || !self.is_running() {
                bail!(
                    "no {what} alert after {:?} (detector {})\nalerts seen:\n{}\n{}",
                    started.elapsed(),
                    if self.is_running() {
                        "running"
                    } else {
                        "exited"
                    },
                    self.render_alerts(),
                    self.log_tail()
                );
            }
            thread::sleep(poll::INTERVAL);
        }
    }

    /// Watches the alerts for `settle` and panics at the first one that satisfies `pred`.
    pub fn assert_no_alert(&self, pred: impl Fn(&Value) -> bool, settle: Duration) {
        let started = Instant::now();
        while started.elapsed() < settle {
            if let Some(alert) = self.alerts().into_iter().find(|a| pred(a)) {
                panic!("unexpected alert: {alert:#}\n{}", self.log_tail());
            }
            thread::sleep(poll::INTERVAL);
        }
    }

    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http::get(self.addr, path)
    }

    /// The backend `sensor` (its name in the probe table) runs on, as /readyz lists it
    /// (`fentry`, `lsm`, `tracepoint`, ...); `None` when it is not attached.
    pub fn sensor_backend(&self, sensor: &str) -> anyhow::Result<Option<String>> {
        let (_, sensors) = self.http_get("/readyz")?;
        Ok(sensors
            .lines()
            .filter_map(|line| line.strip_prefix(sensor)?.strip_prefix(": "))
            .filter_map(|state| state.split_whitespace().next())
            .find(|backend| *backend != "not")
            .map(str::to_owned))
    }

    /// The /metrics page.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = self.http_get("/metrics")?;
        ensure!(status == 200, "GET /metrics answered {status}: {body}");
        Ok(body)
    }

    /// Runs `act` while the detector is stopped (SIGSTOP): the kernel side goes on and queues
    /// its events, but the agent does nothing until `act` has returned.
    pub fn while_stopped<T>(&self, act: impl FnOnce() -> T) -> T {
        self.signal(libc::SIGSTOP);
        let result = act();
        self.signal(libc::SIGCONT);
        result
    }

    /// SIGTERM, then waits for a clean exit (code 0).
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.terminate()
    }

    /// Rewrites the config file [`Detector::start_with_config`] wrote and sends SIGHUP; returns
    /// once `escape_detector_config_reloads_total{result=...}` (ok, failed) has counted it.
    pub fn reload(&self, config: &str, result: &str) -> anyhow::Result<()> {
        let sample = format!("escape_detector_config_reloads_total{{result=\"{result}\"}}");
        let before = self.metric(&sample)?;
        fs::write(self.dir.path().join("escape-detector.toml"), config)?;
        self.signal(libc::SIGHUP);
        anyhow::ensure!(
            poll::eventually(Duration::from_secs(10), || self
                .metric(&sample)
                .is_ok_and(|n| n > before)),
            "SIGHUP was not counted in {sample}:\n{}",
            self.log()
        );
        Ok(())
    }

    /// The file the detector appends its alerts to.
    pub fn alerts_file(&self) -> &Path {
        &self.alerts_file
    }

    /// Sends SIGTERM and returns at once.
    pub fn request_stop(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGTERM, then waits for a clean exit (code 0); what the detector wrote stays readable.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.request_stop();
        let status = self.wait_exit(STOP_TIMEOUT).with_context(|| {
            format!(
                "the detector did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                self.log_tail()
            )
        })?;
        ensure!(
            status.success(),
            "the detector exited with {status} on SIGTERM\n{}",
            self.log_tail()
        );
        Ok(status)
    }

    /// SIGKILL, as a crash or an OOM kill would end it: no clean detach. Returns once it is
    /// gone.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.signal(libc::SIGKILL);
        let status = self
            .wait_exit(STOP_TIMEOUT)
            .context("the detector outlived SIGKILL")?;
        ensure!(
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL),
            "the detector ended with {status}, not by SIGKILL"
        );
        Ok(())
    }

    /// The detector's whole stderr log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("detector.log")).unwrap_or_default()
    }

    /// The value of the sample `name` (with its labels as /metrics writes them, e.g.
    /// `escape_detector_output_errors_total{output="file"}`).
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let metrics = self.metrics()?;
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("no sample {name} in /metrics"))?;
        Ok(value.trim().parse()?)
    }

    /// The `backend` label of `escape_detector_build_info`: which hooks this kernel gave it.
    pub fn backend(&self) -> anyhow::Result<String> {
        let metrics = self.metrics()?;
        metrics
            .lines()
            .filter(|l| l.starts_with("escape_detector_build_info{"))
            .find_map(|l| {
                l.split("backend=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(str::to_owned)
            })
            .ok_or_else(|| anyhow::anyhow!("no build_info backend in /metrics"))
    }

    /// The last lines of the detector's stderr, to explain a failure.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- detector log (last {} lines) ---\n{}",
            tail.len(),
            tail.join("\n")
        )
    }

    /// The alerts file as it is, one alert a line (raw, so that it cannot fail while a test
    /// is already failing).
    fn render_alerts(&self) -> String {
        let text = fs::read_to_string(&self.alerts_file).unwrap_or_default();
        if text.is_empty() {
            return "  (none)".to_owned();
        }
        text.lines().map(|a| format!("  {a}\n")).collect()
    }

    fn is_running(&self) -> bool {
        // The child is not reaped while we hold it, so its pid cannot be reused, and the
        // zombie state ('Z' after the command name) means it has exited.
        fs::read_to_string(format!("/proc/{}/stat", self.pid())).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, state)| !state.starts_with('Z'))
        })
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: the pid is our own unreaped child, so it cannot name another process.
        unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
    }

    /// The exit status, once the child has exited within `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        poll::eventually(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("alerts:\n{}\n{}", self.render_alerts(), self.log_tail());
        }
        // Once reaped, the pid may belong to someone else: never signal it then.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.signal(libc::SIGTERM);
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command for the binary under test, named by [`BIN_ENV`].
pub fn command() -> anyhow::Result<Command> {
    Ok(Command::new(binary()?))
}

fn binary() -> anyhow::Result<PathBuf> {
    let bin = env::var_os(BIN_ENV).with_context(|| {
        format!(
            "{BIN_ENV} is not set; it must name the escape-detector binary to test \
             (`cargo xtask test` sets it)"
        )
    })?;
    let bin = PathBuf::from(bin);
    ensure!(bin.is_file(), "{BIN_ENV}={} does not exist", bin.display());
    Ok(bin)
}

/// A loopback port nobody listens on right now (the kernel picks it; there is a small window
/// before the detector binds it, acceptable for tests).
pub fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
