//! `open_by_handle_at` by container processes: a file handle names an inode on a filesystem
//! directly, so a container holding a descriptor on a host filesystem (a bind-mounted
//! /etc/hosts) can open any file of it, the "shocker" escape. Reported after the call, with
//! what it opened.

use aya_ebpf::programs::{FExitContext, TracePointContext};
use detector_common::{EventKind, OpenByHandleEvent};

use crate::{
    config::offset,
    emit::reserve,
    files::{fd_file, file_name},
    identity::{self, Actor},
    kread::{kernel_str, read_or_zero},
    syscall_record, task,
};

/// `do_handle_open(int mountdirfd, struct file_handle __user *ufh, int open_flag)` returned.
pub fn on_do_handle_open(ctx: &FExitContext) {
    let result: i64 = ctx.arg(3);
    if let Some(actor) = identity::current(EventKind::OpenByHandle) {
        report(result, &actor);
    }
}

pub fn on_open_by_handle_exit(ctx: &TracePointContext) {
    let result = syscall_record::ret(ctx);
    if let Some(actor) = identity::current(EventKind::OpenByHandle) {
        report(result, &actor);
    }
}

#[inline(always)]
fn report(result: i64, actor: &Actor) {
    let Some(mut entry) = reserve::<OpenByHandleEvent>(EventKind::OpenByHandle) else {
        return;
    };
    let e = entry.as_mut_ptr();
    let file = if result >= 0 {
        fd_file(task::current(), result as u32).unwrap_or_default()
    } else {
        core::ptr::null()
    };
    // SAFETY: `e` points at a reserved, exclusively owned OpenByHandleEvent.
    unsafe {
        (*e).header = actor.header(EventKind::OpenByHandle);
        (*e).result = result;
        (*e).file = task::file_id(read_or_zero(file, offset!(file_dentry)));
        kernel_str(file_name(file), &mut (*e).name);
    }
    entry.submit(0);
}
