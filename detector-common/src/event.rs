//! Events the kernel programs put on the ring buffer. Each starts with a [`Header`] whose
//! `kind` says which struct follows.

use crate::config::{Namespaces, identity};

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
    CgroupMkdir = 12,
    CgroupRmdir = 13,
    Signal = 14,
    OpenByHandle = 15,
    TcpConnect = 16,
}

// The kinds are numbered 1..=N, so that each has its column in the loss counters.
const _: () = {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        assert!(EventKind::ALL[i] as usize == i + 1);
        i += 1;
    }
};

/// Why the kernel lost an event, or the state that lets it see one: the row of the loss
/// counters, whose columns are the event kinds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// The ring buffer had no room (the agent reads too slowly, or it is too small).
    RingFull = 0,
    /// A syscall's arguments could not be kept from its entry to its exit (the hand-over map
    /// was full), so its exit had nothing to report.
    HandoverLost = 1,
    /// A kernel read the act needed failed, and the act was not reported.
    ReadFailed = 2,
    /// A container process or cgroup could not be recorded (its map was full): its later acts
    /// may be taken for the host's.
    MapFull = 3,
}

impl LossReason {
    pub const ALL: [LossReason; 4] = [
        LossReason::RingFull,
        LossReason::HandoverLost,
        LossReason::ReadFailed,
        LossReason::MapFull,
    ];

    /// The `reason` label value in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            LossReason::RingFull => "ring_full",
            LossReason::HandoverLost => "handover_lost",
            LossReason::ReadFailed => "read_failed",
            LossReason::MapFull => "map_full",
        }
    }
}

/// Columns of one row of the loss counters: a slot per kind at the kind's value (0 is unused).
const LOSS_COLUMNS: u32 = EventKind::ALL.len() as u32 + 1;

/// Size of the kernel's per-CPU loss counter array.
pub const LOSS_SLOTS: u32 = LossReason::ALL.len() as u32 * LOSS_COLUMNS;

/// The slot of the loss counters that counts `kind` events lost for `reason`.
pub const fn loss_slot(kind: EventKind, reason: LossReason) -> u32 {
    reason as u32 * LOSS_COLUMNS + kind as u32
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
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
        EventKind::CgroupMkdir,
        EventKind::CgroupRmdir,
        EventKind::Signal,
        EventKind::OpenByHandle,
        EventKind::TcpConnect,
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
            EventKind::CgroupMkdir => "cgroup_mkdir",
            EventKind::CgroupRmdir => "cgroup_rmdir",
            EventKind::Signal => "signal",
            EventKind::OpenByHandle => "open_by_handle",
            EventKind::TcpConnect => "tcp_connect",
        }
    }
}

pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 256;
pub const ARGS_LEN: usize = 512;
pub const NAME_LEN: usize = 64;
/// Dentry names carried by a [`FileOpenEvent`], the file's own first.
pub const NAME_DEPTH: usize = 6;
pub const FSTYPE_LEN: usize = 32;
pub const MOUNT_PATH_LEN: usize = 128;

/// Who a task is, as the kernel judged it when it made the event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `identity` bits.
    pub flags: u32,
    pub _pad: u32,
    /// The cgroup (identity hierarchy) that makes the task a container task: the one its mark
    /// records, else its own; for other tasks, its own.
    pub cgroup_id: u64,
}

impl Identity {
    pub const fn is_container(&self) -> bool {
        self.flags & identity::CONTAINER != 0
    }

    pub const fn is_unclassified(&self) -> bool {
        self.flags & identity::UNCLASSIFIED != 0
    }

    pub const fn entered(&self) -> bool {
        self.flags & identity::ENTERED != 0
    }

    pub const fn helper(&self) -> bool {
        self.flags & identity::HELPER != 0
    }
}

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
    pub identity: Identity,
    /// When the task's process started (its leader's `start_boottime`, the clock of
    /// `ktime_ns`; 0 when unknown): with the tgid it names the process, which no later process
    /// that gets the same pid does.
    pub start_ns: u64,
}

impl Header {
    pub const fn new(kind: EventKind, tgid: u32, tid: u32, ktime_ns: u64) -> Header {
        Header {
            kind: kind as u32,
            tgid,
            tid,
            _pad: 0,
            ktime_ns,
            identity: Identity {
                flags: 0,
                _pad: 0,
                cgroup_id: 0,
            },
            start_ns: 0,
        }
    }

