//! The interleaved schedule: every round runs every system on every workload, starting each
//! system fresh and stopping it after; the order of the systems rotates round by round, so that
//! no system always runs first.

use std::{path::Path, time::Instant};

use anyhow::Result;

use super::{
    Counts, cpu, process,
    system::System,
    workload::{self, Throughput, Workload},
};

/// One system through every workload, in one round.
#[derive(serde::Serialize)]
pub struct SystemRun {
    pub round: u32,
    pub system: &'static str,
    /// From starting it until it watched.
    pub ready_seconds: f64,
    /// Events it counted over the whole run (events received, audit records, probe hits), if
    /// it counts any.
    pub events: Option<u64>,
    /// Whether it must have counted events of the host's processes.
    pub sees_host_processes: bool,
    pub workloads: Vec<WorkloadRun>,
}

impl SystemRun {
    pub fn measures(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.throughputs().map(|throughput| throughput.measure)
    }

    /// Operations per second of `measure`, if this run has it.
    pub fn rate(&self, measure: &str) -> Option<f64> {
        self.throughputs()
            .find(|throughput| throughput.measure == measure)
            .map(Throughput::per_second)
    }

    /// CPU seconds of the watching process per 1,000 operations of `measure`.
    pub fn watcher_cpu_per_thousand(&self, measure: &str) -> Option<f64> {
        self.workloads.iter().find_map(|workload| {
            let throughput = workload.throughputs.iter().find(|t| t.measure == measure)?;
            Some(workload.watcher_cpu_seconds? * 1000.0 / throughput.ops as f64)
        })
    }

    /// CPU seconds of the watching process per operation of the workload that has `measure`,
    /// over all of that workload's operations (redis's SET and GET together).
    pub fn watcher_cpu_per_op(&self, measure: &str) -> Option<f64> {
        let workload = self
            .workloads
            .iter()
            .find(|workload| workload.throughputs.iter().any(|t| t.measure == measure))?;
        let ops: u64 = workload.throughputs.iter().map(|t| t.ops).sum();
        Some(workload.watcher_cpu_seconds? / ops.max(1) as f64)
    }

    fn throughputs(&self) -> impl Iterator<Item = &Throughput> {
        self.workloads
            .iter()
            .flat_map(|workload| &workload.throughputs)
    }
}

#[derive(serde::Serialize)]
pub struct WorkloadRun {
    pub throughputs: Vec<Throughput>,
    /// CPU time of the watching process while the workload ran.
    pub watcher_cpu_seconds: Option<f64>,
}

pub fn run(
    systems: &[Box<dyn System>],
    counts: &Counts,
    load: &Path,
    rounds: u32,
) -> Result<Vec<SystemRun>> {
    cpu::check_cpus()?;
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for system in rotated(systems, round - 1) {
            println!("\n== round {round}/{rounds}: {}", system.name());
            runs.push(run_system(round, system.as_ref(), counts, load)?);
        }
    }
    Ok(runs)
}

fn rotated<T>(items: &[T], by: u32) -> impl Iterator<Item = &T> {
    let len = items.len();
    (0..len).map(move |index| &items[(index + by as usize) % len])
}

fn run_system(round: u32, system: &dyn System, counts: &Counts, load: &Path) -> Result<SystemRun> {
    let started = Instant::now();
    let watcher = system.start()?;
    let ready = started.elapsed();
    println!("ready after {:.3} s", ready.as_secs_f64());
    let mut workloads = Vec::new();
    for workload in Workload::ALL {
        let cpu_before = watcher.pid().map(process::cpu_time).transpose()?;
        let throughputs = workload::run(workload, counts, load)?;
        let watcher_cpu = match (watcher.pid(), cpu_before) {
            (Some(pid), Some(before)) => Some(process::cpu_time(pid)?.saturating_sub(before)),
            _ => None,
        };
        for throughput in &throughputs {
            println!(
                "{:<12} {:>14.0} ops/s",
                throughput.measure,
                throughput.per_second()
            );
        }
        workloads.push(WorkloadRun {
            throughputs,
            watcher_cpu_seconds: watcher_cpu.map(|cpu| cpu.as_secs_f64()),
        });
    }
    let events = watcher.stop()?;
    Ok(SystemRun {
        round,
        system: system.name(),
        ready_seconds: ready.as_secs_f64(),
        events,
        sees_host_processes: system.sees_host_processes(),
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_one_further() {
        let items = ["a", "b", "c"];
        let order = |by| rotated(&items, by).copied().collect::<Vec<_>>();
        assert_eq!(order(0), ["a", "b", "c"]);
        assert_eq!(order(1), ["b", "c", "a"]);
        assert_eq!(order(4), ["b", "c", "a"]);
    }
}
