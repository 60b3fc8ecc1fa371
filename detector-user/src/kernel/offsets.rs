//! Fills [`Offsets`] from the running kernel's BTF, one table row per field.

use detector_common::Offsets;

use super::btf::{Btf, BtfError};

/// A field the running kernel's BTF does not have; the programs skip it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingField {
    pub field: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub offsets: Offsets,
    pub missing: Vec<MissingField>,
}

impl Resolved {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Where one field of [`Offsets`] lives in the kernel.
struct Field {
    name: &'static str,
    struct_name: &'static str,
    /// Member paths in order of preference: later ones cover renames on other kernels.
    candidates: &'static [&'static str],
    slot: fn(&mut Offsets) -> &mut u32,
    lookup: fn(&Btf, &str, &str) -> Result<u32, BtfError>,
}

/// One row: `Offsets` field, struct name, candidate member paths.
macro_rules! field {
    ($field:ident, $struct_name:literal, [$($path:literal),+ $(,)?]) => {
        Field {
            name: stringify!($field),
            struct_name: $struct_name,
            candidates: &[$($path),+],
            slot: |offsets| &mut offsets.$field,
            lookup: Btf::member_offset,
        }
    };
}

/// A row for a member the programs read as one byte, which may be a one-byte bitfield.
macro_rules! byte_field {
    ($field:ident, $struct_name:literal, [$($path:literal),+ $(,)?]) => {
        Field {
            lookup: Btf::byte_member_offset,
            ..field!($field, $struct_name, [$($path),+])
        }
    };
}

