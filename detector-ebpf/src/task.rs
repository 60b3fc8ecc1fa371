//! Facts about a task: its namespaces, credentials and parent.

use aya_ebpf::helpers::generated::bpf_get_current_task;
use detector_common::Namespaces;

use crate::{
    config::offset,
    kread::{field, pointer},
};

#[inline(always)]
pub fn current() -> *const u8 {
    // SAFETY: helper without arguments; the pointer is only ever passed to probe reads.
    unsafe { bpf_get_current_task() as *const u8 }
}

/// The inode number of the namespace that `holder.<ns_ptr_off>` points to.
#[inline(always)]
fn ns_inum(holder: *const u8, ns_ptr_off: u32, inum_off: u32) -> u32 {
    pointer(holder, ns_ptr_off)
        .and_then(|ns| field::<u32>(ns, inum_off))
        .unwrap_or(0)
}

/// The inode number of the task's mount namespace; zero when unknown.
#[inline(always)]
pub fn mnt_ns(task: *const u8) -> u32 {
    pointer(task, offset!(task_nsproxy))
        .map(|nsproxy| ns_inum(nsproxy, offset!(nsproxy_mnt_ns), offset!(mnt_ns_inum)))
        .unwrap_or(0)
}

/// All namespaces of `task`; zero where unknown (an exiting task has no nsproxy).
#[inline(always)]
pub fn namespaces(task: *const u8) -> Namespaces {
    let mut ns = Namespaces::default();
    if let Some(nsproxy) = pointer(task, offset!(task_nsproxy)) {
        ns.mnt = ns_inum(nsproxy, offset!(nsproxy_mnt_ns), offset!(mnt_ns_inum));
        ns.pid_for_children = ns_inum(
            nsproxy,
            offset!(nsproxy_pid_ns_for_children),
            offset!(pid_ns_inum),
        );
        ns.net = ns_inum(nsproxy, offset!(nsproxy_net_ns), offset!(net_ns_inum));
        ns.ipc = ns_inum(nsproxy, offset!(nsproxy_ipc_ns), offset!(ipc_ns_inum));
        ns.uts = ns_inum(nsproxy, offset!(nsproxy_uts_ns), offset!(uts_ns_inum));
        ns.cgroup = ns_inum(nsproxy, offset!(nsproxy_cgroup_ns), offset!(cgroup_ns_inum));
        ns.time = ns_inum(nsproxy, offset!(nsproxy_time_ns), offset!(time_ns_inum));
    }
    if let Some(cred) = pointer(task, offset!(task_cred)) {
        ns.user = ns_inum(cred, offset!(cred_user_ns), offset!(user_ns_inum));
    }
    ns
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

/// The tgid of the task's parent (`real_parent`).
#[inline(always)]
pub fn parent_tgid(task: *const u8) -> u32 {
    pointer(task, offset!(task_real_parent))
        .map(tgid)
        .unwrap_or(0)
}
