//! Events in, alerts out, in stages a reader can follow:
//!
//! - ingest: [`Pipeline::handle`] sorts each event into state changes and acts;
//! - state ([`state`]): the process, cgroup and container tables, which attribute an act to
//!   its container process and take the actor's snapshot for the alert;
//! - judge ([`judge`]): the rules' finding, once per process where a rule says so;
//! - decide ([`decide`]): alert, or kill under `--enforce`;
//! - emit ([`emit`]): the alert, written and counted.

mod decide;
mod emit;
mod judge;
mod state;

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use detector_common::{
    CgroupAttachEvent, EventKind, ExecEvent, FileId, NamespaceEvent, Namespaces, syscall,
    user::Event,
};

use self::{
    decide::Decider,
    emit::{Actor, Emitter},
    judge::{HostFacts, Judge},
    state::State,
};
use crate::{
    alert::{Action, ProcessInfo},
    enforcement::Enforcement,
    exceptions::Exceptions,
    kernel::watched_files::WatchFiles,
    metrics::{ActDropped, Metrics},
    outputs::Outputs,
    redaction::Redaction,
    rules,
    state::{
        agent_self::OwnBpfObjects,
        cgroup_table::CgroupTable,
        container::ContainerTable,
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
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), which alert ids include.
    pub boot_id: String,
    /// The host's namespaces (the host reference process's), as the kernel programs know them.
    pub host_ns: Namespaces,
    /// The host reference process.
    pub host_pid: u32,
    /// The host's root directory.
    pub host_root: FileId,
    pub enforcement: Enforcement,
    pub disabled_rules: HashSet<String>,
    /// usermode-helper-exec's allowlist beyond the distributions' helpers.
    pub extra_usermode_helpers: Vec<PathBuf>,
    pub exceptions: Exceptions,
    pub redaction: Redaction,
}

/// Namespace changes of one thread being merged into one act, with the process as it was at
/// the first call (it usually execs a shell right after).
struct HeldNamespaceChange {
    event: NamespaceEvent,
    actor: Actor,
    due: Instant,
    action: Action,
}

