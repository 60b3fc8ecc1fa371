//! A container process joining namespaces of the host: reported when one of its namespaces
//! becomes the host's. No LSM hook sees `setns`; where trampolines work, fentry on
//! `switch_task_namespaces` (the one place a live task's nsproxy is replaced: `setns`,
//! `unshare`) sees the switch with the old and new namespaces in hand, at no cost to other
//! system calls. Elsewhere the `setns` syscall tracepoints do, and put every system call of the
//! host on the tracepoint slow path.
//!
//! And a container process making a user namespace. `clone` and `clone3` are seen at the fork,
//! the new process's user namespace against its creator's: no hook of their own. `unshare`
//! (which replaces no nsproxy when it makes a user namespace alone) is seen by fentry and fexit
//! on `ksys_unshare` where trampolines work: the narrower `unshare_userns` hands its result
//! through a `struct cred **`, which 6.1's verifier does not let a program read. Elsewhere the
//! `unshare` syscall tracepoints see it, at no cost of their own: the tracepoint backend's other
//! syscall tracepoints already put every call on the slow path. The LSM's `userns_create`
//! (6.1+) would add nothing: the rule is never enforced.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{EventKind, Header, NamespaceEvent, Namespaces, syscall};

use crate::{
    config::host_ns,
    emit::reserve,
    identity::{self, Actor},
    maps::SETNS_PENDING,
    syscall_record, task,
};

/// `CLONE_NEWUSER` of `unshare`'s flags.
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// What a thread's namespaces were when it entered `setns` (or `unshare`: a thread is in one
/// call at a time, so both share the map).
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
    if after.entered_any(before, &host_ns()) {
        emit(
            actor.header(EventKind::Namespace),
            syscall::SETNS,
            nstype,
            before,
            after,
        );
    }
}

/// `unshare(flags)` entered (the syscall's tracepoint, or fentry on `ksys_unshare`): what the
/// thread's namespaces are before it makes a user namespace.
#[inline(always)]
pub fn on_unshare_enter(flags: u64) {
    if flags & CLONE_NEWUSER == 0 {
        return;
    }
    syscall_record::keep(&SETNS_PENDING, EventKind::Namespace, || PendingSetns {
        before: task::namespaces(task::current()),
        nstype: flags as u32,
        _pad: 0,
    });
}

/// `unshare` returned `result`: the new namespaces are the thread's own by then.
#[inline(always)]
pub fn on_unshare_exit(result: i64) {
    let Some((pending, actor)) = syscall_record::take(&SETNS_PENDING, EventKind::Namespace) else {
        return;
    };
    if result != 0 {
        return;
    }
    let after = task::namespaces(task::current());
    report_userns(
        actor.header(EventKind::Namespace),
        syscall::UNSHARE,
        pending.nstype,
        &pending.before,
        &after,
    );
}

/// `sched_process_fork`, for a new container process (`header` its own): a user namespace
/// that is not its creator's (the current task's) was made by `clone` or `clone3`.
#[inline(always)]
pub fn on_fork(child: *const u8, header: Header) {
    let before = task::namespaces(task::current());
    let after = task::namespaces(child);
    report_userns(header, syscall::CLONE, 0, &before, &after);
}

#[inline(always)]
fn report_userns(header: Header, call: u32, flags: u32, before: &Namespaces, after: &Namespaces) {
    if after.user != before.user && after.user != 0 {
        emit(header, call, flags, before, after);
    }
}

#[inline(always)]
fn emit(header: Header, call: u32, nstype: u32, before: &Namespaces, after: &Namespaces) {
    let Some(mut entry) = reserve::<NamespaceEvent>(EventKind::Namespace) else {
        return;
    };
    entry.write(NamespaceEvent {
        header,
        syscall: call,
        nstype,
        before: *before,
        after: *after,
    });
    entry.submit(0);
}
