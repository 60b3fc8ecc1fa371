//! The bench's report: tables on stdout, the same figures as JSON under target/xtask/bench/,
//! and the check that they are sane (non-zero, events seen). Targets are printed beside the
//! figures for the reader; nothing here fails on a slow figure, since the machines are noisy.

use std::{fs, path::PathBuf};

use anyhow::{Result, bail};

use super::{
    Counts,
    extras::{Extras, PeakMemory},
    kernel_cost::KernelCost,
    rounds::SystemRun,
    stats::Spread,
    system::BASELINE,
    workload::EXEC_STORM,
};
use crate::{build, table};

const THROUGHPUT_TARGET: f64 = 0.95;
const READY_TARGET_SECONDS: f64 = 2.0;
const PEAK_RSS_TARGET_MIB: f64 = 64.0;
const P99_TARGET_SECONDS: f64 = 0.05;
/// On a kernel without LSM and fentry the syscall loops pay for syscall tracepoints, and the
/// target is the figure and the profile that explains it (`cargo xtask bench --profile`).
const SYSCALL_LOOPS: [&str; 3] = ["getppid", "open/close", "open/close, file"];
const DETECTOR: &str = "escape-detector";
/// Programs named per workload in the kernel cost table.
const KERNEL_COST_PROGRAMS: usize = 4;

#[derive(serde::Serialize)]
pub struct Report {
    kernel: String,
    /// The backend escape-detector chose on this kernel.
    detector_backend: String,
    cpus: usize,
    quick: bool,
    rounds: u32,
    /// Whether idle CPUs polled (deeper idle states disabled) while the bench ran.
    idle_polling: bool,
    /// Watchers that were running before the bench started its own (`pid name`).
    other_watchers: Vec<String>,
    counts: Counts,
    throughput: Vec<MeasureSummary>,
    watchers: Vec<WatcherSummary>,
    detector: Option<Extras>,
    /// escape-detector's BPF program time per operation of each workload.
    kernel_cost: Option<Vec<KernelCost>>,
    runs: Vec<SystemRun>,
}

/// One workload figure of one system over the rounds.
#[derive(serde::Serialize)]
struct MeasureSummary {
    measure: &'static str,
    system: &'static str,
    ops_per_second: Spread,
    /// Of the per-round ratios to no agent.
    ratio_to_no_agent: Option<Spread>,
}

#[derive(serde::Serialize)]
struct WatcherSummary {
    system: &'static str,
    ready_seconds: Spread,
    /// CPU time of the watching process per 1,000 execs of the host exec storm.
    cpu_seconds_per_thousand_execs: Option<Spread>,
    /// Events the system counted per round.
    events_per_round: Option<Spread>,
}

pub struct Setting {
    pub quick: bool,
    pub rounds: u32,
    pub idle_polling: bool,
    pub other_watchers: Vec<String>,
    pub counts: Counts,
    pub detector_backend: String,
}

/// What the report holds beside the rounds: escape-detector's own figures and its kernel cost.
pub struct Measured {
    pub runs: Vec<SystemRun>,
    pub extras: Option<Extras>,
    pub kernel_cost: Option<Vec<KernelCost>>,
}

impl Report {
    pub fn new(setting: Setting, measured: Measured) -> Result<Report> {
        let Measured {
            runs,
            extras,
            kernel_cost,
        } = measured;
        Ok(Report {
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")?
                .trim()
                .to_owned(),
            detector_backend: setting.detector_backend,
            cpus: std::thread::available_parallelism()?.get(),
            quick: setting.quick,
            rounds: setting.rounds,
            idle_polling: setting.idle_polling,
            other_watchers: setting.other_watchers,
            counts: setting.counts,
            throughput: summarize_throughput(&runs),
            watchers: summarize_watchers(&runs),
            detector: extras,
            kernel_cost,
            runs,
        })
    }

    pub fn print(&self) {
        let idle = if self.idle_polling {
            "idle CPUs polling"
        } else {
            "the machine's CPU idle states"
        };
        println!(
            "\nkernel {}, {} CPUs, escape-detector backend: {}; {} round(s), systems in rotating \
             order, {idle}",
            self.kernel, self.cpus, self.detector_backend, self.rounds
        );
        if !self.other_watchers.is_empty() {
            println!(
                "other watchers ran all along, in the baseline too: {}",
                self.other_watchers.join(", ")
            );
        }
        self.print_throughput();
        self.print_watchers();
        if let Some(costs) = &self.kernel_cost {
            self.print_kernel_cost(costs);
        }
        if let Some(extras) = &self.detector {
            self.print_detector(extras);
        }
    }

