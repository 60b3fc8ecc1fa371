//! Who is a container process. A process is a container's when its cgroup (in the identity
//! hierarchy the agent chose) is one the agent classified as a container's, or when it carries
//! a mark: the kernel marks a container process the first time it sees it (at fork, at a move
//! into a container's cgroup, or at its first act) and keeps the mark until its last thread
//! exits, so moving out of the container's cgroup does not make it a host process. A mark
//! records the group leader's start time, so a process that later gets the same pid never
//! inherits it.
//!
//! A process that enters a container's cgroup from outside is the runtime setting the
//! container up (runc's init mounting /proc, `runc exec` joining the namespaces) until it
//! execs the container's program, which it does in the container's mount namespace (runc
//! also re-executes itself from a memfd, in the host's); its acts are not the container's.
//! Processes a container runs descend from its programs, so they never get that status.
//!
//! New cgroups are recorded as pending at `cgroup_mkdir`, before any process can be in them,
//! so acts in a cgroup the agent has not classified yet reach the agent, which decides; they
//! are never refused on that ground alone.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_current_cgroup_id};
use detector_common::{EventKind, FIELD_MISSING, Header, Identity, LossReason, TaskMark, identity};

use crate::{
    config::{agent_tgid, host_mnt_ns, identity_subsys, offset},
    emit::{count_loss, current_ids, header},
    kread::read_or_zero,
    maps::{CONTAINER_CGROUPS, CONTAINER_TASKS},
    task,
};

const HOST: u32 = 0;
/// `-EEXIST`, as a map update with `BPF_NOEXIST` fails on a key that is there.
const EEXIST: i32 = -17;

/// What the kernel makes of a process.
#[derive(Clone, Copy)]
pub enum Status {
    /// A container process, or one in a cgroup the agent has yet to classify: its acts go to
    /// the agent.
    Watched(Identity),
    /// The runtime setting up the container of `cgroup_id`.
    SettingUp { cgroup_id: u64 },
}

#[inline(always)]
const fn made(flags: u32, cgroup_id: u64) -> Identity {
    Identity {
        flags,
        _pad: 0,
        cgroup_id,
    }
}

/// The id of a `struct cgroup` (its kernfs node id, the inode number of its directory); zero
/// when unknown. Branch-free, like every read on the identity check's path (see
/// `read_or_zero`): the check runs in every program.
#[inline(always)]
pub fn cgroup_id(cgroup: *const u8) -> u64 {
    read_or_zero(
        read_or_zero::<*const u8>(cgroup, offset!(cgroup_kn)),
        offset!(kernfs_node_id),
    )
}

/// The task's cgroup in the identity hierarchy: `css_set.dfl_cgrp` for the unified hierarchy,
/// else the cgroup of one of the v1 hierarchy's controllers.
#[inline(always)]
pub fn cgroup_of(task: *const u8) -> u64 {
    let css_set = read_or_zero::<*const u8>(task, offset!(task_cgroups));
    let subsys = identity_subsys();
    // Both tests fold: the configuration is read-only.
    let cgroup = if subsys == FIELD_MISSING {
        read_or_zero::<*const u8>(css_set, offset!(css_set_dfl_cgrp))
    } else if offset!(css_set_subsys) == FIELD_MISSING {
        core::ptr::null()
    } else {
        let css = read_or_zero::<*const u8>(css_set, offset!(css_set_subsys) + subsys * 8);
        read_or_zero(css, offset!(css_cgroup))
    };
    cgroup_id(cgroup)
}

/// The current task's cgroup in the identity hierarchy; one helper call for the unified one.
#[inline(always)]
fn current_cgroup() -> u64 {
    if identity_subsys() == FIELD_MISSING {
        // SAFETY: helper without arguments.
        unsafe { bpf_get_current_cgroup_id() }
    } else {
        cgroup_of(task::current())
    }
}

/// `start_time` of the task's thread-group leader; an exec from another thread keeps it.
#[inline(always)]
pub fn leader_start(task: *const u8) -> u64 {
    let leader = read_or_zero::<*const u8>(task, offset!(task_group_leader));
    read_or_zero(leader, offset!(task_start_time))
}

/// When the task's process started, on the boot-time clock /proc reports it by: with the tgid,
/// what the agent checks before it signals the process.
#[inline(always)]
pub fn started(task: *const u8) -> u64 {
    let leader = read_or_zero::<*const u8>(task, offset!(task_group_leader));
    read_or_zero(leader, offset!(task_start_boottime))
}

/// The mark of process `tgid` when it is the marked process itself, not a later one that got
/// its pid; a stale mark is removed.
#[inline(always)]
fn mark_of(task: *const u8, tgid: u32) -> Option<TaskMark> {
    // SAFETY: plain-data copy out of the map.
    let mark = unsafe { CONTAINER_TASKS.get(tgid) }.copied()?;
    if mark.start_ns == leader_start(task) {
        Some(mark)
    } else {
        let _ = CONTAINER_TASKS.remove(tgid);
        None
    }
}

