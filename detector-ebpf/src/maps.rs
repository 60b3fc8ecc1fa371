//! Maps shared by the programs and the agent.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use detector_common::{FileId, LOSS_SLOTS, TaskMark};

use crate::{
    devices::PendingMknod, mounts::PendingMount, namespaces::PendingSetns, ptrace::PendingPtrace,
};

/// Events for the agent. The agent may resize it before load (`ring_buffer_bytes`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Losses, per CPU, by reason and event kind (`detector_common::loss_slot`).
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_SLOTS, 0);

/// Cgroups of the identity hierarchy whose processes are container processes, and cgroups made
/// since the agent started that it has not classified yet (`identity::CGROUP_*`). The agent
/// fills it from the cgroups it finds at start and classifies every new one; the kernel adds
/// new ones as pending and removes removed ones.
#[map]
pub static CONTAINER_CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(65536, 0);

/// Container processes by tgid. Only the kernel writes it: see `identity`.
#[map]
pub static CONTAINER_TASKS: HashMap<u32, TaskMark> = HashMap::with_max_entries(65536, 0);

// The hand-over maps below keep a container thread's syscall arguments from entry to exit, by
// tid. They are plain hash maps, not LRU ones: an LRU map evicts entries silently whenever it
// runs short of free nodes (which its per-CPU free lists make happen before it is full), while a full plain map refuses the insert, which
// `syscall_record::keep` counts. Entries do not leak: the exit tracepoint runs for every call
// that returns, a thread killed inside the call included, and a tid's next call overwrites.

/// Namespaces of a container thread (tid) as it entered `setns`.
#[map]
pub static SETNS_PENDING: HashMap<u32, PendingSetns> = HashMap::with_max_entries(4096, 0);

/// Arguments of a container thread's `mount` call, kept from entry to exit.
#[map]
pub static MOUNT_PENDING: HashMap<u32, PendingMount> = HashMap::with_max_entries(4096, 0);

/// A container thread's ptrace attach or process_vm_* call, kept from entry to exit.
#[map]
pub static PTRACE_PENDING: HashMap<u32, PendingPtrace> = HashMap::with_max_entries(4096, 0);

/// The descriptor of a container thread's `connect` call, kept from entry to exit.
#[map]
pub static CONNECT_PENDING: HashMap<u32, u32> = HashMap::with_max_entries(4096, 0);

/// The descriptor of a container thread's `fsconfig(FSCONFIG_CMD_CREATE[_EXCL])` call, kept
/// from entry to exit.
#[map]
pub static FSCONFIG_PENDING: HashMap<u32, u32> = HashMap::with_max_entries(4096, 0);

/// A container thread's `mknod` of a block device, kept from entry to exit.
#[map]
pub static MKNOD_PENDING: HashMap<u32, PendingMknod> = HashMap::with_max_entries(4096, 0);

/// Files the agent watches, with what they are (`WatchedFile`): runtime and kubelet API
/// sockets, whose connections are reported, and runtime binaries, whose write-opens are. The
/// agent fills it from the paths it knows and refreshes it when a runtime re-creates a socket
/// or an upgrade replaces a binary.
#[map]
pub static WATCHED_FILES: HashMap<FileId, u32> = HashMap::with_max_entries(256, 0);
