//! Maps shared by the programs and the agent.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use detector_common::{KIND_SLOTS, MARK_FAILED_SLOT, SocketFile};

use crate::{
    emit::count_loss, mounts::PendingMount, namespaces::PendingSetns, ptrace::PendingPtrace,
};

/// Events for the agent. The agent may resize it before load (`ring_buffer_bytes`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Failed ring-buffer reservations, per CPU, indexed by `EventKind`.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(KIND_SLOTS, 0);

/// Processes (tgid) the kernel treats as container processes; value: `task_mark` bits.
/// Filled at exec (foreign mount namespace) and fork (inherited), and by the agent.
#[map]
pub static CONTAINER_TASKS: HashMap<u32, u32> = HashMap::with_max_entries(65536, 0);

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

/// Socket files whose connections are reported (runtime and kubelet APIs); the agent fills it
/// from the paths it is configured with, and refreshes it when a runtime re-creates a socket.
#[map]
pub static WATCHED_SOCKETS: HashMap<SocketFile, u32> = HashMap::with_max_entries(256, 0);

/// The `task_mark` bits of a process, or `None` when it is not a container process.
#[inline(always)]
pub fn container_mark(tgid: u32) -> Option<u32> {
    // SAFETY: the value is a plain u32 copied out at once.
    unsafe { CONTAINER_TASKS.get(tgid) }.copied()
}

/// Puts a process in the container-task map. A full map is counted: the kernel would filter
/// out that process's acts, so the loss must show.
#[inline(always)]
pub fn mark_container_task(tgid: u32, mark: u32) {
    if CONTAINER_TASKS.insert(tgid, mark, 0).is_err() {
        count_loss(MARK_FAILED_SLOT);
    }
}
