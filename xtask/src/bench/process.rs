//! What a watching process uses: CPU time and resident memory.

use std::{io, time::Duration};

use anyhow::{Context as _, Result};
use procfs::process::Process;

/// CPU time that process `pid` (all its threads, exited ones too) has used so far, to the
/// nanosecond: its process CPU-time clock, where /proc/PID/stat counts in clock ticks.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock is a valid place for the call to write to.
    let error = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if error != 0 {
        return Err(io::Error::from_raw_os_error(error))
            .with_context(|| format!("no CPU-time clock for process {pid}"));
    }
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: time is a valid place for the call to write to.
    if unsafe { libc::clock_gettime(clock, &mut time) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("reading the CPU-time clock of process {pid}"));
    }
    Ok(Duration::new(time.tv_sec as u64, time.tv_nsec as u32))
}

/// Resident memory of process `pid`, in bytes.
#[derive(Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// The most it ever held (VmHWM).
    pub peak_bytes: u64,
    /// What it holds now (VmRSS).
    pub resident_bytes: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let status = process(pid)?
        .status()
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |value: Option<u64>, name: &str| {
        value
            .map(|kib| kib * 1024)
            .with_context(|| format!("/proc/{pid}/status has no {name}"))
    };
    Ok(Memory {
        peak_bytes: kib(status.vmhwm, "VmHWM")?,
        resident_bytes: kib(status.vmrss, "VmRSS")?,
    })
}

fn process(pid: u32) -> Result<Process> {
    let pid = i32::try_from(pid)?;
    Process::new(pid).with_context(|| format!("no process {pid}"))
}
