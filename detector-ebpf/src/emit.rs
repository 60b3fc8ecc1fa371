//! Ring-buffer reservation with loss accounting: a record that does not fit is counted, per
//! CPU and kind, never dropped silently.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_ktime_get_boot_ns},
    maps::ring_buf::RingBufEntry,
};
use detector_common::{EventKind, Header, Identity, LossReason, loss_slot};

use crate::maps::{EVENTS, LOST};

/// Reserves room for a `T`, or counts the loss.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_loss(kind, LossReason::RingFull);
    }
    entry
}

/// Counts one `kind` event lost for `reason`.
#[inline(always)]
pub fn count_loss(kind: EventKind, reason: LossReason) {
    if let Some(counter) = LOST.get_ptr_mut(loss_slot(kind, reason)) {
        // SAFETY: per-CPU slot; nothing else on this CPU runs between the read and the write.
        unsafe { *counter += 1 };
    }
}

/// A header for an event about the task `tgid`/`tid`, who is `identity`.
#[inline(always)]
pub fn header(kind: EventKind, tgid: u32, tid: u32, identity: Identity) -> Header {
    // SAFETY: helper without arguments.
    Header::new(kind, tgid, tid, unsafe { bpf_ktime_get_boot_ns() }).with_identity(identity)
}

/// (tgid, tid) of the current task.
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}
