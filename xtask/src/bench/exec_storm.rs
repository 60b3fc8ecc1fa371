//! The exec storm: N short processes, started as fast as two workers can, timed with no agent
//! and under each agent, alternating modes run after run so that drift hits them all alike.

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

use super::{Agent, EventCounts, Mode, cpu};
use crate::{
    build::{self, Profile},
    cmd, setup, table,
};

const WORKERS: u32 = 2;
const PROGRAM: &str = "/bin/true";
/// The event kind whose accounting the storm checks: one exec per process started.
const EXEC: &str = "exec";
/// The agent drains its ring buffer after the storm ends: its counts are read once they have
/// stayed still this long (or after SETTLE_LIMIT, should the host keep exec'ing).
const SETTLE_QUIET: Duration = Duration::from_secs(1);
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
const SETTLE_POLL: Duration = Duration::from_millis(200);

#[derive(clap::Args)]
pub struct Options {
    /// Processes started per storm
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Storms per mode (modes alternate: A, B, A, B, ...)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

struct Sample {
    wall: Duration,
    agent: Option<AgentSample>,
}

struct AgentSample {
    cpu: Duration,
    events: EventCounts,
}

pub fn run(options: &Options) -> Result<()> {
    if !cmd::is_root() {
        bail!("the benchmark runs escape-detector, which needs root: run it as root");
    }
    setup::run()?;
    let binary = build::agent(Profile::Release)?;
    let modes = super::modes(&binary);
    let mut samples: Vec<Vec<Sample>> = modes.iter().map(|_| Vec::new()).collect();
    for run in 1..=options.runs {
        for (mode, samples) in modes.iter().zip(&mut samples) {
            println!("\nrun {run}/{}: {}", options.runs, mode.name());
            let sample = measure(mode.as_ref(), run, options.count)?;
            println!("storm of {} took {}", options.count, seconds(sample.wall));
            samples.push(sample);
        }
    }
    report(options, &modes, &samples);
    Ok(())
}

fn measure(mode: &dyn Mode, run: u32, count: u32) -> Result<Sample> {
    let Some(agent) = mode.start(run)? else {
        return Ok(Sample {
            wall: storm(count)?,
            agent: None,
        });
    };
    let cpu_before = cpu::process_cpu_time(agent.pid())?;
    let events_before = agent.events()?;
    let wall = storm(count)?;
    let cpu = cpu::process_cpu_time(agent.pid())?.saturating_sub(cpu_before);
    let events = settled_events(agent.as_ref())?.since(&events_before);
    Ok(Sample {
        wall,
        agent: Some(AgentSample { cpu, events }),
    })
}

fn storm(count: u32) -> Result<Duration> {
    let started = Instant::now();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let share = count / WORKERS + u32::from(worker < count % WORKERS);
                scope.spawn(move || start_processes(share))
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a storm worker panicked"))
    })?;
    Ok(started.elapsed())
}

fn start_processes(count: u32) -> Result<()> {
    for _ in 0..count {
        let status = Command::new(PROGRAM)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("could not run {PROGRAM}"))?;
        ensure!(status.success(), "{PROGRAM} failed ({status})");
    }
    Ok(())
}

fn settled_events(agent: &dyn Agent) -> Result<EventCounts> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = agent.events()?;
    let mut still_since = Instant::now();
    while Instant::now() < deadline && still_since.elapsed() < SETTLE_QUIET {
        thread::sleep(SETTLE_POLL);
        let now = agent.events()?;
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    Ok(last)
}

fn report(options: &Options, modes: &[Box<dyn Mode>], samples: &[Vec<Sample>]) {
    println!(
        "\nexec storm: {} x {PROGRAM}, {WORKERS} workers, {} runs per mode, modes alternating",
        options.count, options.runs
    );
    print_wall_times(modes, samples);
    let accounting_ok = print_agent_runs(options.count, modes, samples);
    print_events_by_kind(options.runs, modes, samples);
    println!(
        "\naccounting check (informational): {}",
        pass_fail(accounting_ok)
    );
}

