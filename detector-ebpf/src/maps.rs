//! Maps shared by the programs and the agent.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use detector_common::{FileId, KIND_SLOTS, TaskMark};

use crate::{
    devices::PendingMknod, mounts::PendingMount, namespaces::PendingSetns, ptrace::PendingPtrace,
};

/// Events for the agent. The agent may resize it before load (`ring_buffer_bytes`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Losses, per CPU: failed ring-buffer reservations indexed by `EventKind`, and full maps.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(KIND_SLOTS, 0);

/// Cgroups of the identity hierarchy whose processes are container processes, and cgroups made
/// since the agent started that it has not classified yet (`identity::CGROUP_*`). The agent
/// fills it from the cgroups it finds at start and classifies every new one; the kernel adds
/// new ones as pending and removes removed ones.
#[map]
pub static CONTAINER_CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(65536, 0);

/// Container processes by tgid. Only the kernel writes it: see `identity`.
#[map]
pub static CONTAINER_TASKS: HashMap<u32, TaskMark> = HashMap::with_max_entries(65536, 0);

/// Namespaces of a container thread (tid) as it entered `setns`; LRU so that a thread killed
/// inside the call cannot leak an entry.
#[map]
pub static SETNS_PENDING: LruHashMap<u32, PendingSetns> = LruHashMap::with_max_entries(4096, 0);

/// Arguments of a container thread's `mount` call, kept from entry to exit.
#[map]
pub static MOUNT_PENDING: LruHashMap<u32, PendingMount> = LruHashMap::with_max_entries(4096, 0);

/// A container thread's ptrace attach or process_vm_* call, kept from entry to exit.
#[map]
pub static PTRACE_PENDING: LruHashMap<u32, PendingPtrace> = LruHashMap::with_max_entries(4096, 0);

/// The descriptor of a container thread's `connect` call, kept from entry to exit.
#[map]
pub static CONNECT_PENDING: LruHashMap<u32, u32> = LruHashMap::with_max_entries(4096, 0);

/// The descriptor of a container thread's `fsconfig(FSCONFIG_CMD_CREATE[_EXCL])` call, kept
/// from entry to exit.
#[map]
pub static FSCONFIG_PENDING: LruHashMap<u32, u32> = LruHashMap::with_max_entries(4096, 0);

/// A container thread's `mknod` of a block device, kept from entry to exit.
#[map]
pub static MKNOD_PENDING: LruHashMap<u32, PendingMknod> = LruHashMap::with_max_entries(4096, 0);

/// Files the agent watches, with what they are (`WatchedFile`): runtime and kubelet API
/// sockets, whose connections are reported, and runtime binaries, whose write-opens are. The
/// agent fills it from the paths it knows and refreshes it when a runtime re-creates a socket
/// or an upgrade replaces a binary.
#[map]
pub static WATCHED_FILES: HashMap<FileId, u32> = HashMap::with_max_entries(256, 0);
