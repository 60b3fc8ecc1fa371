//! The process table: seeded from /proc, kept current by exec, fork, exit and cgroup events.
//! Exited processes stay a few seconds, so late events and their children's ancestry still
//! resolve.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use detector_common::{CgroupAttachEvent, ExecEvent, ForkEvent, Namespaces, user::c_bytes};

use super::procfs;
use crate::alert::Ancestor;

/// How long an exited process is kept for late events and descendants' ancestry.
const EXITED_GRACE: Duration = Duration::from_secs(5);
/// Ancestors listed in an alert, nearest first.
const MAX_ANCESTORS: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub comm: String,
    pub exe: Option<String>,
    pub args: Vec<String>,
    pub cgroup: Option<String>,
    /// Set by the container table from `cgroup`.
    pub container_id: Option<String>,
    pub ns: Namespaces,
    pub exited_at: Option<Instant>,
}

#[derive(Default)]
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
}

/// What changed for a process, so the caller can re-attribute its container.
pub enum Change {
    None,
    Cgroup(u32),
}

fn text(buf: &[u8]) -> String {
    String::from_utf8_lossy(c_bytes(buf)).into_owned()
}

impl ProcessTable {
    pub fn insert(&mut self, process: Process) {
        self.processes.insert(process.pid, process);
    }

    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Process> {
        self.processes.get_mut(&pid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    /// Live (not exited) processes.
    pub fn live_count(&self) -> usize {
        self.processes
            .values()
            .filter(|p| p.exited_at.is_none())
            .count()
    }

    /// The process, read from /proc when the table does not know it. The flag says whether it
    /// was a cache miss.
    pub fn get_or_read(&mut self, pid: u32) -> (Option<&Process>, bool) {
        let missed = !self.processes.contains_key(&pid);
        if missed && let Some(process) = procfs::read_process(pid) {
            self.processes.insert(pid, process);
        }
        (self.processes.get(&pid), missed)
    }

    /// A new process: a copy of its parent (same image, cgroup and namespaces) until it execs.
    /// Returns true when the parent was unknown and had to be read from /proc.
    pub fn on_fork(&mut self, e: &ForkEvent) -> bool {
        let (parent, missed) = self.get_or_read(e.ppid);
        let mut child = parent.cloned().unwrap_or_default();
        child.pid = e.header.tgid;
        child.ppid = e.ppid;
        child.exited_at = None;
        self.processes.insert(child.pid, child);
        missed
    }

    /// A new image. The cgroup does not change at exec; a process never seen before is read
    /// from /proc for it. Returns true on such a miss.
    pub fn on_exec(&mut self, e: &ExecEvent) -> bool {
        let pid = e.header.tgid;
        let (_, missed) = self.get_or_read(pid);
        let process = self.processes.entry(pid).or_default();
        process.pid = pid;
        process.ppid = e.ppid;
        process.uid = Some(e.uid);
        process.euid = Some(e.euid);
        process.comm = text(&e.comm);
        process.exe = Some(text(&e.filename)).filter(|s| !s.is_empty());
        let args_len = (e.args_len as usize).min(e.args.len());
        process.args = procfs::split_args(&e.args[..args_len]);
        process.ns = e.ns;
        process.exited_at = None;
        missed
    }

    pub fn on_exit(&mut self, pid: u32, now: Instant) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.exited_at = Some(now);
        }
    }

    /// A process moved to another cgroup. Every hierarchy reports the move; the path is kept
    /// when it names a container or when the process had none yet.
    pub fn on_cgroup_attach(&mut self, e: &CgroupAttachEvent, names_container: bool) -> Change {
        let pid = e.header.tgid;
        let Some(process) = self.processes.get_mut(&pid) else {
            return Change::None;
        };
        if names_container || process.cgroup.is_none() {
            process.cgroup = Some(text(&e.path));
            return Change::Cgroup(pid);
        }
        Change::None
    }

    /// Forgets processes that exited more than the grace period ago.
    pub fn sweep(&mut self, now: Instant) {
        self.processes.retain(|_, p| {
            p.exited_at
                .is_none_or(|at| now.duration_since(at) < EXITED_GRACE)
        });
    }

    /// The chain of known parents, nearest first.
    pub fn ancestors(&self, pid: u32) -> Vec<Ancestor> {
        let mut chain = Vec::new();
        let mut next = self.processes.get(&pid).map(|p| p.ppid);
        while let Some(ppid) = next.filter(|&p| p != 0 && chain.len() < MAX_ANCESTORS) {
            let Some(parent) = self.processes.get(&ppid) else {
                break;
            };
            chain.push(Ancestor {
                pid: parent.pid,
                comm: parent.comm.clone(),
                exe: parent.exe.clone(),
            });
            next = Some(parent.ppid).filter(|&p| p != parent.pid);
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detector_common::{EventKind, Header};

    fn header(kind: EventKind, tgid: u32) -> Header {
        Header::new(kind, tgid, tgid, 0)
    }

    fn known(pid: u32, ppid: u32, comm: &str) -> Process {
        Process {
            pid,
            ppid,
            comm: comm.into(),
            cgroup: Some("/docker/abc".into()),
            ..Process::default()
        }
    }

    // Pids far above pid_max so /proc never answers for them.
    const P: u32 = 4_000_000_001;

    #[test]
    fn fork_copies_the_parent_and_exec_replaces_the_image() {
        let mut table = ProcessTable::default();
        table.insert(known(P, 1, "sh"));
        let missed = table.on_fork(&ForkEvent {
            header: header(EventKind::Fork, P + 1),
            ppid: P,
            _pad: 0,
        });
        assert!(!missed);
        assert_eq!(
            table.get(P + 1).unwrap().cgroup.as_deref(),
            Some("/docker/abc")
        );

        let mut exec: ExecEvent = unsafe { std::mem::zeroed() };
        exec.header = header(EventKind::Exec, P + 1);
        exec.ppid = P;
        exec.comm[..7].copy_from_slice(b"nsenter");
        exec.filename[..12].copy_from_slice(b"/bin/nsenter");
        let argv = b"nsenter\0-t\x0042\0";
        exec.args[..argv.len()].copy_from_slice(argv);
        exec.args_len = argv.len() as u32;
        assert!(!table.on_exec(&exec));
        let child = table.get(P + 1).unwrap();
        assert_eq!(child.comm, "nsenter");
        assert_eq!(child.exe.as_deref(), Some("/bin/nsenter"));
        assert_eq!(child.args, ["nsenter", "-t", "42"]);
        assert_eq!(child.cgroup.as_deref(), Some("/docker/abc"));
        assert_eq!(table.ancestors(P + 1)[0].comm, "sh");
    }

    #[test]
    fn exited_processes_linger_for_the_grace_period() {
        let mut table = ProcessTable::default();
        table.insert(known(P, 1, "sh"));
        let t0 = Instant::now();
        table.on_exit(P, t0);
        assert_eq!(table.live_count(), 0);
        table.sweep(t0 + Duration::from_secs(1));
        assert!(table.get(P).is_some());
        table.sweep(t0 + EXITED_GRACE);
        assert!(table.get(P).is_none());
    }

    #[test]
    fn ancestry_stops_at_cycles_and_unknown_parents() {
        let mut table = ProcessTable::default();
        table.insert(known(P, P + 1, "a"));
        table.insert(known(P + 1, P + 2, "b"));
        table.insert(known(P + 2, P + 1, "c"));
        let chain = table.ancestors(P);
        assert!(chain.len() <= MAX_ANCESTORS);
        assert_eq!(chain[0].comm, "b");
    }
}
