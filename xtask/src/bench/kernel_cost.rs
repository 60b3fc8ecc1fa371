//! Where escape-detector's kernel time goes, workload by workload: with the kernel counting
//! BPF run time (the sysctl kernel.bpf_stats_enabled, put back after), each workload once under
//! a fresh detector, and per operation the time each of its programs ran, from its /metrics
//! (`escape_detector_bpf_program_run_seconds_total`). Set beside the throughput lost per
//! operation, it tells the hooks' share of a slower workload from the rest (the agent's CPU,
//! caches). Works where perf cannot sample the kernel, such as a TCG guest.

use std::{fs, path::Path};

use anyhow::{Context as _, Result};
use escape_detector_e2e::KernelSetting;

use super::{
    Counts, prometheus,
    system::start_detector,
    workload::{self, Workload},
};

const STATS_SETTING: &str = "/proc/sys/kernel/bpf_stats_enabled";
const RUNS: &str = "escape_detector_bpf_program_runs_total";
const SECONDS: &str = "escape_detector_bpf_program_run_seconds_total";

/// One workload's operations and what each program that ran for them cost.
#[derive(serde::Serialize)]
pub struct KernelCost {
    /// The workload's measures (redis has two, SET and GET, run by one client).
    pub measures: Vec<&'static str>,
    pub ops: u64,
    /// Programs that ran, the costliest first.
    pub programs: Vec<ProgramCost>,
}

#[derive(serde::Serialize)]
pub struct ProgramCost {
    pub program: String,
    pub runs_per_op: f64,
    pub nanoseconds_per_op: f64,
}

impl KernelCost {
    pub fn nanoseconds_per_op(&self) -> f64 {
        self.programs.iter().map(|p| p.nanoseconds_per_op).sum()
    }
}

pub fn measure(counts: &Counts, load: &Path) -> Result<Vec<KernelCost>> {
    println!("\n== escape-detector: BPF program time per operation (kernel.bpf_stats_enabled)");
    // Put back when dropped, whatever happens.
    let _stats = KernelSetting::save(STATS_SETTING)?;
    fs::write(STATS_SETTING, "1").with_context(|| format!("writing 1 to {STATS_SETTING}"))?;
    let detector = start_detector()?;
    let mut costs = Vec::new();
    for kind in Workload::ALL {
        let before = detector.metrics()?;
        let throughputs = workload::run(kind, counts, load)?;
        let after = detector.metrics()?;
        let ops = throughputs.iter().map(|t| t.ops).sum();
        costs.push(KernelCost {
            measures: throughputs.iter().map(|t| t.measure).collect(),
            ops,
            programs: program_costs(&before, &after, ops),
        });
    }
    detector.stop()?;
    Ok(costs)
}

/// What each program cost per operation between two scrapes, the costliest first; programs
/// that did not run are left out.
fn program_costs(before: &str, after: &str, ops: u64) -> Vec<ProgramCost> {
    let growth = |metric: &str| -> Vec<(String, f64)> {
        let earlier = prometheus::by_label(before, metric, "program");
        prometheus::by_label(after, metric, "program")
            .into_iter()
            .map(|(program, now)| {
                let then = earlier
                    .iter()
                    .find(|(p, _)| *p == program)
                    .map_or(0.0, |e| e.1);
                (program, now - then)
            })
            .collect()
    };
    let seconds = growth(SECONDS);
    let ops = ops.max(1) as f64;
    let mut costs: Vec<ProgramCost> = growth(RUNS)
        .into_iter()
        .filter(|(_, runs)| *runs > 0.0)
        .map(|(program, runs)| {
            let spent = seconds
                .iter()
                .find(|(p, _)| *p == program)
                .map_or(0.0, |s| s.1);
            ProgramCost {
                program,
                runs_per_op: runs / ops,
                nanoseconds_per_op: spent * 1e9 / ops,
            }
        })
        .collect();
    costs.sort_by(|a, b| b.nanoseconds_per_op.total_cmp(&a.nanoseconds_per_op));
    costs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_per_operation_from_two_scrapes_costliest_first() {
        let scrape = |exec_runs: u64, exec_s: f64, open_runs: u64, open_s: f64| {
            format!(
                "{RUNS}{{program=\"sched_process_exec\"}} {exec_runs}\n\
                 {RUNS}{{program=\"file_open\"}} {open_runs}\n\
                 {RUNS}{{program=\"setns\"}} 4\n\
                 {SECONDS}{{program=\"sched_process_exec\"}} {exec_s}\n\
                 {SECONDS}{{program=\"file_open\"}} {open_s}\n\
                 {SECONDS}{{program=\"setns\"}} 0.000001\n"
            )
        };
        let before = scrape(10, 0.0001, 0, 0.0);
        let after = scrape(1010, 0.0011, 3000, 0.0030);
        let costs = program_costs(&before, &after, 1000);
        let rows: Vec<(&str, f64, f64)> = costs
            .iter()
            .map(|c| {
                let ns = (c.nanoseconds_per_op * 1000.0).round() / 1000.0;
                (c.program.as_str(), c.runs_per_op, ns)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("file_open", 3.0, 3000.0),
                ("sched_process_exec", 1.0, 1000.0)
            ],
            "setns did not run between the scrapes"
        );
    }
}
