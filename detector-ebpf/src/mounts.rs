//! Mounts made by container processes: new filesystem instances, and binds of paths from
//! outside the container's mount namespace. The agent judges the filesystem type and flags;
//! the kernel only keeps uninteresting processes out. With fexit the kernel's own objects speak
//! (the filesystem type the kernel chose, the superblock's device, the mount a bind copies) for
//! `mount` and the new mount API alike; syscall tracepoints read `mount`'s arguments.

use aya_ebpf::programs::{FExitContext, TracePointContext};
use detector_common::{EventKind, LossReason, MountEvent, syscall};

use crate::{
    config::offset,
    emit::{count_loss, reserve},
    files::fd_private_data,
    identity::{self, Actor},
    kread::{field, kernel_str, pointer, read_or_zero, user_str},
    maps::{FSCONFIG_PENDING, MOUNT_PENDING},
    syscall_record, task,
};

/// The user pointers and flags of a `mount` call, from entry to exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingMount {
    pub source: u64,
    pub target: u64,
    pub fstype: u64,
    pub flags: u64,
}

pub fn on_mount_enter(ctx: &TracePointContext) {
    // mount(dev_name, dir_name, type, flags, data)
    let arg = |n| syscall_record::arg(ctx, n).unwrap_or(0);
    syscall_record::keep(&MOUNT_PENDING, EventKind::Mount, || PendingMount {
        source: arg(0),
        target: arg(1),
        fstype: arg(2),
        flags: arg(3),
    });
}

pub fn on_mount_exit(ctx: &TracePointContext) {
    let Some((pending, actor)) = syscall_record::take(&MOUNT_PENDING, EventKind::Mount) else {
        return;
    };
    let result = syscall_record::ret(ctx);
    if result != 0 && pending.flags & MS_BIND == 0 {
        return;
    }
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the user pointers are
    // read with the user-memory helper, which validates them.
    unsafe {
        (*e).header = actor.header(EventKind::Mount);
        (*e).syscall = syscall::MOUNT;
        (*e).dev = 0;
        (*e).flags = pending.flags;
        (*e).source_mnt_ns = 0;
        (*e).result = result as i32;
        user_str(pending.fstype as *const u8, &mut (*e).fstype);
        user_str(pending.source as *const u8, &mut (*e).source);
        user_str(pending.target as *const u8, &mut (*e).target);
    }
    entry.submit(0);
}

/// The `fsconfig` commands that make the filesystem instance (include/uapi/linux/mount.h);
/// `_EXCL` (6.6+) refuses to reuse an existing superblock.
const FSCONFIG_CMD_CREATE: u64 = 6;
const FSCONFIG_CMD_CREATE_EXCL: u64 = 8;

pub fn on_fsconfig_enter(ctx: &TracePointContext) {
    // fsconfig(fd, cmd, key, value, aux): most calls set options.
    if !matches!(
        syscall_record::arg(ctx, 1),
        Some(FSCONFIG_CMD_CREATE | FSCONFIG_CMD_CREATE_EXCL)
    ) {
        return;
    }
    let fd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    syscall_record::keep(&FSCONFIG_PENDING, EventKind::Mount, || fd as u32);
}

/// The new mount API made a filesystem instance: the descriptor is a filesystem context.
pub fn on_fsconfig_exit(ctx: &TracePointContext) {
    let Some((fd, actor)) = syscall_record::take(&FSCONFIG_PENDING, EventKind::Mount) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    match fd_private_data(fd) {
        Some(fc) => report_new_tree(fc, syscall::FSCONFIG, &actor),
        None => count_loss(EventKind::Mount, LossReason::ReadFailed),
    }
}

/// `vfs_get_tree(struct fs_context *fc)` returned: `fc->root` is the new (or reused)
/// superblock's root. Reached only past the mount permission checks, for `mount` and for
/// `fsconfig(FSCONFIG_CMD_CREATE)`; remounts, binds and moves make no tree. Automounts
/// (e.g. tracefs under debugfs) come here too, in the context of the process that walked
/// onto them.
pub fn on_vfs_get_tree(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(1);
    if ret != 0 {
        return;
    }
    let fc: *const u8 = ctx.arg(0);
    // An automount (tracefs under debugfs, an NFS submount) is the kernel's, not the walker's:
    // a submount context, or (vfs_submount, before 6.6) a mount context flagged SB_SUBMOUNT.
    if read_or_zero::<u8>(fc, offset!(fs_context_purpose)) != FS_CONTEXT_FOR_MOUNT
        || read_or_zero::<u32>(fc, offset!(fs_context_sb_flags)) & SB_SUBMOUNT != 0
    {
        return;
    }
    if let Some(actor) = identity::current(EventKind::Mount) {
        report_new_tree(fc, syscall::MOUNT_OR_FSCONFIG, &actor);
    }
}

