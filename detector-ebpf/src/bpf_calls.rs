//! `bpf()` calls by container processes: a container that loads programs or creates maps can
//! read kernel memory, attach to every process on the host, or blind the detector.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{BpfEvent, EventKind};

use crate::{
    emit::{current_ids, header, reserve},
    maps::container_mark,
    syscall_record,
};

/// Map element operations: the hot path of every BPF user, and harmless without a map
/// descriptor, which only a reported command (or a reported process) can produce.
const ELEMENT_COMMANDS: [u32; 9] = [
    1,  // BPF_MAP_LOOKUP_ELEM
    2,  // BPF_MAP_UPDATE_ELEM
    3,  // BPF_MAP_DELETE_ELEM
    4,  // BPF_MAP_GET_NEXT_KEY
    21, // BPF_MAP_LOOKUP_AND_DELETE_ELEM
    24, // BPF_MAP_LOOKUP_BATCH
    25, // BPF_MAP_LOOKUP_AND_DELETE_BATCH
    26, // BPF_MAP_UPDATE_BATCH
    27, // BPF_MAP_DELETE_BATCH
];

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
    if ELEMENT_COMMANDS.contains(&cmd) {
        return;
    }
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return;
    }
    let Some(mut entry) = reserve::<BpfEvent>(EventKind::Bpf) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned BpfEvent.
    unsafe {
        (*e).header = header(EventKind::Bpf, tgid, tid);
        (*e).cmd = cmd;
        (*e)._pad = 0;
    }
    entry.submit(0);
}