/// Marks process `tgid` (started at `start_ns`) with its status, as it makes a `kind` event. A
/// full map is counted: should the process leave its container's cgroup, its acts would be
/// filtered out.
#[inline(always)]
pub fn mark(tgid: u32, start_ns: u64, status: Status, kind: EventKind) {
    let (cgroup_id, flags) = match status {
        Status::Watched(who) if who.is_container() => (who.cgroup_id, 0),
        Status::Watched(_) => return,
        Status::SettingUp { cgroup_id } => (cgroup_id, identity::SETTING_UP),
    };
    let _ = insert_mark(tgid, start_ns, cgroup_id, flags, kind, 0);
}

/// Stores a mark with the map update's `update` flags; a full map is counted, and any other
/// refusal (`-EEXIST` under `BPF_NOEXIST`) returned.
#[inline(always)]
fn insert_mark(
    tgid: u32,
    start_ns: u64,
    cgroup_id: u64,
    flags: u32,
    kind: EventKind,
    update: u64,
) -> Result<(), i32> {
    let mark = TaskMark {
        start_ns,
        cgroup_id,
        flags,
        _pad: 0,
    };
    match CONTAINER_TASKS.insert(tgid, mark, update) {
        Err(e) if e != EEXIST => {
            count_loss(kind, LossReason::MapFull);
            Ok(())
        }
        result => result,
    }
}

/// What the container-cgroup map says of a cgroup: a container's, pending, or the host's (0).
#[inline(always)]
pub fn cgroup_class(cgroup_id: u64) -> u32 {
    // SAFETY: plain-data copy out of the map.
    unsafe { CONTAINER_CGROUPS.get(cgroup_id) }
        .copied()
        .unwrap_or(HOST)
}

/// A process in `cgroup` that carries no mark; `None` for the host's.
#[inline(always)]
fn unmarked(cgroup: u64) -> Option<Identity> {
    match cgroup_class(cgroup) {
        identity::CGROUP_CONTAINER => Some(made(identity::CONTAINER, cgroup)),
        HOST => None,
        _ => Some(made(identity::UNCLASSIFIED, cgroup)),
    }
}

/// What `task` (of process `tgid`, in `cgroup`) is; `None` for a host process. A container
/// process found by its cgroup alone (one that ran before the agent started) is marked, as
/// it makes a `kind` event.
#[inline(always)]
fn judge(task: *const u8, tgid: u32, cgroup: u64, kind: EventKind) -> Option<Status> {
    if let Some(mark) = mark_of(task, tgid) {
        return Some(status_of(mark));
    }
    let who = unmarked(cgroup)?;
    if who.is_container() {
        let (start_ns, found) = (leader_start(task), identity::FOUND_IN_CGROUP);
        // Only where there is still no mark: the report of a move, on another CPU since the
        // lookup above (runc's init as runc moves it), has the last word. Overwritten, its
        // verdict was lost and runc's set-up mounts were the container's.
        if insert_mark(tgid, start_ns, cgroup, found, kind, BPF_NOEXIST.into()).is_err() {
            return Some(mark_of(task, tgid).map_or(Status::Watched(who), status_of));
        }
    }
    Some(Status::Watched(who))
}

/// What a process's mark says it is.
#[inline(always)]
fn status_of(mark: TaskMark) -> Status {
    if mark.flags & identity::SETTING_UP != 0 {
        Status::SettingUp {
            cgroup_id: mark.cgroup_id,
        }
    } else {
        Status::Watched(made(identity::CONTAINER, mark.cgroup_id))
    }
}

/// A container task (or one in a cgroup not classified yet) doing something.
#[derive(Clone, Copy)]
pub struct Actor {
    pub tgid: u32,
    pub tid: u32,
    pub identity: Identity,
}

impl Actor {
    /// A header for an event about this task.
    #[inline(always)]
    pub fn header(&self, kind: EventKind) -> Header {
        header(kind, self.tgid, self.tid, self.identity).with_start(started(task::current()))
    }

    /// Whether an LSM hook may refuse its act: only a container process's, never one the
    /// agent has yet to classify.
    #[inline(always)]
    pub fn may_be_refused(&self) -> bool {
        self.identity.is_container()
    }
}

/// The current task and what the kernel makes of it as it makes a `kind` event; `None` for a
/// host process, which costs two map lookups, and for the agent itself (whose cgroup, in a
/// pod, is a container's).
#[inline(always)]
fn current_status(kind: EventKind) -> Option<(u32, u32, Status)> {
    let (tgid, tid) = current_ids();
    if tgid == agent_tgid() {
        return None;
    }
    let status = judge(task::current(), tgid, current_cgroup(), kind)?;
    Some((tgid, tid, status))
}

