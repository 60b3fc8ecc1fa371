//! Room for many processes: the process-count limit of the bench (which its containers
//! inherit) and the kernel's pid range, raised when too small and put back afterwards.

use std::fs;

use anyhow::{Context as _, Result, bail};
use escape_detector_e2e::KernelSetting;

const PID_MAX: &str = "/proc/sys/kernel/pid_max";
/// Processes others may start meanwhile.
const MARGIN: u64 = 2_000;

/// Limits as raised; dropping it puts back those it changed.
pub struct Raised {
    nproc: Option<libc::rlimit>,
    // Restores itself on drop.
    _pid_max: Option<KernelSetting>,
}

/// Makes room for `extra` more processes (threads count too, for both limits).
pub fn raise_for(extra: u64) -> Result<Raised> {
    let needed = tasks()? + extra + MARGIN;
    let pid_max = match read_number(PID_MAX)? {
        max if max > needed => None,
        _ => {
            let setting = KernelSetting::save(PID_MAX)?;
            fs::write(PID_MAX, needed.to_string())
                .with_context(|| format!("could not raise {PID_MAX} to {needed}"))?;
            println!(
                "raised {PID_MAX} from {} to {needed} for now",
                setting.saved()
            );
            Some(setting)
        }
    };
    let current = nproc()?;
    let nproc = if current.rlim_cur >= needed {
        None
    } else if current.rlim_max < needed {
        bail!(
            "{extra} more processes need RLIMIT_NPROC >= {needed}; its hard limit is {}",
            current.rlim_max
        );
    } else {
        set_nproc(&libc::rlimit {
            rlim_cur: needed,
            rlim_max: current.rlim_max,
        })?;
        println!(
            "raised RLIMIT_NPROC from {} to {needed} for now",
            current.rlim_cur
        );
        Some(current)
    };
    Ok(Raised {
        nproc,
        _pid_max: pid_max,
    })
}

impl Drop for Raised {
    fn drop(&mut self) {
        if let Some(saved) = &self.nproc
            && let Err(error) = set_nproc(saved)
        {
            eprintln!("restoring RLIMIT_NPROC: {error:#}");
        }
    }
}

/// Every task on the machine: the fourth field of /proc/loadavg is `running/total`.
fn tasks() -> Result<u64> {
    let loadavg = fs::read_to_string("/proc/loadavg")?;
    loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|field| field.split_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .with_context(|| format!("unexpected /proc/loadavg: {loadavg}"))
}

fn read_number(path: &str) -> Result<u64> {
    let text = fs::read_to_string(path).with_context(|| format!("could not read {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} holds {text:?}"))
}

fn nproc() -> Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid place for getrlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NPROC)");
    }
    Ok(limit)
}

fn set_nproc(limit: &libc::rlimit) -> Result<()> {
    // SAFETY: limit is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NPROC)");
    }
    Ok(())
}
