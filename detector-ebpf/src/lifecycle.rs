//! The lifecycle of container processes for the agent's process table: exec, fork, the exit of
//! the last thread, cgroup moves, and the cgroups of the identity hierarchy that are made and
//! removed. Host processes send nothing, and neither does a runtime setting a container up:
//! each hook costs them the identity check alone.

use aya_ebpf::{helpers::bpf_get_current_comm, programs::RawTracePointContext};
use aya_log_ebpf::debug;
use detector_common::{
    ARGS_LEN, CgroupAttachEvent, CgroupEvent, EventKind, ExecEvent, ExitEvent, ForkEvent, Identity,
};

use crate::{
    config::{identity_hierarchy, offset},
    emit::{current_ids, header, reserve},
    identity::{self, Actor, Status},
    kread::{field, kernel_str, pointer, user_bytes},
    namespaces, task,
};

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`.
/// Sent for container processes, and for the programs the kernel itself starts (usermode
/// helpers), which run on the host as root.
pub fn on_exec(ctx: &RawTracePointContext) {
    let current = task::current();
    let Some(actor) = identity::current_after_exec().or_else(|| usermode_helper(current)) else {
        return;
    };
    let Some(mut entry) = reserve::<ExecEvent>(EventKind::Exec) else {
        return;
    };
    let e = entry.as_mut_ptr();
    let (uid, euid) = task::uids(current);
    // SAFETY: `e` points at a reserved, exclusively owned ExecEvent; fields are written in
    // place because the event is larger than the BPF stack.
    unsafe {
        (*e).header = actor.header(EventKind::Exec);
        (*e).ppid = task::parent_tgid(current);
        (*e).uid = uid;
        (*e).euid = euid;
        (*e).start_ns = identity::leader_start(current);
        (*e).ns = task::namespaces(current);
        (*e).cap_effective = task::cap_effective(current);
        (*e).root = task::root(current);
        (*e).cwd_mnt_ns = task::cwd_mnt_ns(current);
        (*e)._pad = 0;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let bprm: *const u8 = ctx.arg(2);
        let filename = pointer(bprm, offset!(binprm_filename)).unwrap_or_default();
        kernel_str(filename, &mut (*e).filename);
        (*e).args_len = read_args(current, (&raw mut (*e).args).cast());
    }
    entry.submit(0);
}

/// The current task as a usermode helper the kernel started, if it is one.
#[inline(always)]
fn usermode_helper(current: *const u8) -> Option<Actor> {
    if !task::started_by_kernel(current) {
        return None;
    }
    let (tgid, tid) = current_ids();
    Some(Actor {
        tgid,
        tid,
        identity: Identity {
            flags: detector_common::identity::HELPER,
            _pad: 0,
            cgroup_id: 0,
        },
    })
}

/// Copies the process's argv block (NUL-separated) into `dst`, at most `ARGS_LEN` bytes.
/// Returns the block's whole length (more than `ARGS_LEN` when it was cut), 0 when it could
/// not be read.
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
    match user_bytes(start as *const u8, dst, len) {
        0 => 0,
        _ => u32::try_from(end - start).unwrap_or(u32::MAX),
    }
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`; runs in the
/// forking task, which is not `parent` under `CLONE_PARENT`. New threads are not processes.
/// The child of a container process is one, wherever it starts (`CLONE_INTO_CGROUP`).
pub fn on_fork(ctx: &RawTracePointContext) {
    let child: *const u8 = ctx.arg(1);
    let (child_tgid, child_pid) = (task::tgid(child), task::pid(child));
    if child_pid != child_tgid || child_tgid == 0 {
        return;
    }
    let Some(status) = identity::forked(identity::cgroup_of(child)) else {
        return;
    };
    let start_ns = identity::leader_start(child);
    identity::mark(child_tgid, start_ns, status, EventKind::Fork);
    let Status::Watched(who) = status else {
        return;
    };
    let Some(mut entry) = reserve::<ForkEvent>(EventKind::Fork) else {
        return;
    };
    entry.write(ForkEvent {
        header: header(EventKind::Fork, child_tgid, child_pid, who)
            .with_start(identity::started(child)),
        ppid: task::parent_tgid(child),
        creator_tgid: current_ids().0,
        start_ns,
    });
    entry.submit(0);
    namespaces::on_fork(
        child,
        header(EventKind::Namespace, child_tgid, child_pid, who),
    );
}

/// `sched_process_exit(struct task_struct *p, ...)`; runs in every exiting thread. The
/// process ends with its last thread, not with its leader.
pub fn on_exit() {
    let current = task::current();
    if !task::group_dead(current) {
        return;
    }
    let (tgid, tid) = current_ids();
    let who = identity::watched(current, tgid);
    identity::forget_process(tgid);
    let Some(who) = who else {
        return;
    };
    let exit_code = field::<i32>(current, offset!(task_exit_code)).unwrap_or(0);
    let Some(mut entry) = reserve::<ExitEvent>(EventKind::Exit) else {
        return;
    };
    entry.write(ExitEvent {
        header: header(EventKind::Exit, tgid, tid, who).with_start(identity::started(current)),
        exit_code,
        _pad: 0,
    });
    entry.submit(0);
}

