//! The process table: container processes, seeded from /proc and kept current by the kernel's
//! exec, fork, exit and cgroup events, which it sends for container processes only. A process
//! is its tgid and its leader's start time, so a process that reuses a pid is a new entry, and
//! it ends when its last thread exits, not its leader. Exited processes stay a few seconds, so
//! late events and their children's ancestry still resolve.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use detector_common::{ExecEvent, FileId, ForkEvent, Namespaces, user::c_bytes};

use super::{identity_hierarchy::IdentityHierarchy, procfs};
use crate::{alert::Ancestor, truncation};

/// How long an exited process is kept for late events and descendants' ancestry.
const EXITED_GRACE: Duration = Duration::from_secs(5);
/// Ancestors listed in an alert, nearest first.
const MAX_ANCESTORS: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct Process {
    pub pid: u32,
    /// The leader's `start_time` (kernel nanoseconds) from the kernel's events; 0 when the
    /// process was read from /proc, which only tells it in clock ticks.
    pub start_ns: u64,
    pub ppid: u32,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub comm: String,
    pub exe: Option<String>,
    pub args: Vec<String>,
    /// The cgroup (identity hierarchy) that makes it a container process, as the kernel
    /// reported it, and that cgroup's path.
    pub cgroup_id: u64,
    pub cgroup: Option<String>,
    /// The container, once attributed; it stays when the process leaves the container's
    /// cgroup.
    pub container_id: Option<String>,
    pub ns: Namespaces,
    /// Its root directory.
    pub root: FileId,
    pub cap_effective: u64,
    pub exited_at: Option<Instant>,
    /// Which of its values the kernel cut (`truncation::ARGS`, `truncation::EXE`).
    pub cut: Vec<&'static str>,
}

#[derive(Default)]
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
}

fn text(buf: &[u8]) -> String {
    String::from_utf8_lossy(c_bytes(buf)).into_owned()
}

