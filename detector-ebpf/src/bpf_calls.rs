//! `bpf()` calls by container processes: a container that loads programs or creates maps can
//! read kernel memory, attach to every process on the host, or blind the detector.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{BpfEvent, EventKind, bpf_cmd};

use crate::{emit::reserve, identity, syscall_record};

pub fn on_bpf_enter(ctx: &TracePointContext) {
    // bpf(cmd, attr, size)
    let cmd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    report(cmd as u32);
}

/// `security_bpf(int cmd, union bpf_attr *attr, unsigned int size, ...)`: every `bpf()` call
/// once its attributes are copied in; later kernels add arguments after these.
pub fn on_security_bpf(ctx: &FEntryContext) {
    let cmd: i32 = ctx.arg(0);
    report(cmd as u32);
}

#[inline(always)]
fn report(cmd: u32) {
    if bpf_cmd::ELEMENT_COMMANDS.contains(&cmd) {
        return;
    }
    let Some(actor) = identity::current() else {
        return;
    };
    let Some(mut entry) = reserve::<BpfEvent>(EventKind::Bpf) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned BpfEvent.
    unsafe {
        (*e).header = actor.header(EventKind::Bpf);
        (*e).cmd = cmd;
        (*e)._pad = 0;
    }
    entry.submit(0);
}
