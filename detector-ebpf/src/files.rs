//! Opens by container processes the kernel reports, each with its reason
//! (`file_open_reason`):
//!
//! - write-opens of files on filesystems that hold kernel settings, identified by superblock
//!   magic and dentry names, so a second procfs mount, a bind mount or a symlink cannot dodge
//!   it;
//! - write-opens of a runtime binary the agent watches, by device and inode, however it is
//!   reached (`/proc/PID/exe`, a bind mount, a leaked descriptor);
//! - write-opens of regular files on a mount outside the opener's mount namespace: the host's
//!   files reached through `/proc/PID/root`, `/proc/PID/exe` or a leaked descriptor;
//! - opens of the devices that expose the host's disks and memory (see `devices`).

use aya_ebpf::programs::{FExitContext, LsmContext, TracePointContext};
use detector_common::{
    EventKind, FMODE_WRITE, FileOpenEvent, LossReason, NAME_DEPTH, WatchedFile, file_open_reason,
    file_type, helper_files::HelperFile, magic::KERNEL_SETTING_FILESYSTEMS, refusal,
};

use crate::{
    config::{enforcing, enforcing_any, lsm_verdict, offset},
    devices,
    emit::{count_loss, reserve},
    identity::{self, Actor},
    kread::{field, kernel_str, pointer, read_or_zero, user_str},
    syscall_record, task,
    watched::watched_as,
};

pub fn on_open_exit(ctx: &TracePointContext) {
    let fd = syscall_record::ret(ctx);
    if fd < 0 {
        return;
    }
    let Some(actor) = identity::current(EventKind::FileOpen) else {
        return;
    };
    // The call returned this descriptor: only a failed read (or another thread closing it at
    // once) leaves no file behind it.
    let Some(file) = fd_file(task::current(), fd as u32) else {
        count_loss(EventKind::FileOpen, LossReason::ReadFailed);
        return;
    };
    let opened = Opened::of(file, fd as i32);
    // After the fact: nothing to refuse any more.
    if opened.f_mode & FMODE_WRITE != 0 {
        inspect_write_open(&opened, &actor, false);
    }
    devices::inspect_open(&opened, &actor);
}

/// `security_file_open(struct file *file)`, as a BPF LSM program (arguments, then the verdict
/// so far). It sees the file before the open completes, so under enforcement it refuses
/// writes to the files that make the kernel run a program on the host, and to runtime binaries.
pub fn on_file_open(ctx: &LsmContext) -> i32 {
    let verdict: i32 = ctx.arg(1);
    if verdict != 0 {
        return verdict;
    }
    // Every open on the host comes here: most are reads of regular files, told apart with one
    // read.
    let file: *const u8 = ctx.arg(0);
    let mode = f_mode(file);
    devices::inspect_file_open(file, mode);
    if mode & FMODE_WRITE == 0 {
        return 0;
    }
    let Some(actor) = identity::current(EventKind::FileOpen) else {
        return 0;
    };
    let may_deny = enforcing_any() && actor.may_be_refused();
    lsm_verdict(inspect_write_open(&Opened::of(file, -1), &actor, may_deny))
}

/// `security_file_open(struct file *file)` returned, as fexit: where trampolines work but BPF
/// LSM is not enabled, the same facts without syscall tracepoints; it cannot refuse.
pub fn on_security_file_open(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(1);
    if ret != 0 {
        return;
    }
    let file: *const u8 = ctx.arg(0);
    let mode = f_mode(file);
    devices::inspect_file_open(file, mode);
    if mode & FMODE_WRITE == 0 {
        return;
    }
    if let Some(actor) = identity::current(EventKind::FileOpen) {
        inspect_write_open(&Opened::of(file, -1), &actor, false);
    }
}

/// The file's `f_mode`; 0 when it cannot be read.
#[inline(always)]
fn f_mode(file: *const u8) -> u32 {
    field::<u32>(file, offset!(file_f_mode)).unwrap_or(0)
}

/// What the programs read of an opened (or created) file. Branch-free reads: a null pointer
/// reads as zeros further down.
pub struct Opened {
    pub dentry: *const u8,
    pub sb: *const u8,
    pub inode: *const u8,
    pub magic: u64,
    /// `file.f_mode`; 0 for a node being created.
    pub f_mode: u32,
    pub i_mode: u32,
    /// The descriptor, when the open has returned one; else -1.
    pub fd: i32,
    /// The file's mount's namespace; 0 when unknown.
    pub mnt_ns: u32,
    /// For a node a syscall tracepoint saw created: the path the caller gave (a user pointer),
    /// which stands for the dentry names; else null.
    pub user_path: *const u8,
}

