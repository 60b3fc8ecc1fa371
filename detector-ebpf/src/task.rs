//! Facts about a task: its namespaces, credentials and parent.

use aya_ebpf::helpers::generated::bpf_get_current_task;
use detector_common::{FIELD_MISSING, FileId, Namespaces};

use crate::{
    config::offset,
    kread::{field, pointer, read_or_zero},
};

#[inline(always)]
pub fn current() -> *const u8 {
    // SAFETY: helper without arguments; the pointer is only ever passed to probe reads.
    unsafe { bpf_get_current_task() as *const u8 }
}

/// The inode number of the namespace that `holder.<ns_ptr_off>` points to; zero when
/// unknown. Branch-free (see [`read_or_zero`]): a task's namespaces are read on hot paths and
/// twice in some programs.
#[inline(always)]
fn ns_inum(holder: *const u8, ns_ptr_off: u32, inum_off: u32) -> u32 {
    read_or_zero(read_or_zero::<*const u8>(holder, ns_ptr_off), inum_off)
}

/// The inode number of the task's mount namespace; zero when unknown.
#[inline(always)]
pub fn mnt_ns(task: *const u8) -> u32 {
    let nsproxy = read_or_zero::<*const u8>(task, offset!(task_nsproxy));
    ns_inum(nsproxy, offset!(nsproxy_mnt_ns), offset!(mnt_ns_inum))
}

#[inline(always)]
pub fn net_ns(task: *const u8) -> u32 {
    let nsproxy = read_or_zero::<*const u8>(task, offset!(task_nsproxy));
    ns_inum(nsproxy, offset!(nsproxy_net_ns), offset!(net_ns_inum))
}

/// All namespaces of `task`; zero where unknown (an exiting task has no nsproxy).
#[inline(always)]
pub fn namespaces(task: *const u8) -> Namespaces {
    namespaces_with(task, read_or_zero(task, offset!(task_nsproxy)))
}

/// The namespaces `task` has with `nsproxy` (its own, or one it is switching to): the user
/// namespace is its credentials', the others the nsproxy's.
#[inline(always)]
pub fn namespaces_with(task: *const u8, nsproxy: *const u8) -> Namespaces {
    let cred = read_or_zero::<*const u8>(task, offset!(task_cred));
    Namespaces {
        mnt: ns_inum(nsproxy, offset!(nsproxy_mnt_ns), offset!(mnt_ns_inum)),
        pid_for_children: ns_inum(
            nsproxy,
            offset!(nsproxy_pid_ns_for_children),
            offset!(pid_ns_inum),
        ),
        net: ns_inum(nsproxy, offset!(nsproxy_net_ns), offset!(net_ns_inum)),
        ipc: ns_inum(nsproxy, offset!(nsproxy_ipc_ns), offset!(ipc_ns_inum)),
        uts: ns_inum(nsproxy, offset!(nsproxy_uts_ns), offset!(uts_ns_inum)),
        cgroup: ns_inum(nsproxy, offset!(nsproxy_cgroup_ns), offset!(cgroup_ns_inum)),
        user: ns_inum(cred, offset!(cred_user_ns), offset!(user_ns_inum)),
        time: ns_inum(nsproxy, offset!(nsproxy_time_ns), offset!(time_ns_inum)),
    }
}

/// True when no thread of the task's group is left: `signal->live` reached zero, which
/// `do_exit` decrements before the exit tracepoint runs. The leader's own exit (it may end
/// with `exit(2)` while its threads go on) does not end the process. An unreadable count is
/// not taken for zero.
#[inline(always)]
pub fn group_dead(task: *const u8) -> bool {
    pointer(task, offset!(task_signal))
        .and_then(|signal| field::<i32>(signal, offset!(signal_live)))
        .is_some_and(|live| live == 0)
}

/// (uid, euid) from the task's effective credentials.
#[inline(always)]
pub fn uids(task: *const u8) -> (u32, u32) {
    match pointer(task, offset!(task_cred)) {
        Some(cred) => (
            field::<u32>(cred, offset!(cred_uid)).unwrap_or(u32::MAX),
            field::<u32>(cred, offset!(cred_euid)).unwrap_or(u32::MAX),
        ),
        None => (u32::MAX, u32::MAX),
    }
}

#[inline(always)]
pub fn tgid(task: *const u8) -> u32 {
    field::<u32>(task, offset!(task_tgid)).unwrap_or(0)
}

#[inline(always)]
pub fn pid(task: *const u8) -> u32 {
    field::<u32>(task, offset!(task_pid)).unwrap_or(0)
}

