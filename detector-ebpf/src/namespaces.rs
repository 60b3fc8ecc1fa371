//! `setns` by a container process: reported when it leaves with one of the host's namespaces
//! it did not have before. There is no LSM hook or tracepoint for `setns`, so this is one of
//! the few places the syscall tracepoints are worth their cost.

use aya_ebpf::programs::TracePointContext;
use detector_common::{EventKind, NamespaceEvent, Namespaces, syscall};

use crate::{
    config::host_ns,
    emit::{current_ids, header, reserve},
    maps::SETNS_PENDING,
    syscall_record, task,
};

/// What a thread's namespaces were when it entered `setns`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingSetns {
    pub before: Namespaces,
    pub nstype: u32,
    pub _pad: u32,
}

pub fn on_setns_enter(ctx: &TracePointContext) {
    // setns(fd, nstype)
    let nstype = syscall_record::arg(ctx, 1).unwrap_or(0) as u32;
    syscall_record::keep(&SETNS_PENDING, || PendingSetns {
        before: task::namespaces(task::current()),
        nstype,
        _pad: 0,
    });
}

pub fn on_setns_exit(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    let Some(pending) = syscall_record::take(&SETNS_PENDING, tid) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    let after = task::namespaces(task::current());
    let entered = after.entered(&pending.before, &host_ns());
    if entered == 0 {
        return;
    }
    let Some(mut entry) = reserve::<NamespaceEvent>(EventKind::Namespace) else {
        return;
    };
    entry.write(NamespaceEvent {
        header: header(EventKind::Namespace, tgid, tid),
        syscall: syscall::SETNS,
        nstype: pending.nstype,
        entered,
        _pad: 0,
        before: pending.before,
        after,
    });
    entry.submit(0);
}
