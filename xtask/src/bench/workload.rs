//! The workloads: syscall loops and an exec storm run by `bench-load`, and redis-benchmark.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, ensure};

use super::{Counts, cpu, redis};
use crate::cmd;

#[derive(Clone, Copy)]
pub enum Workload {
    /// The cheapest system call, in a loop: the cost of the syscall entry and exit path.
    Getppid,
    /// open and close of /dev/null, read-only, in a loop.
    OpenClose,
    /// open and close of a regular file (/etc/passwd), read-only, in a loop.
    OpenCloseFile,
    /// fork and exec of a tiny static binary, one process after the other.
    ExecStorm,
    /// redis-benchmark SET and GET against a redis-server on loopback, on different CPUs.
    Redis,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Getppid,
        Workload::OpenClose,
        Workload::OpenCloseFile,
        Workload::ExecStorm,
        Workload::Redis,
    ];
}

/// The measure of exec storms: processes started per second.
pub const EXEC_STORM: &str = "exec storm";

/// One figure of a workload: how many operations took how long.
#[derive(Clone, serde::Serialize)]
pub struct Throughput {
    pub measure: &'static str,
    pub ops: u64,
    pub seconds: f64,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// Runs `workload` once, on the workloads' CPU; `load` is the bench-load binary.
pub fn run(workload: Workload, counts: &Counts, load: &Path) -> Result<Vec<Throughput>> {
    let (measure, subcommand, count) = match workload {
        Workload::Getppid => ("getppid", "getppid", counts.getppid),
        Workload::OpenClose => ("open/close", "open-close", counts.open_close),
        Workload::OpenCloseFile => ("open/close, file", "open-close-file", counts.open_close),
        Workload::ExecStorm => (EXEC_STORM, "exec-storm", counts.exec_storm),
        Workload::Redis => return redis::benchmark(counts.redis_requests),
    };
    let mut command = Command::new(load);
    command.arg(subcommand).arg(count.to_string());
    let printed = cmd::output(cpu::pin(&mut command, cpu::WORKLOAD_CPU))?;
    Ok(vec![load_throughput(measure, &printed)?])
}

/// The figure bench-load printed: `{"ops":N,"seconds":S}`.
pub fn load_throughput(measure: &'static str, printed: &str) -> Result<Throughput> {
    #[derive(serde::Deserialize)]
    struct Printed {
        ops: u64,
        seconds: f64,
    }
    let printed: Printed = serde_json::from_str(printed.trim())
        .with_context(|| format!("bench-load printed {printed:?}"))?;
    ensure!(
        printed.seconds > 0.0,
        "bench-load timed {measure} at {} s",
        printed.seconds
    );
    Ok(Throughput {
        measure,
        ops: printed.ops,
        seconds: printed.seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_bench_load_prints() {
        let figure = load_throughput("getppid", "{\"ops\":2000,\"seconds\":0.5}\n").unwrap();
        assert_eq!((figure.ops, figure.per_second()), (2000, 4000.0));
        assert!(load_throughput("getppid", "{\"ops\":2000,\"seconds\":0}").is_err());
        assert!(load_throughput("getppid", "usage: ...").is_err());
    }
}
