//! The rule catalogue and the dispatch of kernel events to rules. A rule is a pure function
//! of (event, subject) to a finding; every rule here fires only for container processes.

mod agent_tamper;
mod bpf_use;
pub mod cgroup_escape;
mod cgroup_release;
mod exec_invariants;
mod host_file_write;
mod kernel_helper;
mod kernel_module;
mod kernel_tunable;
mod namespace;
mod namespace_invariant;
mod open_by_handle;
mod opened_file;
mod privileged_device;
mod process_access;
mod runtime_socket;
mod sensitive_mount;
pub mod usermode_helper;

use detector_common::{FileId, Namespaces, file_open_reason, refusal, syscall, user::Event};
use serde::Serialize;
use serde_json::Value;

use crate::state::{
    agent_self::AgentSelf, container::Origin, filesystems::Filesystems,
    host_addresses::HostAddresses, runtime_files::RuntimeFiles,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
        }
    }
}

#[derive(Debug)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub mitre: &'static [&'static str],
    pub description: &'static str,
}

/// The critical rules whose acts an LSM hook can refuse, each with its bit of the kernel's
/// `Config::enforce`.
pub const KERNEL_REFUSABLE: [(&RuleInfo, u32); 4] = [
    (
        &cgroup_release::CGROUP_RELEASE_AGENT,
        refusal::RELEASE_AGENT,
    ),
    (&kernel_helper::KERNEL_HELPER_HIJACK, refusal::KERNEL_HELPER),
    (
        &host_file_write::RUNTIME_BINARY_OVERWRITE,
        refusal::RUNTIME_BINARY,
    ),
    (&kernel_module::KERNEL_MODULE_LOAD, refusal::MODULE_LOAD),
];

/// Every rule this build implements, in the contract's order.
pub const CATALOGUE: &[&RuleInfo] = &[
    &namespace::HOST_NAMESPACE_ENTRY,
    &namespace_invariant::NAMESPACE_ESCAPE,
    &exec_invariants::HOST_FD_LEAK,
    &cgroup_release::CGROUP_RELEASE_AGENT,
    &kernel_helper::KERNEL_HELPER_HIJACK,
    &usermode_helper::USERMODE_HELPER_EXEC,
    &host_file_write::RUNTIME_BINARY_OVERWRITE,
    &exec_invariants::HOST_ROOT_CHROOT,
    &kernel_module::KERNEL_MODULE_LOAD,
    &sensitive_mount::SENSITIVE_MOUNT,
    &runtime_socket::RUNTIME_SOCKET_ACCESS,
    &bpf_use::BPF_FROM_CONTAINER,
    &open_by_handle::OPEN_BY_HANDLE,
    &process_access::PTRACE_OUTSIDE_CONTAINER,
    &privileged_device::PRIVILEGED_DEVICE_ACCESS,
    &kernel_tunable::KERNEL_TUNABLE_WRITE,
    &cgroup_escape::CGROUP_ESCAPE,
    &agent_tamper::AGENT_TAMPER,
    &exec_invariants::PRIVILEGE_ESCALATION,
    &namespace_invariant::USERNS_CREATION,
];

/// What a rule needs to know of the acting process besides the event.
pub struct Subject<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub container_id: &'a str,
    pub filesystems: &'a Filesystems,
    pub runtime_files: &'a RuntimeFiles,
    /// The host's namespaces (the host reference process's).
    pub host_ns: &'a Namespaces,
    /// The host reference process.
    pub host_pid: u32,
    /// Its namespaces, as the agent knows them (after the exec, for an exec).
    pub ns: Namespaces,
    /// What its container started as.
    pub origin: Option<Origin>,
    /// The host's root directory.
    pub host_root: FileId,
    /// For an exec or a namespace change, the process's namespaces before it, when the agent
    /// knew them.
    pub ns_before: Option<Namespaces>,
    /// The process the act was aimed at, for acts that have one (ptrace).
    pub target: Option<Target>,
    /// The detector itself.
    pub agent: &'a AgentSelf,
}

/// The process an act was aimed at, as the process table knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    pub container_id: Option<String>,
}

