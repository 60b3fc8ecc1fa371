//! A container process joining namespaces of the host: reported when one of its namespaces
//! becomes the host's. No LSM hook sees `setns`; where trampolines work, fentry on
//! `switch_task_namespaces` (the one place a live task's nsproxy is replaced: `setns`,
//! `unshare`) sees the switch with the old and new namespaces in hand, at no cost to other
//! system calls. Elsewhere the `setns` syscall tracepoints do, and put every system call of the
//! host on the tracepoint slow path.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{EventKind, NamespaceEvent, Namespaces, syscall};

use crate::{
    config::host_ns,
    emit::reserve,
    identity::{self, Actor},
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
    syscall_record::keep(&SETNS_PENDING, EventKind::Namespace, || PendingSetns {
        before: task::namespaces(task::current()),
        nstype,
        _pad: 0,
    });
}

pub fn on_setns_exit(ctx: &TracePointContext) {
    let Some((pending, actor)) = syscall_record::take(&SETNS_PENDING, EventKind::Namespace) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    let after = task::namespaces(task::current());
    report(&actor, pending.nstype, &pending.before, &after);
}

/// `switch_task_namespaces(struct task_struct *p, struct nsproxy *new)`, before the switch;
/// a NULL `new` is the exit path. Credentials (the user namespace) are already committed.
pub fn on_switch_task_namespaces(ctx: &FEntryContext) {
    let new: *const u8 = ctx.arg(1);
    if new.is_null() {
        return;
    }
    let Some(actor) = identity::current(EventKind::Namespace) else {
        return;
    };
    let current = task::current();
    let before = task::namespaces(current);
    let after = task::namespaces_with(current, new);
    report(&actor, 0, &before, &after);
}

#[inline(always)]
fn report(actor: &Actor, nstype: u32, before: &Namespaces, after: &Namespaces) {
    if !after.entered_any(before, &host_ns()) {
        return;
    }
    let Some(mut entry) = reserve::<NamespaceEvent>(EventKind::Namespace) else {
        return;
    };
    entry.write(NamespaceEvent {
        header: actor.header(EventKind::Namespace),
        syscall: syscall::SETNS,
        nstype,
        before: *before,
        after: *after,
    });
    entry.submit(0);
}
