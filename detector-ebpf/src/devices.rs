//! The devices that expose the host's disks and memory, opened or created by container
//! processes: block device nodes, `/dev/mem`, `/dev/kmem`, `/dev/port`, `/proc/kcore`. Known by
//! the kernel's own objects (the inode's type and device number, the function that opens it),
//! never by the node's name, which a container chooses at `mknod`.

use aya_ebpf::programs::{FEntryContext, TracePointContext};
use detector_common::{
    EventKind, FMODE_ATOMIC_POS, MEMORY_DEVICES, file_open_reason, file_type, kdev, magic,
};

use crate::{
    config::offset,
    files::{self, Opened},
    identity::{self, Actor},
    kread::{kernel_str, read_or_zero},
    maps::MKNOD_PENDING,
    syscall_record,
};

/// A `mknod` call's path (a user pointer) and node, from entry to exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingMknod {
    pub path: u64,
    pub mode: u32,
    /// Kernel encoding.
    pub rdev: u32,
}

/// `blkdev_open(struct inode *inode, struct file *filp)`: every open of a block device.
pub fn on_blkdev_open(ctx: &FEntryContext) {
    let inode: *const u8 = ctx.arg(0);
    if let Some(actor) = identity::current(EventKind::FileOpen) {
        report_open(ctx.arg(1), inode, &actor, file_open_reason::DEVICE);
    }
}

/// A file `security_file_open` let open (with its `f_mode`), for the memory devices: every
/// open passes there. A regular file or directory carries `FMODE_ATOMIC_POS` by then, so the
/// ordinary opens cost nothing more, and other character devices (`/dev/null`, ttys) three reads
/// instead of a hook of their own: an fentry on `chrdev_open` cost each of them a trampoline and
/// a run.
#[inline(always)]
pub fn inspect_file_open(file: *const u8, f_mode: u32) {
    if f_mode & FMODE_ATOMIC_POS != 0 {
        return;
    }
    let inode = read_or_zero::<*const u8>(
        read_or_zero::<*const u8>(file, offset!(file_dentry)),
        offset!(dentry_inode),
    );
    let mode = read_or_zero::<u16>(inode, offset!(inode_mode)) as u32;
    if mode & file_type::MASK != file_type::CHAR
        || !MEMORY_DEVICES.contains(&read_or_zero(inode, offset!(inode_rdev)))
    {
        return;
    }
    if let Some(actor) = identity::current(EventKind::FileOpen) {
        report_open(file, inode, &actor, file_open_reason::DEVICE);
    }
}

/// `open_kcore(struct inode *inode, struct file *filp)`.
pub fn on_open_kcore(ctx: &FEntryContext) {
    if let Some(actor) = identity::current(EventKind::FileOpen) {
        report_open(ctx.arg(1), ctx.arg(0), &actor, file_open_reason::KCORE);
    }
}

#[inline(always)]
fn report_open(file: *const u8, inode: *const u8, actor: &Actor, reason: u32) {
    let opened = Opened::of(file, -1);
    files::report(
        &opened,
        actor,
        reason,
        read_or_zero(inode, offset!(inode_rdev)),
        false,
    );
}

/// The tracepoint fallback, after an open by a container process returned: the same facts
/// from the opened file.
#[inline(always)]
pub fn inspect_open(opened: &Opened, actor: &Actor) {
    let rdev = read_or_zero::<u32>(opened.inode, offset!(inode_rdev));
    let reason = match opened.file_type() {
        file_type::BLOCK => file_open_reason::DEVICE,
        file_type::CHAR if MEMORY_DEVICES.contains(&rdev) => file_open_reason::DEVICE,
        file_type::REGULAR if is_kcore(opened) => file_open_reason::KCORE,
        _ => return,
    };
    files::report(opened, actor, reason, rdev, false);
}

/// `kcore` at the root of a procfs.
#[inline(always)]
fn is_kcore(opened: &Opened) -> bool {
    if opened.magic != magic::PROC_SUPER_MAGIC {
        return false;
    }
    let parent = read_or_zero::<*const u8>(opened.dentry, offset!(dentry_parent));
    let at_root = read_or_zero::<*const u8>(parent, offset!(dentry_parent)) == parent;
    let mut name = [0u8; 8];
    kernel_str(read_or_zero(opened.dentry, offset!(dentry_name)), &mut name);
    at_root && name[..6] == *b"kcore\0"
}

/// `security_inode_mknod(struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev)`:
/// a node about to be created, once the device cgroup allowed it.
pub fn on_inode_mknod(ctx: &FEntryContext) {
    let mode = ctx.arg::<u64>(2) as u32 & 0xffff;
    if mode & file_type::MASK != file_type::BLOCK {
        return;
    }
    let Some(actor) = identity::current(EventKind::FileOpen) else {
        return;
    };
    let mut opened = Opened::of_dentry(ctx.arg(1), -1);
    opened.i_mode = mode;
    files::report(
        &opened,
        &actor,
        file_open_reason::MKNOD,
        ctx.arg::<u64>(3) as u32,
        false,
    );
}

pub fn on_mknodat_enter(ctx: &TracePointContext) {
    // mknodat(dfd, filename, mode, dev)
    keep_mknod(ctx, 1);
}

pub fn on_mknod_enter(ctx: &TracePointContext) {
    // mknod(filename, mode, dev)
    keep_mknod(ctx, 0);
}

#[inline(always)]
fn keep_mknod(ctx: &TracePointContext, path_arg: usize) {
    let arg = |n| syscall_record::arg(ctx, n).unwrap_or(0);
    let mode = arg(path_arg + 1) as u32;
    if mode & file_type::MASK != file_type::BLOCK {
        return;
    }
    syscall_record::keep(&MKNOD_PENDING, EventKind::FileOpen, || PendingMknod {
        path: arg(path_arg),
        mode,
        rdev: kdev::from_user(arg(path_arg + 2) as u32),
    });
}

/// A block device node was made: the path as the caller gave it stands for the dentry names.
pub fn on_mknod_exit(ctx: &TracePointContext) {
    let Some((pending, actor)) = syscall_record::take(&MKNOD_PENDING, EventKind::FileOpen) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    let mut opened = Opened::of_dentry(core::ptr::null(), -1);
    opened.i_mode = pending.mode;
    opened.user_path = pending.path as *const u8;
    files::report(
        &opened,
        &actor,
        file_open_reason::MKNOD,
        pending.rdev,
        false,
    );
}