/// The inode of the pid namespace the task lives in (`task_active_pid_ns`): the one of the
/// deepest level of its `struct pid`.
#[inline(always)]
pub fn active_pid_ns(task: *const u8) -> u32 {
    let Some(pid) = pointer(task, offset!(task_thread_pid)) else {
        return 0;
    };
    let (numbers, upid_ns) = (offset!(pid_numbers), offset!(upid_ns));
    let Some(level) = field::<u32>(pid, offset!(pid_level)) else {
        return 0;
    };
    if numbers == FIELD_MISSING || upid_ns == FIELD_MISSING || level > MAX_PID_NS_LEVEL {
        return 0;
    }
    // `struct upid` is an int and a pointer: 16 bytes.
    let upid = numbers + level * 16;
    pointer(pid, upid + upid_ns)
        .and_then(|ns| field::<u32>(ns, offset!(pid_ns_inum)))
        .unwrap_or(0)
}

/// The kernel's limit on nested pid namespaces (`MAX_PID_NS_LEVEL`).
const MAX_PID_NS_LEVEL: u32 = 32;

/// The task `current` most recently attached to with ptrace: tracees are added at the head of
/// its `ptraced` list.
#[inline(always)]
pub fn newest_tracee(tracer: *const u8) -> Option<*const u8> {
    let (list, entry) = (offset!(task_ptraced), offset!(task_ptrace_entry));
    if list == FIELD_MISSING || entry == FIELD_MISSING {
        return None;
    }
    let head = tracer.wrapping_add(list as usize);
    let first = pointer(tracer, list)?;
    if first == head {
        return None;
    }
    Some(first.wrapping_sub(entry as usize))
}

/// `PF_KTHREAD` of `task_struct.flags` (include/linux/sched.h), unchanged since 2.6.
const PF_KTHREAD: u32 = 0x0020_0000;

/// Whether a kernel thread started the task: a usermode helper (the kernel's own way to run a
/// program: core_pattern pipes, modprobe, release agents, uevent helpers).
#[inline(always)]
pub fn started_by_kernel(task: *const u8) -> bool {
    let parent = read_or_zero::<*const u8>(task, offset!(task_real_parent));
    read_or_zero::<u32>(parent, offset!(task_flags)) & PF_KTHREAD != 0
}

/// The task's effective capabilities.
#[inline(always)]
pub fn cap_effective(task: *const u8) -> u64 {
    let cred = read_or_zero::<*const u8>(task, offset!(task_cred));
    read_or_zero(cred, offset!(cred_cap_effective))
}

/// The file of a dentry: its superblock's device and its inode number; zeros when unknown.
#[inline(always)]
pub fn file_id(dentry: *const u8) -> FileId {
    let sb = read_or_zero::<*const u8>(dentry, offset!(dentry_sb));
    let inode = read_or_zero::<*const u8>(dentry, offset!(dentry_inode));
    FileId {
        dev: read_or_zero(sb, offset!(sb_dev)),
        _pad: 0,
        ino: read_or_zero(inode, offset!(inode_ino)),
    }
}

/// The task's root directory (`fs->root`).
#[inline(always)]
pub fn root(task: *const u8) -> FileId {
    let fs = read_or_zero::<*const u8>(task, offset!(task_fs));
    file_id(read_or_zero(fs, offset!(fs_root_dentry)))
}

/// The inode of the mount namespace the task's working directory's mount belongs to.
#[inline(always)]
pub fn cwd_mnt_ns(task: *const u8) -> u32 {
    let fs = read_or_zero::<*const u8>(task, offset!(task_fs));
    mount_ns(read_or_zero(fs, offset!(fs_pwd_mnt)))
}

/// The inode of the mount namespace a mount (a `struct vfsmount`, as paths hold it) belongs
/// to; zero when unknown, for kernel-internal mounts and for detached ones.
#[inline(always)]
pub fn mount_ns(vfsmount: *const u8) -> u32 {
    let mount_mnt = offset!(mount_mnt);
    if mount_mnt == FIELD_MISSING || vfsmount.is_null() {
        return 0;
    }
    // `struct mount` embeds the `struct vfsmount` the path points at.
    let mount = vfsmount.wrapping_sub(mount_mnt as usize);
    ns_inum(mount, offset!(mount_mnt_ns), offset!(mnt_ns_inum))
}

/// The tgid of the task's parent (`real_parent`).
#[inline(always)]
pub fn parent_tgid(task: *const u8) -> u32 {
    pointer(task, offset!(task_real_parent))
        .map(tgid)
        .unwrap_or(0)
}
