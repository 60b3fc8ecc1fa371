//! Events in, alerts out: keeps the process and container tables current, asks the rules
//! about each security event, and raises what they find.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use detector_common::{
    CgroupAttachEvent, EventKind, ExecEvent, FileId, Header, NamespaceEvent, Namespaces, syscall,
    user::Event,
};

use crate::{
    alert::{Action, Alert, ContainerInfo, ProcessInfo, timestamp},
    enforce,
    exceptions::Exceptions,
    folds::{self, Folds},
    incidents::{Incidents, Raised},
    kernel::watched_files::WatchFiles,
    metrics::{ActDropped, Metrics},
    outputs::Outputs,
    rules::{self, Finding, Repeat, Severity, Subject, Target},
    state::{
        agent_self::{AgentSelf, OwnBpfObjects},
        cgroup,
        cgroup_table::CgroupTable,
        container::{ContainerTable, Origin},
        filesystems::Filesystems,
        process::{Process, ProcessTable},
        procfs,
        runtime_files::RuntimeFiles,
    },
    truncation,
};

/// One `nsenter` makes one `setns` call per namespace within microseconds: the calls of one
/// thread within this window are one act, and make one alert.
const NAMESPACE_MERGE_WINDOW: Duration = Duration::from_millis(50);

pub struct PipelineSettings {
    pub hostname: String,
    /// The host's namespaces (the host reference process's), as the kernel programs know them.
    pub host_ns: Namespaces,
    /// The host reference process.
    pub host_pid: u32,
    /// The host's root directory.
    pub host_root: FileId,
    pub enforce: bool,
    pub disabled_rules: HashSet<String>,
    /// usermode-helper-exec's allowlist beyond the distributions' helpers.
    pub extra_usermode_helpers: Vec<PathBuf>,
    pub exceptions: Exceptions,
}

/// Namespace changes of one thread being merged into one act, with the process as it was at
/// the first call (it usually execs a shell right after).
struct HeldNamespaceChange {
    event: NamespaceEvent,
    actor: Actor,
    due: Instant,
    action: Action,
}

/// Who acted, as the rules need to know it.
struct Who<'a> {
    pid: u32,
    comm: &'a str,
    container_id: &'a str,
    ns: Namespaces,
}

/// A container process as it was when it acted.
struct Actor {
    /// When the kernel saw the act (`CLOCK_BOOTTIME`).
    seen_ns: u64,
    process: ProcessInfo,
    /// Its namespaces when it acted.
    ns: Namespaces,
    container_id: String,
    container: Option<ContainerInfo>,
    /// Values of the alert the kernel cut.
    truncated: Vec<&'static str>,
}

impl Actor {
    fn who(&self) -> Who<'_> {
        Who {
            pid: self.process.pid,
            comm: &self.process.comm,
            container_id: &self.container_id,
            ns: self.ns,
        }
    }
}

pub struct Pipeline {
    processes: ProcessTable,
    cgroups: CgroupTable,
    containers: ContainerTable,
    filesystems: Filesystems,
    runtime_files: RuntimeFiles,
    file_watch: Box<dyn WatchFiles>,
    metrics: Arc<Metrics>,
    outputs: Outputs,
    settings: PipelineSettings,
    held: Vec<HeldNamespaceChange>,
    folds: Folds,
    incidents: Incidents,
    agent: AgentSelf,
}

/// What the pipeline tells the kernel: its verdicts on cgroups and the files to watch.
pub struct KernelFilters {
    pub cgroups: CgroupTable,
    pub runtime_files: RuntimeFiles,
    pub file_watch: Box<dyn WatchFiles>,
}

