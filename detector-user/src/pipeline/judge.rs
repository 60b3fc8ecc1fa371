//! Judge: the rules' verdict on an act, given who acted and at whom, and whether that process
//! has said it already.

use std::collections::{HashMap, HashSet};

use detector_common::{FileId, Header, Namespaces, PtraceEvent, user::Event};

use crate::{
    kernel::watched_files::WatchFiles,
    rules::{self, Finding, Repeat, Subject, Target},
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

/// What one process (by tgid) already reported under a once-per-process rule.
#[derive(Default)]
struct Spoken {
    /// Its start time, as the kernel's events say (0 when unknown): a process that got the
    /// pid later starts afresh, even when the first one's exit was lost.
    start_ns: u64,
    /// (rule, key) of its acts.
    acts: HashSet<(&'static str, String)>,
    /// Its ptrace-level accesses judged so far, as the kernel named them (access, target tgid,
    /// caller's pid namespace, target pid there): a repeat is judged the same, so it is not
    /// judged again, and costs no /proc read to find its target.
    accesses: HashSet<(u32, u32, u32, u32)>,
}

/// The host as the rules compare with it.
pub struct HostFacts {
    /// The host's namespaces (the host reference process's), as the kernel programs know them.
    pub ns: Namespaces,
    /// The host's root directory.
    pub root: FileId,
}

pub struct Judge {
    filesystems: Filesystems,
    runtime_files: RuntimeFiles,
    file_watch: Box<dyn WatchFiles>,
    host: HostFacts,
    disabled_rules: HashSet<String>,
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
    ) -> Judge {
        let mut judge = Judge {
            filesystems,
            runtime_files,
            file_watch,
            host,
            disabled_rules,
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

    pub fn is_disabled(&self, rule: &str) -> bool {
        self.disabled_rules.contains(rule)
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

    /// False when the same process already made the same act under a once-per-process rule.
    pub fn first_time(&mut self, finding: &Finding, actor: &Header) -> bool {
        let Repeat::OncePerProcess(key) = &finding.repeat else {
            return true;
        };
        self.spoken_by(actor)
            .acts
            .insert((finding.rule.id, key.clone()))
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