// Unformatted so each row stays on one line and rows stay grouped by struct.
#[rustfmt::skip]
const FIELDS: &[Field] = &[
    field!(task_tgid, "task_struct", ["tgid"]),
    field!(task_pid, "task_struct", ["pid"]),
    field!(task_real_parent, "task_struct", ["real_parent"]),
    field!(task_nsproxy, "task_struct", ["nsproxy"]),
    field!(task_cred, "task_struct", ["cred"]),
    field!(task_files, "task_struct", ["files"]),
    field!(task_mm, "task_struct", ["mm"]),
    field!(task_exit_code, "task_struct", ["exit_code"]),
    field!(task_group_leader, "task_struct", ["group_leader"]),
    field!(task_start_time, "task_struct", ["start_time"]),
    // `real_start_time` before 5.5.
    field!(task_start_boottime, "task_struct", ["start_boottime", "real_start_time"]),
    field!(task_signal, "task_struct", ["signal"]),
    // atomic_t wraps `counter`; the programs read the 4 bytes at the atomic_t itself.
    field!(signal_live, "signal_struct", ["live"]),
    field!(task_cgroups, "task_struct", ["cgroups"]),
    field!(task_flags, "task_struct", ["flags"]),
    field!(task_fs, "task_struct", ["fs"]),
    field!(fs_root_dentry, "fs_struct", ["root.dentry"]),
    field!(fs_pwd_mnt, "fs_struct", ["pwd.mnt"]),
    field!(mount_mnt, "mount", ["mnt"]),
    field!(mount_mnt_ns, "mount", ["mnt_ns"]),
    // kernel_cap_t: a u64 since 6.3, two u32 before; little-endian, the same 8 bytes.
    field!(cred_cap_effective, "cred", ["cap_effective"]),
    field!(task_thread_pid, "task_struct", ["thread_pid"]),
    field!(pid_level, "pid", ["level"]),
    field!(pid_numbers, "pid", ["numbers"]),
    field!(upid_ns, "upid", ["ns"]),
    field!(task_ptraced, "task_struct", ["ptraced"]),
    field!(task_ptrace_entry, "task_struct", ["ptrace_entry"]),
    field!(css_set_dfl_cgrp, "css_set", ["dfl_cgrp"]),
    field!(css_set_subsys, "css_set", ["subsys"]),
    field!(css_cgroup, "cgroup_subsys_state", ["cgroup"]),
    field!(cgroup_parent_css, "cgroup", ["self.parent"]),
    field!(module_name, "module", ["name"]),

    field!(nsproxy_mnt_ns, "nsproxy", ["mnt_ns"]),
    field!(nsproxy_pid_ns_for_children, "nsproxy", ["pid_ns_for_children"]),
    field!(nsproxy_net_ns, "nsproxy", ["net_ns"]),
    field!(nsproxy_ipc_ns, "nsproxy", ["ipc_ns"]),
    field!(nsproxy_uts_ns, "nsproxy", ["uts_ns"]),
    field!(nsproxy_cgroup_ns, "nsproxy", ["cgroup_ns"]),
    field!(nsproxy_time_ns, "nsproxy", ["time_ns_for_children"]),

    field!(mnt_ns_inum, "mnt_namespace", ["ns.inum"]),
    field!(pid_ns_inum, "pid_namespace", ["ns.inum"]),
    field!(net_ns_inum, "net", ["ns.inum"]),
    field!(ipc_ns_inum, "ipc_namespace", ["ns.inum"]),
    field!(uts_ns_inum, "uts_namespace", ["ns.inum"]),
    field!(cgroup_ns_inum, "cgroup_namespace", ["ns.inum"]),
    field!(user_ns_inum, "user_namespace", ["ns.inum"]),
    field!(time_ns_inum, "time_namespace", ["ns.inum"]),

    // kuid_t wraps `val`; the programs read the 4 bytes at the kuid_t itself.
    field!(cred_uid, "cred", ["uid"]),
    field!(cred_euid, "cred", ["euid"]),
    field!(cred_user_ns, "cred", ["user_ns"]),

    field!(files_fdt, "files_struct", ["fdt"]),
    field!(fdtable_max_fds, "fdtable", ["max_fds"]),
    field!(fdtable_fd, "fdtable", ["fd"]),

    field!(file_f_mode, "file", ["f_mode"]),
    // 6.18 also names the same path `__f_path` inside an anonymous union.
    field!(file_dentry, "file", ["f_path.dentry", "__f_path.dentry"]),
    field!(file_mnt, "file", ["f_path.mnt", "__f_path.mnt"]),

    // 6.18 also names the same qstr `__d_name` inside an anonymous union.
    field!(dentry_name, "dentry", ["d_name.name", "__d_name.name"]),
    field!(dentry_parent, "dentry", ["d_parent"]),
    field!(dentry_sb, "dentry", ["d_sb"]),
    field!(dentry_inode, "dentry", ["d_inode"]),

    field!(sb_magic, "super_block", ["s_magic"]),
    field!(sb_dev, "super_block", ["s_dev"]),
    field!(sb_type, "super_block", ["s_type"]),

    field!(path_mnt, "path", ["mnt"]),
    field!(vfsmount_sb, "vfsmount", ["mnt_sb"]),
    field!(path_dentry, "path", ["dentry"]),

    field!(inode_mode, "inode", ["i_mode"]),
    field!(inode_ino, "inode", ["i_ino"]),
    field!(inode_rdev, "inode", ["i_rdev"]),
    field!(inode_private, "inode", ["i_private"]),

    field!(mm_arg_start, "mm_struct", ["arg_start"]),
    field!(mm_arg_end, "mm_struct", ["arg_end"]),
    field!(mm_owner, "mm_struct", ["owner"]),

    field!(binprm_filename, "linux_binprm", ["filename"]),

    field!(cgroup_level, "cgroup", ["level"]),
    field!(cgroup_kn, "cgroup", ["kn"]),
    field!(cgroup_root, "cgroup", ["root"]),
    field!(cgroup_root_hierarchy_id, "cgroup_root", ["hierarchy_id"]),
    field!(kernfs_node_id, "kernfs_node", ["id"]),

    field!(file_private_data, "file", ["private_data"]),
    field!(socket_sk, "socket", ["sk"]),
    field!(sock_family, "sock", ["__sk_common.skc_family"]),
    field!(sock_dport, "sock", ["__sk_common.skc_dport"]),
    field!(sock_daddr, "sock", ["__sk_common.skc_daddr"]),
    field!(sock_v6_daddr, "sock", ["__sk_common.skc_v6_daddr"]),
    field!(unix_sock_peer, "unix_sock", ["peer"]),
    field!(unix_sock_path_dentry, "unix_sock", ["path.dentry"]),
    field!(unix_sock_addr, "unix_sock", ["addr"]),
    field!(unix_address_len, "unix_address", ["len"]),
    field!(unix_address_name, "unix_address", ["name"]),

    field!(fs_context_root, "fs_context", ["root"]),
    field!(fs_context_source, "fs_context", ["source"]),
    field!(fs_context_fs_type, "fs_context", ["fs_type"]),
    // `enum fs_context_purpose purpose:8`.
    byte_field!(fs_context_purpose, "fs_context", ["purpose"]),
    field!(fs_context_sb_flags, "fs_context", ["sb_flags"]),
    field!(file_system_type_name, "file_system_type", ["name"]),
];

