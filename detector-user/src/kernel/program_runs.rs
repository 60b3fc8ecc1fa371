//! What each of the agent's BPF programs costs the kernel: its runs and their time, as the kernel
//! counts them (only while `kernel.bpf_stats_enabled` is 1, which itself costs about 20 ns a
//! run), added to `escape_detector_bpf_program_runs_total` and `..._run_seconds_total`. With
//! them an operator, and the bench, can tell which hook a slower workload pays for.

use std::collections::HashMap;

use aya::Ebpf;

use super::fdinfo;
use crate::metrics::Metrics;

pub struct ProgramRuns {
    /// A loaded program's kernel id, and its name in the object file.
    names: HashMap<u64, String>,
    /// (runs, nanoseconds) already exported, per program id.
    exported: HashMap<u64, (u64, u64)>,
}

impl ProgramRuns {
    /// The programs loaded into the kernel, each with a series at zero from now on.
    pub fn new(ebpf: &Ebpf, metrics: &Metrics) -> ProgramRuns {
        let names: HashMap<u64, String> = ebpf
            .programs()
            .filter_map(|(name, program)| Some((program.info().ok()?.id().into(), name.into())))
            .collect();
        for name in names.values() {
            metrics.program_ran(name, 0, 0);
        }
        ProgramRuns {
            names,
            exported: HashMap::new(),
        }
    }

    /// Adds what the kernel counted since the last call.
    pub fn refresh(&mut self, metrics: &Metrics) {
        match fdinfo::own() {
            Ok(fdinfos) => self.add(metrics, &fdinfos),
            Err(e) => log::debug!("reading /proc/self/fdinfo: {e}; program runs not refreshed"),
        }
    }

    /// Adds the counts of the program descriptors among `fdinfos` beyond those exported.
    fn add(&mut self, metrics: &Metrics, fdinfos: &[String]) {
        for (id, runs, nanoseconds) in fdinfos.iter().filter_map(|f| program_counts(f)) {
            let Some(name) = self.names.get(&id) else {
                continue;
            };
            let seen = self.exported.entry(id).or_default();
            metrics.program_ran(
                name,
                runs.saturating_sub(seen.0),
                nanoseconds.saturating_sub(seen.1),
            );
            *seen = (runs.max(seen.0), nanoseconds.max(seen.1));
        }
    }
}

/// (program id, runs, nanoseconds) from a program descriptor's fdinfo; `None` for any other
/// descriptor (a link names its program's id too, but keeps no counts).
fn program_counts(fdinfo: &str) -> Option<(u64, u64, u64)> {
    Some((
        fdinfo::field(fdinfo, "prog_id:")?,
        fdinfo::field(fdinfo, "run_cnt:")?,
        fdinfo::field(fdinfo, "run_time_ns:")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_program_descriptors_alone() {
        let program = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_id:\t31\n\
                       run_time_ns:\t123456\nrun_cnt:\t789\n";
        assert_eq!(program_counts(program), Some((31, 789, 123456)));
        let link = "pos:\t0\nflags:\t02000000\nlink_type:\ttracing\nlink_id:\t7\nprog_id:\t31\n";
        assert_eq!(program_counts(link), None);
    }

    #[test]
    fn exports_what_was_counted_since_the_last_refresh() {
        let metrics = Metrics::new().unwrap();
        let mut runs = ProgramRuns {
            names: HashMap::from([(31, "sched_process_exec".to_owned())]),
            exported: HashMap::from([(31, (700, 100_000))]),
        };
        let fdinfo = |id: u64, count: u64, ns: u64| {
            format!("prog_type:\t26\nprog_id:\t{id}\nrun_time_ns:\t{ns}\nrun_cnt:\t{count}\n")
        };
        // Another program of the process (not the agent's) is left out.
        runs.add(&metrics, &[fdinfo(31, 789, 123_456), fdinfo(32, 5, 5)]);
        let text = metrics.render();
        assert!(
            text.contains(
                "escape_detector_bpf_program_runs_total{program=\"sched_process_exec\"} 89"
            )
        );
        assert!(text.contains(
            "escape_detector_bpf_program_run_seconds_total{program=\"sched_process_exec\"} \
             0.000023456"
        ));
    }
}
