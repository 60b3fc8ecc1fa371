//! CPU time of a process, from procfs.

use std::{fs, time::Duration};

use anyhow::{Context as _, Result};

/// User plus system time that process `pid` (all its threads) has used so far.
pub fn process_cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("could not read {path}"))?;
    cpu_time_from_stat(&stat).with_context(|| format!("unexpected contents of {path}"))
}

fn cpu_time_from_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses, so count fields after its
    // closing parenthesis: the state (field 3) comes first, utime is field 14, stime field 15.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks_per_second(),
    ))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_an_awkward_command_name() {
        let ticks = clock_ticks_per_second();
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1 0 0";
        let expected = Duration::from_secs_f64(200.0 / ticks);
        assert_eq!(cpu_time_from_stat(stat), Some(expected));
    }
}