/// Looks up every field of [`Offsets`]; a field the kernel lacks stays
/// [`detector_common::FIELD_MISSING`] and is listed in `missing`.
pub fn resolve(btf: &Btf) -> Resolved {
    let mut resolved = Resolved {
        offsets: Offsets::MISSING,
        missing: Vec::new(),
    };
    for field in FIELDS {
        match first_candidate(btf, field) {
            Ok(offset) => *(field.slot)(&mut resolved.offsets) = offset,
            Err(reason) => resolved.missing.push(MissingField {
                field: field.name,
                reason,
            }),
        }
    }
    resolved
}

/// The offset of the first candidate the kernel has, or every candidate's error so the
/// operator sees what was tried.
fn first_candidate(btf: &Btf, field: &Field) -> Result<u32, String> {
    let mut errors = Vec::new();
    for path in field.candidates {
        match (field.lookup)(btf, field.struct_name, path) {
            Ok(offset) => return Ok(offset),
            Err(error) => errors.push(error.to_string()),
        }
    }
    Err(errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::super::btf::testing::{BtfBuilder, vmlinux};
    use super::*;
    use detector_common::FIELD_MISSING;

    /// Every row writes a different field and there is one row per field, so none is forgotten.
    #[test]
    fn the_table_covers_every_field_once() {
        let field_count = size_of::<Offsets>() / size_of::<u32>();
        assert_eq!(FIELDS.len(), field_count);
        let mut offsets = Offsets::MISSING;
        for (index, field) in FIELDS.iter().enumerate() {
            *(field.slot)(&mut offsets) = index as u32;
        }
        for (index, field) in FIELDS.iter().enumerate() {
            assert_eq!(*(field.slot)(&mut offsets), index as u32, "{}", field.name);
        }
    }

    #[test]
    fn lists_missing_fields_and_uses_later_candidates() {
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8);
        b.plain_struct("task_struct", 32, &[("pid", long, 8), ("tgid", long, 16)]);
        let qstr = b.plain_struct("qstr", 16, &[("hash_len", long, 0), ("name", long, 8)]);
        b.plain_struct("dentry", 64, &[("__d_name", qstr, 32)]);
        let btf = Btf::parse(&b.build()).expect("synthetic BTF parses");

        let resolved = resolve(&btf);
        assert!(!resolved.is_complete());
        assert_eq!(resolved.offsets.task_pid, 8);
        assert_eq!(resolved.offsets.task_tgid, 16);
        assert_eq!(resolved.offsets.dentry_name, 40);
        assert_eq!(resolved.offsets.task_cred, FIELD_MISSING);
        assert_eq!(resolved.missing.len(), FIELDS.len() - 3);
        let cred = resolved.missing.iter().find(|m| m.field == "task_cred");
        assert_eq!(
            cred.map(|m| m.reason.as_str()),
            Some("struct task_struct has no member cred")
        );
        let nsproxy = resolved
            .missing
            .iter()
            .find(|m| m.field == "nsproxy_net_ns");
        assert_eq!(
            nsproxy.map(|m| m.reason.as_str()),
            Some("BTF has no struct nsproxy")
        );
    }

    #[test]
    fn resolves_every_field_on_the_running_kernel() {
        let Some(btf) = vmlinux() else { return };
        let resolved = resolve(&btf);
        assert!(resolved.is_complete(), "missing: {:#?}", resolved.missing);
        let o = resolved.offsets;
        let offset = |s: &str, path: &str| btf.member_offset(s, path).unwrap();

        for field in FIELDS {
            let mut copy = o;
            let value = *(field.slot)(&mut copy);
            let size = btf.struct_size(field.struct_name).unwrap();
            // Flexible arrays start where the struct ends.
            let end = if ["pid_numbers", "unix_address_name"].contains(&field.name) {
                size + 1
            } else {
                size
            };
            assert!(value < end, "{} = {value} >= {size}", field.name);
        }
        // Layout facts shared by every x86_64 kernel with BTF.
        assert_eq!(o.dentry_name, offset("dentry", "d_name") + 8);
        assert_eq!(o.file_dentry, o.file_mnt + 8);
        assert_eq!(o.cred_euid, o.cred_uid + 16);
        assert_eq!(o.cred_uid, offset("cred", "uid.val"));
        assert_eq!((o.fdtable_max_fds, o.fdtable_fd), (0, 8));
        assert_eq!(o.mm_arg_end, o.mm_arg_start + 8);
        assert_eq!(o.task_tgid, o.task_pid + 4);
        assert_eq!(o.signal_live, offset("signal_struct", "live.counter"));
        assert_eq!(
            o.cgroup_parent_css,
            offset("cgroup", "self") + offset("cgroup_subsys_state", "parent")
        );
        let pointers = [
            o.task_real_parent,
            o.task_nsproxy,
            o.task_cred,
            o.task_files,
            o.task_mm,
            o.nsproxy_mnt_ns,
            o.nsproxy_pid_ns_for_children,
            o.nsproxy_net_ns,
            o.nsproxy_ipc_ns,
            o.nsproxy_uts_ns,
            o.nsproxy_cgroup_ns,
            o.nsproxy_time_ns,
            o.cred_user_ns,
            o.files_fdt,
            o.file_dentry,
            o.file_mnt,
            o.dentry_name,
            o.dentry_parent,
            o.dentry_sb,
            o.dentry_inode,
            o.binprm_filename,
            o.cgroup_kn,
            o.cgroup_root,
            o.kernfs_node_id,
            o.task_group_leader,
            o.task_signal,
            o.task_cgroups,
            o.task_fs,
            o.fs_root_dentry,
            o.fs_pwd_mnt,
            o.mount_mnt_ns,
            o.task_thread_pid,
            o.task_ptraced,
            o.task_ptrace_entry,
            o.css_set_dfl_cgrp,
            o.css_set_subsys,
            o.css_cgroup,
            o.cgroup_parent_css,
        ];
        assert!(pointers.iter().all(|offset| offset % 8 == 0), "{o:#?}");
        let inums = [
            (o.mnt_ns_inum, "mnt_namespace"),
            (o.pid_ns_inum, "pid_namespace"),
            (o.net_ns_inum, "net"),
            (o.ipc_ns_inum, "ipc_namespace"),
            (o.uts_ns_inum, "uts_namespace"),
            (o.cgroup_ns_inum, "cgroup_namespace"),
            (o.user_ns_inum, "user_namespace"),
            (o.time_ns_inum, "time_namespace"),
        ];
        for (inum, ns) in inums {
            assert_eq!(inum, offset(ns, "ns") + offset("ns_common", "inum"), "{ns}");
        }
    }
}
