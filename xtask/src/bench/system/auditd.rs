//! auditd as a system under comparison: the Linux audit subsystem with rules for the acts the
//! detector watches, and an auditd of the bench's own writing the records to a private log.
//!
//! Audit has no notion of containers, so its rules see the acts of every process on the host;
//! and it has no superblock-and-name file identity, so the kernel helper files are path watches.

mod state;

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use escape_detector_e2e::temp_dir::TempDir;

use super::{System, Watcher};
use crate::{
    bench::{daemon::Daemon, wait},
    cmd,
};
use state::{KEY, SavedAudit};

/// The system calls of the acts the detector watches, on x86_64: exec, namespace entry, mounts
/// (the old and the new API), bpf, process access, connects, module loads.
const SYSCALLS: &[&str] = &[
    "execve,execveat",
    "setns",
    "mount,fsconfig",
    "bpf",
    "ptrace,process_vm_readv,process_vm_writev",
    "connect",
    "init_module,finit_module",
];

/// The files the kernel runs as root whatever writes them, watched for writes where this
/// kernel has them; cgroup v1 `release_agent` files are found per hierarchy.
const HELPER_FILES: &[&str] = &[
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/kernel/hotplug",
    "/sys/kernel/uevent_helper",
    "/proc/sys/fs/binfmt_misc/register",
];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Room for the records of an exec storm, as distributions' audit.rules give it; the kernel's
/// default (64) would make audited processes wait for auditd.
const BACKLOG_LIMIT: u32 = 8192;

const READY_LIMIT: Duration = Duration::from_secs(10);

pub struct Auditd {
    rules: String,
}

impl Auditd {
    pub fn new() -> Result<Auditd> {
        Ok(Auditd {
            rules: rules(&watched_files()?),
        })
    }
}

impl System for Auditd {
    fn name(&self) -> &'static str {
        "auditd"
    }

    /// Audit rules match every process.
    fn sees_host_processes(&self) -> bool {
        true
    }

    fn start(&self) -> Result<Box<dyn Watcher>> {
        let running = state::status()?.pid;
        if running != 0 {
            bail!(
                "an audit daemon (pid {running}) already runs; the bench compares only one of \
                 its own: stop it, or leave auditd out with --systems"
            );
        }
        // Saved before auditd starts, since auditd switches auditing on.
        let saved = SavedAudit::save()?;
        let dir = TempDir::new("auditd")?;
        write_config(dir.path())?;
        let rules_file = dir.path().join("audit.rules");
        fs::write(&rules_file, &self.rules)?;
        // -n: in the foreground, a child the bench can stop; -c: our config, not the machine's.
        let mut daemon = Daemon::spawn(
            "auditd",
            Command::new("auditd").arg("-n").arg("-c").arg(dir.path()),
            libc::SIGTERM,
        )?;
        wait::until("auditd registering with the kernel", READY_LIMIT, || {
            daemon.ensure_running()?;
            Ok(state::status()?.pid == daemon.pid())
        })?;
        cmd::output(state::auditctl().arg("-R").arg(&rules_file))?;
        Ok(Box::new(RunningAuditd { daemon, saved, dir }))
    }
}

/// Dropped, it stops auditd first and then restores the audit state (fields drop in order).
struct RunningAuditd {
    daemon: Daemon,
    saved: SavedAudit,
    dir: TempDir,
}

impl Watcher for RunningAuditd {
    fn pid(&self) -> Option<u32> {
        Some(self.daemon.pid())
    }

    fn stop(mut self: Box<Self>) -> Result<Option<u64>> {
        // Rules first, so that nothing is audited without a daemon to take it.
        self.saved.remove_rules()?;
        self.daemon.stop()?;
        let records = count_records(self.dir.path())?;
        self.saved.restore()?;
        Ok(Some(records))
    }
}

/// The rules file: the backlog, one syscall rule per group of acts, one watch per file.
fn rules(watched: &[PathBuf]) -> String {
    let mut rules = format!("-b {BACKLOG_LIMIT}\n");
    for syscalls in SYSCALLS {
        rules += &format!("-a always,exit -F arch=b64 -S {syscalls} -k {KEY}\n");
    }
    for file in watched {
        rules += &format!("-w {} -p w -k {KEY}\n", file.display());
    }
    rules
}

fn watched_files() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = HELPER_FILES.iter().map(PathBuf::from).collect();
    if let Ok(hierarchies) = fs::read_dir(CGROUP_ROOT) {
        for hierarchy in hierarchies {
            files.push(hierarchy?.path().join("release_agent"));
        }
    }
    files.retain(|file| file.exists());
    Ok(files)
}

/// Debian's auditd.conf, with the log in `dir`, no plugins, and no action on a full disk
/// (Debian's would suspend logging, or mail someone).
fn write_config(dir: &Path) -> Result<()> {
    let plugins = dir.join("plugins");
    fs::DirBuilder::new().mode(0o750).create(&plugins)?;
    let config = format!(
        "local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 8
num_logs = 5
priority_boost = 4
name_format = NONE
max_log_file_action = ROTATE
space_left = 75
space_left_action = IGNORE
admin_space_left = 50
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = SYSLOG
max_restarts = 10
plugin_dir = {plugins}
end_of_event_timeout = 2
",
        log = dir.join("audit.log").display(),
        plugins = plugins.display(),
    );
    let path = dir.join("auditd.conf");
    fs::write(&path, config)?;
    // auditd refuses a config file others may write.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640))
        .with_context(|| format!("could not restrict {}", path.display()))
}

/// Records of the bench's rules in the log, rotated files included: one per audited event.
fn count_records(dir: &Path) -> Result<u64> {
    let tag = format!("key=\"{KEY}\"");
    let mut records = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_log = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("audit.log"));
        if is_log {
            let log = fs::read_to_string(&path)?;
            records += log.lines().filter(|line| line.contains(&tag)).count() as u64;
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_set_the_backlog_then_syscalls_then_watches() {
        let rules = rules(&[PathBuf::from("/proc/sys/kernel/core_pattern")]);
        let lines: Vec<&str> = rules.lines().collect();
        assert_eq!(lines[0], "-b 8192");
        assert_eq!(
            lines[1],
            "-a always,exit -F arch=b64 -S execve,execveat -k escdet-bench"
        );
        assert_eq!(
            lines.last(),
            Some(&"-w /proc/sys/kernel/core_pattern -p w -k escdet-bench")
        );
        assert_eq!(lines.len(), 1 + SYSCALLS.len() + 1);
    }
}
