//! `bpf()` calls by container processes: a container that loads programs or creates maps can
//! read kernel memory, attach to every process on the host, or blind the detector.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{BpfEvent, EventKind, bpf_cmd};

use crate::{emit::reserve, identity, kread, syscall_record};

pub fn on_bpf_enter(ctx: &TracePointContext) {
    // bpf(cmd, attr, size): attr is still in user memory here.
    let cmd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX) as u32;
    let attr = syscall_record::arg(ctx, 1).unwrap_or(0) as *const u8;
    report(cmd, || {
        let mut id = 0u32;
        kread::user_bytes(attr, (&raw mut id).cast(), 4);
        id
    });
}

/// `security_bpf(int cmd, union bpf_attr *attr, unsigned int size, ...)`: every `bpf()` call
/// once its attributes are copied in; later kernels add arguments after these.
pub fn on_security_bpf(ctx: &FEntryContext) {
    let cmd: i32 = ctx.arg(0);
    let attr: *const u8 = ctx.arg(1);
    report(cmd as u32, || kread::read_or_zero::<u32>(attr, 0));
}

/// `object_id` reads the first field of the attributes, the id for the by-id commands.
#[inline(always)]
fn report(cmd: u32, object_id: impl FnOnce() -> u32) {
    if bpf_cmd::ELEMENT_COMMANDS.contains(&cmd) {
        return;
    }
    let Some(actor) = identity::current(EventKind::Bpf) else {
        return;
    };
    let object_id = if bpf_cmd::BY_ID_COMMANDS.contains(&cmd) {
        object_id()
    } else {
        0
    };
    let Some(mut entry) = reserve::<BpfEvent>(EventKind::Bpf) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned BpfEvent.
    unsafe {
        (*e).header = actor.header(EventKind::Bpf);
        (*e).cmd = cmd;
        (*e).object_id = object_id;
    }
    entry.submit(0);
}