    pub const fn with_identity(mut self, identity: Identity) -> Header {
        self.identity = identity;
        self
    }

    pub const fn with_start(mut self, start_ns: u64) -> Header {
        self.start_ns = start_ns;
        self
    }
}

/// `sched_process_exec`: a container task (or one in a cgroup not classified yet) replaced its
/// image. Host processes send none.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: Header,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    /// Length of the process's argv block: `args` holds its first `ARGS_LEN` bytes, so a
    /// longer one was cut. 0 when it could not be read.
    pub args_len: u32,
    /// `start_time` of the thread-group leader: with the tgid, names the process uniquely
    /// (an exec from another thread keeps it).
    pub start_ns: u64,
    pub ns: Namespaces,
    /// `cred.cap_effective` (kernel_cap_t, 64 bits of capabilities).
    pub cap_effective: u64,
    /// The task's root directory (`fs->root`): the host's after a chroot into it.
    pub root: FileId,
    /// The mount namespace of the mount its working directory is on: not its own when the
    /// directory was reached through a descriptor leaked from outside (runc CVE-2024-21626).
    pub cwd_mnt_ns: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; PATH_LEN],
    /// NUL-separated argv, as the process's memory holds it.
    pub args: [u8; ARGS_LEN],
}

/// A new container process (not a new thread). `header.tgid` is the child.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub header: Header,
    /// The child's parent (`real_parent`): not the forking process under `CLONE_PARENT`, which
    /// runc's nsexec uses to start a container's init.
    pub ppid: u32,
    /// The process that forked it, whose image the child runs until it execs.
    pub creator_tgid: u32,
    /// The child's `start_time`.
    pub start_ns: u64,
}

/// The last thread of a container process exited: the process is gone.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: Header,
    pub exit_code: i32,
    pub _pad: u32,
}

/// `cgroup_attach_task` in the identity hierarchy: a process moved into a container's cgroup,
/// or a container process moved anywhere. `header` names the moved task, its identity as
/// judged after the move.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupAttachEvent {
    pub header: Header,
    /// The process that moved it (wrote `cgroup.procs`).
    pub mover_tgid: u32,
    /// The destination's hierarchy: the identity hierarchy's, or, on cgroup v1, another
    /// one's, whose cgroup ids the agent does not know.
    pub hierarchy_id: u32,
    /// The moved process's `start_time`.
    pub start_ns: u64,
    /// The cgroup it moved to.
    pub cgroup_id: u64,
    pub path: [u8; PATH_LEN],
}

/// A cgroup of the identity hierarchy was made (`CgroupMkdir`) or removed (`CgroupRmdir`).
/// The kernel records every new cgroup as pending (or as a container's, below a container's)
/// until the agent classifies it; removals are sent for those it recorded.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupEvent {
    pub header: Header,
    /// `identity::CGROUP_*`: what the kernel recorded for it.
    pub class: u32,
    pub level: u32,
    pub cgroup_id: u64,
    pub parent_id: u64,
    /// Its path from the hierarchy's root.
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
    /// A bind, seen in the kernel (`__do_loopback`): `mount --bind` or `open_tree(OPEN_TREE_CLONE)`.
    pub const BIND: u32 = 5;
    /// A remount, seen in the kernel (`path_mount` with `MS_REMOUNT`): the superblock's type,
    /// the mount point's own name as the target.
    pub const REMOUNT: u32 = 6;
    /// `unshare(CLONE_NEWUSER)`: a new user namespace for the caller.
    pub const UNSHARE: u32 = 7;
    /// `clone` or `clone3` with `CLONE_NEWUSER`, seen at the fork: the new process's user
    /// namespace is not its creator's.
    pub const CLONE: u32 = 8;

    pub const fn name(nr: u32) -> &'static str {
        match nr {
            SETNS => "setns",
            MOUNT => "mount",
            MOUNT_OR_FSCONFIG => "mount/fsconfig",
            FSCONFIG => "fsconfig",
            BIND => "mount --bind/open_tree",
            REMOUNT => "mount -o remount",
            UNSHARE => "unshare",
            CLONE => "clone/clone3",
            _ => "unknown",
        }
    }
}

