//! Exec storms of container processes: what tracking them costs the agent in CPU time.

use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use escape_detector_e2e::{CgroupLayout, Container, Detector, Profile, RunningContainer};

use super::{LOAD_IN_CONTAINER, install_load};
use crate::bench::{
    process,
    system::DetectorMetrics,
    workload::{EXEC_STORM, load_throughput},
};

/// The agent drains its ring buffer after the storm: its counts are read once they have stayed
/// still this long.
const SETTLE_QUIET: Duration = Duration::from_secs(1);
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
const SETTLE_POLL: Duration = Duration::from_millis(200);

#[derive(serde::Serialize)]
pub struct ContainerStorm {
    pub execs: u64,
    pub seconds: f64,
    /// The agent's CPU time from the storm's start until its event counts settled.
    pub agent_cpu_seconds: f64,
    pub events_received: u64,
    pub events_lost: u64,
}

impl ContainerStorm {
    pub fn agent_cpu_per_thousand_execs(&self) -> Duration {
        Duration::from_secs_f64(self.agent_cpu_seconds * 1000.0 / self.execs as f64)
    }
}

pub fn in_container(
    detector: &Detector,
    load: &Path,
    execs: u64,
    storms: u32,
) -> Result<Vec<ContainerStorm>> {
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    install_load(load, container.rootfs_on_host())?;
    (0..storms)
        .map(|_| storm(detector, &container, execs))
        .collect()
}

fn storm(detector: &Detector, container: &Container, execs: u64) -> Result<ContainerStorm> {
    let before = DetectorMetrics::scrape(detector)?;
    let cpu_before = process::cpu_time(detector.pid())?;
    let printed = container.exec_ok(&format!("{LOAD_IN_CONTAINER} exec-storm {execs}"))?;
    let after = settled(detector)?;
    let cpu = process::cpu_time(detector.pid())?.saturating_sub(cpu_before);
    let throughput = load_throughput(EXEC_STORM, &printed)?;
    let storm = ContainerStorm {
        execs,
        seconds: throughput.seconds,
        agent_cpu_seconds: cpu.as_secs_f64(),
        events_received: after.events_received() - before.events_received(),
        events_lost: after.events_lost() - before.events_lost(),
    };
    println!(
        "{execs} execs in {:.3} s; agent CPU {:.1} ms per 1,000 execs; events received {}, lost {}",
        storm.seconds,
        storm.agent_cpu_per_thousand_execs().as_secs_f64() * 1e3,
        storm.events_received,
        storm.events_lost
    );
    Ok(storm)
}

/// The metrics once the received and lost counts have not moved for [`SETTLE_QUIET`]. Polled
/// slowly: every scrape costs the agent CPU time, which is being measured.
fn settled(detector: &Detector) -> Result<DetectorMetrics> {
    let counts = |metrics: &DetectorMetrics| (metrics.events_received(), metrics.events_lost());
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = DetectorMetrics::scrape(detector)?;
    let mut still_since = Instant::now();
    while still_since.elapsed() < SETTLE_QUIET {
        ensure!(
            Instant::now() < deadline,
            "the detector's event counts still moved {SETTLE_LIMIT:?} after the storm"
        );
        thread::sleep(SETTLE_POLL);
        let now = DetectorMetrics::scrape(detector)?;
        if counts(&now) != counts(&last) {
            still_since = Instant::now();
        }
        last = now;
    }
    Ok(last)
}