pub struct Pipeline {
    state: State,
    /// Namespace changes being merged into one act.
    held: Vec<HeldNamespaceChange>,
    judge: Judge,
    decide: Decider,
    emit: Emitter,
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
        Pipeline {
            state: State {
                processes: ProcessTable::default(),
                cgroups: kernel.cgroups,
                containers,
                metrics: metrics.clone(),
            },
            held: Vec::new(),
            judge: Judge::new(
                filesystems,
                kernel.runtime_files,
                kernel.file_watch,
                HostFacts {
                    ns: settings.host_ns,
                    pid: settings.host_pid,
                    root: settings.host_root,
                },
                settings.disabled_rules,
                settings.extra_usermode_helpers,
            ),
            decide: Decider::new(settings.enforcement, settings.exceptions, metrics.clone()),
            emit: Emitter::new(
                outputs,
                metrics,
                settings.hostname,
                settings.boot_id,
                settings.redaction,
            ),
        }
    }

    /// A reload: the settings read again, and outputs opened anew (the old ones write what
    /// they hold as they go). The host's facts and enforcement stay as the kernel programs
    /// were loaded with.
    pub fn reconfigure(&mut self, settings: PipelineSettings, outputs: Outputs) {
        self.judge
            .reconfigure(settings.disabled_rules, settings.extra_usermode_helpers);
        self.decide.reconfigure(settings.exceptions);
        self.emit
            .reconfigure(outputs, settings.hostname, settings.redaction);
    }

    /// Classifies the cgroups that exist (the kernel records those made from now on), so the
    /// kernel filters by the same identity as the agent.
    pub fn load_cgroups(&mut self) {
        self.state.load_cgroups();
    }

    /// The detector's own BPF objects, once attached: a container reaching them is tampering.
    pub fn know_own_bpf_objects(&mut self, objects: OwnBpfObjects) {
        self.judge.know_own_bpf_objects(objects);
    }

    /// Seeds the process table with the container processes /proc shows.
    pub fn load_snapshot(&mut self, processes: Vec<Process>) {
        self.state.load_snapshot(processes);
    }

    /// Ingest: each event changes the state, is an act to judge, or both.
    pub fn handle(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Exec(e) if e.header.identity.helper() => self.judge_helper(e),
            Event::Exec(e) => {
                let before = self.state.on_exec(e);
                // A new image: its acts are news again, and the repeats of its old ones told.
                self.judge.forget(e.header.tgid);
                self.emit.end_process(e.header.tgid);
                self.judge_act(event, before);
            }
            Event::Fork(e) => self.state.on_fork(e),
            Event::Exit(e) => {
                self.state.on_exit(e.header.tgid, now);
                self.judge.forget(e.header.tgid);
                self.emit.end_process(e.header.tgid);
            }
            // A move in another cgroup v1 hierarchy: the process's identity is unchanged.
            Event::CgroupAttach(e)
                if e.hierarchy_id != self.state.cgroups.hierarchy().hierarchy_id =>
            {
                self.judge_move(e);
            }
            Event::CgroupAttach(e) => {
                if !self.state.on_cgroup_attach(e) {
                    self.judge_act(event, None);
                }
                self.judge_move(e);
            }
            Event::CgroupMkdir(e) => {
                self.state.cgroups.learn(e.cgroup_id, &rules::text(&e.path));
            }
            Event::CgroupRmdir(e) => self.state.cgroups.forget(e.cgroup_id),
            Event::Namespace(e) if e.syscall == syscall::SETNS => {
                self.hold_namespace_change(e, now);
            }
            // A user namespace made (unshare, or clone for a new process): it lives there now,
            // so its next exec is no news.
            Event::Namespace(e) => {
                self.state.set_namespaces(e.header.tgid, e.after);
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

    /// An act through every stage. The snapshot of the actor (ancestors, container metadata)
    /// is only taken for an act a rule reports.
    /// `ns_before`: for an exec or a namespace change, the process's namespaces before it,
    /// when known.
    fn judge_act(&mut self, event: &Event, ns_before: Option<Namespaces>) {
        let header = *event.header();
        if !self.state.is_container_actor(&header) {
            return;
        }
        if let Event::Ptrace(e) = event
            && self.judge.access_judged(&header, e, false)
        {
            return;
        }
        let target = self.state.target(event);
        if let Event::Ptrace(e) = event {
            if target.is_none() {
                self.state
                    .metrics
                    .act_dropped(EventKind::Ptrace, ActDropped::TargetUnknown);
                log::warn!(
                    "ptrace act of pid {}: the process it was aimed at was not found",
                    header.tgid
                );
                return;
            }
            self.judge.access_judged(&header, e, true);
        }
        let Some(finding) = self
            .state
            .who(header.tgid)
            .and_then(|who| self.judge.judge(event, who, target, ns_before))
        else {
            return;
        };
        if self.emit.folded(&finding, &header) {
            return;
        }
        let Some(mut actor) = self.state.actor(&header) else {
            return;
        };
        if truncation::act_cut(event) {
            actor.truncated.push(truncation::DETAILS);
        }
        let Some(action) = self
            .decide
            .action(&finding, &actor, &header, event.denied())
        else {
            return;
        };
        self.emit.raise(finding, actor, action);
    }

    /// A usermode helper the kernel started: a host process, judged on its program alone.
    fn judge_helper(&mut self, e: &ExecEvent) {
        let Some(finding) = self.judge.helper(e) else {
            return;
        };
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
            ancestors: self.state.processes.ancestors_from(e.ppid),
        };
        let actor = Actor {
            seen_ns: e.header.ktime_ns,
            start_ns: e.header.start_ns,
            ns: e.ns,
            process,
            container_id: String::new(),
            container: None,
            truncated: truncation::of_exec(e),
        };
        let Some(action) = self.decide.action(&finding, &actor, &e.header, false) else {
            return;
        };
        self.emit.raise(finding, actor, action);
    }

    /// A cgroup move is the mover's act: a container process that moves a process out of its
    /// container's cgroups.
    fn judge_move(&mut self, e: &CgroupAttachEvent) {
        let Some((mover, target)) = self.state.mover(e) else {
            return;
        };
        let path = rules::text(&e.path);
        let Some(finding) = self.state.who(mover.tgid).and_then(|who| {
            self.judge.judge_with(who, Some(target), None, |s| {
                rules::cgroup_escape::cgroup_escape(&path, s)
                    .into_iter()
                    .collect()
            })
        }) else {
            return;
        };
        if self.emit.folded(&finding, &mover) {
            return;
        }
        if let Some(mut actor) = self.state.actor(&mover) {
            if truncation::act_cut(&Event::CgroupAttach(*e)) {
                actor.truncated.push(truncation::DETAILS);
            }
            if let Some(action) = self.decide.action(&finding, &actor, &mover, false) {
                self.emit.raise(finding, actor, action);
            }
        }
    }

    /// Periodic work: raises merged namespace changes that are due.
    pub fn tick(&mut self, now: Instant) {
        let (due, waiting): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|h| h.due <= now);
        self.held = waiting;
        for held in due {
            let event = Event::Namespace(held.event);
            let origin = self.state.containers.origin(&held.actor.container_id);
            if let Some(finding) = self.judge.judge(&event, held.actor.who(origin), None, None) {
                self.emit.raise(finding, held.actor, held.action);
            }
        }
        self.emit.tick();
    }

    /// When the first held namespace change is due to be judged, if any is held.
    pub fn held_until(&self) -> Option<Instant> {
        self.held.iter().map(|held| held.due).min()
    }

    /// Periodic work: forgets old exits, watches the runtimes' files as they are now.
    pub fn sweep(&mut self, now: Instant) {
        self.state.sweep(now);
        self.judge.refresh_runtime_files();
    }

    /// Raises whatever is still held (at shutdown).
    pub fn flush(&mut self) {
        let far = Instant::now() + NAMESPACE_MERGE_WINDOW * 2;
        self.tick(far);
        self.emit.drain_folds();
    }

    fn hold_namespace_change(&mut self, e: &NamespaceEvent, now: Instant) {
        // The process lives in these namespaces now: its next exec is no news.
        self.state.set_namespaces(e.header.tgid, e.after);
        if let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.event.header.tid == e.header.tid)
        {
            // The first call's `before` and the last one's `after` span every namespace joined.
            held.event.after = e.after;
            return;
        }
        if !self.state.is_container_actor(&e.header) {
            return;
        }
        // Enforcement cannot wait for the merge window: judge the first call now.
        let event = Event::Namespace(*e);
        let Some(finding) = self
            .state
            .who(e.header.tgid)
            .and_then(|who| self.judge.judge(&event, who, None, None))
        else {
            return;
        };
        let Some(actor) = self.state.actor(&e.header) else {
            return;
        };
        let Some(action) = self.decide.action(&finding, &actor, &e.header, false) else {
            return;
        };
        self.held.push(HeldNamespaceChange {
            event: *e,
            actor,
            due: now + NAMESPACE_MERGE_WINDOW,
            action,
        });
    }
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
        EventKind, ExecEvent, ForkEvent, Header, Identity, Namespaces, identity, ns_bit, syscall,
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
                    boot_id: "boot".into(),
                    host_ns: HOST_NS,
                    host_pid: 1,
                    host_root: FileId::default(),
                    enforcement: Enforcement::new(false, &Default::default()).unwrap(),
                    disabled_rules: disabled.iter().map(|r| r.to_string()).collect(),
                    extra_usermode_helpers: Vec::new(),
                    exceptions: Exceptions::new(&[]).unwrap(),
                    redaction: Redaction::default(),
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
            self.pipeline.emit.wait_written();
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
        // The event loop sleeps until then.
        assert_eq!(h.pipeline.held_until(), Some(t0 + NAMESPACE_MERGE_WINDOW));
        h.pipeline.tick(t0 + NAMESPACE_MERGE_WINDOW);
        assert_eq!(h.pipeline.held_until(), None, "nothing left to wake for");
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
            h.pipeline.state.processes.get(SH).map(|p| p.cgroup_id),
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
        assert_ne!(alerts[1]["id"], alerts[0]["id"]);
        assert_eq!(alerts[2]["process"]["comm"], "bpftool");
        assert_eq!(alerts[2]["count"], 1);
    }

    /// A ptrace-level access repeated by the same process is not judged again: its target,
    /// gone meanwhile, is not looked for.
    #[test]
    fn a_repeated_access_is_judged_once() {
        let mut h = Harness::new("access", &[]);
        let t0 = Instant::now();
        let vm_read = Event::Ptrace(detector_common::PtraceEvent {
            header: header(EventKind::Ptrace, SH),
            access: detector_common::ptrace_access::VM_READ,
            target_tgid: HOST,
            target_vpid: 0,
            caller_pid_ns: 0,
        });
        h.pipeline.handle(&vm_read, t0);
        assert_eq!(h.alerts().len(), 1, "{:?}", h.alerts());
        h.pipeline.state.processes.remove(HOST);
        h.pipeline.handle(&vm_read, t0);
        let dropped =
            "escape_detector_acts_dropped_total{kind=\"ptrace\",reason=\"target_unknown\"} 0";
        assert!(h.pipeline.state.metrics.render().contains(dropped));
    }

    /// A process that got the pid of one that had spoken is news, even when the first one's
    /// exit never reached the agent: the start time in the events tells them apart.
    #[test]
    fn a_process_that_reuses_a_pid_speaks_for_itself() {
        let mut h = Harness::new("reuse", &[]);
        let t0 = Instant::now();
        let started = |start_ns| {
            let Event::Bpf(mut e) = bpf(SH, 0) else {
                unreachable!()
            };
            e.header = e.header.with_start(start_ns);
            Event::Bpf(e)
        };
        for event in [started(10), started(10), started(20)] {
            h.pipeline.handle(&event, t0);
        }
        assert_eq!(h.alerts().len(), 2, "{:?}", h.alerts());
    }
}