    fn print_kernel_cost(&self, costs: &[KernelCost]) {
        println!(
            "\nescape-detector's BPF programs per operation (one run each, kernel.bpf_stats_enabled, \
             which adds about 20 ns a program run); agent CPU: the agent's own CPU time per \
             operation over the rounds (median), which competes with the workload where CPUs are \
             few (a TCG guest runs both vCPUs on one host thread); lost: the time per operation \
             the median ratio says the workload lost"
        );
        let nanoseconds =
            |ns: Option<f64>| ns.map_or_else(|| "-".to_owned(), |ns| format!("{ns:.0} ns"));
        let rows: Vec<Vec<String>> = costs
            .iter()
            .map(|cost| {
                let programs: Vec<String> = cost
                    .programs
                    .iter()
                    // Rare runs (a scrape's own open, the agent's bpf calls) say nothing here.
                    .filter(|p| p.nanoseconds_per_op >= 0.5)
                    .take(KERNEL_COST_PROGRAMS)
                    .map(|p| {
                        format!(
                            "{} {:.0} ns ({:.2} runs)",
                            p.program, p.nanoseconds_per_op, p.runs_per_op
                        )
                    })
                    .collect();
                let agent_cpu = cost
                    .measures
                    .first()
                    .and_then(|measure| self.agent_cpu_per_op(measure));
                vec![
                    cost.measures.join(" + "),
                    nanoseconds(Some(cost.nanoseconds_per_op())),
                    nanoseconds(agent_cpu.map(|seconds| seconds * 1e9)),
                    nanoseconds(self.lost_per_op(&cost.measures)),
                    programs.join(", "),
                ]
            })
            .collect();
        table::print(
            &[
                "workload",
                "BPF time",
                "agent CPU",
                "lost",
                "costliest programs",
            ],
            &rows,
        );
    }

    /// The median over the rounds of escape-detector's CPU seconds per operation of the
    /// workload that has `measure`.
    fn agent_cpu_per_op(&self, measure: &str) -> Option<f64> {
        Spread::of(
            self.runs
                .iter()
                .filter(|run| run.system == DETECTOR)
                .filter_map(|run| run.watcher_cpu_per_op(measure)),
        )
        .map(|spread| spread.median)
    }

    /// The time per operation escape-detector's median ratio to no agent says `measures` lost,
    /// averaged over them.
    fn lost_per_op(&self, measures: &[&str]) -> Option<f64> {
        let summary = |measure: &str, system: &str| {
            self.throughput
                .iter()
                .find(|s| s.measure == measure && s.system == system)
        };
        let lost: Option<Vec<f64>> = measures
            .iter()
            .map(|measure| {
                let baseline = summary(measure, BASELINE)?.ops_per_second.median;
                let ratio = summary(measure, DETECTOR)?.ratio_to_no_agent?.median;
                Some((1.0 / ratio - 1.0) * 1e9 / baseline)
            })
            .collect();
        let lost = lost?;
        Some(lost.iter().sum::<f64>() / lost.len().max(1) as f64)
    }

    fn print_throughput(&self) {
        println!(
            "\nthroughput: median and min - max over the rounds; ratio: this system / no agent in \
             the same round"
        );
        let rows: Vec<Vec<String>> = self
            .throughput
            .iter()
            .map(|summary| {
                let ratio = summary.ratio_to_no_agent;
                vec![
                    summary.measure.to_owned(),
                    summary.system.to_owned(),
                    rate(summary.ops_per_second.median),
                    format!(
                        "{} - {}",
                        rate(summary.ops_per_second.min),
                        rate(summary.ops_per_second.max)
                    ),
                    ratio.map_or_else(String::new, |r| format!("{:.3}", r.median)),
                    ratio.map_or_else(String::new, |r| format!("{:.3} - {:.3}", r.min, r.max)),
                    self.throughput_target(summary),
                ]
            })
            .collect();
        table::print(
            &[
                "workload",
                "system",
                "ops/s",
                "min - max",
                "ratio",
                "ratio min - max",
                "detector target",
            ],
            &rows,
        );
    }

    fn throughput_target(&self, summary: &MeasureSummary) -> String {
        let Some(ratio) = summary.ratio_to_no_agent else {
            return String::new();
        };
        if summary.system != DETECTOR {
            return String::new();
        }
        if self.detector_backend == "tracepoint" && SYSCALL_LOOPS.contains(&summary.measure) {
            return "figure + profile (tracepoint kernel)".to_owned();
        }
        let met = ratio.median >= THROUGHPUT_TARGET;
        format!(">= {THROUGHPUT_TARGET}: {}", verdict(met))
    }