impl ProcessTable {
    pub fn remove(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

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
    pub fn get_or_read(
        &mut self,
        pid: u32,
        hierarchy: &IdentityHierarchy,
    ) -> (Option<&Process>, bool) {
        let missed = !self.processes.contains_key(&pid);
        if missed && let Some(process) = procfs::read_process(pid, hierarchy) {
            self.processes.insert(pid, process);
        }
        (self.processes.get(&pid), missed)
    }

    /// A new container process: a copy of the process that forked it (same image and
    /// namespaces) until it execs. Returns true when that process was unknown and the child
    /// had to be read from /proc.
    pub fn on_fork(&mut self, e: &ForkEvent, hierarchy: &IdentityHierarchy) -> bool {
        let pid = e.header.tgid;
        let creator = self
            .processes
            .get(&e.creator_tgid)
            .filter(|p| p.exited_at.is_none())
            .cloned();
        let missed = creator.is_none();
        let mut child = match creator {
            Some(creator) => Process {
                container_id: None,
                cgroup: None,
                ..creator
            },
            None => procfs::read_process(pid, hierarchy).unwrap_or_default(),
        };
        child.pid = pid;
        child.ppid = e.ppid;
        child.start_ns = e.start_ns;
        child.cgroup_id = e.header.identity.cgroup_id;
        child.exited_at = None;
        self.processes.insert(pid, child);
        missed
    }

    /// A new image. An entry for the same pid but another start time is a process that has
    /// ended; the exec starts afresh from /proc. Returns true on a cache miss.
    pub fn on_exec(&mut self, e: &ExecEvent, hierarchy: &IdentityHierarchy) -> bool {
        let pid = e.header.tgid;
        if self
            .processes
            .get(&pid)
            .is_some_and(|p| p.start_ns != 0 && p.start_ns != e.start_ns)
        {
            self.processes.remove(&pid);
        }
        let (_, missed) = self.get_or_read(pid, hierarchy);
        let process = self.processes.entry(pid).or_default();
        process.pid = pid;
        process.start_ns = e.start_ns;
        process.ppid = e.ppid;
        process.uid = Some(e.uid);
        process.euid = Some(e.euid);
        process.comm = text(&e.comm);
        process.exe = Some(text(&e.filename)).filter(|s| !s.is_empty());
        process.cut = truncation::of_exec(e);
        process.args = if e.args_len == 0 {
            // The kernel could not read argv: /proc has it while the process runs this image.
            procfs::args_of(pid, &process.comm).unwrap_or_else(|| {
                process.cut.push(truncation::ARGS);
                Vec::new()
            })
        } else {
            procfs::split_args(e.argv())
        };
        process.ns = e.ns;
        process.root = e.root;
        process.cap_effective = e.cap_effective;
        process.cgroup_id = e.header.identity.cgroup_id;
        process.exited_at = None;
        missed
    }

    /// The process's last thread exited.
    pub fn on_exit(&mut self, pid: u32, now: Instant) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.exited_at = Some(now);
        }
    }

    /// Forgets processes that exited more than the grace period ago.
    pub fn sweep(&mut self, now: Instant) {
        self.processes.retain(|_, p| {
            p.exited_at
                .is_none_or(|at| now.duration_since(at) < EXITED_GRACE)
        });
    }

    /// The chain of parents, nearest first: container processes from the table, then the host
    /// processes above them (the runtime's) from /proc.
    pub fn ancestors(&self, pid: u32) -> Vec<Ancestor> {
        self.processes
            .get(&pid)
            .map(|p| self.ancestors_from(p.ppid))
            .unwrap_or_default()
    }

    /// The chain of parents from `ppid` up, nearest first.
    pub fn ancestors_from(&self, ppid: u32) -> Vec<Ancestor> {
        let mut chain = Vec::new();
        let mut next = Some(ppid);
        while let Some(ppid) = next.filter(|&p| p != 0 && chain.len() < MAX_ANCESTORS) {
            let parent = match self.processes.get(&ppid) {
                Some(p) => (p.pid, p.comm.clone(), p.exe.clone(), p.ppid),
                None => match procfs::read_ancestor(ppid) {
                    Some(p) => p,
                    None => break,
                },
            };
            let (pid, comm, exe, grandparent) = parent;
            chain.push(Ancestor { pid, comm, exe });
            next = Some(grandparent).filter(|&p| p != pid);
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detector_common::{EventKind, Header, Identity, identity};

    // Pids far above pid_max so /proc never answers for them.
    const P: u32 = 4_000_000_001;

    fn hierarchy() -> IdentityHierarchy {
        IdentityHierarchy {
            controller: None,
            hierarchy_id: 0,
            mount: "/nonexistent".into(),
        }
    }

    fn header(kind: EventKind, tgid: u32) -> Header {
        Header::new(kind, tgid, tgid, 0).with_identity(Identity {
            flags: identity::CONTAINER,
            _pad: 0,
            cgroup_id: 77,
        })
    }

    fn known(pid: u32, ppid: u32, comm: &str) -> Process {
        Process {
            pid,
            ppid,
            comm: comm.into(),
            cgroup_id: 77,
            container_id: Some("abc".into()),
            ..Process::default()
        }
    }

    fn exec(pid: u32, start_ns: u64, comm: &str) -> ExecEvent {
        // SAFETY: plain data; all-zero is a valid ExecEvent.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.header = header(EventKind::Exec, pid);
        e.start_ns = start_ns;
        e.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        e
    }

    /// An exec whose argv the kernel could not read: /proc tells it, for the same image.
    #[test]
    fn argv_the_kernel_could_not_read_comes_from_proc() {
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let mut table = ProcessTable::default();
        table.on_exec(&exec(me, 1, comm.trim()), &hierarchy());
        let args = &table.get(me).unwrap().args;
        assert_eq!(args[0], std::env::args().next().unwrap());
        assert!(table.get(me).unwrap().cut.is_empty());
        // Another image now runs under that pid: nothing is taken for its argv.
        table.on_exec(&exec(me, 1, "not-this-one"), &hierarchy());
        let process = table.get(me).unwrap();
        assert!(process.args.is_empty());
        assert_eq!(process.cut, [truncation::ARGS]);
    }

    /// runc clones a container's init with CLONE_PARENT: its parent is runc's parent, but its
    /// image is the cloning process's.
    #[test]
    fn fork_copies_the_creator_not_the_parent_and_exec_replaces_the_image() {
        let mut table = ProcessTable::default();
        table.insert(known(P, 1, "runc:[2:INIT]"));
        table.insert(known(P + 5, 1, "runc"));
        let fork = ForkEvent {
            header: header(EventKind::Fork, P + 1),
            ppid: P + 5,
            creator_tgid: P,
            start_ns: 1000,
        };
        assert!(!table.on_fork(&fork, &hierarchy()));
        let child = table.get(P + 1).unwrap();
        assert_eq!((child.comm.as_str(), child.ppid), ("runc:[2:INIT]", P + 5));
        assert_eq!((child.start_ns, child.cgroup_id), (1000, 77));
        assert_eq!(child.container_id, None, "the pipeline attributes it");

        let mut e = exec(P + 1, 1000, "nsenter");
        e.ppid = P + 5;
        e.filename[..12].copy_from_slice(b"/bin/nsenter");
        let argv = b"nsenter\0-t\x0042\0";
        e.args[..argv.len()].copy_from_slice(argv);
        e.args_len = argv.len() as u32;
        assert!(!table.on_exec(&e, &hierarchy()));
        let child = table.get(P + 1).unwrap();
        assert_eq!(child.comm, "nsenter");
        assert_eq!(child.exe.as_deref(), Some("/bin/nsenter"));
        assert_eq!(child.args, ["nsenter", "-t", "42"]);
        assert_eq!(table.ancestors(P + 1)[0].comm, "runc");
    }

    #[test]
    fn an_exec_with_another_start_time_is_another_process() {
        let mut table = ProcessTable::default();
        let mut old = known(P, 1, "sh");
        old.start_ns = 5;
        table.insert(old);
        table.on_exec(&exec(P, 5, "ls"), &hierarchy());
        assert_eq!(table.get(P).unwrap().container_id.as_deref(), Some("abc"));
        table.on_exec(&exec(P, 6, "ls"), &hierarchy());
        assert_eq!(
            table.get(P).unwrap().container_id,
            None,
            "nothing inherited"
        );
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
