//! A container process joining namespaces of the host: reported when one of its namespaces
//! becomes the host's. And a container process making a user namespace: `clone` and `clone3`
//! are seen at the fork, the new process's user namespace against its creator's (no hook of
//! its own); `unshare` by fexit on `unshare_userns` where trampolines work, else by the
//! `unshare` syscall tracepoints (the tracepoint backend has syscall tracepoints attached
//! already, so every system call is on the slow path anyway). The LSM's `userns_create` (6.1+)
//! would add nothing: the rule is never enforced, and fexit sees the namespace made. No LSM hook sees `setns`; where trampolines work, fentry on
//! `switch_task_namespaces` (the one place a live task's nsproxy is replaced: `setns`,
//! `unshare`) sees the switch with the old and new namespaces in hand, at no cost to other
//! system calls. Elsewhere the `setns` syscall tracepoints do, and put every system call of the
//! host on the tracepoint slow path.

use aya_ebpf::programs::{FEntryContext, FExitContext, TracePointContext};
use detector_common::{EventKind, Header, NamespaceEvent, Namespaces, syscall};

use crate::{
    config::host_ns,
    emit::reserve,
    identity::{self, Actor},
    kread::read_or_zero,
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

/// `unshare(flags)`: what the thread's namespaces are before it makes a user namespace.
pub fn on_unshare_enter(ctx: &TracePointContext) {
    let flags = syscall_record::arg(ctx, 0).unwrap_or(0);
    if flags & CLONE_NEWUSER == 0 {
        return;
    }
    syscall_record::keep(&SETNS_PENDING, EventKind::Namespace, || PendingSetns {
        before: task::namespaces(task::current()),
        nstype: flags as u32,
        _pad: 0,
    });
}

pub fn on_unshare_exit(ctx: &TracePointContext) {
    let Some((pending, actor)) = syscall_record::take(&SETNS_PENDING, EventKind::Namespace) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
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

/// `unshare_userns(unsigned long unshare_flags, struct cred **new_cred)` returned: on success
/// with `CLONE_NEWUSER`, `*new_cred` holds the new namespace, which `unshare` commits next.
pub fn on_unshare_userns(ctx: &FExitContext) {
    let flags: u64 = ctx.arg(0);
    let result: i32 = ctx.arg(2);
    if result != 0 || flags & CLONE_NEWUSER == 0 {
        return;
    }
    let Some(actor) = identity::current(EventKind::Namespace) else {
        return;
    };
    let new_cred: *const u8 = ctx.arg(1);
    let before = task::namespaces(task::current());
    let after = Namespaces {
        user: task::user_ns(read_or_zero(new_cred, 0)),
        ..before
    };
    report_userns(
        actor.header(EventKind::Namespace),
        syscall::UNSHARE,
        flags as u32,
        &before,
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
