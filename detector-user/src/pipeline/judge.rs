//! Judge: the rules' verdict on an act, given who acted and at whom, and whether that process
//! has said it already.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
};

use detector_common::{ExecEvent, FileId, Header, Namespaces, PtraceEvent, user::Event};

use crate::{
    kernel::watched_files::WatchFiles,
    rules::{self, Finding, Subject, Target},
    state::{
        agent_self::{AgentSelf, OwnBpfObjects},
        container::Origin,
        filesystems::Filesystems,
        runtime_files::RuntimeFiles,
    },
};

/// Who acted, as the rules need to know it.
pub struct Who<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub container_id: &'a str,
    pub ns: Namespaces,
    /// What its container started as.
    pub origin: Option<Origin>,
}

/// What one process (by tgid) already had judged. (Repeats of what it reported are folded by
/// the emit stage.)
#[derive(Default)]
struct Spoken {
    /// Its start time, as the kernel's events say (0 when unknown): a process that got the
    /// pid later starts afresh, even when the first one's exit was lost.
    start_ns: u64,
    /// Its ptrace-level accesses judged so far, as the kernel named them (access, target tgid,
    /// caller's pid namespace, target pid there): a repeat is judged the same, so it is not
    /// judged again, and costs no /proc read to find its target.
    accesses: HashSet<(u32, u32, u32, u32)>,
}

/// The host as the rules compare with it.
pub struct HostFacts {
    /// The host's namespaces (the host reference process's), as the kernel programs know them.
    pub ns: Namespaces,
    /// The host reference process, whose network namespace has the node's addresses.
    pub pid: u32,
    /// The host's root directory.
    pub root: FileId,
}

pub struct Judge {
    filesystems: Filesystems,
    runtime_files: RuntimeFiles,
    file_watch: Box<dyn WatchFiles>,
    host: HostFacts,
    disabled_rules: HashSet<String>,
    /// usermode-helper-exec's allowlist beyond the distributions' helpers.
    extra_usermode_helpers: Vec<PathBuf>,
    agent: AgentSelf,
    /// Per process: what it already reported.
    spoken: HashMap<u32, Spoken>,
}

impl Judge {
    pub fn new(
        filesystems: Filesystems,
        runtime_files: RuntimeFiles,
        file_watch: Box<dyn WatchFiles>,
        host: HostFacts,
        disabled_rules: HashSet<String>,
        extra_usermode_helpers: Vec<PathBuf>,
    ) -> Judge {
        let mut judge = Judge {
            filesystems,
            runtime_files,
            file_watch,
            host,
            disabled_rules,
            extra_usermode_helpers,
            agent: AgentSelf::this_process(),
            spoken: HashMap::new(),
        };
        judge.refresh_runtime_files();
        judge
    }

    /// The detector's own BPF objects, once attached: a container reaching them is tampering.
    pub fn know_own_bpf_objects(&mut self, objects: OwnBpfObjects) {
        self.agent.bpf = objects;
    }

    /// Watches the runtimes' files as they are now (a runtime may have re-created a socket).
    pub fn refresh_runtime_files(&mut self) {
        self.runtime_files.refresh(self.file_watch.as_mut());
    }

    /// A reload's rule settings.
    pub fn reconfigure(
        &mut self,
        disabled_rules: HashSet<String>,
        extra_usermode_helpers: Vec<PathBuf>,
    ) {
        self.disabled_rules = disabled_rules;
        self.extra_usermode_helpers = extra_usermode_helpers;
    }

    pub fn is_disabled(&self, rule: &str) -> bool {
        self.disabled_rules.contains(rule)
    }

    /// The finding about a usermode helper the kernel started, unless the rule is off.
    pub fn helper(&self, e: &ExecEvent) -> Option<Finding> {
        rules::usermode_helper::usermode_helper_exec(e, &self.extra_usermode_helpers)
            .filter(|finding| !self.is_disabled(finding.rule.id))
    }

    /// The finding of an enabled rule for the act, if any.
    pub fn judge(
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
    pub fn judge_with(
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
            host_ns: &self.host.ns,
            host_pid: self.host.pid,
            ns: who.ns,
            origin: who.origin,
            host_root: self.host.root,
            ns_before,
            target,
            agent: &self.agent,
        };
        let enabled = rules(&subject)
            .into_iter()
            .filter(|f| !self.is_disabled(f.rule.id));
        rules::most_specific(enabled)
    }

    /// Whether the same process already made this ptrace-level access, to a target that was
    /// found (every rule about them speaks once per process and target); with `judged`, it
    /// has now.
    pub fn access_judged(&mut self, actor: &Header, e: &PtraceEvent, judged: bool) -> bool {
        let access = (e.access, e.target_tgid, e.caller_pid_ns, e.target_vpid);
        let accesses = &mut self.spoken_by(actor).accesses;
        if judged {
            accesses.insert(access);
        }
        accesses.contains(&access)
    }

    /// A new program image, or none: its acts are news again.
    pub fn forget(&mut self, tgid: u32) {
        self.spoken.remove(&tgid);
    }

    /// What the acting process said so far; nothing when the pid is another process's now.
    fn spoken_by(&mut self, actor: &Header) -> &mut Spoken {
        let spoken = self.spoken.entry(actor.tgid).or_default();
        if actor.start_ns != 0 && spoken.start_ns != actor.start_ns {
            *spoken = Spoken {
                start_ns: actor.start_ns,
                ..Spoken::default()
            };
        }
        spoken
    }
}
