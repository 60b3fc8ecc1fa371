//! Process lifecycle for the agent's process table: exec, fork, exit and cgroup moves, for
//! every process on the host. Also keeps the container-task map that filters the other hooks.

use aya_ebpf::{helpers::bpf_get_current_comm, programs::RawTracePointContext};
use detector_common::{
    ARGS_LEN, CgroupAttachEvent, EventKind, ExecEvent, ExitEvent, ForkEvent, task_mark,
};

use crate::{
    config::{agent_tgid, host_mnt_ns, offset},
    emit::{current_ids, header, reserve},
    kread::{field, kernel_str, pointer, user_bytes},
    maps::{CONTAINER_TASKS, container_mark, mark_container_task},
    task,
};

/// Marks the current process as a container process when it runs outside the host's mount
/// namespace; returns its mark (0: not a container process).
#[inline(always)]
fn mark_at_exec(tgid: u32, mnt: u32) -> u32 {
    let old = container_mark(tgid).unwrap_or(0);
    let host = host_mnt_ns();
    let mark = if host != 0 && mnt != 0 && mnt != host {
        old | task_mark::FOREIGN_MNT_NS
    } else {
        old
    };
    if mark != old {
        mark_container_task(tgid, mark);
    }
    mark
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`.
pub fn on_exec(ctx: &RawTracePointContext) {
    let (tgid, tid) = current_ids();
    if tgid == agent_tgid() {
        return;
    }
    let current = task::current();
    // Read once: the mark needs the mount namespace, the event all of them.
    let ns = task::namespaces(current);
    let marked = mark_at_exec(tgid, ns.mnt);
    let Some(mut entry) = reserve::<ExecEvent>(EventKind::Exec) else {
        return;
    };
    let e = entry.as_mut_ptr();
    let (uid, euid) = task::uids(current);
    // SAFETY: `e` points at a reserved, exclusively owned ExecEvent; fields are written in
    // place because the event is larger than the BPF stack.
    unsafe {
        (*e).header = header(EventKind::Exec, tgid, tid);
        (*e).ppid = task::parent_tgid(current);
        (*e).uid = uid;
        (*e).euid = euid;
        (*e).marked = marked;
        (*e).ns = ns;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let bprm: *const u8 = ctx.arg(2);
        let filename = pointer(bprm, offset!(binprm_filename)).unwrap_or_default();
        kernel_str(filename, &mut (*e).filename);
        (*e).args_len = read_args(current, (&raw mut (*e).args).cast());
        (*e)._pad = 0;
    }
    entry.submit(0);
}

/// Copies the process's argv block (NUL-separated) into `dst`, at most `ARGS_LEN` bytes.
#[inline(always)]
fn read_args(current: *const u8, dst: *mut u8) -> u32 {
    let Some(mm) = pointer(current, offset!(task_mm)) else {
        return 0;
    };
    let start = field::<u64>(mm, offset!(mm_arg_start)).unwrap_or(0);
    let end = field::<u64>(mm, offset!(mm_arg_end)).unwrap_or(0);
    if end <= start {
        return 0;
    }
    let len = (end - start).min(ARGS_LEN as u64) as u32;
    // The verifier needs the bound restated on the value it passes to the helper.
    if len == 0 || len > ARGS_LEN as u32 {
        return 0;
    }
    user_bytes(start as *const u8, dst, len)
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`; runs in the
/// parent. New threads are not processes and are skipped.
pub fn on_fork(ctx: &RawTracePointContext) {
    let child: *const u8 = ctx.arg(1);
    let (child_tgid, child_pid) = (task::tgid(child), task::pid(child));
    if child_pid != child_tgid || child_tgid == 0 {
        return;
    }
    let ppid = task::parent_tgid(child);
    if let Some(mark) = container_mark(current_ids().0) {
        mark_container_task(child_tgid, mark | task_mark::INHERITED);
    }
    let Some(mut entry) = reserve::<ForkEvent>(EventKind::Fork) else {
        return;
    };
    entry.write(ForkEvent {
        header: header(EventKind::Fork, child_tgid, child_pid),
        ppid,
        _pad: 0,
    });
    entry.submit(0);
}

/// `sched_process_exit`; runs in the exiting task. Only a thread-group leader's exit ends a
/// process.
pub fn on_exit() {
    let (tgid, tid) = current_ids();
    if tgid != tid {
        return;
    }
    let _ = CONTAINER_TASKS.remove(tgid);
    let exit_code = field::<i32>(task::current(), offset!(task_exit_code)).unwrap_or(0);
    let Some(mut entry) = reserve::<ExitEvent>(EventKind::Exit) else {
        return;
    };
    entry.write(ExitEvent {
        header: header(EventKind::Exit, tgid, tid),
        exit_code,
        _pad: 0,
    });
    entry.submit(0);
}

/// `cgroup_attach_task(struct cgroup *dst, const char *path, struct task_struct *task, bool
/// threadgroup)`; runs in the task that wrote `cgroup.procs`.
pub fn on_cgroup_attach(ctx: &RawTracePointContext) {
    let cgroup: *const u8 = ctx.arg(0);
    let path: *const u8 = ctx.arg(1);
    let moved: *const u8 = ctx.arg(2);
    let (tgid, tid) = (task::tgid(moved), task::pid(moved));
    if tgid != tid {
        return;
    }
    let Some(mut entry) = reserve::<CgroupAttachEvent>(EventKind::CgroupAttach) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned CgroupAttachEvent.
    unsafe {
        (*e).header = header(EventKind::CgroupAttach, tgid, tid);
        (*e).mover_tgid = current_ids().0;
        (*e).hierarchy = pointer(cgroup, offset!(cgroup_root))
            .and_then(|root| field::<i32>(root, offset!(cgroup_root_hierarchy_id)))
            .unwrap_or(-1) as u32;
        (*e).level = field::<i32>(cgroup, offset!(cgroup_level)).unwrap_or(-1) as u32;
        (*e).cgroup_id = pointer(cgroup, offset!(cgroup_kn))
            .and_then(|kn| field::<u64>(kn, offset!(kernfs_node_id)))
            .unwrap_or(0);
        (*e)._pad = 0;
        kernel_str(path, &mut (*e).path);
    }
    entry.submit(0);
}
