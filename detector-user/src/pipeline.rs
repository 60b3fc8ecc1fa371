//! Events in, alerts out: keeps the process and container tables current, asks the rules
//! about each security event, and raises what they find.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use detector_common::{Header, NamespaceEvent, user::Event};

use crate::{
    alert::{Action, Alert, ContainerInfo, ProcessInfo, timestamp},
    enforce,
    kernel::{marks::MarkContainerTasks, watched_sockets::WatchSockets},
    metrics::Metrics,
    outputs::Outputs,
    rules::{self, Finding, Repeat, Severity, Subject, Target},
    state::{
        container::ContainerTable,
        filesystems::Filesystems,
        process::{Change, Process, ProcessTable},
        procfs,
        runtime_sockets::RuntimeSockets,
    },
};

/// One `nsenter` makes one `setns` call per namespace within microseconds: the calls of one
/// thread within this window are one act, and make one alert.
const NAMESPACE_MERGE_WINDOW: Duration = Duration::from_millis(50);

pub struct PipelineSettings {
    pub hostname: String,
    pub enforce: bool,
    pub disabled_rules: HashSet<String>,
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
}

/// A container process as it was when it acted.
struct Actor {
    /// When the kernel saw the act (`CLOCK_BOOTTIME`).
    seen_ns: u64,
    process: ProcessInfo,
    container_id: String,
    container: Option<ContainerInfo>,
}

impl Actor {
    fn who(&self) -> Who<'_> {
        Who {
            pid: self.process.pid,
            comm: &self.process.comm,
            container_id: &self.container_id,
        }
    }
}