fn print_wall_times(modes: &[Box<dyn Mode>], samples: &[Vec<Sample>]) {
    let median_wall = |samples: &[Sample]| median(samples.iter().map(|s| s.wall.as_secs_f64()));
    let baseline = median_wall(&samples[0]);
    let rows: Vec<Vec<String>> = modes
        .iter()
        .zip(samples)
        .map(|(mode, samples)| {
            let wall = median_wall(samples);
            let agent_runs = || {
                samples
                    .iter()
                    .filter_map(|s| Some((s.agent.as_ref()?, s.wall)))
            };
            let (cpu, cpu_share) = if agent_runs().next().is_none() {
                (String::new(), String::new())
            } else {
                let cpu = median(agent_runs().map(|(agent, _)| agent.cpu.as_secs_f64()));
                let share = median(agent_runs().map(|(agent, wall)| cpu_percent(agent.cpu, wall)));
                (format!("{cpu:.3} s"), format!("{share:.1} %"))
            };
            let runs: Vec<String> = samples.iter().map(|s| seconds(s.wall)).collect();
            vec![
                mode.name().to_owned(),
                format!("{wall:.3} s"),
                format!("{:.3}", wall / baseline),
                cpu,
                cpu_share,
                runs.join(", "),
            ]
        })
        .collect();
    println!("\nwall time of the storm (medians over runs)");
    let ratio = format!("ratio to {}", modes[0].name());
    let headers = [
        "mode",
        "storm",
        &ratio,
        "agent cpu",
        "agent cpu % of one core",
        "each run",
    ];
    table::print(&headers, &rows);
}

/// Prints each run under an agent; returns whether every run that counts events accounted for
/// every exec.
fn print_agent_runs(count: u32, modes: &[Box<dyn Mode>], samples: &[Vec<Sample>]) -> bool {
    let mut accounting_ok = true;
    let mut rows = Vec::new();
    for (mode, samples) in modes.iter().zip(samples) {
        for (run, sample) in samples.iter().enumerate() {
            let Some(agent) = &sample.agent else { continue };
            let (received, lost, check) = if agent.events.is_empty() {
                (String::new(), String::new(), "n/a".to_owned())
            } else {
                let received = agent.events.received(EXEC);
                let lost = agent.events.lost(EXEC);
                let pass = received + lost >= u64::from(count);
                accounting_ok &= pass;
                (
                    received.to_string(),
                    lost.to_string(),
                    pass_fail(pass).to_owned(),
                )
            };
            rows.push(vec![
                mode.name().to_owned(),
                (run + 1).to_string(),
                seconds(sample.wall),
                seconds(agent.cpu),
                format!("{:.1} %", cpu_percent(agent.cpu, sample.wall)),
                received,
                lost,
                check,
            ]);
        }
    }
    println!("\nruns under an agent");
    let check = format!("exec received + lost >= {count}");
    let headers = [
        "mode",
        "run",
        "storm",
        "agent cpu",
        "cpu % of one core",
        "exec received",
        "exec lost",
        &check,
    ];
    table::print(&headers, &rows);
    accounting_ok
}

fn print_events_by_kind(runs: u32, modes: &[Box<dyn Mode>], samples: &[Vec<Sample>]) {
    let mut rows = Vec::new();
    for (mode, samples) in modes.iter().zip(samples) {
        let mut total = EventCounts::default();
        for agent in samples.iter().filter_map(|sample| sample.agent.as_ref()) {
            total.add(&agent.events);
        }
        for kind in total.kinds() {
            rows.push(vec![
                mode.name().to_owned(),
                kind.to_owned(),
                total.received(kind).to_string(),
                total.lost(kind).to_string(),
            ]);
        }
    }
    if !rows.is_empty() {
        println!("\nevents by kind from storm start until the counts settled (sum of {runs} runs)");
        table::print(&["mode", "kind", "received", "lost"], &rows);
    }
}

fn cpu_percent(cpu: Duration, wall: Duration) -> f64 {
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
}

fn pass_fail(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
    }
}
