//! The kernel hooks, as data: which program attaches where, and whether the agent can run
//! without it. A hook the kernel lacks is reported and the agent runs with the rest.

use aya::{
    Ebpf,
    programs::{RawTracePoint, TracePoint},
};

#[derive(Debug, Clone, Copy)]
pub enum Hook {
    RawTracepoint(&'static str),
    Tracepoint(&'static str, &'static str),
}

pub struct Probe {
    /// The program's name in the kernel object (and the `probe` metric label).
    pub program: &'static str,
    pub hook: Hook,
    /// Without it the process table cannot be kept, so the agent refuses to run.
    pub required: bool,
    /// What depends on it, for the log and `escape-detector probe`.
    pub feeds: &'static str,
}

const fn raw(program: &'static str, feeds: &'static str, required: bool) -> Probe {
    Probe {
        program,
        hook: Hook::RawTracepoint(program),
        required,
        feeds,
    }
}

const fn syscall(program: &'static str, feeds: &'static str) -> Probe {
    Probe {
        program,
        hook: Hook::Tracepoint("syscalls", program),
        required: false,
        feeds,
    }
}

pub const PROBES: &[Probe] = &[
    raw("sched_process_exec", "process table", true),
    raw("sched_process_fork", "process table", true),
    raw("sched_process_exit", "process table", true),
    raw("cgroup_attach_task", "container attribution", false),
    syscall("sys_enter_setns", "host-namespace-entry"),
    syscall("sys_exit_setns", "host-namespace-entry"),
    syscall(
        "sys_exit_openat",
        "cgroup-release-agent, kernel-helper-hijack",
    ),
    syscall(
        "sys_exit_openat2",
        "cgroup-release-agent, kernel-helper-hijack",
    ),
    syscall(
        "sys_exit_open",
        "cgroup-release-agent, kernel-helper-hijack",
    ),
    syscall("sys_enter_mount", "sensitive-mount"),
    syscall("sys_exit_mount", "sensitive-mount"),
];

pub struct Attachment {
    pub probe: &'static Probe,
    pub error: Option<String>,
}

/// Loads and attaches every probe; failures are collected, not fatal here.
pub fn attach_all(ebpf: &mut Ebpf) -> Vec<Attachment> {
    PROBES
        .iter()
        .map(|probe| Attachment {
            probe,
            error: attach(ebpf, probe).err().map(|e| format!("{e:#}")),
        })
        .collect()
}

fn attach(ebpf: &mut Ebpf, probe: &Probe) -> anyhow::Result<()> {
    let program = ebpf
        .program_mut(probe.program)
        .ok_or_else(|| anyhow::anyhow!("program {} missing from the object", probe.program))?;
    match probe.hook {
        Hook::RawTracepoint(name) => {
            let p: &mut RawTracePoint = program.try_into()?;
            p.load()?;
            p.attach(name)?;
        }
        Hook::Tracepoint(category, name) => {
            let p: &mut TracePoint = program.try_into()?;
            p.load()?;
            p.attach(category, name)?;
        }
    }
    Ok(())
}