impl Opened {
    #[inline(always)]
    pub fn of(file: *const u8, fd: i32) -> Opened {
        let mut opened = Opened::of_dentry(read_or_zero(file, offset!(file_dentry)), fd);
        opened.f_mode = read_or_zero(file, offset!(file_f_mode));
        opened.mnt_ns = task::mount_ns(read_or_zero(file, offset!(file_mnt)));
        opened
    }

    #[inline(always)]
    pub fn of_dentry(dentry: *const u8, fd: i32) -> Opened {
        let sb = read_or_zero::<*const u8>(dentry, offset!(dentry_sb));
        let inode = read_or_zero::<*const u8>(dentry, offset!(dentry_inode));
        Opened {
            dentry,
            sb,
            inode,
            magic: read_or_zero(sb, offset!(sb_magic)),
            f_mode: 0,
            i_mode: read_or_zero::<u16>(inode, offset!(inode_mode)) as u32,
            fd,
            mnt_ns: 0,
            user_path: core::ptr::null(),
        }
    }

    #[inline(always)]
    pub fn file_type(&self) -> u32 {
        self.i_mode & file_type::MASK
    }
}

/// Reports a write-open the rules care about; returns true when `may_deny` and the file is one
/// the kernel runs as root or a runtime binary.
#[inline(always)]
fn inspect_write_open(opened: &Opened, actor: &Actor, may_deny: bool) -> bool {
    if KERNEL_SETTING_FILESYSTEMS.contains(&opened.magic) {
        return report(opened, actor, file_open_reason::SETTING, 0, may_deny);
    }
    if opened.file_type() != file_type::REGULAR {
        return false;
    }
    if watched_as(&task::file_id(opened.dentry), WatchedFile::RuntimeBinary) {
        return report(opened, actor, file_open_reason::WATCHED, 0, may_deny);
    }
    let own = task::mnt_ns(task::current());
    if opened.mnt_ns != 0 && own != 0 && opened.mnt_ns != own {
        report(opened, actor, file_open_reason::FOREIGN_MOUNT, 0, false);
    }
    false
}

/// Sends the event; returns true when `may_deny` and the act is one to refuse: a write to a
/// helper file or a runtime binary, whose rule is enforced.
#[inline(always)]
pub fn report(opened: &Opened, actor: &Actor, reason: u32, rdev: u32, may_deny: bool) -> bool {
    let refusable =
        may_deny && (reason == file_open_reason::SETTING || reason == file_open_reason::WATCHED);
    let Some(mut entry) = reserve::<FileOpenEvent>(EventKind::FileOpen) else {
        return refusable && refused(reason, || helper_file(opened.magic, opened.dentry));
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned FileOpenEvent.
    unsafe {
        (*e).header = actor.header(EventKind::FileOpen);
        (*e).f_mode = opened.f_mode;
        (*e).i_mode = opened.i_mode;
        (*e).dev = read_or_zero(opened.sb, offset!(sb_dev));
        (*e).fd = opened.fd;
        (*e).magic = opened.magic;
        (*e).ino = read_or_zero(opened.inode, offset!(inode_ino));
        (*e).reason = reason;
        (*e).rdev = rdev;
        (*e).mnt_ns = opened.mnt_ns;
        let names = &mut (*e).names;
        if opened.user_path.is_null() {
            write_names(opened.dentry, names);
        } else {
            user_str(opened.user_path, &mut names[0]);
            for name in names[1..].iter_mut() {
                name[0] = 0;
            }
        }
    }
    // SAFETY: the names were just written into the exclusively owned record.
    let deny = refusable && refused(reason, || unsafe { helper(opened.magic, &(*e).names) });
    // SAFETY: as above.
    unsafe { (*e).denied = u32::from(deny) };
    entry.submit(0);
    deny
}

/// Whether a refusable write-open for `reason` is refused: its rule's enforcement is on (for a
/// setting, the rule of the helper file `helper` names; a setting that is no helper file is
/// never refused).
#[inline(always)]
fn refused(reason: u32, helper: impl FnOnce() -> Option<HelperFile>) -> bool {
    if reason == file_open_reason::WATCHED {
        enforcing(refusal::RUNTIME_BINARY)
    } else {
        helper().is_some_and(|file| enforcing(file.refusal()))
    }
}

/// Decided from the names already copied into the event.
#[inline(always)]
fn helper(magic: u64, names: &[[u8; detector_common::NAME_LEN]; NAME_DEPTH]) -> Option<HelperFile> {
    HelperFile::identify(magic, &names[0], &names[1])
}

/// When no event could be made, the file's own name and its parent's are read here; both
/// fit small stack buffers.
#[inline(always)]
fn helper_file(magic: u64, dentry: *const u8) -> Option<HelperFile> {
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
    HelperFile::identify(magic, &name, &parent)
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