/// A container task's namespaces changed and at least one became the host's (which ones, the
/// agent works out from `before`, `after` and the host's), or it made a user namespace
/// (`unshare`; `clone` for a new process, whose `before` is its creator's).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NamespaceEvent {
    pub header: Header,
    pub syscall: u32,
    /// The `nstype` argument of `setns`, the flags of `unshare`; 0 where the kernel's own
    /// switch or a fork is watched.
    pub nstype: u32,
    pub before: Namespaces,
    pub after: Namespaces,
}

/// A container task opened (or created) a file the kernel reports: why is `reason`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileOpenEvent {
    pub header: Header,
    /// `file.f_mode`; 0 for a node being created.
    pub f_mode: u32,
    pub i_mode: u32,
    pub dev: u32,
    pub fd: i32,
    /// `super_block.s_magic`.
    pub magic: u64,
    pub ino: u64,
    /// Non-zero when an LSM hook refused the open (enforcement).
    pub denied: u32,
    /// `file_open_reason::*`.
    pub reason: u32,
    /// The device a device node stands for (`inode.i_rdev`, kernel encoding); 0 otherwise.
    pub rdev: u32,
    /// The mount namespace of the mount the file was opened on; 0 when unknown.
    pub mnt_ns: u32,
    /// NUL-terminated dentry names: the file, its parent, its grandparent, ...
    pub names: [[u8; NAME_LEN]; NAME_DEPTH],
}

/// Why the kernel reported a [`FileOpenEvent`].
pub mod file_open_reason {
    /// A write-open on a filesystem that holds kernel settings (proc, sysfs, cgroup, ...).
    pub const SETTING: u32 = 0;
    /// A write-open of a regular file on a mount outside the opener's mount namespace.
    pub const FOREIGN_MOUNT: u32 = 1;
    /// A write-open of a file the agent watches (a container runtime's binary).
    pub const WATCHED: u32 = 2;
    /// An open of a block device, or of `/dev/mem`, `/dev/kmem` or `/dev/port`.
    pub const DEVICE: u32 = 3;
    /// An open of `/proc/kcore`.
    pub const KCORE: u32 = 4;
    /// A block device node being created (`mknod`).
    pub const MKNOD: u32 = 5;
}

/// The memory character devices (major 1): `/dev/mem`, `/dev/kmem`, `/dev/port`.
pub const MEMORY_DEVICES: [u32; 3] = [
    crate::kdev::join(1, 1),
    crate::kdev::join(1, 2),
    crate::kdev::join(1, 4),
];

/// `S_IFMT` and the file types the programs tell apart.
pub mod file_type {
    pub const MASK: u32 = 0o170000;
    pub const REGULAR: u32 = 0o100000;
    pub const BLOCK: u32 = 0o060000;
    pub const CHAR: u32 = 0o020000;
}