/// `__do_loopback(struct path *old_path, int recurse)` returned, for `mount --bind` or
/// `open_tree(OPEN_TREE_CLONE)`: reported when the mount to copy belongs to another mount
/// namespace than the caller's (a path reached through `/proc/PID/root` of a host process, or
/// a leaked descriptor). The kernel refuses those (`-EINVAL`): the attempt is reported with
/// its result.
pub fn on_do_loopback(ctx: &FExitContext) {
    let ret: u64 = ctx.arg(2);
    // An ERR_PTR: -MAX_ERRNO..-1; else the copy.
    let result = if ret >= MAX_ERRNO.wrapping_neg() {
        ret as i64 as i32
    } else {
        0
    };
    let old_path: *const u8 = ctx.arg(0);
    let source_ns = task::mount_ns(read_or_zero(old_path, offset!(path_mnt)));
    let own = task::mnt_ns(task::current());
    if source_ns == 0 || own == 0 || source_ns == own {
        return;
    }
    let Some(actor) = identity::current(EventKind::Mount) else {
        return;
    };
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let recurse: i32 = ctx.arg(1);
    let dentry = read_or_zero::<*const u8>(old_path, offset!(path_dentry));
    let sb = read_or_zero::<*const u8>(dentry, offset!(dentry_sb));
    let fs_type = read_or_zero::<*const u8>(sb, offset!(sb_type));
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the strings are read
    // with the kernel-memory helper, which validates them.
    unsafe {
        (*e).header = actor.header(EventKind::Mount);
        (*e).syscall = syscall::BIND;
        (*e).dev = read_or_zero(sb, offset!(sb_dev));
        (*e).flags = MS_BIND | if recurse != 0 { MS_REC } else { 0 };
        (*e).source_mnt_ns = source_ns;
        (*e).result = result;
        kernel_str(
            read_or_zero(fs_type, offset!(file_system_type_name)),
            &mut (*e).fstype,
        );
        kernel_str(read_or_zero(dentry, offset!(dentry_name)), &mut (*e).source);
        (*e).target[0] = 0;
    }
    entry.submit(0);
}

/// `path_mount(const char *dev_name, struct path *path, const char *type_page, unsigned long
/// flags, void *data_page)` returned, for `mount(2)`: only remounts are reported here, which
/// make no new tree (`vfs_get_tree`) and copy no mount (`__do_loopback`). The path is the mount
/// remounted; its superblock's type is the kernel's, whatever the caller passed. The agent
/// judges the flags (a remount without `MS_RDONLY` leaves it writable).
pub fn on_path_mount(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(5);
    let flags: u64 = ctx.arg(3);
    if ret != 0 || flags & MS_REMOUNT == 0 {
        return;
    }
    let Some(actor) = identity::current(EventKind::Mount) else {
        return;
    };
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let path: *const u8 = ctx.arg(1);
    let sb = read_or_zero::<*const u8>(
        read_or_zero::<*const u8>(path, offset!(path_mnt)),
        offset!(vfsmount_sb),
    );
    let fs_type = read_or_zero::<*const u8>(sb, offset!(sb_type));
    let dentry = read_or_zero::<*const u8>(path, offset!(path_dentry));
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the strings are read
    // with the kernel-memory helper, which validates them.
    unsafe {
        (*e).header = actor.header(EventKind::Mount);
        (*e).syscall = syscall::REMOUNT;
        (*e).dev = read_or_zero(sb, offset!(sb_dev));
        (*e).flags = flags;
        (*e).source_mnt_ns = 0;
        (*e).result = 0;
        kernel_str(
            read_or_zero(fs_type, offset!(file_system_type_name)),
            &mut (*e).fstype,
        );
        (*e).source[0] = 0;
        kernel_str(read_or_zero(dentry, offset!(dentry_name)), &mut (*e).target);
    }
    entry.submit(0);
}

const FS_CONTEXT_FOR_MOUNT: u8 = 0;
const SB_SUBMOUNT: u32 = 1 << 26;
const MAX_ERRNO: u64 = 4095;
const MS_REMOUNT: u64 = 0x20;
const MS_BIND: u64 = 0x1000;
const MS_REC: u64 = 0x4000;

/// Reports the filesystem instance a `struct fs_context` holds: the type the kernel chose,
/// the source as the kernel keeps it, the superblock's device.
#[inline(always)]
fn report_new_tree(fc: *const u8, syscall: u32, actor: &Actor) {
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let e = entry.as_mut_ptr();
    let fs_type_name = pointer(fc, offset!(fs_context_fs_type))
        .and_then(|t| pointer(t, offset!(file_system_type_name)))
        .unwrap_or_default();
    let dev = pointer(fc, offset!(fs_context_root))
        .and_then(|root| pointer(root, offset!(dentry_sb)))
        .and_then(|sb| field::<u32>(sb, offset!(sb_dev)))
        .unwrap_or(0);
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the strings are read
    // with the kernel-memory helper, which validates them.
    unsafe {
        (*e).header = actor.header(EventKind::Mount);
        (*e).syscall = syscall;
        (*e).dev = dev;
        (*e).flags = 0;
        (*e).source_mnt_ns = 0;
        (*e).result = 0;
        kernel_str(fs_type_name, &mut (*e).fstype);
        kernel_str(
            pointer(fc, offset!(fs_context_source)).unwrap_or_default(),
            &mut (*e).source,
        );
        (*e).target[0] = 0;
    }
    entry.submit(0);
}
