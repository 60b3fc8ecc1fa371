//! State: the process, cgroup and container tables, kept current by the kernel's lifecycle
//! events; they attribute an act to its container process, find the process it was aimed at,
//! and take the actor's snapshot for the alert.

use std::{collections::HashSet, sync::Arc, time::Instant};

use detector_common::{
    CgroupAttachEvent, EventKind, ExecEvent, ForkEvent, Header, Namespaces, user::Event,
};

use super::{emit::Actor, judge::Who};
use crate::{
    alert::ProcessInfo,
    metrics::{ActDropped, Metrics},
    rules::{self, Target},
    state::{
        cgroup,
        cgroup_table::CgroupTable,
        container::{ContainerTable, Origin},
        process::{Process, ProcessTable},
        procfs,
    },
};

pub struct State {
    pub processes: ProcessTable,
    pub cgroups: CgroupTable,
    pub containers: ContainerTable,
    pub metrics: Arc<Metrics>,
}

impl State {
    /// Classifies the cgroups that exist (the kernel records those made from now on), so the
    /// kernel filters by the same identity as the agent.
    pub fn load_cgroups(&mut self) {
        let (walked, containers) = self.cgroups.load_existing();
        log::info!("{walked} cgroups found, {containers} of them containers'");
    }

    /// Seeds the process table with the container processes /proc shows.
    pub fn load_snapshot(&mut self, processes: Vec<Process>) {
        for process in processes {
            let pid = process.pid;
            self.processes.insert(process);
            self.attribute(pid);
        }
        self.update_gauges();
    }

    /// A new image; returns the process's namespaces before it, unless the entry was another,
    /// ended process's.
    pub fn on_exec(&mut self, e: &ExecEvent) -> Option<Namespaces> {
        let before = self
            .processes
            .get(e.header.tgid)
            .filter(|p| p.exited_at.is_none() && p.start_ns == e.start_ns)
            .map(|p| p.ns);
        let missed = self.processes.on_exec(e, self.cgroups.hierarchy());
        // A container's first process: the runtime's set-up before it sent nothing.
        self.count_miss(missed && !e.header.identity.entered());
        self.attribute(e.header.tgid);
        before
    }

    pub fn on_fork(&mut self, e: &ForkEvent) {
        let missed = self.processes.on_fork(e, self.cgroups.hierarchy());
        self.count_miss(missed);
        self.attribute(e.header.tgid);
    }

    pub fn on_exit(&mut self, tgid: u32, now: Instant) {
        self.processes.on_exit(tgid, now);
    }

    /// A process moved into another cgroup; returns whether it was a known container process
    /// before.
    pub fn on_cgroup_attach(&mut self, e: &CgroupAttachEvent) -> bool {
        let known = self
            .processes
            .get(e.header.tgid)
            .is_some_and(|p| p.container_id.is_some());
        self.look_up(e.header.tgid);
        if let Some(process) = self.processes.get_mut(e.header.tgid) {
            process.cgroup_id = e.header.identity.cgroup_id;
        }
        self.attribute(e.header.tgid);
        known
    }

    /// The process lives in these namespaces now.
    pub fn set_namespaces(&mut self, tgid: u32, ns: Namespaces) {
        if let Some(process) = self.processes.get_mut(tgid) {
            process.ns = ns;
        }
    }

    /// Forgets old exits.
    pub fn sweep(&mut self, now: Instant) {
        self.processes.sweep(now);
        self.update_gauges();
    }

    fn count_miss(&mut self, missed: bool) {
        if missed {
            self.metrics.process_cache_misses_total.inc();
        }
    }

    /// Sets the process's container from the cgroup the kernel named for it. A process keeps
    /// its container when that cgroup turns out to be the host's: it left the container.
    fn attribute(&mut self, pid: u32) -> Option<String> {
        let (cgroup_id, origin) = self
            .processes
            .get(pid)
            .map(|p| (p.cgroup_id, Origin::of(p)))?;
        let found = self.cgroups.lookup(cgroup_id, pid).map(|c| {
            (
                c.path.clone(),
                self.containers.register(&c.container, origin),
            )
        });
        let process = self.processes.get_mut(pid)?;
        if let Some((path, id)) = found {
            process.cgroup = Some(path);
            process.container_id = Some(id);
        }
        process.container_id.clone()
    }

    /// Puts the process in the table, from /proc when the kernel's events missed it; a host
    /// process read so (one that moved a container's process) is not kept: the table holds
    /// container processes, whose exits the kernel reports.
    fn look_up(&mut self, pid: u32) {
        let (_, missed) = self.processes.get_or_read(pid, self.cgroups.hierarchy());
        if !missed {
            return;
        }
        if self.attribute(pid).is_some() {
            self.count_miss(true);
        } else {
            self.processes.remove(pid);
        }
    }