/// A container task mounted a filesystem.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MountEvent {
    pub header: Header,
    pub syscall: u32,
    /// The new filesystem's device (`super_block.s_dev`, kernel encoding); 0 when unknown.
    pub dev: u32,
    /// `mount` flags; 0 where the kernel's objects show a new filesystem instance, `MS_BIND`
    /// (with `MS_REC`) for a bind they show.
    pub flags: u64,
    /// For a bind seen in the kernel: the mount namespace of the mount it copies from; else 0.
    pub source_mnt_ns: u32,
    /// 0, or the `-errno` the kernel refused a bind with (binds are reported refused too: the
    /// kernel refuses binds of another namespace's mounts, and the attempt is the news).
    pub result: i32,
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
    /// A module was loaded, by `init_module` or `finit_module` (the `module_load` tracepoint
    /// cannot tell which).
    pub const LOADED: u32 = 4;

    pub const fn name(source: u32) -> &'static str {
        match source {
            IMAGE => "init_module",
            FILE => "finit_module",
            REQUEST => "request_module",
            LOADED => "init_module/finit_module",
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
    /// For the commands that name a loaded object by id (`bpf_cmd::BY_ID_COMMANDS`), that id;
    /// else 0.
    pub object_id: u32,
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
    /// `/proc/PID/environ` or `/proc/PID/auxv` opened (read-mode access to its memory).
    pub const PROC_READ: u32 = 7;
    /// `pidfd_getfd`: a copy of one of the target's descriptors.
    pub const PIDFD_GETFD: u32 = 8;

    pub const fn name(access: u32) -> &'static str {
        match access {
            ATTACH => "ptrace attach",
            SEIZE => "ptrace seize",
            VM_READ => "process_vm_readv",
            VM_WRITE => "process_vm_writev",
            GRANTED_REALCREDS => "ptrace or process_vm access",
            GRANTED_FSCREDS => "/proc/PID/mem access",
            PROC_READ => "/proc/PID/environ or auxv read",
            PIDFD_GETFD => "pidfd_getfd",
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
    /// The pid the caller named, in its own pid namespace (process_vm_* on syscall
    /// tracepoints, where the kernel does not tell the target task).
    pub target_vpid: u32,
    /// The inode of the pid namespace the caller lives in, where `target_vpid` is a pid: the
    /// agent finds the target without the caller, which may be gone by then.
    pub caller_pid_ns: u32,
}

/// A container process connected a unix socket to one of the sockets the agent watches
/// (container runtime and kubelet APIs), identified by the socket file's device and inode.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnixConnectEvent {
    pub header: Header,
    /// The listening socket's file; zeros for an abstract socket.
    pub socket: FileId,
    /// An abstract socket's name (without the leading NUL), NUL-padded; empty for a socket
    /// file. The kernel does not filter these: the agent judges the name, which the host's
    /// listener chose.
    pub abstract_name: [u8; ABSTRACT_NAME_LEN],
    /// How many bytes of `abstract_name` are the name.
    pub abstract_len: u8,
    pub _pad: [u8; 4],
}

/// `sun_path` less its leading NUL.
pub const ABSTRACT_NAME_LEN: usize = 107;

/// A container process began a TCP connection (`SYN_SENT`) to a port the agent watches (the
/// kubelet's and the runtimes' TCP APIs). The kernel filters by port; the agent decides whether
/// the address is this node's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpConnectEvent {
    pub header: Header,
    /// The connecting task's network namespace: a loopback address is the host's only there.
    pub net_ns: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// The destination port, in host byte order.
    pub port: u16,
    /// The destination address: 4 bytes for `AF_INET`, else 16, in network byte order.
    pub addr: [u8; 16],
}

/// TCP ports of the node-local APIs that start containers or run commands in them, by default
/// (`runtime_api_ports` in the config file): the kubelet's (10250, and its read-only 10255) and
/// docker's (2375 plain, 2376 TLS).
pub const DEFAULT_RUNTIME_API_PORTS: [u16; 4] = [10250, 10255, 2375, 2376];

/// How many ports the kernel filter of TCP connects holds (`Config::runtime_api_ports`).
pub const MAX_RUNTIME_API_PORTS: usize = 8;

/// A container process sent a signal to the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SignalEvent {
    pub header: Header,
    pub sig: i32,
    /// `TRACE_SIGNAL_*`: 0 when the signal was delivered (queued), else why not.
    pub result: i32,
}

/// A container process called `open_by_handle_at`, which opens a file by its filesystem handle
/// (inode number and generation), bypassing every path and mount: the "shocker" escape.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpenByHandleEvent {
    pub header: Header,
    /// The call's result: a descriptor, or `-errno`.
    pub result: i64,
    /// The file opened, when the call succeeded; zeros otherwise.
    pub file: FileId,
    /// Its name (NUL-terminated), when the call succeeded.
    pub name: [u8; NAME_LEN],
}

/// A file by its device and inode: `(st_dev, st_ino)`, with the device in the kernel's internal
/// encoding (`super_block.s_dev`). The key of the kernel's watched-file map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
}

/// What a file in the kernel's watched-file map is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchedFile {
    /// A container runtime's or the kubelet's API socket: connections are reported.
    RuntimeSocket = 1,
    /// A container runtime's binary: write-opens are reported.
    RuntimeBinary = 2,
}

/// `file.f_mode` bit for a file opened for writing.
pub const FMODE_WRITE: u32 = 0x2;
/// Set on a regular file's or directory's `f_mode` before `security_file_open` runs
/// (`do_dentry_open`, unchanged since 3.14): a file without it may be a device.
pub const FMODE_ATOMIC_POS: u32 = 0x8000;
