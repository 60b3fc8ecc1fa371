//! Kernel modules loaded, or requested, by container processes. With the LSM backend the load
//! is seen before it happens and refused under enforcement; with tracepoints it is seen as
//! the system call starts.

use aya_ebpf::programs::{LsmContext, RawTracePointContext, TracePointContext};
use detector_common::{EventKind, ModuleEvent, module_source};

use crate::{
    config::{enforcing, loading_module_id, lsm_verdict, reading_module_id},
    emit::{current_ids, header, reserve},
    files::{fd_file, file_name},
    kread::kernel_str,
    maps::container_mark,
    syscall_record, task,
};

/// Reports a container process's module load; returns `deny` for container processes.
/// `name` is only read for them.
#[inline(always)]
fn report(source: u32, name: impl FnOnce() -> *const u8, deny: bool) -> bool {
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return false;
    }
    let name = name();
    if let Some(mut entry) = reserve::<ModuleEvent>(EventKind::Module) {
        let e = entry.as_mut_ptr();
        // SAFETY: `e` points at a reserved, exclusively owned ModuleEvent.
        unsafe {
            (*e).header = header(EventKind::Module, tgid, tid);
            (*e).source = source;
            (*e).denied = u32::from(deny);
            kernel_str(name, &mut (*e).name);
        }
        entry.submit(0);
    }
    deny
}

pub fn on_init_module_enter(_ctx: &TracePointContext) {
    report(module_source::IMAGE, core::ptr::null, false);
}

pub fn on_finit_module_enter(ctx: &TracePointContext) {
    // finit_module(fd, uargs, flags)
    let fd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    let name = || {
        fd_file(task::current(), fd as u32)
            .map(file_name)
            .unwrap_or_default()
    };
    report(module_source::FILE, name, false);
}

/// `module_request(char *name, bool wait, unsigned long ip)`: the kernel is about to run
/// modprobe for `name` on behalf of the current task.
pub fn on_module_request(ctx: &RawTracePointContext) {
    report(module_source::REQUEST, || ctx.arg(0), false);
}

/// `security_kernel_read_file(struct file *file, enum kernel_read_file_id id, bool contents)`.
pub fn on_kernel_read_file(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    let id: u64 = ctx.arg(1);
    if previous != 0 || id != u64::from(reading_module_id()) {
        return previous;
    }
    lsm_verdict(report(
        module_source::FILE,
        || file_name(ctx.arg(0)),
        enforcing(),
    ))
}

/// `security_kernel_load_data(enum kernel_load_data_id id, bool contents)`: `init_module`.
pub fn on_kernel_load_data(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    let id: u64 = ctx.arg(0);
    if previous != 0 || id != u64::from(loading_module_id()) {
        return previous;
    }
    lsm_verdict(report(module_source::IMAGE, core::ptr::null, enforcing()))
}

/// `security_kernel_module_request(char *kmod_name)`.
pub fn on_kernel_module_request(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    lsm_verdict(report(module_source::REQUEST, || ctx.arg(0), enforcing()))
}