    fn print_watchers(&self) {
        println!(
            "\nthe watching process: start until watching; CPU time during the host exec storm"
        );
        let rows: Vec<Vec<String>> = self
            .watchers
            .iter()
            .map(|watcher| {
                vec![
                    watcher.system.to_owned(),
                    spread(watcher.ready_seconds, |s| format!("{s:.3} s")),
                    watcher
                        .cpu_seconds_per_thousand_execs
                        .map_or_else(String::new, |cpu| spread(cpu, milliseconds)),
                    watcher
                        .events_per_round
                        .map_or_else(String::new, |events| spread(events, |e| format!("{e:.0}"))),
                ]
            })
            .collect();
        table::print(
            &[
                "system",
                "ready after",
                "CPU per 1,000 execs",
                "events counted per round",
            ],
            &rows,
        );
    }

    fn print_detector(&self, extras: &Extras) {
        println!("\nescape-detector's own figures");
        let mut rows = Vec::new();
        if let Some(detector) = self.watchers.iter().find(|w| w.system == DETECTOR) {
            let ready = detector.ready_seconds;
            rows.push(vec![
                "time to /readyz from spawn (each round)".to_owned(),
                spread(ready, |s| format!("{s:.3} s")),
                target(
                    format!("<= {READY_TARGET_SECONDS} s"),
                    ready.median <= READY_TARGET_SECONDS,
                ),
            ]);
            if let Some(cpu) = detector.cpu_seconds_per_thousand_execs {
                rows.push(vec![
                    "agent CPU per 1,000 execs, host storm".to_owned(),
                    spread(cpu, milliseconds),
                    String::new(),
                ]);
            }
        }
        let storms = &extras.container_storms;
        if let Some(cpu) = Spread::of(
            storms
                .iter()
                .map(|s| s.agent_cpu_per_thousand_execs().as_secs_f64()),
        ) {
            rows.push(vec![
                format!(
                    "agent CPU per 1,000 execs, storms in a container ({})",
                    storms.len()
                ),
                spread(cpu, milliseconds),
                String::new(),
            ]);
        }
        let received: u64 = storms.iter().map(|s| s.events_received).sum();
        let lost: u64 = storms.iter().map(|s| s.events_lost).sum();
        rows.push(vec![
            "events received / lost over the container storms".to_owned(),
            format!("{received} / {lost}"),
            String::new(),
        ]);
        rows.push(peak_memory_row(&extras.peak_memory));
        let latency = &extras.alert_latency;
        let quantile = |name: &str, value: Option<f64>, target_seconds: Option<f64>| {
            vec![
                format!(
                    "alert latency {name} ({}, {} acts, {} alerts)",
                    latency.rule, latency.acts, latency.alerts
                ),
                value.map_or("-".to_owned(), milliseconds),
                target_seconds.map_or_else(String::new, |limit| {
                    target(
                        format!("<= {} ms", limit * 1e3),
                        value.is_some_and(|v| v <= limit),
                    )
                }),
            ]
        };
        rows.push(quantile("p50", latency.p50_seconds, None));
        rows.push(quantile(
            "p99",
            latency.p99_seconds,
            Some(P99_TARGET_SECONDS),
        ));
        table::print(&["figure", "value (median, min - max)", "target"], &rows);
    }

    /// Writes the report as JSON; returns where.
    pub fn write_json(&self) -> Result<PathBuf> {
        let dir = build::target_dir().join("xtask").join("bench");
        fs::create_dir_all(&dir)?;
        let name = if self.quick {
            "bench-quick.json"
        } else {
            "bench.json"
        };
        let path = dir.join(name);
        fs::write(&path, serde_json::to_string_pretty(self)?)?;
        Ok(path)
    }

    /// Fails unless every figure is a real measurement: operations done in a positive time, and
    /// events seen where the systems must have seen some.
    pub fn check_sane(&self) -> Result<()> {
        let mut problems = Vec::new();
        for run in &self.runs {
            let figures = run.workloads.iter().flat_map(|w| &w.throughputs);
            for figure in figures {
                if figure.ops == 0 || !figure.seconds.is_finite() || figure.seconds <= 0.0 {
                    problems.push(format!(
                        "round {}, {}: {} ops in {} s of {}",
                        run.round, run.system, figure.ops, figure.seconds, figure.measure
                    ));
                }
            }
            if run.sees_host_processes && run.events == Some(0) {
                problems.push(format!(
                    "round {}: {} counted no events, though its exec storm alone makes thousands",
                    run.round, run.system
                ));
            }
        }
        if let Some(extras) = &self.detector {
            problems.extend(detector_problems(extras));
        }
        // Every exec runs the detector's exec program, whoever execs.
        let storm = self.kernel_cost.iter().flatten();
        for cost in storm.filter(|cost| cost.measures.contains(&EXEC_STORM)) {
            if cost.nanoseconds_per_op() <= 0.0 {
                problems.push(format!(
                    "no BPF program time over {} execs: the detector's programs went uncounted",
                    cost.ops
                ));
            }
        }
        if problems.is_empty() {
            println!("\nsanity: every figure measured something");
            return Ok(());
        }
        bail!(
            "the bench's figures are not sane:\n  {}",
            problems.join("\n  ")
        )
    }
}

