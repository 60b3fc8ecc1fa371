//! The systems the bench compares: what watches the host while the workloads run.

mod auditd;
mod bpftrace;
mod detector;

use anyhow::Result;

use super::binaries::Binaries;

pub use detector::{DetectorMetrics, backend, start_detector};

/// The systems compared with the baseline, no agent, which always runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SystemKind {
    /// escape-detector with its default config
    EscapeDetector,
    /// auditd with syscall rules and file watches for the acts the detector watches
    Auditd,
    /// bpftrace counting hits on the hooks the detector attaches on this kernel
    Bpftrace,
}

impl SystemKind {
    pub const ALL: [SystemKind; 3] = [
        SystemKind::EscapeDetector,
        SystemKind::Auditd,
        SystemKind::Bpftrace,
    ];
}

/// A way of watching the host.
pub trait System {
    fn name(&self) -> &'static str;
    /// Whether it watches every process, so that the host's exec storm must give it events.
    fn sees_host_processes(&self) -> bool;
    /// Starts it, fresh, and returns once it watches.
    fn start(&self) -> Result<Box<dyn Watcher>>;
}

/// A started system; dropping it stops it and undoes what it changed.
pub trait Watcher {
    /// The user-space process that does the watching, whose CPU time it costs.
    fn pid(&self) -> Option<u32>;
    /// Stops it and returns how many events it saw, by its own count, if it keeps one.
    fn stop(self: Box<Self>) -> Result<Option<u64>>;
}

/// The name of the baseline, which ratios are taken against.
pub const BASELINE: &str = "no agent";

/// The baseline first, then the systems of `kinds`.
pub fn with_baseline(kinds: &[SystemKind], binaries: &Binaries) -> Result<Vec<Box<dyn System>>> {
    let mut systems: Vec<Box<dyn System>> = vec![Box::new(NoAgent)];
    for kind in kinds {
        systems.push(match kind {
            SystemKind::EscapeDetector => Box::new(detector::EscapeDetector),
            SystemKind::Auditd => Box::new(auditd::Auditd::new()?),
            SystemKind::Bpftrace => Box::new(bpftrace::Bpftrace::new(&binaries.detector)?),
        });
    }
    Ok(systems)
}

struct NoAgent;

impl System for NoAgent {
    fn name(&self) -> &'static str {
        BASELINE
    }

    fn sees_host_processes(&self) -> bool {
        false
    }

    fn start(&self) -> Result<Box<dyn Watcher>> {
        Ok(Box::new(Nothing))
    }
}

struct Nothing;

impl Watcher for Nothing {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn stop(self: Box<Self>) -> Result<Option<u64>> {
        Ok(None)
    }
}