/// The current task, about to make a `kind` event, when its acts are watched: a container's,
/// or in a cgroup not classified yet; not a host process, nor the runtime setting a container
/// up.
#[inline(always)]
pub fn current(kind: EventKind) -> Option<Actor> {
    match current_status(kind)? {
        (tgid, tid, Status::Watched(identity)) => Some(Actor {
            tgid,
            tid,
            identity,
        }),
        (_, _, Status::SettingUp { .. }) => None,
    }
}

/// The current task, which just exec'd: a runtime's process that execs the container's
/// program, outside the host's mount namespace, becomes a container process (or an
/// unclassified one, or the host's, as its cgroup says by now).
#[inline(always)]
pub fn current_after_exec() -> Option<Actor> {
    let (tgid, tid, status) = current_status(EventKind::Exec)?;
    let identity = match status {
        Status::Watched(identity) => identity,
        Status::SettingUp { .. } => {
            let current = task::current();
            let host = host_mnt_ns();
            if host != 0 && task::mnt_ns(current) == host {
                return None;
            }
            forget_process(tgid);
            let who = unmarked(current_cgroup())?;
            mark(
                tgid,
                leader_start(current),
                Status::Watched(who),
                EventKind::Exec,
            );
            Identity {
                flags: who.flags | identity::ENTERED,
                ..who
            }
        }
    };
    Some(Actor {
        tgid,
        tid,
        identity,
    })
}

/// What a new process is: its creator's status, except that a child a host process starts in
/// a container's (or a pending) cgroup (`CLONE_INTO_CGROUP`) is a runtime's.
#[inline(always)]
pub fn forked(child_cgroup: u64) -> Option<Status> {
    match current_status(EventKind::Fork) {
        Some((_, _, status)) => Some(status),
        None => match cgroup_class(child_cgroup) {
            HOST => None,
            _ => Some(Status::SettingUp {
                cgroup_id: child_cgroup,
            }),
        },
    }
}

/// What a process moved to cgroup `dst` is, given the mark it carries and the process that
/// moved it: a container process moved anywhere stays one (into another container's cgroup,
/// that container's); a process moved into a container's (or a pending) cgroup by a
/// container process is one too, and by anyone else, a runtime's.
#[inline(always)]
pub fn moved(moved: *const u8, tgid: u32, dst: u64) -> Option<Status> {
    let dst_class = cgroup_class(dst);
    // Found in `dst` by an act between the move and this report of it (runc's init starting
    // up as runc moves it): the move says what it is, as for a process without a mark.
    let mark = mark_of(moved, tgid)
        .filter(|mark| !(mark.flags & identity::FOUND_IN_CGROUP != 0 && mark.cgroup_id == dst));
    match mark {
        Some(mark) if mark.flags & identity::SETTING_UP != 0 => {
            Some(Status::SettingUp { cgroup_id: dst })
        }
        Some(mark) => {
            let cgroup = if dst_class == identity::CGROUP_CONTAINER {
                dst
            } else {
                mark.cgroup_id
            };
            Some(Status::Watched(made(identity::CONTAINER, cgroup)))
        }
        None if dst_class == HOST => None,
        None => match current(EventKind::CgroupAttach) {
            Some(mover) if mover.identity.is_container() => Some(Status::Watched(
                unmarked(dst).unwrap_or(made(identity::UNCLASSIFIED, dst)),
            )),
            _ => Some(Status::SettingUp { cgroup_id: dst }),
        },
    }
}

/// Like [`current`], for a task that may not be the current one (an exiting one, one moved
/// in another cgroup v1 hierarchy): its identity when its acts are watched. Marks nothing.
#[inline(always)]
pub fn watched(task: *const u8, tgid: u32) -> Option<Identity> {
    match mark_of(task, tgid).map(status_of) {
        Some(Status::SettingUp { .. }) => None,
        Some(Status::Watched(who)) => Some(who),
        None => unmarked(cgroup_of(task)),
    }
}

/// Records a cgroup made after the agent started: a container's below a container's cgroup
/// (a container's own sub-cgroups), else pending until the agent classifies it. Returns what
/// was recorded.
#[inline(always)]
pub fn record_new_cgroup(cgroup_id: u64, parent_id: u64) -> u32 {
    let class = if cgroup_class(parent_id) == identity::CGROUP_CONTAINER {
        identity::CGROUP_CONTAINER
    } else {
        identity::CGROUP_PENDING
    };
    if CONTAINER_CGROUPS.insert(cgroup_id, class, 0).is_err() {
        count_loss(EventKind::CgroupMkdir, LossReason::MapFull);
    }
    class
}

/// Forgets a removed cgroup; returns what was recorded for it, 0 for a host cgroup.
#[inline(always)]
pub fn forget_cgroup(cgroup_id: u64) -> u32 {
    let class = cgroup_class(cgroup_id);
    if class != HOST {
        let _ = CONTAINER_CGROUPS.remove(cgroup_id);
    }
    class
}

/// Forgets a process whose last thread exited.
#[inline(always)]
pub fn forget_process(tgid: u32) {
    let _ = CONTAINER_TASKS.remove(tgid);
}
