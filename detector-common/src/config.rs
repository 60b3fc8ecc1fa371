//! Configuration the agent writes into the kernel programs before it loads them.

/// Sentinel for a kernel struct field the running kernel's BTF does not have.
pub const FIELD_MISSING: u32 = u32::MAX;

/// Namespace inode numbers of one task, or of the host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub mnt: u32,
    /// `nsproxy->pid_ns_for_children`: the pid namespace `setns` changes.
    pub pid_for_children: u32,
    pub net: u32,
    pub ipc: u32,
    pub uts: u32,
    pub cgroup: u32,
    pub user: u32,
    /// `nsproxy->time_ns_for_children`, for the same reason as `pid_for_children`.
    pub time: u32,
}

/// One bit per namespace type, in the field order of [`Namespaces`].
pub mod ns_bit {
    pub const MNT: u32 = 1 << 0;
    pub const PID: u32 = 1 << 1;
    pub const NET: u32 = 1 << 2;
    pub const IPC: u32 = 1 << 3;
    pub const UTS: u32 = 1 << 4;
    pub const CGROUP: u32 = 1 << 5;
    pub const USER: u32 = 1 << 6;
    pub const TIME: u32 = 1 << 7;
}

impl Namespaces {
    pub const fn as_array(&self) -> [u32; 8] {
        [
            self.mnt,
            self.pid_for_children,
            self.net,
            self.ipc,
            self.uts,
            self.cgroup,
            self.user,
            self.time,
        ]
    }

