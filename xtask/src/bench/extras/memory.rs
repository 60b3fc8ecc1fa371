//! Peak RSS: the detector's high-water mark with many processes to track, all sleeping in one
//! container (the processes the detector keeps state for).

use std::time::Duration;

use anyhow::Result;
use escape_detector_e2e::Profile;
use escape_detector_e2e::{CgroupLayout, Container, RunningContainer};

use super::{LOAD_IN_CONTAINER, install_load, limits};
use crate::bench::{
    process::{self, Memory},
    system::{DetectorMetrics, start_detector},
    wait,
};

/// Events of thousands of forks reach the process table within seconds; this bounds a detector
/// that never gets there.
const TRACKED_LIMIT: Duration = Duration::from_secs(120);

#[derive(serde::Serialize)]
pub struct PeakMemory {
    /// Processes started in the container.
    pub sleepers: u64,
    /// What the detector's gauge said when its memory was read.
    pub tracked_processes: u64,
    pub memory: Memory,
}

pub fn measure(load: &std::path::Path, sleepers: u64) -> Result<PeakMemory> {
    let _limits = limits::raise_for(sleepers)?;
    let detector = start_detector()?;
    let container = Container::start(Profile::Default, CgroupLayout::Docker)?;
    install_load(load, container.rootfs_on_host())?;
    container.exec_ok(&format!("{LOAD_IN_CONTAINER} sleepers {sleepers}"))?;
    let mut tracked = 0;
    wait::until(
        &format!("the detector tracking {sleepers} more processes"),
        TRACKED_LIMIT,
        || {
            tracked = DetectorMetrics::scrape(&detector)?.tracked_processes();
            Ok(tracked >= sleepers)
        },
    )?;
    let memory = process::memory(detector.pid())?;
    println!(
        "tracking {tracked} processes: peak RSS {:.1} MiB (now {:.1} MiB)",
        mebibytes(memory.peak_bytes),
        mebibytes(memory.resident_bytes)
    );
    // The container goes first: the detector sees its processes exit.
    drop(container);
    detector.stop()?;
    Ok(PeakMemory {
        sleepers,
        tracked_processes: tracked,
        memory,
    })
}

pub fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
