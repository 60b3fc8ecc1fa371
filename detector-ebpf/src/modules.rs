//! Kernel modules loaded, or requested, by container processes. With the LSM backend the load
//! is seen before it happens and refused under enforcement; with tracepoints it is seen as
//! the system call starts.

use aya_ebpf::programs::{LsmContext, RawTracePointContext};
use detector_common::{EventKind, FIELD_MISSING, ModuleEvent, module_source, refusal};

use crate::{
    config::{enforcing, loading_module_id, lsm_verdict, offset, reading_module_id},
    emit::reserve,
    files::file_name,
    identity,
    kread::kernel_str,
};

/// Reports a container process's module load; returns `deny` for container processes (not
/// for those the agent has yet to classify). `name` is only read for them.
#[inline(always)]
fn report(source: u32, name: impl FnOnce() -> *const u8, deny: bool) -> bool {
    let Some(actor) = identity::current(EventKind::Module) else {
        return false;
    };
    let deny = deny && actor.may_be_refused();
    let name = name();
    if let Some(mut entry) = reserve::<ModuleEvent>(EventKind::Module) {
        let e = entry.as_mut_ptr();
        // SAFETY: `e` points at a reserved, exclusively owned ModuleEvent.
        unsafe {
            (*e).header = actor.header(EventKind::Module);
            (*e).source = source;
            (*e).denied = u32::from(deny);
            kernel_str(name, &mut (*e).name);
        }
        entry.submit(0);
    }
    deny
}

/// `module_load(struct module *mod)`: a module was loaded (by `init_module` or
/// `finit_module`), in the loading process; where BPF LSM is missing, it sees the load without
/// a syscall tracepoint.
pub fn on_module_load(ctx: &RawTracePointContext) {
    let module: *const u8 = ctx.arg(0);
    let name = || {
        let off = offset!(module_name);
        if off == FIELD_MISSING || module.is_null() {
            core::ptr::null()
        } else {
            module.wrapping_add(off as usize)
        }
    };
    report(module_source::LOADED, name, false);
}

/// `module_request(char *name, bool wait, unsigned long ip)`: the kernel is about to run
/// modprobe for `name` on behalf of the current task.
pub fn on_module_request(ctx: &RawTracePointContext) {
    report(module_source::REQUEST, || ctx.arg(0), false);
}

/// `security_kernel_read_file(struct file *file, enum kernel_read_file_id id, bool contents)`.
pub fn on_kernel_read_file(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    let id: u32 = ctx.arg(1);
    if previous != 0 || id != reading_module_id() {
        return previous;
    }
    lsm_verdict(report(
        module_source::FILE,
        || file_name(ctx.arg(0)),
        enforcing(refusal::MODULE_LOAD),
    ))
}

/// `security_kernel_load_data(enum kernel_load_data_id id, bool contents)`: `init_module`.
pub fn on_kernel_load_data(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    // The enum's 32 bits: the trampoline saves the whole register, whose upper half the
    // calling convention leaves undefined (5.10's init_module path leaves it non-zero).
    let id: u32 = ctx.arg(0);
    if previous != 0 || id != loading_module_id() {
        return previous;
    }
    lsm_verdict(report(
        module_source::IMAGE,
        core::ptr::null,
        enforcing(refusal::MODULE_LOAD),
    ))
}

/// `security_kernel_module_request(char *kmod_name)`.
pub fn on_kernel_module_request(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    lsm_verdict(report(
        module_source::REQUEST,
        || ctx.arg(0),
        enforcing(refusal::MODULE_LOAD),
    ))
}