    /// Whether the process an act is about belongs to a container. The kernel sends acts of
    /// container processes and of processes in cgroups it had not heard the agent's verdict on
    /// yet; those the agent decides now, and counts when they were a container's. An act the
    /// kernel sent as a container's that the agent cannot attribute is counted and logged.
    pub fn is_container_actor(&mut self, header: &Header) -> bool {
        self.look_up(header.tgid);
        if let Some(process) = self.processes.get_mut(header.tgid)
            && process.cgroup_id != header.identity.cgroup_id
        {
            process.cgroup_id = header.identity.cgroup_id;
        }
        let is_container = self.attribute(header.tgid).is_some();
        if is_container && header.identity.is_unclassified() {
            self.metrics.unclassified_acts_total.inc();
        }
        if !is_container && header.identity.is_container() {
            let kind = EventKind::from_u32(header.kind).unwrap_or(EventKind::Exec);
            self.metrics.act_dropped(kind, ActDropped::ActorUnknown);
            log::warn!(
                "{} act of pid {}: no container found for cgroup {}",
                kind.name(),
                header.tgid,
                header.identity.cgroup_id
            );
        }
        is_container
    }

    /// The process as the rules see it, when it belongs to a container.
    pub fn who(&self, tgid: u32) -> Option<Who<'_>> {
        let process = self.processes.get(tgid)?;
        let container_id = process.container_id.as_deref()?;
        Some(Who {
            pid: process.pid,
            comm: &process.comm,
            container_id,
            ns: process.ns,
            origin: self.containers.origin(container_id),
        })
    }

    /// The acting process as it is now, for the alert, when it belongs to a container.
    pub fn actor(&mut self, header: &Header) -> Option<Actor> {
        let process = self.processes.get(header.tgid)?;
        let container_id = process.container_id.clone()?;
        let info = ProcessInfo {
            pid: process.pid,
            tid: header.tid,
            ppid: process.ppid,
            uid: process.uid,
            euid: process.euid,
            comm: process.comm.clone(),
            exe: process.exe.clone(),
            args: process.args.clone(),
            cgroup: process.cgroup.clone(),
            ancestors: self.processes.ancestors(process.pid),
        };
        Some(Actor {
            seen_ns: header.ktime_ns,
            start_ns: header.start_ns,
            ns: process.ns,
            process: info,
            container: self.containers.info(&container_id),
            container_id,
            truncated: process.cut.clone(),
        })
    }

    /// The process an act was aimed at. The kernel names it by host pid where it can; syscall
    /// tracepoints only have the pid as the caller named it, in the caller's pid namespace.
    pub fn target(&mut self, event: &Event) -> Option<Target> {
        let Event::Ptrace(e) = event else {
            return None;
        };
        let pid = match e.target_tgid {
            0 => {
                // The caller may be gone: its pid namespace came with the event. Outside the
                // host's, the target is one of the container processes that share it.
                let candidates = self
                    .processes
                    .iter()
                    .filter(|p| p.exited_at.is_none())
                    .map(|p| p.pid);
                procfs::host_pid_of(e.caller_pid_ns, e.target_vpid, candidates)?
            }
            tgid => tgid,
        };
        if let Some(process) = self.processes.get(pid).filter(|p| p.exited_at.is_none()) {
            return Some(Target {
                pid,
                comm: process.comm.clone(),
                container_id: process.container_id.clone(),
            });
        }
        // Not a container process the table knows: most often a host process, which is read
        // for the alert and not kept.
        let process = procfs::read_process(pid, self.cgroups.hierarchy())?;
        let container_id = self
            .cgroups
            .lookup(process.cgroup_id, pid)
            .map(|c| self.containers.register(&c.container, Origin::of(&process)));
        Some(Target {
            pid,
            comm: process.comm,
            container_id,
        })
    }

    /// A cgroup move as its mover's act: the mover (when it is a container process) and the
    /// process it moved, with the container of the cgroup it moved it to.
    pub fn mover(&mut self, e: &CgroupAttachEvent) -> Option<(Header, Target)> {
        let mover = Header::new(
            EventKind::CgroupAttach,
            e.mover_tgid,
            e.mover_tgid,
            e.header.ktime_ns,
        );
        self.look_up(mover.tgid);
        self.attribute(mover.tgid)?;
        let moved = e.header.tgid;
        // Another v1 hierarchy's cgroup ids are not in the table: its path says whose it is.
        let to = if e.hierarchy_id == self.cgroups.hierarchy().hierarchy_id {
            self.cgroups
                .lookup(e.cgroup_id, moved)
                .map(|c| c.container.id.clone())
        } else {
            cgroup::classify(&rules::text(&e.path)).map(|c| c.id)
        };
        let target = Target {
            pid: moved,
            comm: self
                .processes
                .get(moved)
                .map(|p| p.comm.clone())
                .unwrap_or_default(),
            container_id: to,
        };
        Some((mover, target))
    }

    fn update_gauges(&mut self) {
        let live: HashSet<&str> = self
            .processes
            .iter()
            .filter(|p| p.exited_at.is_none())
            .filter_map(|p| p.container_id.as_deref())
            .collect();
        self.containers.retain(&live);
        self.metrics
            .tracked_processes
            .set(self.processes.live_count() as i64);
        self.metrics
            .tracked_containers
            .set(self.containers.len() as i64);
    }
}
