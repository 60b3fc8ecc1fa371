//! Superblock magic numbers (`include/uapi/linux/magic.h`).

pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;
pub const SYSFS_MAGIC: u64 = 0x6265_6572;
pub const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
pub const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
pub const BINFMTFS_MAGIC: u64 = 0x4249_4e4d;
pub const DEBUGFS_MAGIC: u64 = 0x6462_6720;
pub const SECURITYFS_MAGIC: u64 = 0x7363_6673;
pub const TRACEFS_MAGIC: u64 = 0x7472_6163;
pub const BPF_FS_MAGIC: u64 = 0xcafe_4a11;

/// Filesystems whose files are kernel settings: a write-open there is worth a look.
pub const KERNEL_SETTING_FILESYSTEMS: [u64; 9] = [
    PROC_SUPER_MAGIC,
    SYSFS_MAGIC,
    CGROUP_SUPER_MAGIC,
    CGROUP2_SUPER_MAGIC,
    BINFMTFS_MAGIC,
    DEBUGFS_MAGIC,
    SECURITYFS_MAGIC,
    TRACEFS_MAGIC,
    BPF_FS_MAGIC,
];

pub const fn name(magic: u64) -> &'static str {
    match magic {
        PROC_SUPER_MAGIC => "proc",
        SYSFS_MAGIC => "sysfs",
        CGROUP_SUPER_MAGIC => "cgroup",
        CGROUP2_SUPER_MAGIC => "cgroup2",
        BINFMTFS_MAGIC => "binfmt_misc",
        DEBUGFS_MAGIC => "debugfs",
        SECURITYFS_MAGIC => "securityfs",
        TRACEFS_MAGIC => "tracefs",
        BPF_FS_MAGIC => "bpf",
        _ => "other",
    }
}
