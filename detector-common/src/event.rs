//! Events the kernel programs put on the ring buffer. Each starts with a [`Header`] whose
//! `kind` says which struct follows.

use crate::config::Namespaces;

/// What an event is; the discriminant is also its index in the kernel's loss counters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    CgroupAttach = 4,
    Namespace = 5,
    FileOpen = 6,
    Mount = 7,
    Module = 8,
    Bpf = 9,
    Ptrace = 10,
    UnixConnect = 11,
}

/// Size of the per-kind loss counter array; index 0, which no kind uses, counts
/// [`MARK_FAILED_SLOT`].
pub const KIND_SLOTS: u32 = EventKind::ALL.len() as u32 + 1;

// The kinds are numbered 1..=N, so that each has its slot below KIND_SLOTS.
const _: () = {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        assert!(EventKind::ALL[i] as usize == i + 1);
        i += 1;
    }
};

/// Slot of the loss counters that counts container processes the kernel could not put in its
/// container-task map (full): their acts are filtered out in the kernel.
pub const MARK_FAILED_SLOT: u32 = 0;

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Exec,
        EventKind::Fork,
        EventKind::Exit,
        EventKind::CgroupAttach,
        EventKind::Namespace,
        EventKind::FileOpen,
        EventKind::Mount,
        EventKind::Module,
        EventKind::Bpf,
        EventKind::Ptrace,
        EventKind::UnixConnect,
    ];

    pub fn from_u32(v: u32) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| *k as u32 == v)
    }

    /// The `kind` label value in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Exec => "exec",
            EventKind::Fork => "fork",
            EventKind::Exit => "exit",
            EventKind::CgroupAttach => "cgroup_attach",
            EventKind::Namespace => "namespace",
            EventKind::FileOpen => "file_open",
            EventKind::Mount => "mount",
            EventKind::Module => "module",
            EventKind::Bpf => "bpf",
            EventKind::Ptrace => "ptrace",
            EventKind::UnixConnect => "unix_connect",
        }
    }
}

pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 256;
pub const ARGS_LEN: usize = 512;
pub const NAME_LEN: usize = 64;
/// Dentry names carried by a [`FileOpenEvent`], the file's own first.
pub const NAME_DEPTH: usize = 4;
pub const FSTYPE_LEN: usize = 32;
pub const MOUNT_PATH_LEN: usize = 128;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub kind: u32,
    /// Process (thread group) id of the task the event is about.
    pub tgid: u32,
    /// Thread id of that task.
    pub tid: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_boot_ns()` when the event was made.
    pub ktime_ns: u64,
}

impl Header {
    pub const fn new(kind: EventKind, tgid: u32, tid: u32, ktime_ns: u64) -> Header {
        Header {
            kind: kind as u32,
            tgid,
            tid,
            _pad: 0,
            ktime_ns,
        }
    }
}

/// `sched_process_exec`: a task replaced its image. Sent for every process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: Header,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    /// Non-zero when the kernel counts this task as a container task (see `task_mark`).
    pub marked: u32,
    pub ns: Namespaces,
    /// Bytes of `args` filled in.
    pub args_len: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; PATH_LEN],
    /// NUL-separated argv, as the process's memory holds it.
    pub args: [u8; ARGS_LEN],
}

/// A new process (not a new thread). `header.tgid` is the child.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub header: Header,
    pub ppid: u32,
    pub _pad: u32,
}

/// A thread-group leader exited.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: Header,
    pub exit_code: i32,
    pub _pad: u32,
}

/// `cgroup_attach_task`: a thread-group leader was moved into a cgroup. `header` names the
/// moved task.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupAttachEvent {
    pub header: Header,
    /// The process that moved it (wrote `cgroup.procs`).
    pub mover_tgid: u32,
    /// Hierarchy id (`/proc/cgroups`); 0 is the unified (v2) hierarchy.
    pub hierarchy: u32,
    pub level: u32,
    pub _pad: u32,
    pub cgroup_id: u64,
    pub path: [u8; PATH_LEN],
}

/// The system call behind a [`NamespaceEvent`] or [`MountEvent`].
pub mod syscall {
    pub const SETNS: u32 = 1;
    pub const MOUNT: u32 = 2;
    /// A new filesystem instance, seen in the kernel (`vfs_get_tree`): `mount` or, with the
    /// new mount API, `fsconfig(FSCONFIG_CMD_CREATE)`.
    pub const MOUNT_OR_FSCONFIG: u32 = 3;
    pub const FSCONFIG: u32 = 4;

    pub const fn name(nr: u32) -> &'static str {
        match nr {
            SETNS => "setns",
            MOUNT => "mount",
            MOUNT_OR_FSCONFIG => "mount/fsconfig",
            FSCONFIG => "fsconfig",
            _ => "unknown",
        }
    }
}

/// A container task's namespaces changed and at least one became the host's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NamespaceEvent {
    pub header: Header,
    pub syscall: u32,
    /// The `nstype` argument of `setns`.
    pub nstype: u32,
    /// `ns_bit` mask of the namespaces that became the host's.
    pub entered: u32,
    pub _pad: u32,
    pub before: Namespaces,
    pub after: Namespaces,
}

/// A container task opened, for writing, a file on a pseudo filesystem where kernel settings
/// live (proc, sysfs, cgroup, binfmt_misc, ...).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileOpenEvent {
    pub header: Header,
    pub f_mode: u32,
    pub i_mode: u32,
    pub dev: u32,
    pub fd: i32,
    /// `super_block.s_magic`.
    pub magic: u64,
    pub ino: u64,
    /// Non-zero when an LSM hook refused the open (enforcement).
    pub denied: u32,
    pub _pad: u32,
    /// NUL-terminated dentry names: the file, its parent, its grandparent, ...
    pub names: [[u8; NAME_LEN]; NAME_DEPTH],
}

/// A container task mounted a filesystem.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MountEvent {
    pub header: Header,
    pub syscall: u32,
    /// The new filesystem's device (`super_block.s_dev`, kernel encoding); 0 when unknown.
    pub dev: u32,
    /// `mount` flags; 0 where the kernel's objects are read (they only ever show new
    /// filesystem instances, never a remount, bind or move).
    pub flags: u64,
    pub fstype: [u8; FSTYPE_LEN],
    pub source: [u8; MOUNT_PATH_LEN],
    /// Empty when the hook does not know the mount point (fexit on `vfs_get_tree`).
    pub target: [u8; MOUNT_PATH_LEN],
}

/// How a container process made the kernel take in a module.
pub mod module_source {
    /// `init_module`: a module image from memory.
    pub const IMAGE: u32 = 1;
    /// `finit_module`: a module file.
    pub const FILE: u32 = 2;
    /// The kernel was asked to load a module by name (autoload, `request_module`).
    pub const REQUEST: u32 = 3;

    pub const fn name(source: u32) -> &'static str {
        match source {
            IMAGE => "init_module",
            FILE => "finit_module",
            REQUEST => "request_module",
            _ => "unknown",
        }
    }
}

/// A container process loaded, or made the kernel request, a kernel module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleEvent {
    pub header: Header,
    /// A `module_source` value.
    pub source: u32,
    /// Non-zero when an LSM hook refused the load (enforcement).
    pub denied: u32,
    /// The module file's name, or the requested module's name; empty for an image.
    pub name: [u8; NAME_LEN],
}

/// A container process used the `bpf()` system call (map element operations left out: they
/// need a descriptor one of the reported commands produced).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BpfEvent {
    pub header: Header,
    /// The `cmd` argument (`enum bpf_cmd`).
    pub cmd: u32,
    pub _pad: u32,
}

/// How a container process reached into another process.
pub mod ptrace_access {
    /// `ptrace(PTRACE_ATTACH)`.
    pub const ATTACH: u32 = 1;
    /// `ptrace(PTRACE_SEIZE)`.
    pub const SEIZE: u32 = 2;
    /// `process_vm_readv`.
    pub const VM_READ: u32 = 3;
    /// `process_vm_writev`.
    pub const VM_WRITE: u32 = 4;
    /// The kernel granted attach-level access (`ptrace_may_access` with `PTRACE_MODE_ATTACH`)
    /// using the real credentials: ptrace attach or process_vm_readv/writev.
    pub const GRANTED_REALCREDS: u32 = 5;
    /// The same with filesystem credentials: opening /proc/PID/mem (or similar).
    pub const GRANTED_FSCREDS: u32 = 6;

    pub const fn name(access: u32) -> &'static str {
        match access {
            ATTACH => "ptrace attach",
            SEIZE => "ptrace seize",
            VM_READ => "process_vm_readv",
            VM_WRITE => "process_vm_writev",
            GRANTED_REALCREDS => "ptrace or process_vm access",
            GRANTED_FSCREDS => "/proc/PID/mem access",
            _ => "unknown",
        }
    }
}

/// A container process gained ptrace-level access to another process (with fexit, only
/// targets outside its mount namespace are sent; the agent decides by container).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PtraceEvent {
    pub header: Header,
    /// A `ptrace_access` value.
    pub access: u32,
    /// The target's tgid as the host sees it; 0 when only `target_vpid` is known.
    pub target_tgid: u32,
    /// The pid the caller named, in its own pid namespace (syscall tracepoints only).
    pub target_vpid: u32,
    pub _pad: u32,
}

/// A container process connected a unix socket to one of the sockets the agent watches
/// (container runtime and kubelet APIs), identified by the socket file's device and inode.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnixConnectEvent {
    pub header: Header,
    /// The listening socket's file.
    pub socket: SocketFile,
}

/// Key of the kernel's watched-socket map: a socket file's `(st_dev, st_ino)`, with the
/// device in the kernel's internal encoding (`super_block.s_dev`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketFile {
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
}

/// `file.f_mode` bit for a file opened for writing.
pub const FMODE_WRITE: u32 = 0x2;