fn detector_problems(extras: &Extras) -> Vec<String> {
    let mut problems = Vec::new();
    for storm in &extras.container_storms {
        if storm.events_received == 0 || storm.agent_cpu_seconds <= 0.0 {
            problems.push(format!(
                "an exec storm of {} container processes gave the detector {} events and {} s \
                 of CPU",
                storm.execs, storm.events_received, storm.agent_cpu_seconds
            ));
        }
    }
    let latency = &extras.alert_latency;
    if latency.alerts < latency.acts || latency.p99_seconds.is_none() {
        problems.push(format!(
            "{} acts raised {} {} alerts, latency p99 {:?}",
            latency.acts, latency.alerts, latency.rule, latency.p99_seconds
        ));
    }
    let memory = &extras.peak_memory;
    if memory.tracked_processes < memory.sleepers || memory.memory.peak_bytes == 0 {
        problems.push(format!(
            "with {} sleeping processes the detector tracked {} and peaked at {} bytes",
            memory.sleepers, memory.tracked_processes, memory.memory.peak_bytes
        ));
    }
    problems
}

fn peak_memory_row(peak: &PeakMemory) -> Vec<String> {
    let mib = super::extras::mebibytes(peak.memory.peak_bytes);
    vec![
        format!(
            "peak RSS, {} processes in a container ({} tracked)",
            peak.sleepers, peak.tracked_processes
        ),
        format!("{mib:.1} MiB"),
        target(
            format!("<= {PEAK_RSS_TARGET_MIB} MiB"),
            mib <= PEAK_RSS_TARGET_MIB,
        ),
    ]
}

/// Per workload figure, per system in the order they were given: throughput and ratio.
fn summarize_throughput(runs: &[SystemRun]) -> Vec<MeasureSummary> {
    let mut summaries = Vec::new();
    for measure in in_order(runs.iter().flat_map(|run| run.measures())) {
        for system in in_order(runs.iter().map(|run| run.system)) {
            let rates = runs
                .iter()
                .filter(|run| run.system == system)
                .filter_map(|run| run.rate(measure));
            let Some(ops_per_second) = Spread::of(rates) else {
                continue;
            };
            let ratios = runs
                .iter()
                .filter(|run| run.system == system)
                .filter_map(|run| {
                    let baseline = runs
                        .iter()
                        .find(|other| other.round == run.round && other.system == BASELINE)?;
                    Some(run.rate(measure)? / baseline.rate(measure)?)
                });
            summaries.push(MeasureSummary {
                measure,
                system,
                ops_per_second,
                ratio_to_no_agent: Spread::of(ratios),
            });
        }
    }
    summaries
}

fn summarize_watchers(runs: &[SystemRun]) -> Vec<WatcherSummary> {
    in_order(runs.iter().map(|run| run.system))
        .into_iter()
        .filter(|system| *system != BASELINE)
        .filter_map(|system| {
            let runs: Vec<&SystemRun> = runs.iter().filter(|run| run.system == system).collect();
            Some(WatcherSummary {
                system,
                ready_seconds: Spread::of(runs.iter().map(|run| run.ready_seconds))?,
                cpu_seconds_per_thousand_execs: Spread::of(
                    runs.iter()
                        .filter_map(|run| run.watcher_cpu_per_thousand(EXEC_STORM)),
                ),
                events_per_round: Spread::of(
                    runs.iter().filter_map(|run| Some(run.events? as f64)),
                ),
            })
        })
        .collect()
}

/// The distinct items, in the order they first appear.
fn in_order<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut distinct = Vec::new();
    for item in items {
        if !distinct.contains(&item) {
            distinct.push(item);
        }
    }
    distinct
}

fn spread(value: Spread, format: impl Fn(f64) -> String) -> String {
    if value.samples == 1 {
        return format(value.median);
    }
    format!(
        "{} ({} - {})",
        format(value.median),
        format(value.min),
        format(value.max)
    )
}

/// Operations per second, to four significant digits or so.
fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e6 => format!("{:.3} M", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k", r / 1e3),
        r => format!("{r:.1}"),
    }
}

fn milliseconds(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}

fn target(text: String, met: bool) -> String {
    format!("{text}: {}", verdict(met))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_in_thousands_and_millions() {
        assert_eq!(rate(3_512_345.0), "3.512 M");
        assert_eq!(rate(245_321.0), "245.3 k");
        assert_eq!(rate(812.34), "812.3");
    }

    #[test]
    fn in_order_keeps_first_appearances() {
        assert_eq!(in_order([2, 1, 2, 3, 1].into_iter()), [2, 1, 3]);
    }
}
