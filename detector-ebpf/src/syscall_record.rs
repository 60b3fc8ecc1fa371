//! The records of the `syscalls:sys_enter_*` and `sys_exit_*` tracepoints (their ABI: common
//! fields and the syscall number, then the arguments or the return value), and the hand-over
//! of a thread's arguments from entry to exit.

use aya_ebpf::{maps::HashMap, programs::TracePointContext};
use detector_common::{EventKind, LossReason};

use crate::{
    emit::{count_loss, current_ids},
    identity::{self, Actor},
};

/// Offset of the first argument in a sys_enter record, and of `ret` in a sys_exit record.
const FIRST_SLOT: usize = 16;

/// Argument `n` (from 0) of a sys_enter record.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> Option<u64> {
    // SAFETY: the read goes through the probe-read helper: out of the record it fails.
    unsafe { ctx.read_at::<u64>(FIRST_SLOT + 8 * n) }.ok()
}

/// The return value of a sys_exit record; -1 when unreadable.
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: as for `arg`.
    unsafe { ctx.read_at::<i64>(FIRST_SLOT) }.unwrap_or(-1)
}

/// At entry of a call whose exit makes a `kind` event: keeps `value()` for the current thread
/// when it belongs to a container process (`value` is only computed then). A full map loses
/// the act, and counts it.
#[inline(always)]
pub fn keep<V: 'static>(map: &HashMap<u32, V>, kind: EventKind, value: impl FnOnce() -> V) {
    if let Some(actor) = identity::current(kind)
        && map.insert(actor.tid, value(), 0).is_err()
    {
        count_loss(kind, LossReason::HandoverLost);
    }
}

/// At exit: what the current thread stored in `map` at entry (the entry is removed), and who
/// it is.
#[inline(always)]
pub fn take<V: Copy + 'static>(map: &HashMap<u32, V>, kind: EventKind) -> Option<(V, Actor)> {
    let (_, tid) = current_ids();
    // SAFETY: plain-data copy out of the map.
    let value = unsafe { map.get(tid) }.copied()?;
    let _ = map.remove(tid);
    Some((value, identity::current(kind)?))
}
