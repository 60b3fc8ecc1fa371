//! Successful `mount` calls by container processes. The agent judges the filesystem type
//! and flags; the kernel only keeps uninteresting processes out.

use aya_ebpf::programs::TracePointContext;
use detector_common::{EventKind, MountEvent, syscall};

use crate::{
    emit::{current_ids, header, reserve},
    kread::user_str,
    maps::{MOUNT_PENDING, container_mark},
};

/// The user pointers and flags of a `mount` call, from entry to exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingMount {
    pub source: u64,
    pub target: u64,
    pub fstype: u64,
    pub flags: u64,
}

/// `mount(dev_name, dir_name, type, flags, data)`: argument slots of the tracepoint record.
const ARG_SOURCE: usize = 16;
const ARG_TARGET: usize = 24;
const ARG_FSTYPE: usize = 32;
const ARG_FLAGS: usize = 40;
const RET: usize = 16;

pub fn on_mount_enter(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return;
    }
    // SAFETY: slots of the syscall tracepoint ABI.
    let arg = |off| unsafe { ctx.read_at::<u64>(off) }.unwrap_or(0);
    let pending = PendingMount {
        source: arg(ARG_SOURCE),
        target: arg(ARG_TARGET),
        fstype: arg(ARG_FSTYPE),
        flags: arg(ARG_FLAGS),
    };
    let _ = MOUNT_PENDING.insert(tid, pending, 0);
}

pub fn on_mount_exit(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    // SAFETY: plain-data copy out of the map.
    let Some(pending) = (unsafe { MOUNT_PENDING.get(tid) }).copied() else {
        return;
    };
    let _ = MOUNT_PENDING.remove(tid);
    // SAFETY: `ret` is the first slot of a sys_exit record.
    let ret = unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(-1);
    if ret != 0 {
        return;
    }
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the user pointers are
    // read with the user-memory helper, which validates them.
    unsafe {
        (*e).header = header(EventKind::Mount, tgid, tid);
        (*e).syscall = syscall::MOUNT;
        (*e).ret = ret as i32;
        (*e).flags = pending.flags;
        user_str(pending.fstype as *const u8, &mut (*e).fstype);
        user_str(pending.source as *const u8, &mut (*e).source);
        user_str(pending.target as *const u8, &mut (*e).target);
    }
    entry.submit(0);
}
