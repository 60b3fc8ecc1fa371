//! `cargo xtask bench`: what the agent costs the host it watches, measured side by side with a
//! baseline in one run. A benchmark runs its workload under each [`Mode`]; a new tool to compare
//! against is one more `Mode` in [`modes`].

mod cpu;
mod detector;
mod exec_storm;
mod prometheus;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use anyhow::Result;

#[derive(clap::Args)]
pub struct Options {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(clap::Subcommand)]
enum Bench {
    /// A storm of short processes (fork+exec of /bin/true) with no agent and with escape-detector
    ExecStorm(exec_storm::Options),
}

pub fn run(options: &Options) -> Result<()> {
    match &options.bench {
        Bench::ExecStorm(options) => exec_storm::run(options),
    }
}

/// The modes every benchmark compares, baseline first (ratios are against it).
fn modes(detector_binary: &Path) -> Vec<Box<dyn Mode>> {
    vec![
        Box::new(NoAgent),
        Box::new(detector::Detector::new(detector_binary)),
    ]
}

/// One way of running a workload: with nothing watching the host, or with an agent whose cost
/// is measured.
trait Mode {
    fn name(&self) -> &str;
    /// Starts what watches the workload and waits until it is ready; `None` for the baseline.
    /// `run` numbers the runs so that each can keep its own log.
    fn start(&self, run: u32) -> Result<Option<Box<dyn Agent>>>;
}

/// A running agent; dropping it stops it.
trait Agent {
    fn pid(&self) -> u32;
    /// Events received and lost so far, by kind; empty for tools that do not count them.
    fn events(&self) -> Result<EventCounts>;
}

struct NoAgent;

impl Mode for NoAgent {
    fn name(&self) -> &str {
        "no agent"
    }

    fn start(&self, _run: u32) -> Result<Option<Box<dyn Agent>>> {
        Ok(None)
    }
}

#[derive(Clone, Default, PartialEq)]
struct EventCounts {
    received: BTreeMap<String, u64>,
    lost: BTreeMap<String, u64>,
}

impl EventCounts {
    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &EventCounts) -> EventCounts {
        let diff = |now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(kind, count)| {
                    let before = before.get(kind).copied().unwrap_or(0);
                    (kind.clone(), count.saturating_sub(before))
                })
                .collect()
        };
        EventCounts {
            received: diff(&self.received, &earlier.received),
            lost: diff(&self.lost, &earlier.lost),
        }
    }

    fn add(&mut self, other: &EventCounts) {
        for (kind, count) in &other.received {
            *self.received.entry(kind.clone()).or_default() += count;
        }
        for (kind, count) in &other.lost {
            *self.lost.entry(kind.clone()).or_default() += count;
        }
    }

    /// Every kind with a received or a lost count, in order.
    fn kinds(&self) -> BTreeSet<&str> {
        self.received
            .keys()
            .chain(self.lost.keys())
            .map(String::as_str)
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.received.is_empty() && self.lost.is_empty()
    }

    fn received(&self, kind: &str) -> u64 {
        self.received.get(kind).copied().unwrap_or(0)
    }

    fn lost(&self, kind: &str) -> u64 {
        self.lost.get(kind).copied().unwrap_or(0)
    }
}