pub struct Pipeline {
    processes: ProcessTable,
    containers: ContainerTable,
    filesystems: Filesystems,
    marks: Box<dyn MarkContainerTasks>,
    sockets: RuntimeSockets,
    socket_watch: Box<dyn WatchSockets>,
    metrics: Arc<Metrics>,
    outputs: Outputs,
    settings: PipelineSettings,
    held: Vec<HeldNamespaceChange>,
    /// Per process: (rule, key) of acts already reported under [`Repeat::OncePerProcess`].
    spoken: HashMap<u32, HashSet<(&'static str, String)>>,
}

/// What the pipeline tells the kernel: container processes and the sockets to watch.
pub struct KernelFilters {
    pub marks: Box<dyn MarkContainerTasks>,
    pub sockets: RuntimeSockets,
    pub socket_watch: Box<dyn WatchSockets>,
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
            containers,
            filesystems,
            marks: kernel.marks,
            sockets: kernel.sockets,
            socket_watch: kernel.socket_watch,
            metrics,
            outputs,
            settings,
            held: Vec::new(),
            spoken: HashMap::new(),
        };
        pipeline.sockets.refresh(pipeline.socket_watch.as_mut());
        pipeline
    }

    /// Seeds the tables from /proc and marks container processes in the kernel.
    pub fn load_snapshot(&mut self, processes: Vec<Process>) {
        for process in processes {
            let pid = process.pid;
            self.processes.insert(process);
            if self.attribute(pid).is_some() {
                self.marks.mark(pid);
            }
        }
        self.update_gauges();
    }

    pub fn handle(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Exec(e) => {
                let missed = self.processes.on_exec(e);
                self.count_miss(missed, e.header.tgid);
                self.forget_spoken(e.header.tgid);
            }
            Event::Fork(e) => {
                let missed = self.processes.on_fork(e);
                self.count_miss(missed, e.ppid);
            }
            Event::Exit(e) => {
                self.processes.on_exit(e.header.tgid, now);
                self.forget_spoken(e.header.tgid);
            }
            Event::CgroupAttach(e) => {
                let path = rules::text(&e.path);
                let names_container = crate::state::cgroup::classify(&path).is_some();
                if let Change::Cgroup(pid) = self.processes.on_cgroup_attach(e, names_container)
                    && self.attribute(pid).is_some()
                {
                    self.marks.mark(pid);
                }
            }
            Event::Namespace(e) => self.hold_namespace_change(e, now),
            Event::FileOpen(_)
            | Event::Mount(_)
            | Event::Module(_)
            | Event::Bpf(_)
            | Event::Ptrace(_)
            | Event::UnixConnect(_) => self.judge_act(event),
        }
    }

    /// The snapshot of the actor (ancestors, container metadata) is only taken for an act a
    /// rule reports.
    fn judge_act(&mut self, event: &Event) {
        let header = *event.header();
        self.look_up(header.tgid);
        if self.who(header.tgid).is_none() {
            return;
        }
        let target = self.target(event);
        let Some(finding) = self
            .who(header.tgid)
            .and_then(|who| self.judge(event, who, target))
        else {
            return;
        };
        if !self.first_time(&finding, header.tgid) {
            return;
        }
        let Some(actor) = self.actor(&header) else {
            return;
        };
        // A refused act left nothing to kill the process for.
        let action = if event.denied() {
            Action::Denied
        } else {
            self.enforce(&finding, &header)
        };
        self.raise(finding, actor, action);
    }

    /// Periodic work: flushes merged namespace changes that are due, forgets old exits.
    pub fn tick(&mut self, now: Instant) {
        let (due, waiting): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|h| h.due <= now);
        self.held = waiting;
        for held in due {
            let event = Event::Namespace(held.event);
            if let Some(finding) = self.judge(&event, held.actor.who(), None) {
                self.raise(finding, held.actor, held.action);
            }
        }
    }

    pub fn sweep(&mut self, now: Instant) {
        self.processes.sweep(now);
        self.sockets.refresh(self.socket_watch.as_mut());
        self.update_gauges();
    }

    /// Raises whatever is still held (at shutdown).
    pub fn flush(&mut self) {
        let far = Instant::now() + NAMESPACE_MERGE_WINDOW * 2;
        self.tick(far);
    }

    fn hold_namespace_change(&mut self, e: &NamespaceEvent, now: Instant) {
        if let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.event.header.tid == e.header.tid)
        {
            held.event.entered |= e.entered;
            held.event.after = e.after;
            return;
        }
        self.look_up(e.header.tgid);
        // Enforcement cannot wait for the merge window: judge the first call now.
        let event = Event::Namespace(*e);
        let Some(finding) = self
            .who(e.header.tgid)
            .and_then(|who| self.judge(&event, who, None))
        else {
            return;
        };
        let Some(actor) = self.actor(&e.header) else {
            return;
        };
        let action = self.enforce(&finding, &e.header);
        self.held.push(HeldNamespaceChange {
            event: *e,
            actor,
            due: now + NAMESPACE_MERGE_WINDOW,
            action,
        });
    }

    fn count_miss(&mut self, missed: bool, pid: u32) {
        if missed {
            self.metrics.process_cache_misses_total.inc();
            self.attribute(pid);
        }
    }

    /// Sets the process's container from its cgroup path.
    fn attribute(&mut self, pid: u32) -> Option<String> {
        let process = self.processes.get_mut(pid)?;
        let id = process
            .cgroup
            .as_deref()
            .and_then(|path| self.containers.attribute(path));
        process.container_id = id.clone();
        id
    }

    /// Puts the process in the table, from /proc when the kernel's events missed it.
    fn look_up(&mut self, pid: u32) {
        let (_, missed) = self.processes.get_or_read(pid);
        self.count_miss(missed, pid);
    }

    /// The process as the rules see it, when it belongs to a container.
    fn who(&self, tgid: u32) -> Option<Who<'_>> {
        let process = self.processes.get(tgid)?;
        Some(Who {
            pid: process.pid,
            comm: &process.comm,
            container_id: process.container_id.as_deref()?,
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
            process: info,
            container: self.containers.info(&container_id),
            container_id,
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
                // Only processes that share the caller's pid namespace can bear that number.
                let observer = self.processes.get(e.header.tgid)?.ns.pid_for_children;
                let candidates = self
                    .processes
                    .iter()
                    .filter(|p| p.exited_at.is_none() && p.ns.pid_for_children == observer)
                    .map(|p| p.pid);
                procfs::host_pid_of(e.header.tgid, e.target_vpid, candidates)?
            }
            tgid => tgid,
        };
        self.look_up(pid);
        let process = self.processes.get(pid)?;
        Some(Target {
            pid,
            comm: process.comm.clone(),
            container_id: process.container_id.clone(),
        })
    }

    /// False when the same process already made the same act under a once-per-process rule.
    fn first_time(&mut self, finding: &Finding, tgid: u32) -> bool {
        match &finding.repeat {
            Repeat::EveryAct => true,
            Repeat::OncePerProcess(key) => self
                .spoken
                .entry(tgid)
                .or_default()
                .insert((finding.rule.id, key.clone())),
        }
    }

    /// A new program image, or none: its acts are news again.
    fn forget_spoken(&mut self, tgid: u32) {
        self.spoken.remove(&tgid);
    }

    /// The finding of an enabled rule for the act, if any.
    fn judge(&self, event: &Event, who: Who<'_>, target: Option<Target>) -> Option<Finding> {
        let subject = Subject {
            pid: who.pid,
            comm: who.comm,
            container_id: who.container_id,
            filesystems: &self.filesystems,
            sockets: &self.sockets,
            target,
        };
        let finding = rules::evaluate(event, &subject)?;
        (!self.settings.disabled_rules.contains(finding.rule.id)).then_some(finding)
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
        let alert = Alert {
            time: timestamp(SystemTime::now()),
            rule: finding.rule.id,
            severity: finding.rule.severity,
            mitre: finding.rule.mitre,
            message: finding.message,
            hostname: self.settings.hostname.clone(),
            action,
            container: actor.container,
            process: actor.process,
            details: finding.details,
        };
        self.metrics
            .alerts_total
            .with_label_values(&[alert.rule, alert.severity.as_str()])
            .inc();
        self.outputs.emit(&alert.to_json_line(), &self.metrics);
        if let Some(since_act) = boottime_ns().checked_sub(actor.seen_ns) {
            self.metrics
                .alert_latency_seconds
                .with_label_values(&[alert.rule])
                .observe(since_act as f64 / 1e9);
        }
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
    use crate::{outputs::Output, state::process::Process};
    use detector_common::{EventKind, ExecEvent, ForkEvent, Namespaces, ns_bit, syscall};
    use std::sync::Mutex;

    const ID: &str = "3f2a5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef012";
    // Pids above pid_max, so /proc never answers for them.
    const SH: u32 = 4_000_000_001;
    const NSENTER: u32 = SH + 1;
    const HOST: u32 = SH + 2;

    struct Recorder(Arc<Mutex<Vec<u32>>>);
    impl MarkContainerTasks for Recorder {
        fn mark(&mut self, tgid: u32) {
            self.0.lock().unwrap().push(tgid);
        }
    }

    struct NoSockets;
    impl WatchSockets for NoSockets {
        fn watch(&mut self, _: detector_common::SocketFile) {}
        fn unwatch(&mut self, _: detector_common::SocketFile) {}
    }

    struct Harness {
        pipeline: Pipeline,
        marked: Arc<Mutex<Vec<u32>>>,
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
            let outputs = Outputs::new(vec![Output::file(&alerts_file).unwrap()], &metrics);
            let marked = Arc::new(Mutex::new(Vec::new()));
            let mut pipeline = Pipeline::new(
                ContainerTable::new(Vec::new()),
                Filesystems::parse("nodev\tproc\n\text4\n"),
                KernelFilters {
                    marks: Box::new(Recorder(marked.clone())),
                    sockets: RuntimeSockets::new(&[]),
                    socket_watch: Box::new(NoSockets),
                },
                metrics,
                outputs,
                PipelineSettings {
                    hostname: "node-1".into(),
                    enforce: false,
                    disabled_rules: disabled.iter().map(|r| r.to_string()).collect(),
                },
            );
            let process = |pid, comm: &str, cgroup: &str| Process {
                pid,
                ppid: 1,
                comm: comm.into(),
                cgroup: Some(cgroup.into()),
                ..Process::default()
            };
            pipeline.load_snapshot(vec![
                process(SH, "sh", &format!("/docker/{ID}")),
                process(HOST, "bash", "/user.slice/session-1.scope"),
            ]);
            Harness {
                pipeline,
                marked,
                alerts_file,
            }
        }

        fn alerts(&self) -> Vec<serde_json::Value> {
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

    fn header(kind: EventKind, tgid: u32) -> Header {
        Header::new(kind, tgid, tgid, 0)
    }

    fn exec(pid: u32, comm: &str) -> Event {
        // SAFETY: plain data; all-zero is a valid ExecEvent.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.header = header(EventKind::Exec, pid);
        e.ppid = SH;
        e.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        Event::Exec(e)
    }

    fn setns(pid: u32, entered: u32) -> Event {
        Event::Namespace(NamespaceEvent {
            header: header(EventKind::Namespace, pid),
            syscall: syscall::SETNS,
            nstype: 0,
            entered,
            _pad: 0,
            before: Namespaces::default(),
            after: Namespaces::default(),
        })
    }

    #[test]
    fn one_nsenter_is_one_alert_about_the_process_as_it_was() {
        let mut h = Harness::new("nsenter", &[]);
        assert_eq!(*h.marked.lock().unwrap(), [SH]);
        let t0 = Instant::now();
        let fork = ForkEvent {
            header: header(EventKind::Fork, NSENTER),
            ppid: SH,
            _pad: 0,
        };
        for event in [
            Event::Fork(fork),
            exec(NSENTER, "nsenter"),
            setns(NSENTER, ns_bit::MNT),
            setns(NSENTER, ns_bit::NET),
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
        h.pipeline.handle(&setns(HOST, ns_bit::MNT), t0);
        h.pipeline.handle(&setns(SH, ns_bit::MNT), t0);
        h.pipeline.flush();
        assert!(h.alerts().is_empty());
    }

    fn bpf(pid: u32, cmd: u32) -> Event {
        Event::Bpf(detector_common::BpfEvent {
            header: header(EventKind::Bpf, pid),
            cmd,
            _pad: 0,
        })
    }

    #[test]
    fn a_once_per_process_rule_speaks_again_after_exec() {
        let mut h = Harness::new("once", &[]);
        let t0 = Instant::now();
        for event in [bpf(SH, 0), bpf(SH, 5), bpf(SH, 28)] {
            h.pipeline.handle(&event, t0);
        }
        assert_eq!(h.alerts().len(), 1, "one alert for the first call");
        assert_eq!(h.alerts()[0]["details"]["command"], "BPF_MAP_CREATE");
        h.pipeline.handle(&exec(SH, "bpftool"), t0);
        h.pipeline.handle(&bpf(SH, 5), t0);
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(alerts[1]["process"]["comm"], "bpftool");
    }
}
