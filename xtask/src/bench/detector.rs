//! The escape-detector mode: the release binary, started fresh for each run, read through its
//! metrics endpoint.

use std::{
    fs::{self, File},
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{Agent, EventCounts, Mode, prometheus};
use crate::{build, cmd, http};

const RECEIVED_METRIC: &str = "escape_detector_events_total";
const LOST_METRIC: &str = "escape_detector_events_lost_total";
/// Loading and attaching the kernel programs takes a few seconds; this only bounds a hang.
const READY_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

pub struct Detector {
    binary: PathBuf,
    log_dir: PathBuf,
}

impl Detector {
    pub fn new(binary: &Path) -> Self {
        Detector {
            binary: binary.to_owned(),
            log_dir: build::target_dir().join("xtask").join("bench"),
        }
    }
}

impl Mode for Detector {
    fn name(&self) -> &str {
        "escape-detector"
    }

    fn start(&self, run: u32) -> Result<Option<Box<dyn Agent>>> {
        let metrics_addr = free_local_addr()?;
        fs::create_dir_all(&self.log_dir)
            .with_context(|| format!("could not create {}", self.log_dir.display()))?;
        let log_path = self.log_dir.join(format!("escape-detector-run{run}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?;
        let mut command = cmd::new(&self.binary);
        command
            .args(["run", "--metrics-addr", &metrics_addr.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        println!(
            "$ {}  (output in {})",
            cmd::display(&command),
            log_path.display()
        );
        let child = command
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        // Owned from here on, so that any failure below still stops it.
        let mut detector = RunningDetector {
            child,
            metrics_addr,
            log_path,
        };
        detector.wait_until_ready()?;
        Ok(Some(Box::new(detector)))
    }
}

/// A port nobody listens on right now; the agent binds it a moment later.
fn free_local_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("could not find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

struct RunningDetector {
    child: Child,
    metrics_addr: SocketAddr,
    log_path: PathBuf,
}

impl RunningDetector {
    fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "escape-detector exited ({status}) before it was ready; see {}",
                    self.log_path.display()
                );
            }
            if http::get(self.metrics_addr, "/readyz").is_ok_and(|response| response.status == 200)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "escape-detector was not ready after {}s; see {}",
                    READY_LIMIT.as_secs(),
                    self.log_path.display()
                );
            }
            thread::sleep(POLL);
        }
    }
}

impl Agent for RunningDetector {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn events(&self) -> Result<EventCounts> {
        let response = http::get(self.metrics_addr, "/metrics")?;
        if response.status != 200 {
            bail!("GET /metrics answered {}", response.status);
        }
        Ok(EventCounts {
            received: prometheus::sum_by_label(&response.body, RECEIVED_METRIC, "kind"),
            lost: prometheus::sum_by_label(&response.body, LOST_METRIC, "kind"),
        })
    }
}

impl Drop for RunningDetector {
    fn drop(&mut self) {
        // SIGTERM first so that the agent detaches and exits as in production; SIGKILL only if
        // it does not. The pid is our own child, not yet reaped, so it cannot have been reused.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(POLL);
        }
        eprintln!(
            "escape-detector did not stop within {}s of SIGTERM; killing it",
            STOP_LIMIT.as_secs()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
