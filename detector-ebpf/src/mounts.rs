//! New filesystem instances made by container processes. The agent judges the filesystem
//! type and flags; the kernel only keeps uninteresting processes out. With fexit the kernel's
//! own objects speak (the filesystem type the kernel chose, the superblock's device) for
//! `mount` and the new mount API alike; syscall tracepoints read `mount`'s arguments.

use aya_ebpf::programs::{FExitContext, TracePointContext};
use detector_common::{EventKind, MountEvent, syscall};

use crate::{
    config::offset,
    emit::{current_ids, header, reserve},
    files::fd_file,
    kread::{field, kernel_str, pointer, user_str},
    maps::{FD_PENDING, MOUNT_PENDING, container_mark},
    task,
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

/// `mount(dev_name, dir_name, type, flags, data)`: argument slots of the tracepoint record.
const ARG_SOURCE: usize = 16;
const ARG_TARGET: usize = 24;
const ARG_FSTYPE: usize = 32;
const ARG_FLAGS: usize = 40;
const RET: usize = 16;

pub fn on_mount_enter(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return;
    }
    // SAFETY: slots of the syscall tracepoint ABI.
    let arg = |off| unsafe { ctx.read_at::<u64>(off) }.unwrap_or(0);
    let pending = PendingMount {
        source: arg(ARG_SOURCE),
        target: arg(ARG_TARGET),
        fstype: arg(ARG_FSTYPE),
        flags: arg(ARG_FLAGS),
    };
    let _ = MOUNT_PENDING.insert(tid, pending, 0);
}

pub fn on_mount_exit(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    // SAFETY: plain-data copy out of the map.
    let Some(pending) = (unsafe { MOUNT_PENDING.get(tid) }).copied() else {
        return;
    };
    let _ = MOUNT_PENDING.remove(tid);
    // SAFETY: `ret` is the first slot of a sys_exit record.
    let ret = unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(-1);
    if ret != 0 {
        return;
    }
    let Some(mut entry) = reserve::<MountEvent>(EventKind::Mount) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned MountEvent; the user pointers are
    // read with the user-memory helper, which validates them.
    unsafe {
        (*e).header = header(EventKind::Mount, tgid, tid);
        (*e).syscall = syscall::MOUNT;
        (*e).ret = ret as i32;
        (*e).flags = pending.flags;
        (*e).dev = 0;
        (*e)._pad = 0;
        user_str(pending.fstype as *const u8, &mut (*e).fstype);
        user_str(pending.source as *const u8, &mut (*e).source);
        user_str(pending.target as *const u8, &mut (*e).target);
    }
    entry.submit(0);
}

/// `fsconfig(fd, cmd, key, value, aux)`: argument slots of the tracepoint record.
const ARG_FSCONFIG_FD: usize = 16;
const ARG_FSCONFIG_CMD: usize = 24;
/// The `fsconfig` command that makes the filesystem instance (include/uapi/linux/mount.h).
const FSCONFIG_CMD_CREATE: u64 = 6;

pub fn on_fsconfig_enter(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return;
    }
    // SAFETY: slots of the syscall tracepoint ABI.
    let (fd, cmd) = unsafe {
        (
            ctx.read_at::<u64>(ARG_FSCONFIG_FD),
            ctx.read_at::<u64>(ARG_FSCONFIG_CMD),
        )
    };
    if cmd != Ok(FSCONFIG_CMD_CREATE) {
        return;
    }
    let _ = FD_PENDING.insert(tid, fd.unwrap_or(u64::MAX) as u32, 0);
}

/// The new mount API made a filesystem instance: the descriptor is a filesystem context.
pub fn on_fsconfig_exit(ctx: &TracePointContext) {
    let (tgid, tid) = current_ids();
    // SAFETY: plain-data copy out of the map.
    let Some(fd) = (unsafe { FD_PENDING.get(tid) }).copied() else {
        return;
    };
    let _ = FD_PENDING.remove(tid);
    // SAFETY: `ret` is the first slot of a sys_exit record.
    if unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(-1) != 0 {
        return;
    }
    if let Some(fc) =
        fd_file(task::current(), fd).and_then(|file| pointer(file, offset!(file_private_data)))
    {
        report_new_tree(fc, syscall::FSCONFIG, tgid, tid);
    }
}

/// `vfs_get_tree(struct fs_context *fc)` returned: `fc->root` is the new (or reused)
/// superblock's root. Reached only past the mount permission checks, for `mount` and for
/// `fsconfig(FSCONFIG_CMD_CREATE)`; remounts, binds and moves make no tree.
pub fn on_vfs_get_tree(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(1);
    if ret != 0 {
        return;
    }
    let (tgid, tid) = current_ids();
    if container_mark(tgid).is_none() {
        return;
    }
    report_new_tree(ctx.arg(0), syscall::MOUNT_OR_FSCONFIG, tgid, tid);
}

/// Reports the filesystem instance a `struct fs_context` holds: the type the kernel chose,
/// the source as the kernel keeps it, the superblock's device.
#[inline(always)]
fn report_new_tree(fc: *const u8, syscall: u32, tgid: u32, tid: u32) {
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
        (*e).header = header(EventKind::Mount, tgid, tid);
        (*e).syscall = syscall;
        (*e).ret = 0;
        (*e).flags = 0;
        (*e).dev = dev;
        (*e)._pad = 0;
        kernel_str(fs_type_name, &mut (*e).fstype);
        kernel_str(
            pointer(fc, offset!(fs_context_source)).unwrap_or_default(),
            &mut (*e).source,
        );
        (*e).target[0] = 0;
    }
    entry.submit(0);
}
