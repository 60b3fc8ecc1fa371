//! Where the workloads run and how idle CPUs wait: pinning, and the CPU idle states held off
//! while the bench measures.
//!
//! On a VM, an idle CPU halts, and waking it (an IPI, a VM exit and entry) costs more than the
//! work of a fork or a redis request. Whichever run leaves the CPUs idlest pays most: the
//! baseline, which then measures slower than the same workload under an agent. The bench keeps
//! idle CPUs in the polling state instead, as latency benchmarks do, so that a run measures
//! the work the workload and its watcher make; the machine's idle states come back afterwards.

use std::{fs, os::unix::process::CommandExt as _, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};
use escape_detector_e2e::KernelSetting;

/// Where the syscall loops, the exec storm and redis-benchmark run; redis-server runs on
/// [`SERVER_CPU`].
pub const WORKLOAD_CPU: usize = 1;
pub const SERVER_CPU: usize = 0;

const CPUS: &str = "/sys/devices/system/cpu";
/// The idle state that never halts: the first one on x86, named so by the kernel.
const POLLING: &str = "POLL";

/// The machine must have the CPUs the workloads are pinned to.
pub fn check_cpus() -> Result<()> {
    let cpus = std::thread::available_parallelism()?.get();
    if [SERVER_CPU, WORKLOAD_CPU].iter().any(|&cpu| cpu >= cpus) {
        bail!(
            "the workloads run on CPU {WORKLOAD_CPU} and redis-server on CPU {SERVER_CPU}; this \
             machine has {cpus}"
        );
    }
    Ok(())
}

/// Runs the command on `cpu` alone, so that it does not wander between CPUs mid-measurement.
pub fn pin(command: &mut Command, cpu: usize) -> &mut Command {
    // SAFETY: between fork and exec the closure calls only sched_setaffinity on a set it built
    // on its own stack: async-signal-safe, no allocation.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The deeper idle states, disabled; dropping it enables those that were enabled before.
pub struct PollingIdle {
    // Each restores its saved value on drop.
    _disabled: Vec<KernelSetting>,
}

/// Disables every idle state but polling on every CPU that has cpuidle states; does nothing
/// where the kernel has none, or no polling state to fall back to.
pub fn hold_idle_polling() -> Result<PollingIdle> {
    let mut disabled = Vec::new();
    for state in deeper_idle_states()? {
        let switch = state.join("disable");
        let setting = KernelSetting::save(&switch)?;
        fs::write(&switch, "1").with_context(|| format!("could not write {}", switch.display()))?;
        disabled.push(setting);
    }
    if disabled.is_empty() {
        println!("CPU idle: no idle state to disable (no cpuidle, or no polling state)");
    } else {
        println!(
            "CPU idle: polling while the bench runs ({} deeper states disabled for now)",
            disabled.len()
        );
    }
    Ok(PollingIdle {
        _disabled: disabled,
    })
}

/// `.../cpuN/cpuidle/stateK` for every K > 0 of every CPU whose state 0 is the polling one.
fn deeper_idle_states() -> Result<Vec<PathBuf>> {
    let mut states = Vec::new();
    for cpu in fs::read_dir(CPUS)? {
        let idle = cpu?.path().join("cpuidle");
        let polls =
            fs::read_to_string(idle.join("state0/name")).is_ok_and(|name| name.trim() == POLLING);
        if !polls {
            continue;
        }
        for state in fs::read_dir(&idle)? {
            let state = state?.path();
            let deeper = state
                .file_name()
                .and_then(|name| name.to_str()?.strip_prefix("state"))
                .is_some_and(|index| index != "0");
            if deeper {
                states.push(state);
            }
        }
    }
    Ok(states)
}