/// The id of a cgroup of the identity hierarchy; `None` for other hierarchies' cgroups.
#[inline(always)]
fn identity_cgroup(cgroup: *const u8) -> Option<u64> {
    (hierarchy_of(cgroup)? == identity_hierarchy()).then(|| identity::cgroup_id(cgroup))
}

/// The id of the hierarchy a cgroup belongs to (0 for the unified one).
#[inline(always)]
fn hierarchy_of(cgroup: *const u8) -> Option<u32> {
    pointer(cgroup, offset!(cgroup_root))
        .and_then(|root| field::<i32>(root, offset!(cgroup_root_hierarchy_id)))
        .map(|id| id as u32)
}

/// `cgroup_attach_task(struct cgroup *dst, const char *path, struct task_struct *task, bool
/// threadgroup)`, after the move; runs in the task that wrote `cgroup.procs`. In the identity
/// hierarchy, see [`identity::moved`]; in another cgroup v1 hierarchy (pids, cpu, ...), a
/// container process's move is sent whatever its destination, which the agent judges by its
/// path: the kernel knows no other hierarchy's container cgroups, and container processes
/// seldom move.
pub fn on_cgroup_attach(ctx: &RawTracePointContext) {
    let cgroup: *const u8 = ctx.arg(0);
    let Some(hierarchy_id) = hierarchy_of(cgroup) else {
        return;
    };
    let dst = identity::cgroup_id(cgroup);
    let moved: *const u8 = ctx.arg(2);
    let tgid = task::tgid(moved);
    let start_ns = identity::leader_start(moved);
    let who = if hierarchy_id == identity_hierarchy() {
        let Some(status) = identity::moved(moved, tgid, dst) else {
            return;
        };
        identity::mark(tgid, start_ns, status, EventKind::CgroupAttach);
        let Status::Watched(who) = status else {
            return;
        };
        who
    } else {
        let Some(who) = identity::watched(moved, tgid) else {
            return;
        };
        who
    };
    let Some(mut entry) = reserve::<CgroupAttachEvent>(EventKind::CgroupAttach) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned CgroupAttachEvent.
    unsafe {
        (*e).header = header(EventKind::CgroupAttach, tgid, task::pid(moved), who)
            .with_start(identity::started(moved));
        (*e).mover_tgid = current_ids().0;
        (*e).hierarchy_id = hierarchy_id;
        (*e).start_ns = start_ns;
        (*e).cgroup_id = dst;
        kernel_str(ctx.arg(1), &mut (*e).path);
    }
    entry.submit(0);
}

/// `cgroup_mkdir(struct cgroup *cgrp, const char *path)`: recorded before any process can be
/// in it, so the window before the agent classifies it never hides a container's act.
pub fn on_cgroup_mkdir(ctx: &RawTracePointContext) {
    let cgroup: *const u8 = ctx.arg(0);
    let Some(id) = identity_cgroup(cgroup) else {
        return;
    };
    let parent = pointer(cgroup, offset!(cgroup_parent_css))
        .and_then(|css| pointer(css, offset!(css_cgroup)))
        .map(identity::cgroup_id)
        .unwrap_or(0);
    let class = identity::record_new_cgroup(id, parent);
    debug!(ctx, "cgroup {} made below {} (class {})", id, parent, class);
    report_cgroup(EventKind::CgroupMkdir, ctx, cgroup, id, parent, class);
}

/// `cgroup_rmdir(struct cgroup *cgrp, const char *path)`.
pub fn on_cgroup_rmdir(ctx: &RawTracePointContext) {
    let cgroup: *const u8 = ctx.arg(0);
    let Some(id) = identity_cgroup(cgroup) else {
        return;
    };
    let class = identity::forget_cgroup(id);
    debug!(ctx, "cgroup {} removed (class {})", id, class);
    if class != 0 {
        report_cgroup(EventKind::CgroupRmdir, ctx, cgroup, id, 0, class);
    }
}

#[inline(always)]
fn report_cgroup(
    kind: EventKind,
    ctx: &RawTracePointContext,
    cgroup: *const u8,
    id: u64,
    parent_id: u64,
    class: u32,
) {
    let Some(mut entry) = reserve::<CgroupEvent>(kind) else {
        return;
    };
    let (tgid, tid) = current_ids();
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned CgroupEvent.
    unsafe {
        (*e).header = header(kind, tgid, tid, Identity::default());
        (*e).class = class;
        (*e).level = field::<i32>(cgroup, offset!(cgroup_level)).unwrap_or(-1) as u32;
        (*e).cgroup_id = id;
        (*e).parent_id = parent_id;
        kernel_str(ctx.arg(1), &mut (*e).path);
    }
    entry.submit(0);
}
