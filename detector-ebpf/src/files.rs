//! Write-opens by container processes of files on filesystems that hold kernel settings.
//! The file is identified by its superblock magic and dentry names, read from the opened
//! `struct file`, so a second procfs mount, a bind mount or a symlink cannot dodge it.

use aya_ebpf::programs::{FExitContext, LsmContext, TracePointContext};
use detector_common::{
    EventKind, FMODE_WRITE, FileOpenEvent, NAME_DEPTH, helper_files::HelperFile,
    magic::KERNEL_SETTING_FILESYSTEMS,
};

use crate::{
    config::{enforcing, lsm_verdict, offset},
    emit::reserve,
    identity::{self, Actor},
    kread::{field, kernel_str, pointer},
    syscall_record, task,
};

pub fn on_open_exit(ctx: &TracePointContext) {
    let fd = syscall_record::ret(ctx);
    if fd < 0 {
        return;
    }
    let Some(actor) = identity::current() else {
        return;
    };
    if let Some(file) = fd_file(task::current(), fd as u32)
        && let Some(f_mode) = write_mode(file)
    {
        // After the fact: nothing to refuse any more.
        inspect_write_open(file, f_mode, fd as i32, &actor, false);
    }
}

/// `security_file_open(struct file *file)`, as a BPF LSM program (arguments, then the verdict
/// so far). It sees the file before the open completes, so under enforcement it refuses
/// writes to the files that make the kernel run a program on the host.
pub fn on_file_open(ctx: &LsmContext) -> i32 {
    let verdict: i32 = ctx.arg(1);
    if verdict != 0 {
        return verdict;
    }
    // Every open on the host comes here: most are reads, told apart with one read.
    let file: *const u8 = ctx.arg(0);
    let Some(f_mode) = write_mode(file) else {
        return 0;
    };
    let Some(actor) = identity::current() else {
        return 0;
    };
    let may_deny = enforcing() && actor.may_be_refused();
    lsm_verdict(inspect_write_open(file, f_mode, -1, &actor, may_deny))
}

/// `security_file_open(struct file *file)` returned, as fexit: where trampolines work but BPF
/// LSM is not enabled, the same facts without syscall tracepoints; it cannot refuse.
pub fn on_security_file_open(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(1);
    if ret != 0 {
        return;
    }
    let file: *const u8 = ctx.arg(0);
    let Some(f_mode) = write_mode(file) else {
        return;
    };
    if let Some(actor) = identity::current() {
        inspect_write_open(file, f_mode, -1, &actor, false);
    }
}

/// The file's `f_mode` when it is open for writing.
#[inline(always)]
fn write_mode(file: *const u8) -> Option<u32> {
    field::<u32>(file, offset!(file_f_mode)).filter(|mode| mode & FMODE_WRITE != 0)
}

/// Reports a write-open of a kernel-setting file; returns true when `may_deny` and the file is
/// one whose content the kernel runs as root.
#[inline(always)]
fn inspect_write_open(
    file: *const u8,
    f_mode: u32,
    fd: i32,
    actor: &Actor,
    may_deny: bool,
) -> bool {
    let Some(dentry) = pointer(file, offset!(file_dentry)) else {
        return false;
    };
    let Some(sb) = pointer(dentry, offset!(dentry_sb)) else {
        return false;
    };
    let magic = field::<u64>(sb, offset!(sb_magic)).unwrap_or(0);
    if !KERNEL_SETTING_FILESYSTEMS.contains(&magic) {
        return false;
    }
    let Some(mut entry) = reserve::<FileOpenEvent>(EventKind::FileOpen) else {
        return may_deny && is_helper_file(magic, dentry);
    };
    let e = entry.as_mut_ptr();
    let inode = pointer(dentry, offset!(dentry_inode));
    // SAFETY: `e` points at a reserved, exclusively owned FileOpenEvent.
    unsafe {
        (*e).header = actor.header(EventKind::FileOpen);
        (*e).f_mode = f_mode;
        (*e).i_mode = inode
            .and_then(|i| field::<u16>(i, offset!(inode_mode)))
            .unwrap_or(0) as u32;
        (*e).dev = field::<u32>(sb, offset!(sb_dev)).unwrap_or(0);
        (*e).fd = fd;
        (*e).magic = magic;
        (*e).ino = inode
            .and_then(|i| field::<u64>(i, offset!(inode_ino)))
            .unwrap_or_default();
        (*e)._pad = 0;
        write_names(dentry, &mut (*e).names);
    }
    // SAFETY: the names were just written into the exclusively owned record.
    let deny = may_deny && unsafe { is_helper(magic, &(*e).names) };
    // SAFETY: as above.
    unsafe { (*e).denied = u32::from(deny) };
    entry.submit(0);
    deny
}

/// Decided from the names already copied into the event.
#[inline(always)]
fn is_helper(magic: u64, names: &[[u8; detector_common::NAME_LEN]; NAME_DEPTH]) -> bool {
    HelperFile::identify(magic, &names[0], &names[1]).is_some()
}

/// When no event could be made, the file's own name and its parent's are read here; both
/// fit small stack buffers.
#[inline(always)]
fn is_helper_file(magic: u64, dentry: *const u8) -> bool {
    let mut name = [0u8; 24];
    let mut parent = [0u8; 8];
    kernel_str(
        pointer(dentry, offset!(dentry_name)).unwrap_or_default(),
        &mut name,
    );
    if let Some(up) = pointer(dentry, offset!(dentry_parent)) {
        kernel_str(
            pointer(up, offset!(dentry_name)).unwrap_or_default(),
            &mut parent,
        );
    }
    HelperFile::identify(magic, &name, &parent).is_some()
}

/// The `struct file` behind descriptor `fd` of `task`: `task->files->fdt->fd[fd]`.
#[inline(always)]
pub fn fd_file(task: *const u8, fd: u32) -> Option<*const u8> {
    let files = pointer(task, offset!(task_files))?;
    let fdt = pointer(files, offset!(files_fdt))?;
    let max_fds = field::<u32>(fdt, offset!(fdtable_max_fds))?;
    if fd >= max_fds {
        return None;
    }
    let fd_array = pointer(fdt, offset!(fdtable_fd))?;
    pointer(fd_array, fd * 8)
}

/// The `private_data` of the file behind the current task's descriptor `fd` (a socket, a
/// filesystem context, ...).
#[inline(always)]
pub fn fd_private_data(fd: u32) -> Option<*const u8> {
    fd_file(task::current(), fd).and_then(|file| pointer(file, offset!(file_private_data)))
}

/// The name of the file's dentry, a kernel string.
#[inline(always)]
pub fn file_name(file: *const u8) -> *const u8 {
    pointer(file, offset!(file_dentry))
        .and_then(|dentry| pointer(dentry, offset!(dentry_name)))
        .unwrap_or_default()
}

/// The dentry's own name, then its ancestors', up to the filesystem root.
#[inline(always)]
fn write_names(mut dentry: *const u8, names: &mut [[u8; detector_common::NAME_LEN]; NAME_DEPTH]) {
    let mut reached_root = false;
    for name in names.iter_mut() {
        if reached_root {
            name[0] = 0;
            continue;
        }
        let src = pointer(dentry, offset!(dentry_name)).unwrap_or_default();
        kernel_str(src, name);
        match pointer(dentry, offset!(dentry_parent)) {
            // The root dentry is its own parent.
            Some(parent) if parent != dentry => dentry = parent,
            _ => reached_root = true,
        }
    }
}
