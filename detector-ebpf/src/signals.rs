//! Signals sent to the agent by container processes: a container that can signal the
//! detector can stop or kill it and blind the host. The kernel's own signal tracepoint sees
//! every signal, whichever system call sent it (kill, tgkill, pidfd_send_signal).

use aya_ebpf::programs::RawTracePointContext;
use detector_common::{EventKind, SignalEvent};

use crate::{config::agent_tgid, emit::reserve, identity, kread, task};

/// `SEND_SIG_PRIV`: the kernel's own signal.
const SEND_SIG_PRIV: usize = 1;
/// `si_code` in `struct kernel_siginfo` (after `si_signo` and `si_errno`): fixed by the ABI.
const SI_CODE_OFFSET: u32 = 8;
/// Senders' codes: `SI_USER` (kill, pidfd_send_signal), `SI_QUEUE`, `SI_TKILL`.
const SI_USER: i32 = 0;
const SI_QUEUE: i32 = -1;
const SI_TKILL: i32 = -6;

/// `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
/// int result)`, in the sender's context for signals a process sends; timers and I/O signals
/// fire wherever the CPU happens to be, so only senders' codes count.
pub fn on_signal_generate(ctx: &RawTracePointContext) {
    let target: *const u8 = ctx.arg(2);
    if task::tgid(target) != agent_tgid() || !sent_by_a_process(ctx.arg(1)) {
        return;
    }
    let Some(actor) = identity::current(EventKind::Signal) else {
        return;
    };
    let Some(mut entry) = reserve::<SignalEvent>(EventKind::Signal) else {
        return;
    };
    let sig: u64 = ctx.arg(0);
    let result: u64 = ctx.arg(4);
    entry.write(SignalEvent {
        header: actor.header(EventKind::Signal),
        sig: sig as i32,
        result: result as i32,
    });
    entry.submit(0);
}

#[inline(always)]
fn sent_by_a_process(info: *const u8) -> bool {
    // SEND_SIG_NOINFO (null) is a kill() by the current process.
    if info.is_null() {
        return true;
    }
    if info as usize == SEND_SIG_PRIV {
        return false;
    }
    let code = kread::read_or_zero::<i32>(info, SI_CODE_OFFSET);
    code == SI_USER || code == SI_QUEUE || code == SI_TKILL
}