impl Subject<'_> {
    /// "process nsenter (pid 4242) in container 3f2a5c6d7e8f"
    pub fn describe(&self) -> String {
        format!(
            "process {} (pid {}) in container {}",
            self.comm,
            self.pid,
            short_id(self.container_id)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static RuleInfo,
    pub message: String,
    pub details: Value,
    pub repeat: Repeat,
}

/// Whether a repeat of the act by the same process is a new alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repeat {
    EveryAct,
    /// One alert per process (until it execs or exits) for each distinct key.
    OncePerProcess(String),
}

/// The findings of every rule about this event, the most specific first.
pub fn evaluate(event: &Event, subject: &Subject) -> Vec<Finding> {
    let s = subject;
    let candidates = match event {
        Event::Namespace(e) if e.syscall == syscall::SETNS => {
            vec![namespace::host_namespace_entry(e, s)]
        }
        // A user namespace made by unshare or clone, against the namespaces before.
        Event::Namespace(_) => vec![namespace_invariant::userns_creation(s)],
        Event::FileOpen(e) => match e.reason {
            file_open_reason::SETTING => vec![
                cgroup_release::release_agent_write(e, s),
                kernel_helper::helper_path_write(e, s),
                kernel_tunable::kernel_tunable_write(e, s),
            ],
            file_open_reason::WATCHED | file_open_reason::FOREIGN_MOUNT => vec![
                host_file_write::runtime_binary_overwrite(e, s),
                host_file_write::host_file_write(e, s),
            ],
            _ => vec![privileged_device::privileged_device_access(e, s)],
        },
        Event::Mount(e) => vec![sensitive_mount::sensitive_mount(e, s)],
        Event::Module(e) => vec![kernel_module::module_load(e, s)],
        Event::Bpf(e) => vec![agent_tamper::bpf(e, s), bpf_use::bpf_use(e, s)],
        Event::Ptrace(e) => vec![
            agent_tamper::ptrace(e, s),
            process_access::process_access(e, s),
        ],
        Event::UnixConnect(e) => vec![runtime_socket::runtime_socket_access(e, s)],
        Event::TcpConnect(e) => vec![runtime_socket::runtime_tcp_api_access(
            e,
            s,
            &HostAddresses::of_process(s.host_pid),
        )],
        Event::Signal(e) => vec![agent_tamper::signal(e, s)],
        Event::OpenByHandle(e) => vec![open_by_handle::open_by_handle(e, s)],
        Event::Exec(e) => vec![
            namespace_invariant::namespace_escape(s),
            exec_invariants::host_root_chroot(e, s),
            exec_invariants::host_fd_leak(e, s),
            exec_invariants::privilege_escalation(e, s),
            namespace_invariant::userns_creation(s),
        ],
        // A process that became a container process by a move, seen for the first time.
        Event::CgroupAttach(_) => vec![namespace_invariant::namespace_escape(s)],
        Event::Fork(_) | Event::Exit(_) | Event::CgroupMkdir(_) | Event::CgroupRmdir(_) => vec![],
    };
    candidates.into_iter().flatten().collect()
}

/// One act, one alert: the first (most specific) finding speaks, and names the others in its
/// details (`also`).
pub fn most_specific(findings: impl IntoIterator<Item = Finding>) -> Option<Finding> {
    let mut findings = findings.into_iter();
    let mut first = findings.next()?;
    let also: Vec<&str> = findings.map(|f| f.rule.id).collect();
    if !also.is_empty()
        && let Some(details) = first.details.as_object_mut()
    {
        details.insert("also".into(), also.into());
    }
    Some(first)
}

/// "major:minor" of a device number in the kernel's encoding.
pub fn device_name(dev: u32) -> String {
    let (major, minor) = detector_common::kdev::split(dev);
    format!("{major}:{minor}")
}