impl Pipeline {
    pub fn new(
        containers: ContainerTable,
        filesystems: Filesystems,
        kernel: KernelFilters,
        metrics: Arc<Metrics>,
        outputs: Outputs,
        settings: PipelineSettings,
    ) -> Pipeline {
        let mut pipeline = Pipeline {
            processes: ProcessTable::default(),
            cgroups: kernel.cgroups,
            containers,
            filesystems,
            runtime_files: kernel.runtime_files,
            file_watch: kernel.file_watch,
            metrics,
            outputs,
            settings,
            held: Vec::new(),
            folds: Folds::default(),
            incidents: Incidents::default(),
            agent: AgentSelf::this_process(),
        };
        pipeline.runtime_files.refresh(pipeline.file_watch.as_mut());
        pipeline
    }

    /// Classifies the cgroups that exist (the kernel records those made from now on), so the
    /// kernel filters by the same identity as the agent.
    pub fn load_cgroups(&mut self) {
        let (walked, containers) = self.cgroups.load_existing();
        log::info!("{walked} cgroups found, {containers} of them containers'");
    }

    /// The detector's own BPF objects, once attached: a container reaching them is tampering.
    pub fn know_own_bpf_objects(&mut self, objects: OwnBpfObjects) {
        self.agent.bpf = objects;
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

    pub fn handle(&mut self, event: &Event, now: Instant) {
        let hierarchy = self.cgroups.hierarchy();
        match event {
            Event::Exec(e) if e.header.identity.helper() => self.judge_helper(e),
            Event::Exec(e) => {
                // What the process was before, unless the entry is another, ended process's.
                let before = self
                    .processes
                    .get(e.header.tgid)
                    .filter(|p| p.exited_at.is_none() && p.start_ns == e.start_ns)
                    .map(|p| p.ns);
                let missed = self.processes.on_exec(e, hierarchy);
                // A container's first process: the runtime's set-up before it sent nothing.
                self.count_miss(missed && !e.header.identity.entered());
                self.attribute(e.header.tgid);
                self.forget_spoken(e.header.tgid);
                self.judge_act(event, before);
            }
            Event::Fork(e) => {
                let missed = self.processes.on_fork(e, hierarchy);
                self.count_miss(missed);
                self.attribute(e.header.tgid);
            }
            Event::Exit(e) => {
                self.processes.on_exit(e.header.tgid, now);
                self.forget_spoken(e.header.tgid);
            }
            // A move in another cgroup v1 hierarchy: the process's identity is unchanged.
            Event::CgroupAttach(e) if e.hierarchy_id != hierarchy.hierarchy_id => {
                self.judge_move(e);
            }
            Event::CgroupAttach(e) => {
                let known = self
                    .processes
                    .get(e.header.tgid)
                    .is_some_and(|p| p.container_id.is_some());
                self.look_up(e.header.tgid);
                if let Some(process) = self.processes.get_mut(e.header.tgid) {
                    process.cgroup_id = e.header.identity.cgroup_id;
                }
                self.attribute(e.header.tgid);
                if !known {
                    self.judge_act(event, None);
                }
                self.judge_move(e);
            }
            Event::CgroupMkdir(e) => {
                self.cgroups.learn(e.cgroup_id, &rules::text(&e.path));
            }
            Event::CgroupRmdir(e) => self.cgroups.forget(e.cgroup_id),
            Event::Namespace(e) if e.syscall == syscall::SETNS => {
                self.hold_namespace_change(e, now);
            }
            // A user namespace made (unshare, or clone for a new process): it lives there now,
            // so its next exec is no news.
            Event::Namespace(e) => {
                if let Some(process) = self.processes.get_mut(e.header.tgid) {
                    process.ns = e.after;
                }
                self.judge_act(event, Some(e.before));
            }
            Event::FileOpen(_)
            | Event::Mount(_)
            | Event::Module(_)
            | Event::Bpf(_)
            | Event::Ptrace(_)
            | Event::UnixConnect(_)
            | Event::TcpConnect(_)
            | Event::Signal(_)
            | Event::OpenByHandle(_) => self.judge_act(event, None),
        }
    }

    /// The snapshot of the actor (ancestors, container metadata) is only taken for an act a
    /// rule reports.
    /// `ns_before`: for an exec or a namespace change, the process's namespaces before it,
    /// when known.
    fn judge_act(&mut self, event: &Event, ns_before: Option<Namespaces>) {
        let header = *event.header();
        if !self.is_container_actor(&header) {
            return;
        }
        let target = self.target(event);
        if target.is_none() && matches!(event, Event::Ptrace(_)) {
            self.metrics
                .act_dropped(EventKind::Ptrace, ActDropped::TargetUnknown);
            log::warn!(
                "ptrace act of pid {}: the process it was aimed at was not found",
                header.tgid
            );
            return;
        }
        let Some(finding) = self
            .who(header.tgid)
            .and_then(|who| self.judge(event, who, target, ns_before))
        else {
            return;
        };
        if self.folded(&finding, &header) {
            return;
        }
        let Some(mut actor) = self.actor(&header) else {
            return;
        };
        if truncation::act_cut(event) {
            actor.truncated.push(truncation::DETAILS);
        }
        let Some(action) = self.decide(&finding, &actor, &header, event.denied()) else {
            return;
        };
        self.raise(finding, actor, action);
    }

    /// A usermode helper the kernel started: a host process, judged on its program alone.
    fn judge_helper(&mut self, e: &ExecEvent) {
        let extra = &self.settings.extra_usermode_helpers;
        let Some(finding) = rules::usermode_helper::usermode_helper_exec(e, extra) else {
            return;
        };
        if self.settings.disabled_rules.contains(finding.rule.id) {
            return;
        }
        let process = ProcessInfo {
            pid: e.header.tgid,
            tid: e.header.tid,
            ppid: e.ppid,
            uid: Some(e.uid),
            euid: Some(e.euid),
            comm: rules::text(&e.comm),
            exe: Some(rules::text(&e.filename)),
            args: procfs::split_args(e.argv()),
            cgroup: None,
            ancestors: self.processes.ancestors_from(e.ppid),
        };
        let actor = Actor {
            seen_ns: e.header.ktime_ns,
            ns: e.ns,
            process,
            container_id: String::new(),
            container: None,
            truncated: truncation::of_exec(e),
        };
        let Some(action) = self.decide(&finding, &actor, &e.header, false) else {
            return;
        };
        self.raise(finding, actor, action);
    }

    /// A cgroup move is the mover's act: a container process that moves a process out of its
    /// container's cgroups.
    fn judge_move(&mut self, e: &CgroupAttachEvent) {
        let mover = Header::new(
            EventKind::CgroupAttach,
            e.mover_tgid,
            e.mover_tgid,
            e.header.ktime_ns,
        );
        self.look_up(mover.tgid);
        if self.attribute(mover.tgid).is_none() {
            return;
        }
        let moved = e.header.tgid;
        let path = rules::text(&e.path);
        // Another v1 hierarchy's cgroup ids are not in the table: its path says whose it is.
        let to = if e.hierarchy_id == self.cgroups.hierarchy().hierarchy_id {
            self.cgroups
                .lookup(e.cgroup_id, moved)
                .map(|c| c.container.id.clone())
        } else {
            cgroup::classify(&path).map(|c| c.id)
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
        let Some(finding) = self.who(mover.tgid).and_then(|who| {
            self.judge_with(who, Some(target), None, |s| {
                rules::cgroup_escape::cgroup_escape(&path, s)
                    .into_iter()
                    .collect()
            })
        }) else {
            return;
        };
        if self.folded(&finding, &mover) {
            return;
        }
        if let Some(mut actor) = self.actor(&mover) {
            if truncation::act_cut(&Event::CgroupAttach(*e)) {
                actor.truncated.push(truncation::DETAILS);
            }
            let Some(action) = self.decide(&finding, &actor, &mover, false) else {
                return;
            };
            self.raise(finding, actor, action);
        }
    }

    /// Periodic work: flushes merged namespace changes that are due, forgets old exits.
    pub fn tick(&mut self, now: Instant) {
        let (due, waiting): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|h| h.due <= now);
        self.held = waiting;
        for held in due {
            let event = Event::Namespace(held.event);
            if let Some(finding) = self.judge(&event, held.actor.who(), None, None) {
                self.raise(finding, held.actor, held.action);
            }
        }
        let folded = self.folds.due(boottime_ns());
        self.emit_folded(folded);
    }

    pub fn sweep(&mut self, now: Instant) {
        self.processes.sweep(now);
        self.runtime_files.refresh(self.file_watch.as_mut());
        self.update_gauges();
    }

    /// Raises whatever is still held (at shutdown).
    pub fn flush(&mut self) {
        let far = Instant::now() + NAMESPACE_MERGE_WINDOW * 2;
        self.tick(far);
        let folded = self.folds.drain();
        self.emit_folded(folded);
    }

    fn hold_namespace_change(&mut self, e: &NamespaceEvent, now: Instant) {
        // The process lives in these namespaces now: its next exec is no news.
        if let Some(process) = self.processes.get_mut(e.header.tgid) {
            process.ns = e.after;
        }
        if let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.event.header.tid == e.header.tid)
        {
            // The first call's `before` and the last one's `after` span every namespace joined.
            held.event.after = e.after;
            return;
        }
        if !self.is_container_actor(&e.header) {
            return;
        }
        // Enforcement cannot wait for the merge window: judge the first call now.
        let event = Event::Namespace(*e);
        let Some(finding) = self
            .who(e.header.tgid)
            .and_then(|who| self.judge(&event, who, None, None))
        else {
            return;
        };
        let Some(actor) = self.actor(&e.header) else {
            return;
        };
        let Some(action) = self.decide(&finding, &actor, &e.header, false) else {
            return;
        };
        self.held.push(HeldNamespaceChange {
            event: *e,
            actor,
            due: now + NAMESPACE_MERGE_WINDOW,
            action,
        });
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

    /// Puts the process in the table, from /proc when the kernel's events missed it.
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
    fn is_container_actor(&mut self, header: &Header) -> bool {
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
    fn who(&self, tgid: u32) -> Option<Who<'_>> {
        let process = self.processes.get(tgid)?;
        Some(Who {
            pid: process.pid,
            comm: &process.comm,
            container_id: process.container_id.as_deref()?,
            ns: process.ns,
        })
    }

    /// The acting process as it is now, for the alert, when it belongs to a container.
    fn actor(&mut self, header: &Header) -> Option<Actor> {
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
            ns: process.ns,
            process: info,
            container: self.containers.info(&container_id),
            container_id,
            truncated: process.cut.clone(),
        })
    }

    /// The process an act was aimed at. The kernel names it by host pid where it can; syscall
    /// tracepoints only have the pid as the caller named it, in the caller's pid namespace.
    fn target(&mut self, event: &Event) -> Option<Target> {
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

    /// True, and counted, when the act repeats one of the same process alerted lately.
    fn folded(&mut self, finding: &Finding, header: &Header) -> bool {
        let repeat = self
            .folds
            .repeat(&fold_act(finding, header.tgid), header.ktime_ns);
        if repeat {
            self.metrics
                .alerts_folded_total
                .with_label_values(&[finding.rule.id])
                .inc();
        }
        repeat
    }

    /// A new program image, or none: its acts are news again, and the repeats of its old
    /// ones are told.
    fn forget_spoken(&mut self, tgid: u32) {
        let folded = self.folds.end_process(tgid);
        self.emit_folded(folded);
    }

    fn emit_folded(&mut self, alerts: Vec<Alert>) {
        for mut alert in alerts {
            alert.time = timestamp(SystemTime::now());
            self.emit(&alert);
        }
    }

    /// The finding of an enabled rule for the act, if any.
    fn judge(
        &self,
        event: &Event,
        who: Who<'_>,
        target: Option<Target>,
        ns_before: Option<Namespaces>,
    ) -> Option<Finding> {
        self.judge_with(who, target, ns_before, |subject| {
            rules::evaluate(event, subject)
        })
    }

    /// The most specific finding of the enabled `rules` about `who`.
    fn judge_with(
        &self,
        who: Who<'_>,
        target: Option<Target>,
        ns_before: Option<Namespaces>,
        rules: impl FnOnce(&Subject) -> Vec<Finding>,
    ) -> Option<Finding> {
        let subject = Subject {
            pid: who.pid,
            comm: who.comm,
            container_id: who.container_id,
            filesystems: &self.filesystems,
            runtime_files: &self.runtime_files,
            host_ns: &self.settings.host_ns,
            host_pid: self.settings.host_pid,
            ns: who.ns,
            origin: self.containers.origin(who.container_id),
            host_root: self.settings.host_root,
            ns_before,
            target,
            agent: &self.agent,
        };
        let enabled = rules(&subject)
            .into_iter()
            .filter(|f| !self.settings.disabled_rules.contains(f.rule.id));
        rules::most_specific(enabled)
    }

    /// What to do about the act: nothing when an exception covers it (counted), else alert,
    /// and kill where enforcement says so. An act the kernel refused (`denied`, the LSM's
    /// enforcement, which knows no exceptions) is always told.
    fn decide(
        &self,
        finding: &Finding,
        actor: &Actor,
        header: &Header,
        denied: bool,
    ) -> Option<Action> {
        if denied {
            return Some(Action::Denied);
        }
        if let Some(exception) = self.settings.exceptions.covering(
            finding.rule.id,
            actor.container.as_ref(),
            &actor.process,
        ) {
            self.metrics
                .exceptions_suppressed_total
                .with_label_values(&[exception, finding.rule.id])
                .inc();
            return None;
        }
        Some(self.enforce(finding, header))
    }

    fn enforce(&self, finding: &Finding, header: &Header) -> Action {
        if !self.settings.enforce || finding.rule.severity != Severity::Critical {
            return Action::Alert;
        }
        match enforce::kill(header.tgid) {
            Ok(()) => Action::Killed,
            Err(e) => {
                log::error!("enforce: could not kill pid {}: {e}", header.tgid);
                Action::Alert
            }
        }
    }

    fn raise(&mut self, finding: Finding, actor: Actor, action: Action) {
        let act = fold_act(&finding, actor.process.pid);
        let time = timestamp(SystemTime::now());
        let incident = self.incidents.link(&Raised {
            container_id: Some(actor.container_id.as_str()),
            rule: finding.rule.id,
            pid: actor.process.pid,
            seen_ns: actor.seen_ns,
            time: &time,
        });
        let alert = Alert {
            time,
            rule: finding.rule.id,
            severity: finding.rule.severity,
            mitre: finding.rule.mitre,
            message: finding.message,
            hostname: self.settings.hostname.clone(),
            action,
            container: actor.container,
            process: actor.process,
            details: finding.details,
            incident,
            count: 1,
            truncated: actor.truncated,
        };
        self.emit(&alert);
        if let Some(since_act) = boottime_ns().checked_sub(actor.seen_ns) {
            self.metrics
                .alert_latency_seconds
                .with_label_values(&[alert.rule])
                .observe(since_act as f64 / 1e9);
        }
        let replaced = self.folds.open(act, alert, actor.seen_ns);
        self.emit_folded(replaced.into_iter().collect());
    }

    fn emit(&mut self, alert: &Alert) {
        self.metrics
            .alerts_total
            .with_label_values(&[alert.rule, alert.severity.as_str()])
            .inc();
        self.outputs.emit(&alert.to_json_line(), &self.metrics);
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

/// What makes an act the same as an earlier one: the rule's key where it has one (the socket
/// connected to), else everything the alert says.
fn fold_act(finding: &Finding, tgid: u32) -> folds::Act {
    folds::Act {
        tgid,
        rule: finding.rule.id,
        key: match &finding.repeat {
            Repeat::OncePerProcess(key) => key.clone(),
            Repeat::EveryAct => finding.message.clone(),
        },
    }
}

/// Now on the clock the kernel stamps events with (`bpf_ktime_get_boot_ns`).
fn boottime_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kernel::container_cgroups::ContainerCgroups,
        outputs::Output,
        rules::test_support::HOST_NS,
        state::{identity_hierarchy::IdentityHierarchy, process::Process},
    };
    use detector_common::{
        EventKind, ExecEvent, ForkEvent, Identity, Namespaces, identity, ns_bit, syscall,
    };
    use std::sync::Mutex;

    const ID: &str = "3f2a5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef012";
    // Pids above pid_max, so /proc never answers for them.
    const SH: u32 = 4_000_000_001;
    const NSENTER: u32 = SH + 1;
    const HOST: u32 = SH + 2;
    /// The container's cgroup, and a host cgroup.
    const CONTAINER_CGROUP: u64 = 1001;
    const HOST_CGROUP: u64 = 1002;

    struct Recorder(Arc<Mutex<Vec<(u64, bool)>>>);
    impl ContainerCgroups for Recorder {
        fn classify(&mut self, cgroup_id: u64, is_container: bool) {
            self.0.lock().unwrap().push((cgroup_id, is_container));
        }
    }

    struct NoFiles;
    impl WatchFiles for NoFiles {
        fn watch(&mut self, _: detector_common::FileId, _: detector_common::WatchedFile) {}
        fn unwatch(&mut self, _: detector_common::FileId) {}
    }

    struct Harness {
        pipeline: Pipeline,
        verdicts: Arc<Mutex<Vec<(u64, bool)>>>,
        alerts_file: std::path::PathBuf,
    }

    impl Harness {
        fn new(name: &str, disabled: &[&str]) -> Harness {
            let dir =
                std::env::temp_dir().join(format!("escdet-pipeline-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let alerts_file = dir.join("alerts.jsonl");
            let _ = std::fs::remove_file(&alerts_file);
            let metrics = Arc::new(Metrics::new().unwrap());
            let outputs =
                Outputs::new(vec![Output::file(&alerts_file).unwrap()], &metrics).unwrap();
            let verdicts = Arc::new(Mutex::new(Vec::new()));
            let hierarchy = IdentityHierarchy {
                controller: None,
                hierarchy_id: 0,
                mount: "/nonexistent".into(),
            };
            let mut cgroups = CgroupTable::new(hierarchy, Box::new(Recorder(verdicts.clone())));
            cgroups.learn(CONTAINER_CGROUP, &format!("/docker/{ID}"));
            let mut pipeline = Pipeline::new(
                ContainerTable::new(Vec::new()),
                Filesystems::parse("nodev\tproc\n\text4\n"),
                KernelFilters {
                    cgroups,
                    runtime_files: RuntimeFiles::new(&[]),
                    file_watch: Box::new(NoFiles),
                },
                metrics,
                outputs,
                PipelineSettings {
                    hostname: "node-1".into(),
                    host_ns: HOST_NS,
                    host_pid: 1,
                    host_root: FileId::default(),
                    enforce: false,
                    disabled_rules: disabled.iter().map(|r| r.to_string()).collect(),
                    extra_usermode_helpers: Vec::new(),
                    exceptions: Exceptions::new(&[]).unwrap(),
                },
            );
            let process = |pid, comm: &str, cgroup_id| Process {
                pid,
                ppid: 1,
                comm: comm.into(),
                cgroup_id,
                ..Process::default()
            };
            pipeline.load_snapshot(vec![
                process(SH, "sh", CONTAINER_CGROUP),
                process(HOST, "bash", HOST_CGROUP),
            ]);
            Harness {
                pipeline,
                verdicts,
                alerts_file,
            }
        }

        fn alerts(&self) -> Vec<serde_json::Value> {
            self.pipeline.outputs.wait_written();
            std::fs::read_to_string(&self.alerts_file)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            if let Some(dir) = self.alerts_file.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A header as the kernel makes it: `tgid` is a container process (by its cgroup) unless
    /// it is the host process, whose acts only reach the agent while its new cgroup is pending.
    fn header(kind: EventKind, tgid: u32) -> Header {
        let (flags, cgroup_id) = match tgid {
            HOST => (identity::UNCLASSIFIED, HOST_CGROUP),
            _ => (identity::CONTAINER, CONTAINER_CGROUP),
        };
        Header::new(kind, tgid, tgid, 0).with_identity(Identity {
            flags,
            _pad: 0,
            cgroup_id,
        })
    }

    fn exec(pid: u32, comm: &str) -> Event {
        // SAFETY: plain data; all-zero is a valid ExecEvent.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.header = header(EventKind::Exec, pid);
        e.ppid = SH;
        e.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        Event::Exec(e)
    }

    /// One `setns` call that left the namespaces of `joined` (ns_bit mask) the host's, after
    /// `before` had those of `already`.
    fn setns(pid: u32, already: u32, joined: u32) -> Event {
        let state = |mask: u32| {
            let mut ns = Namespaces::default().as_array();
            for (bit, (inum, host)) in ns.iter_mut().zip(HOST_NS.as_array()).enumerate() {
                *inum = if mask & 1 << bit != 0 {
                    host
                } else {
                    host + 1000
                };
            }
            let [mnt, pid_for_children, net, ipc, uts, cgroup, user, time] = ns;
            Namespaces {
                mnt,
                pid_for_children,
                net,
                ipc,
                uts,
                cgroup,
                user,
                time,
            }
        };
        Event::Namespace(NamespaceEvent {
            header: header(EventKind::Namespace, pid),
            syscall: syscall::SETNS,
            nstype: 0,
            before: state(already),
            after: state(already | joined),
        })
    }

    #[test]
    fn one_nsenter_is_one_alert_about_the_process_as_it_was() {
        let mut h = Harness::new("nsenter", &[]);
        assert_eq!(*h.verdicts.lock().unwrap(), [(CONTAINER_CGROUP, true)]);
        let t0 = Instant::now();
        let fork = ForkEvent {
            header: header(EventKind::Fork, NSENTER),
            ppid: SH,
            creator_tgid: SH,
            start_ns: 1,
        };
        for event in [
            Event::Fork(fork),
            exec(NSENTER, "nsenter"),
            setns(NSENTER, 0, ns_bit::MNT),
            setns(NSENTER, ns_bit::MNT, ns_bit::NET),
            exec(NSENTER, "sh"),
        ] {
            h.pipeline.handle(&event, t0);
        }
        h.pipeline.tick(t0);
        assert!(
            h.alerts().is_empty(),
            "raised before the merge window closed"
        );
        h.pipeline.tick(t0 + NAMESPACE_MERGE_WINDOW);
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a["rule"], "host-namespace-entry");
        assert_eq!(a["container"]["id"], ID);
        assert_eq!(a["process"]["comm"], "nsenter");
        assert_eq!(a["process"]["pid"], NSENTER);
        assert_eq!(a["process"]["ancestors"][0]["comm"], "sh");
        assert_eq!(
            a["details"]["namespaces"],
            serde_json::json!(["mnt", "net"])
        );
        assert_eq!(a["hostname"], "node-1");
    }

    #[test]
    fn host_processes_and_disabled_rules_are_silent() {
        let mut h = Harness::new("silent", &["host-namespace-entry"]);
        let t0 = Instant::now();
        h.pipeline.handle(&setns(HOST, 0, ns_bit::MNT), t0);
        h.pipeline.handle(&setns(SH, 0, ns_bit::MNT), t0);
        h.pipeline.flush();
        assert!(h.alerts().is_empty());
    }

    /// A user namespace made by clone, then a program started there: one alert, about the new
    /// process, where the namespace was made.
    #[test]
    fn a_user_namespace_is_one_alert_where_it_is_made() {
        let mut h = Harness::new("userns", &[]);
        let t0 = Instant::now();
        let before = Namespaces {
            mnt: HOST_NS.mnt + 1000,
            pid_for_children: HOST_NS.pid_for_children + 1000,
            user: HOST_NS.user + 1000,
            ..HOST_NS
        };
        let after = Namespaces {
            user: HOST_NS.user + 2000,
            ..before
        };
        let fork = ForkEvent {
            header: header(EventKind::Fork, NSENTER),
            ppid: SH,
            creator_tgid: SH,
            start_ns: 1,
        };
        let clone = NamespaceEvent {
            header: header(EventKind::Namespace, NSENTER),
            syscall: syscall::CLONE,
            nstype: 0,
            before,
            after,
        };
        let Event::Exec(mut started) = exec(NSENTER, "true") else {
            unreachable!()
        };
        started.ns = after;
        for event in [
            Event::Fork(fork),
            Event::Namespace(clone),
            Event::Exec(started),
        ] {
            h.pipeline.handle(&event, t0);
        }
        h.pipeline.flush();
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["rule"], "userns-creation");
        assert_eq!(alerts[0]["container"]["id"], ID);
        assert_eq!(alerts[0]["process"]["pid"], NSENTER);
    }

    /// A container process moving itself in a cgroup v1 hierarchy other than the identity
    /// one (3), judged by the destination's path.
    #[test]
    fn a_move_in_another_v1_hierarchy_is_judged_by_its_path() {
        let mut h = Harness::new("v1-move", &[]);
        let t0 = Instant::now();
        let moved = |path: &str| {
            // SAFETY: plain data; all-zero is a valid CgroupAttachEvent.
            let mut e: CgroupAttachEvent = unsafe { std::mem::zeroed() };
            e.header = header(EventKind::CgroupAttach, SH);
            e.mover_tgid = SH;
            e.hierarchy_id = 3;
            e.cgroup_id = CONTAINER_CGROUP + 7;
            e.path[..path.len()].copy_from_slice(path.as_bytes());
            Event::CgroupAttach(e)
        };
        h.pipeline.handle(&moved(&format!("/docker/{ID}/sub")), t0);
        assert!(h.alerts().is_empty(), "within its container");
        h.pipeline.handle(&moved("/"), t0);
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["rule"], "cgroup-escape");
        assert_eq!(alerts[0]["details"]["cgroup"], "/");
        assert_eq!(alerts[0]["container"]["id"], ID);
        // Its identity stays its container's.
        assert_eq!(
            h.pipeline.processes.get(SH).map(|p| p.cgroup_id),
            Some(CONTAINER_CGROUP)
        );
    }

    fn bpf(pid: u32, cmd: u32) -> Event {
        Event::Bpf(detector_common::BpfEvent {
            header: header(EventKind::Bpf, pid),
            cmd,
            object_id: 0,
        })
    }

    #[test]
    fn a_once_per_process_rule_folds_repeats_and_speaks_again_after_exec() {
        let mut h = Harness::new("once", &[]);
        let t0 = Instant::now();
        for event in [bpf(SH, 0), bpf(SH, 5), bpf(SH, 28)] {
            h.pipeline.handle(&event, t0);
        }
        assert_eq!(h.alerts().len(), 1, "one alert for the first call");
        assert_eq!(h.alerts()[0]["details"]["command"], "BPF_MAP_CREATE");
        assert_eq!(h.alerts()[0]["count"], 1);
        h.pipeline.handle(&exec(SH, "bpftool"), t0);
        h.pipeline.handle(&bpf(SH, 5), t0);
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 3, "{alerts:?}");
        // The old image's repeats, told when it was replaced.
        assert_eq!(alerts[1]["count"], 2, "{alerts:?}");
        assert_eq!(alerts[1]["process"]["comm"], "sh");
        assert_eq!(alerts[2]["process"]["comm"], "bpftool");
        assert_eq!(alerts[2]["count"], 1);
    }
}
