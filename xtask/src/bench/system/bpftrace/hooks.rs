//! The hooks escape-detector attaches on this kernel, as bpftrace probes: read from `escape-detector
//! probe`, whose rows marked "will use" name each sensor's backend and programs (a program is
//! named after its hook).

use std::{fs, path::Path, process::Command};

use anyhow::{Result, ensure};

use crate::cmd;

const CHOSEN: &str = "<- will use; ";
const TRACEFS_EVENTS: &str = "/sys/kernel/tracing/events";

/// bpftrace probe specifications for the hooks the detector would attach here.
pub fn bpftrace_probes(detector: &Path) -> Result<Vec<String>> {
    let report = cmd::output(Command::new(detector).arg("probe"))?;
    let mut probes = Vec::new();
    for (backend, program) in chosen_programs(&report) {
        if let Some(probe) = bpftrace_probe(&backend, &program)? {
            probes.push(probe);
        }
    }
    ensure!(
        !probes.is_empty(),
        "`{} probe` marks no hook it will use:\n{report}",
        detector.display()
    );
    Ok(probes)
}

/// (backend, program) of every program of the rows marked as chosen: such a row reads
/// `<sensor> via <backend>  yes  <- will use; <program>, <program> (<what it feeds>)`.
fn chosen_programs(report: &str) -> Vec<(String, String)> {
    let mut chosen = Vec::new();
    for line in report.lines() {
        let Some((feature, programs)) = line.split_once(CHOSEN) else {
            continue;
        };
        let mut words = feature.split_whitespace();
        let Some(backend) = words.by_ref().skip_while(|word| *word != "via").nth(1) else {
            continue;
        };
        let programs = programs.split(" (").next().unwrap_or_default();
        for program in programs.split(", ") {
            chosen.push((backend.to_owned(), program.trim().to_owned()));
        }
    }
    chosen
}

/// The bpftrace probe for one program, or `None` for a tracepoint this kernel lacks (the
/// detector treats such syscalls as optional). bpftrace 0.17 has no raw tracepoint probes:
/// those become the tracepoint of the same name, which costs a few nanoseconds more a hit. An
/// LSM program runs on the kernel's `bpf_lsm_<hook>` function, and fentry/fexit programs on
/// the function they are named after: bpftrace's kfunc attaches the same kind of trampoline.
fn bpftrace_probe(backend: &str, program: &str) -> Result<Option<String>> {
    Ok(match backend {
        "tracepoint" => {
            tracepoint_category(program)?.map(|cat| format!("tracepoint:{cat}:{program}"))
        }
        "lsm" => Some(format!("kfunc:bpf_lsm_{program}")),
        _ => Some(format!("kfunc:{program}")),
    })
}

/// The tracefs category (`syscalls`, `sched`, ...) of tracepoint `name`.
fn tracepoint_category(name: &str) -> Result<Option<String>> {
    for category in fs::read_dir(TRACEFS_EVENTS)? {
        let category = category?;
        if category.path().join(name).is_dir() {
            return Ok(Some(category.file_name().to_string_lossy().into_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
FEATURE                               OK     NOTE
tracefs                               yes    /sys/kernel/tracing
process lifecycle via tracepoint      yes    <- will use; sched_process_exec, sched_process_fork (process table)
file writes via lsm                   no     file_open (cgroup-release-agent, kernel-helper-hijack)
file writes via tracepoint            yes    <- will use; sys_exit_openat, sys_exit_open (cgroup-release-agent, kernel-helper-hijack)
module loads (not needed)             yes    the kernel has no module support (no /proc/modules)
mounts via fentry                     yes    <- will use; vfs_get_tree (sensitive-mount)
";

    #[test]
    fn reads_the_programs_of_the_chosen_rows_only() {
        let chosen = chosen_programs(REPORT);
        let pairs: Vec<(&str, &str)> = chosen
            .iter()
            .map(|(backend, program)| (backend.as_str(), program.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("tracepoint", "sched_process_exec"),
                ("tracepoint", "sched_process_fork"),
                ("tracepoint", "sys_exit_openat"),
                ("tracepoint", "sys_exit_open"),
                ("fentry", "vfs_get_tree"),
            ]
        );
    }

    #[test]
    fn maps_lsm_and_function_hooks_to_kfuncs() {
        assert_eq!(
            bpftrace_probe("lsm", "file_open").unwrap().as_deref(),
            Some("kfunc:bpf_lsm_file_open")
        );
        assert_eq!(
            bpftrace_probe("fentry", "security_bpf").unwrap().as_deref(),
            Some("kfunc:security_bpf")
        );
    }
}
