//! Container processes reaching into another process: ptrace attach, process_vm_readv/writev,
//! /proc/PID/mem, /proc/PID/environ and auxv, pidfd_getfd. Where fexit works the kernel's own
//! access decision is watched, with the target task in hand; syscall tracepoints see the pid as
//! the caller named it (or, for pidfd_getfd, the pid the pidfd holds).

use aya_ebpf::programs::{FExitContext, TracePointContext};
use detector_common::{EventKind, PtraceEvent, ptrace_access};

use crate::{
    config::offset,
    emit::reserve,
    files::fd_file,
    identity::{self, Actor},
    kread::read_or_zero,
    maps::PTRACE_PENDING,
    syscall_record, task,
};

const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;

/// `ptrace_may_access` modes (include/linux/ptrace.h).
const PTRACE_MODE_ATTACH: u32 = 0x02;
const PTRACE_MODE_FSCREDS: u32 = 0x08;

/// The access a container thread asked for and whom it named, from entry to exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingPtrace {
    pub access: u32,
    pub vpid: u32,
}

pub fn on_ptrace_enter(ctx: &TracePointContext) {
    // ptrace(request, pid, addr, data)
    let access = match syscall_record::arg(ctx, 0) {
        Some(PTRACE_ATTACH) => ptrace_access::ATTACH,
        Some(PTRACE_SEIZE) => ptrace_access::SEIZE,
        _ => return,
    };
    remember(access, syscall_record::arg(ctx, 1).unwrap_or(0) as u32);
}

pub fn on_process_vm_enter(ctx: &TracePointContext, access: u32) {
    // process_vm_readv/writev(pid, local_iov, liovcnt, remote_iov, riovcnt, flags)
    let pid = syscall_record::arg(ctx, 0).unwrap_or(0);
    remember(access, pid as u32);
}

pub fn on_pidfd_getfd_enter(ctx: &TracePointContext) {
    // pidfd_getfd(pidfd, targetfd, flags): the pidfd stands where the pid does.
    let pidfd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    remember(ptrace_access::PIDFD_GETFD, pidfd as u32);
}

#[inline(always)]
fn remember(access: u32, vpid: u32) {
    syscall_record::keep(&PTRACE_PENDING, EventKind::Ptrace, || PendingPtrace {
        access,
        vpid,
    });
}

/// Exit of ptrace or process_vm_*: a call that failed reached nothing. A successful attach or
/// seize linked the target as the caller's newest tracee, which names it exactly; for
/// process_vm_* the agent finds the pid the caller named in the caller's pid namespace.
pub fn on_access_exit(ctx: &TracePointContext) {
    let Some((pending, actor)) = syscall_record::take(&PTRACE_PENDING, EventKind::Ptrace) else {
        return;
    };
    if syscall_record::ret(ctx) < 0 {
        return;
    }
    let current = task::current();
    let (target_tgid, vpid) = match pending.access {
        ptrace_access::ATTACH | ptrace_access::SEIZE => (
            task::newest_tracee(current).map_or(0, task::tgid),
            pending.vpid,
        ),
        // The pidfd's `struct pid`: its first number is the host's.
        ptrace_access::PIDFD_GETFD => (
            read_or_zero::<u32>(pidfd_pid(pending.vpid), offset!(pid_numbers)),
            0,
        ),
        _ => (0, pending.vpid),
    };
    emit(&actor, pending.access, target_tgid, vpid);
}

/// `security_ptrace_access_check(struct task_struct *child, unsigned int mode)` returned:
/// reached only once the credential and capability checks passed, so a zero return means the
/// access was granted. Reported when the target lives in another mount namespace.
pub fn on_ptrace_access_check(ctx: &FExitContext) {
    let mode: u32 = ctx.arg(1);
    let ret: i32 = ctx.arg(2);
    if ret != 0 || mode & PTRACE_MODE_ATTACH == 0 {
        return;
    }
    let Some(actor) = identity::current(EventKind::Ptrace) else {
        return;
    };
    let child: *const u8 = ctx.arg(0);
    if task::mnt_ns(child) == task::mnt_ns(task::current()) {
        return;
    }
    let access = if mode & PTRACE_MODE_FSCREDS != 0 {
        ptrace_access::GRANTED_FSCREDS
    } else {
        ptrace_access::GRANTED_REALCREDS
    };
    emit(&actor, access, task::tgid(child), 0);
}

/// The `struct pid` behind the current task's pidfd `fd`: the file's `private_data` before
/// pidfs (6.9), its inode's `i_private` since.
#[inline(always)]
fn pidfd_pid(fd: u32) -> *const u8 {
    let Some(file) = fd_file(task::current(), fd) else {
        return core::ptr::null();
    };
    let private = read_or_zero::<*const u8>(file, offset!(file_private_data));
    if !private.is_null() {
        return private;
    }
    let inode = read_or_zero::<*const u8>(
        read_or_zero::<*const u8>(file, offset!(file_dentry)),
        offset!(dentry_inode),
    );
    read_or_zero(inode, offset!(inode_private))
}

/// `proc_mem_open(struct inode *inode, unsigned int mode)` returned the target's mm: the
/// read-mode opens (`/proc/PID/environ`, `auxv`) that the attach-mode check above leaves out.
/// The target is the mm's owner.
pub fn on_proc_mem_open(ctx: &FExitContext) {
    let mode: u32 = ctx.arg(1);
    let mm: u64 = ctx.arg(2);
    // NULL (a kernel thread) or an ERR_PTR: nothing was opened.
    if mode & PTRACE_MODE_ATTACH != 0 || mm == 0 || mm >= MAX_ERRNO.wrapping_neg() {
        return;
    }
    let Some(actor) = identity::current(EventKind::Ptrace) else {
        return;
    };
    let owner = read_or_zero::<*const u8>(mm as *const u8, offset!(mm_owner));
    if owner.is_null() || task::mnt_ns(owner) == task::mnt_ns(task::current()) {
        return;
    }
    emit(&actor, ptrace_access::PROC_READ, task::tgid(owner), 0);
}

const MAX_ERRNO: u64 = 4095;

#[inline(always)]
fn emit(actor: &Actor, access: u32, target_tgid: u32, target_vpid: u32) {
    let Some(mut entry) = reserve::<PtraceEvent>(EventKind::Ptrace) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned PtraceEvent.
    unsafe {
        (*e).header = actor.header(EventKind::Ptrace);
        (*e).access = access;
        (*e).target_tgid = target_tgid;
        (*e).target_vpid = target_vpid;
        (*e).caller_pid_ns = task::active_pid_ns(task::current());
    }
    entry.submit(0);
}