    /// Bits of the namespaces where `self` equals `host` and `before` did not.
    pub fn entered(&self, before: &Namespaces, host: &Namespaces) -> u32 {
        let (now, was, host) = (self.as_array(), before.as_array(), host.as_array());
        (0..8)
            .filter(|&i| enters(now[i], was[i], host[i]))
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// Whether any namespace is the host's now and was not `before`: [`Namespaces::entered`]
    /// without building the mask. The kernel asks this: a mask built by eight branches makes
    /// the verifier walk each of its 256 values (68,000 instructions on 6.18, past the patience
    /// of older verifiers), where an early return walks eight paths.
    #[inline(always)]
    pub fn entered_any(&self, before: &Namespaces, host: &Namespaces) -> bool {
        let (now, was, host) = (self.as_array(), before.as_array(), host.as_array());
        let mut i = 0;
        while i < 8 {
            if enters(now[i], was[i], host[i]) {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// A namespace the host reference could not be read for (0) is never matched.
#[inline(always)]
const fn enters(now: u32, was: u32, host: u32) -> bool {
    host != 0 && now == host && was != host
}

/// Byte offsets of the kernel struct fields the programs read, taken from the running kernel's
/// BTF by the agent. A field the kernel lacks is [`FIELD_MISSING`]; the programs then skip it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub task_tgid: u32,
    pub task_pid: u32,
    pub task_real_parent: u32,
    pub task_nsproxy: u32,
    pub task_cred: u32,
    pub task_files: u32,
    pub task_mm: u32,
    pub task_exit_code: u32,
    pub task_group_leader: u32,
    pub task_start_time: u32,
    /// `task_struct.start_boottime`: the start time /proc reports (in clock ticks).
    pub task_start_boottime: u32,
    pub task_signal: u32,
    /// `signal_struct.live`: threads of the group that have not exited.
    pub signal_live: u32,
    pub task_cgroups: u32,
    pub task_flags: u32,
    pub task_fs: u32,
    /// `fs_struct.root.dentry` and `fs_struct.pwd.mnt`, one offset each from `fs_struct`.
    pub fs_root_dentry: u32,
    pub fs_pwd_mnt: u32,
    /// Where `struct vfsmount mnt` sits in `struct mount`, which embeds it.
    pub mount_mnt: u32,
    pub mount_mnt_ns: u32,
    pub cred_cap_effective: u32,
    pub task_thread_pid: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_ns: u32,
    /// `task_struct.ptraced`: the list of the task's tracees, newest first.
    pub task_ptraced: u32,
    pub task_ptrace_entry: u32,
    pub css_set_dfl_cgrp: u32,
    /// Start of the `css_set.subsys` array of `cgroup_subsys_state` pointers.
    pub css_set_subsys: u32,
    pub css_cgroup: u32,
    /// `cgroup.self.parent`: the parent cgroup's own css.
    pub cgroup_parent_css: u32,
    pub module_name: u32,

    pub nsproxy_mnt_ns: u32,
    pub nsproxy_pid_ns_for_children: u32,
    pub nsproxy_net_ns: u32,
    pub nsproxy_ipc_ns: u32,
    pub nsproxy_uts_ns: u32,
    pub nsproxy_cgroup_ns: u32,
    pub nsproxy_time_ns: u32,

    /// `<ns struct>.ns.inum` for each namespace type.
    pub mnt_ns_inum: u32,
    pub pid_ns_inum: u32,
    pub net_ns_inum: u32,
    pub ipc_ns_inum: u32,
    pub uts_ns_inum: u32,
    pub cgroup_ns_inum: u32,
    pub user_ns_inum: u32,
    pub time_ns_inum: u32,

    pub cred_uid: u32,
    pub cred_euid: u32,
    pub cred_user_ns: u32,

    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,

    pub file_f_mode: u32,
    /// `file.f_path.dentry`, one offset from the start of `struct file`.
    pub file_dentry: u32,
    /// `file.f_path.mnt`.
    pub file_mnt: u32,

    /// `dentry.d_name.name`, one offset from the start of `struct dentry`.
    pub dentry_name: u32,
    pub dentry_parent: u32,
    pub dentry_sb: u32,
    pub dentry_inode: u32,

    pub sb_magic: u32,
    pub sb_dev: u32,
    pub sb_type: u32,

    pub path_mnt: u32,
    pub path_dentry: u32,

    pub inode_mode: u32,
    pub inode_ino: u32,
    pub inode_rdev: u32,
    pub inode_private: u32,

    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    /// `mm_struct.owner` (kernels with memory cgroups).
    pub mm_owner: u32,

    pub binprm_filename: u32,

    pub cgroup_level: u32,
    pub cgroup_kn: u32,
    /// `cgroup.root`: the `cgroup_root` of the cgroup's hierarchy.
    pub cgroup_root: u32,
    pub cgroup_root_hierarchy_id: u32,
    pub kernfs_node_id: u32,

    pub file_private_data: u32,
    pub socket_sk: u32,
    pub vfsmount_sb: u32,
    pub sock_family: u32,
    /// `sock_common.skc_dport`, in network byte order.
    pub sock_dport: u32,
    pub sock_daddr: u32,
    pub sock_v6_daddr: u32,
    pub unix_sock_peer: u32,
    pub unix_sock_path_dentry: u32,
    pub unix_sock_addr: u32,
    pub unix_address_len: u32,
    /// `unix_address.name`: a `struct sockaddr_un`.
    pub unix_address_name: u32,

    pub fs_context_root: u32,
    pub fs_context_source: u32,
    pub fs_context_fs_type: u32,
    /// `fs_context.purpose`, a one-byte bitfield read as a byte.
    pub fs_context_purpose: u32,
    pub fs_context_sb_flags: u32,
    pub file_system_type_name: u32,
}

impl Offsets {
    /// Every field missing: what the programs see before the agent fills it in.
    pub const MISSING: Offsets = Offsets {
        task_tgid: FIELD_MISSING,
        task_pid: FIELD_MISSING,
        task_real_parent: FIELD_MISSING,
        task_nsproxy: FIELD_MISSING,
        task_cred: FIELD_MISSING,
        task_files: FIELD_MISSING,
        task_mm: FIELD_MISSING,
        task_exit_code: FIELD_MISSING,
        task_group_leader: FIELD_MISSING,
        task_start_time: FIELD_MISSING,
        task_start_boottime: FIELD_MISSING,
        task_signal: FIELD_MISSING,
        signal_live: FIELD_MISSING,
        task_cgroups: FIELD_MISSING,
        task_flags: FIELD_MISSING,
        task_fs: FIELD_MISSING,
        fs_root_dentry: FIELD_MISSING,
        fs_pwd_mnt: FIELD_MISSING,
        mount_mnt: FIELD_MISSING,
        mount_mnt_ns: FIELD_MISSING,
        cred_cap_effective: FIELD_MISSING,
        task_thread_pid: FIELD_MISSING,
        pid_level: FIELD_MISSING,
        pid_numbers: FIELD_MISSING,
        upid_ns: FIELD_MISSING,
        task_ptraced: FIELD_MISSING,
        task_ptrace_entry: FIELD_MISSING,
        css_set_dfl_cgrp: FIELD_MISSING,
        css_set_subsys: FIELD_MISSING,
        css_cgroup: FIELD_MISSING,
        cgroup_parent_css: FIELD_MISSING,
        module_name: FIELD_MISSING,
        nsproxy_mnt_ns: FIELD_MISSING,
        nsproxy_pid_ns_for_children: FIELD_MISSING,
        nsproxy_net_ns: FIELD_MISSING,
        nsproxy_ipc_ns: FIELD_MISSING,
        nsproxy_uts_ns: FIELD_MISSING,
        nsproxy_cgroup_ns: FIELD_MISSING,
        nsproxy_time_ns: FIELD_MISSING,
        mnt_ns_inum: FIELD_MISSING,
        pid_ns_inum: FIELD_MISSING,
        net_ns_inum: FIELD_MISSING,
        ipc_ns_inum: FIELD_MISSING,
        uts_ns_inum: FIELD_MISSING,
        cgroup_ns_inum: FIELD_MISSING,
        user_ns_inum: FIELD_MISSING,
        time_ns_inum: FIELD_MISSING,
        cred_uid: FIELD_MISSING,
        cred_euid: FIELD_MISSING,
        cred_user_ns: FIELD_MISSING,
        files_fdt: FIELD_MISSING,
        fdtable_max_fds: FIELD_MISSING,
        fdtable_fd: FIELD_MISSING,
        file_f_mode: FIELD_MISSING,
        file_dentry: FIELD_MISSING,
        file_mnt: FIELD_MISSING,
        dentry_name: FIELD_MISSING,
        dentry_parent: FIELD_MISSING,
        dentry_sb: FIELD_MISSING,
        dentry_inode: FIELD_MISSING,
        sb_magic: FIELD_MISSING,
        sb_dev: FIELD_MISSING,
        sb_type: FIELD_MISSING,
        path_mnt: FIELD_MISSING,
        path_dentry: FIELD_MISSING,
        inode_mode: FIELD_MISSING,
        inode_ino: FIELD_MISSING,
        inode_rdev: FIELD_MISSING,
        inode_private: FIELD_MISSING,
        mm_arg_start: FIELD_MISSING,
        mm_arg_end: FIELD_MISSING,
        mm_owner: FIELD_MISSING,
        binprm_filename: FIELD_MISSING,
        cgroup_level: FIELD_MISSING,
        cgroup_kn: FIELD_MISSING,
        cgroup_root: FIELD_MISSING,
        cgroup_root_hierarchy_id: FIELD_MISSING,
        kernfs_node_id: FIELD_MISSING,
        file_private_data: FIELD_MISSING,
        socket_sk: FIELD_MISSING,
        vfsmount_sb: FIELD_MISSING,
        sock_family: FIELD_MISSING,
        sock_dport: FIELD_MISSING,
        sock_daddr: FIELD_MISSING,
        sock_v6_daddr: FIELD_MISSING,
        unix_sock_peer: FIELD_MISSING,
        unix_sock_path_dentry: FIELD_MISSING,
        unix_sock_addr: FIELD_MISSING,
        unix_address_len: FIELD_MISSING,
        unix_address_name: FIELD_MISSING,
        fs_context_root: FIELD_MISSING,
        fs_context_source: FIELD_MISSING,
        fs_context_fs_type: FIELD_MISSING,
        fs_context_purpose: FIELD_MISSING,
        fs_context_sb_flags: FIELD_MISSING,
        file_system_type_name: FIELD_MISSING,
    };
}

/// The one global the agent sets before load (`CONFIG` in the kernel object).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Namespaces of the host reference process; a zero field is never matched.
    pub host_ns: Namespaces,
    /// The agent's own tgid: nothing it does is reported.
    pub agent_tgid: u32,
    /// The acts hooks that can refuse one (LSM) refuse for container processes: a set of
    /// [`refusal`] bits, each the act of one critical rule; 0 refuses nothing.
    pub enforce: u32,
    /// `READING_MODULE` of `enum kernel_read_file_id` and `LOADING_MODULE` of
    /// `enum kernel_load_data_id`, from BTF; [`FIELD_MISSING`] when unknown (never matches).
    pub reading_module: u32,
    pub loading_module: u32,
    /// `cgroup_root.hierarchy_id` of the hierarchy whose cgroups name containers: 0 for the
    /// unified (v2) hierarchy.
    pub identity_hierarchy: u32,
    /// For a v1 hierarchy, the index in `css_set.subsys` of one of its controllers;
    /// [`FIELD_MISSING`] for the unified hierarchy (`css_set.dfl_cgrp`).
    pub identity_subsys: u32,
    pub offsets: Offsets,
    /// TCP ports whose connects are reported (to the agent, which keeps those to this node's
    /// own addresses); 0 fills the unused slots.
    pub runtime_api_ports: [u16; crate::event::MAX_RUNTIME_API_PORTS],
}

impl Config {
    pub const UNSET: Config = Config {
        host_ns: Namespaces {
            mnt: 0,
            pid_for_children: 0,
            net: 0,
            ipc: 0,
            uts: 0,
            cgroup: 0,
            user: 0,
            time: 0,
        },
        agent_tgid: 0,
        enforce: 0,
        reading_module: FIELD_MISSING,
        loading_module: FIELD_MISSING,
        identity_hierarchy: 0,
        identity_subsys: FIELD_MISSING,
        offsets: Offsets::MISSING,
        runtime_api_ports: [0; crate::event::MAX_RUNTIME_API_PORTS],
    };
}

/// Bits of [`Config::enforce`]: each names the acts of one critical rule an LSM hook can refuse,
/// so enforcement can be switched on rule by rule.
pub mod refusal {
    /// Writes to cgroup v1 `release_agent` and `notify_on_release` (cgroup-release-agent).
    pub const RELEASE_AGENT: u32 = 1 << 0;
    /// Writes to the other helper files (kernel-helper-hijack).
    pub const KERNEL_HELPER: u32 = 1 << 1;
    /// Write-opens of a runtime binary (runtime-binary-overwrite).
    pub const RUNTIME_BINARY: u32 = 1 << 2;
    /// Module loads and requests (kernel-module-load).
    pub const MODULE_LOAD: u32 = 1 << 3;
}

/// How the kernel tells container processes from the host's: by cgroup, as the agent
/// classifies cgroups, with a mark per process that outlives moves out of the container's
/// cgroup.
pub mod identity {
    /// Values of the container-cgroup map: the agent classified the cgroup as a container's,
    /// or the kernel inherited that from its parent.
    pub const CGROUP_CONTAINER: u32 = 1;
    /// Made after the agent started and not classified yet.
    pub const CGROUP_PENDING: u32 = 2;

    /// `Identity::flags`: a container process (by its cgroup or its mark).
    pub const CONTAINER: u32 = 1 << 0;
    /// In a cgroup the agent has not classified yet: the agent decides.
    pub const UNCLASSIFIED: u32 = 1 << 1;
    /// On an exec: the runtime's process became the container's here, so this is the first
    /// event about it (its set-up sent none).
    pub const ENTERED: u32 = 1 << 2;
    /// On an exec: a usermode helper the kernel started (its parent is a kernel thread), a host
    /// process (core_pattern pipes, modprobe, release agents, uevent helpers run so).
    pub const HELPER: u32 = 1 << 3;

    /// `TaskMark::flags`: the process entered the container's cgroup from outside (runc's
    /// init, a `runc exec`) and has not exec'd since: the runtime setting the container up.
    /// Its children inherit this; its exec makes it a container process. Nothing a container
    /// runs can start such a process.
    pub const SETTING_UP: u32 = 1 << 0;
    /// `TaskMark::flags`: marked at an act, found without a mark in the container's cgroup it
    /// names: a process that ran before the agent started, or one a cgroup write has just put
    /// there, whose move the kernel reports only after the move (`cgroup_attach_task`), so
    /// that an act in between finds it in the container's cgroup already. That move, when it
    /// comes, decides what the process is.
    pub const FOUND_IN_CGROUP: u32 = 1 << 1;
}

/// The container-task map's value: which process (its tgid is the key) and which container.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskMark {
    /// `start_time` of the thread-group leader when it was marked; a process that later gets
    /// the same tgid has another start time, so it never inherits the mark.
    pub start_ns: u64,
    /// The container's cgroup (identity hierarchy).
    pub cgroup_id: u64,
    /// `identity::SETTING_UP`.
    pub flags: u32,
    pub _pad: u32,
}
