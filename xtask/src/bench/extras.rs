//! The detector's own figures, beside the throughput table: its CPU per 1,000 execs of
//! container processes (the ones it tracks), its peak RSS with many tracked processes, and its
//! alert latency from the kernel's timestamp. Each series starts a fresh detector.

mod latency;
mod limits;
mod memory;
mod storm;

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path};

use anyhow::{Context as _, Result};

use super::{Counts, binaries::Binaries, system::start_detector};

pub use latency::AlertLatency;
pub use memory::{PeakMemory, mebibytes};
pub use storm::ContainerStorm;

/// Where the containers find bench-load.
const LOAD_IN_CONTAINER: &str = "/bin/bench-load";

#[derive(serde::Serialize)]
pub struct Extras {
    pub container_storms: Vec<ContainerStorm>,
    pub alert_latency: AlertLatency,
    pub peak_memory: PeakMemory,
}

/// `storms` exec storms in a container and the alert latency under one detector, then the peak
/// RSS under a fresh one, so that the storms do not raise its high-water mark.
pub fn measure(counts: &Counts, storms: u32, binaries: &Binaries) -> Result<Extras> {
    println!("\n== escape-detector: exec storms in a container ({storms}), then alert latency");
    let detector = start_detector()?;
    let container_storms =
        storm::in_container(&detector, &binaries.load, counts.exec_storm, storms)?;
    let alert_latency = latency::measure(&detector, counts.alert_acts)?;
    detector.stop()?;
    println!(
        "\n== escape-detector: peak RSS with {} processes in a container",
        counts.tracked_processes
    );
    let peak_memory = memory::measure(&binaries.load, counts.tracked_processes)?;
    Ok(Extras {
        container_storms,
        alert_latency,
        peak_memory,
    })
}

/// Copies bench-load into a container's root filesystem at [`LOAD_IN_CONTAINER`].
fn install_load(load: &Path, rootfs: &Path) -> Result<()> {
    let target = rootfs.join(LOAD_IN_CONTAINER.trim_start_matches('/'));
    fs::copy(load, &target)
        .with_context(|| format!("could not copy bench-load to {}", target.display()))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
    Ok(())
}