/// The first 12 characters of a container id, as `docker ps` shows it.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Text of a NUL-terminated kernel buffer.
pub fn text(buf: &[u8]) -> String {
    String::from_utf8_lossy(detector_common::user::c_bytes(buf)).into_owned()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn subject(filesystems: &Filesystems) -> Subject<'_> {
        static NO_FILES: std::sync::OnceLock<RuntimeFiles> = std::sync::OnceLock::new();
        static AGENT: std::sync::OnceLock<AgentSelf> = std::sync::OnceLock::new();
        Subject {
            pid: 4242,
            comm: "sh",
            container_id: "3f2a5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef012",
            filesystems,
            runtime_files: NO_FILES.get_or_init(|| RuntimeFiles::with_known(&[])),
            host_ns: &HOST_NS,
            host_pid: 1,
            ns: HOST_NS,
            origin: None,
            host_root: FileId::default(),
            ns_before: None,
            target: None,
            agent: AGENT.get_or_init(AgentSelf::this_process),
        }
    }

    /// The host's namespaces in rule tests.
    pub const HOST_NS: Namespaces = Namespaces {
        mnt: 4026531832,
        pid_for_children: 4026531836,
        net: 4026531840,
        ipc: 4026531839,
        uts: 4026531838,
        cgroup: 4026531835,
        user: 4026531837,
        time: 4026531834,
    };

    #[test]
    fn host_ns_is_nonzero() {
        assert!(HOST_NS.as_array().iter().all(|&inum| inum != 0));
    }

    pub fn buf<const N: usize>(s: &str) -> [u8; N] {
        let mut b = [0u8; N];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    }

    pub fn header(kind: detector_common::EventKind) -> detector_common::Header {
        detector_common::Header::new(kind, 4242, 4242, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONTRACT.md's rule table: id and severity, in its order.
    const CONTRACT: [(&str, Severity); 20] = [
        ("host-namespace-entry", Severity::Critical),
        ("namespace-escape", Severity::Critical),
        ("host-fd-leak", Severity::Critical),
        ("cgroup-release-agent", Severity::Critical),
        ("kernel-helper-hijack", Severity::Critical),
        ("usermode-helper-exec", Severity::Critical),
        ("runtime-binary-overwrite", Severity::Critical),
        ("host-root-chroot", Severity::Critical),
        ("kernel-module-load", Severity::Critical),
        ("sensitive-mount", Severity::High),
        ("runtime-socket-access", Severity::High),
        ("bpf-from-container", Severity::High),
        ("open-by-handle", Severity::High),
        ("ptrace-outside-container", Severity::High),
        ("privileged-device-access", Severity::High),
        ("kernel-tunable-write", Severity::High),
        ("cgroup-escape", Severity::High),
        ("agent-tamper", Severity::High),
        ("privilege-escalation", Severity::Medium),
        ("userns-creation", Severity::Medium),
    ];

    #[test]
    fn the_catalogue_follows_the_contract() {
        let mut contract = CONTRACT.iter();
        for rule in CATALOGUE {
            // Each rule is the contract's next one of the catalogue: same id and severity, no
            // repeats, in the contract's order.
            assert!(
                contract.any(|(id, severity)| *id == rule.id && *severity == rule.severity),
                "{} ({:?}) out of order or not in the contract",
                rule.id,
                rule.severity
            );
            assert!(!rule.mitre.is_empty() && !rule.description.is_empty());
        }
    }

    fn finding(rule: &'static RuleInfo) -> Finding {
        Finding {
            rule,
            message: rule.id.into(),
            details: serde_json::json!({ "k": 1 }),
            repeat: Repeat::EveryAct,
        }
    }

    #[test]
    fn the_most_specific_finding_speaks_and_names_the_others() {
        assert!(most_specific(vec![]).is_none());
        let alone = most_specific(vec![finding(&agent_tamper::AGENT_TAMPER)]).unwrap();
        assert_eq!(alone.details, serde_json::json!({ "k": 1 }));
        let first = most_specific(vec![
            finding(&agent_tamper::AGENT_TAMPER),
            finding(&process_access::PTRACE_OUTSIDE_CONTAINER),
        ])
        .unwrap();
        assert_eq!(first.rule.id, "agent-tamper");
        assert_eq!(
            first.details,
            serde_json::json!({ "k": 1, "also": ["ptrace-outside-container"] })
        );
    }
}
