//! Acts that are one system call each: the calls no busybox applet makes.

use std::{
    ffi::{CString, c_void},
    fs, io, mem,
    net::TcpStream,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixStream},
    },
    ptr,
    time::{Duration, Instant},
};

use libc::pid_t;

use crate::Failure;

// From include/uapi/linux/mount.h: the new mount API's constants.
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const OPEN_TREE_CLONE: libc::c_uint = 1;

// From include/uapi/linux/bpf.h: the libc crate does not cover bpf().
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// (GET_NEXT_ID, GET_FD_BY_ID) of programs, maps and links.
const BPF_WALKS: [(&str, libc::c_int, libc::c_int); 3] =
    [("programs", 11, 13), ("maps", 12, 14), ("links", 31, 30)];

/// `bpf_attr` for the GET_NEXT_ID and GET_FD_BY_ID commands: the id in, the next id out.
#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The leading fields of `union bpf_attr` for BPF_MAP_CREATE; given a shorter size, the kernel
/// takes the rest of the union as zero.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

/// A C string of an argument; arguments come from `env::args`, which cannot hold a NUL, but a
/// caller might build one.
pub fn c_string(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|e| Failure::new(s, e))
}

pub fn bpf() -> Result<String, Failure> {
    raise_memlock_limit();
    let attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
    };
    // SAFETY: attr is a bpf_attr prefix of the size passed and outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &raw const attr,
            mem::size_of::<MapCreateAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Failure::os("bpf(BPF_MAP_CREATE)"));
    }
    // SAFETY: the kernel has just handed us this descriptor and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    Ok(format!("bpf: created an array map (fd {fd}) and closed it"))
}

/// What libbpf does before it creates maps. Kernels before 5.11 charge a map to the creating
/// user's locked memory under RLIMIT_MEMLOCK, 64 KiB by default there; the user is root, whose
/// account also holds the detector's maps, so the map would be refused with EPERM. Best effort:
/// without CAP_SYS_RESOURCE the limit stays, and later kernels ignore it anyway.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit the call only reads.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

/// What `bpftool prog|map|link list` does: every object's id, then a descriptor of each.
pub fn bpf_walk() -> Result<String, Failure> {
    let mut counts = Vec::new();
    for (kind, next_id, fd_by_id) in BPF_WALKS {
        let mut held = 0;
        let mut id = 0;
        loop {
            let mut attr = IdAttr {
                id,
                ..IdAttr::default()
            };
            if bpf_call(next_id, &mut attr) < 0 {
                break;
            }
            id = attr.next_id;
            let mut by_id = IdAttr {
                id,
                ..IdAttr::default()
            };
            let fd = bpf_call(fd_by_id, &mut by_id);
            if fd >= 0 {
                // SAFETY: the kernel has just handed us this descriptor.
                drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
                held += 1;
            }
        }
        counts.push(format!("{held} {kind}"));
    }
    Ok(format!("bpf-walk: took and closed {}", counts.join(", ")))
}

fn bpf_call(cmd: libc::c_int, attr: &mut IdAttr) -> libc::c_long {
    // SAFETY: attr is a bpf_attr prefix of the size passed and outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut IdAttr,
            mem::size_of::<IdAttr>() as libc::c_uint,
        )
    }
}

pub fn pidfd_getfd(pid: pid_t, fd: libc::c_int) -> Result<String, Failure> {
    // SAFETY: plain system calls; the descriptors returned are owned below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(Failure::os(format!("pidfd_open({pid})")));
    }
    // SAFETY: the kernel has just handed us this descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: as above.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(Failure::os(format!("pidfd_getfd({pid}, {fd})")));
    }
    // SAFETY: as above.
    drop(unsafe { OwnedFd::from_raw_fd(copy as RawFd) });
    Ok(format!("pidfd-getfd: copied descriptor {fd} of PID {pid}"))
}

pub fn signal(pid: pid_t, signal: libc::c_int) -> Result<String, Failure> {
    // SAFETY: a plain system call.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(Failure::os(format!("kill({pid}, {signal})")));
    }
    Ok(format!("signal: sent signal {signal} to PID {pid}"))
}

pub fn ptrace(pid: pid_t) -> Result<String, Failure> {
    let no_arg = ptr::null_mut::<c_void>();
    // SAFETY: PTRACE_ATTACH reads neither addr nor data.
    if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, no_arg, no_arg) } < 0 {
        return Err(Failure::os(format!("ptrace(PTRACE_ATTACH, {pid})")));
    }
    // An early return below leaves the tracee attached; the kernel detaches it when we exit.
    // The attach's SIGSTOP may come after another stop: a tracee caught in execve gets a
    // SIGTRAP when the exec completes, which is dequeued first. Detached then, the SIGSTOP
    // still pending stopped the tracee for good, and whatever waited for it hung.
    loop {
        let mut status = 0;
        // __WALL: the tracee may be a thread or a clone child that does not report with
        // SIGCHLD.
        // SAFETY: status is a valid place for waitpid to write to.
        if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0 {
            return Err(Failure::os(format!("waitpid({pid})")));
        }
        if !libc::WIFSTOPPED(status) {
            return Err(Failure::new(
                format!("waitpid({pid})"),
                format!("status {status:#x} is no stop"),
            ));
        }
        let signal = libc::WSTOPSIG(status);
        if signal == libc::SIGSTOP {
            break;
        }
        // The exec's SIGTRAP is ptrace's own; any other signal goes on to the tracee.
        let pass_on = if signal == libc::SIGTRAP { 0 } else { signal };
        // SAFETY: PTRACE_CONT reads no addr; data is the signal to deliver.
        if unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                no_arg,
                pass_on as usize as *mut c_void,
            )
        } < 0
        {
            return Err(Failure::os(format!("ptrace(PTRACE_CONT, {pid})")));
        }
    }
    // SAFETY: PTRACE_DETACH reads no addr, and data 0 resumes the tracee without a signal.
    if unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, no_arg, no_arg) } < 0 {
        return Err(Failure::os(format!("ptrace(PTRACE_DETACH, {pid})")));
    }
    Ok(format!(
        "ptrace: attached to PID {pid}, saw it stop, detached"
    ))
}

pub fn vm_read(pid: pid_t) -> Result<String, Failure> {
    let maps_path = format!("/proc/{pid}/maps");
    let maps = fs::read_to_string(&maps_path)
        .map_err(|error| Failure::new(format!("reading {maps_path}"), error))?;
    let address =
        first_readable(&maps).ok_or_else(|| Failure::new(&maps_path, "no readable mapping"))?;
    let mut bytes = [0_u8; 8];
    let local = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: bytes.len(),
    };
    // Only the kernel dereferences it, in the other process: no provenance of ours.
    let remote = libc::iovec {
        iov_base: ptr::without_provenance_mut(address),
        iov_len: bytes.len(),
    };
    let what = format!("process_vm_readv({pid}, {address:#x})");
    // SAFETY: local describes our own buffer, writable for its whole length; the kernel checks
    // remote against the other process's mappings.
    let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if read < 0 {
        return Err(Failure::os(what));
    }
    if read.unsigned_abs() != bytes.len() {
        return Err(Failure::new(
            what,
            format!("read {read} of {} bytes", bytes.len()),
        ));
    }
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "vm-read: read {} bytes of PID {pid} at {address:#x}: {hex}",
        bytes.len()
    ))
}

/// The start of the first mapping with `r` in its permissions, from /proc/PID/maps lines such
/// as `55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234 /bin/busybox`.
pub fn first_readable(maps: &str) -> Option<usize> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, _) = fields.next()?.split_once('-')?;
        if !fields.next()?.starts_with('r') {
            return None;
        }
        usize::from_str_radix(start, 16).ok()
    })
}

/// Connects to the unix socket at `path`, to the abstract one named `@name`, or over TCP to
/// `tcp://ADDRESS:PORT`.
pub fn connect(path: &str) -> Result<String, Failure> {
    let connected = if let Some(address) = path.strip_prefix("tcp://") {
        TcpStream::connect(address).map(drop)
    } else if let Some(name) = path.strip_prefix('@') {
        SocketAddr::from_abstract_name(name)
            .and_then(|address| UnixStream::connect_addr(&address))
            .map(drop)
    } else {
        UnixStream::connect(path).map(drop)
    };
    connected.map_err(|error| Failure::new(format!("connect({path})"), error))?;
    Ok(format!(
        "connect: connected to {path} and closed the socket"
    ))
}

/// `open_tree(OPEN_TREE_CLONE)` of `source`, attached at `dir` with `move_mount`: a bind by the
/// new mount API.
pub fn bind_tree(source: &str, dir: &str) -> Result<String, Failure> {
    let source_c = c_string(source)?;
    // SAFETY: a NUL-terminated path and flags.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source_c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(Failure::os(format!("open_tree({source}, OPEN_TREE_CLONE)")));
    }
    // SAFETY: the kernel has just handed us this descriptor and nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    attach(&tree, dir)?;
    Ok(format!("bind-tree: attached a clone of {source} at {dir}"))
}

/// `move_mount` of a detached mount (an `fsmount` or `open_tree` descriptor) onto `dir`.
fn attach(mount: &OwnedFd, dir: &str) -> Result<(), Failure> {
    let (dir_c, empty) = (c_string(dir)?, c_string("")?);
    // SAFETY: NUL-terminated paths that outlive the call; the empty one names the descriptor.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            dir_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        return Err(Failure::os(format!("move_mount(.., {dir})")));
    }
    Ok(())
}

/// Mounts a new `fstype` filesystem at `dir` with the new mount API (fsopen, fsconfig,
/// fsmount, move_mount): no mount(2) call anywhere.
pub fn fsmount(fstype: &str, dir: &str) -> Result<String, Failure> {
    let (fstype_c, source) = (c_string(fstype)?, c_string("source")?);
    // SAFETY: a NUL-terminated name and no flags.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype_c.as_ptr(), 0) };
    if fs < 0 {
        return Err(Failure::os(format!("fsopen({fstype})")));
    }
    // SAFETY: the kernel has just handed us this descriptor and nothing else owns it.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let fs_fd = fs.as_raw_fd();
    // SAFETY: key and value are NUL-terminated strings that outlive the call.
    let set = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd,
            FSCONFIG_SET_STRING,
            source.as_ptr(),
            fstype_c.as_ptr(),
            0,
        )
    };
    if set < 0 {
        return Err(Failure::os("fsconfig(FSCONFIG_SET_STRING source)"));
    }
    // SAFETY: CMD_CREATE takes no key or value.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd,
            FSCONFIG_CMD_CREATE,
            ptr::null::<libc::c_char>(),
            ptr::null::<c_void>(),
            0,
        )
    };
    if created < 0 {
        return Err(Failure::os("fsconfig(FSCONFIG_CMD_CREATE)"));
    }
    // SAFETY: a filesystem-context descriptor and no flags.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs_fd, 0, 0) };
    if mnt < 0 {
        return Err(Failure::os("fsmount"));
    }
    // SAFETY: as for fsopen.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt as RawFd) };
    attach(&mnt, dir)?;
    Ok(format!("fsmount: mounted a new {fstype} at {dir}"))
}

/// Mounts a new `fstype` filesystem at `dir` with mount(2).
pub fn mount(fstype: &str, dir: &str) -> Result<String, Failure> {
    let (fstype_c, dir_c) = (c_string(fstype)?, c_string(dir)?);
    // SAFETY: NUL-terminated strings that outlive the call, no flags and no data.
    let mounted = unsafe {
        libc::mount(
            fstype_c.as_ptr(),
            dir_c.as_ptr(),
            fstype_c.as_ptr(),
            0,
            ptr::null(),
        )
    };
    if mounted < 0 {
        return Err(Failure::os(format!("mount({fstype}, {dir})")));
    }
    Ok(format!("mount: mounted a new {fstype} at {dir}"))
}

/// Opens `path` for writing and writes `value` and a newline: one open, one write.
pub fn write(path: &str, value: &str) -> Result<String, Failure> {
    fs::write(path, format!("{value}\n"))
        .map_err(|error| Failure::new(format!("writing {path}"), error))?;
    Ok(format!("write: wrote {value:?} to {path}"))
}

pub fn open(path: &str, write: bool) -> Result<String, Failure> {
    let flags = if write {
        libc::O_WRONLY
    } else {
        libc::O_RDONLY
    };
    drop(open_fd(path, flags).map_err(|e| Failure::new(format!("open({path})"), e))?);
    let how = if write { "writing" } else { "reading" };
    Ok(format!("open: opened {path} for {how} and closed it"))
}

/// How long [`exe_overwrite`] waits for the process to exit.
const EXE_OVERWRITE_PATIENCE: Duration = Duration::from_secs(20);

pub fn exe_overwrite(pid: pid_t) -> Result<String, Failure> {
    let exe = format!("/proc/{pid}/exe");
    let kept = open_fd(&exe, libc::O_PATH).map_err(|e| Failure::new(format!("open({exe})"), e))?;
    let reopen = format!("/proc/self/fd/{}", kept.as_raw_fd());
    let deadline = Instant::now() + EXE_OVERWRITE_PATIENCE;
    loop {
        match open_fd(&reopen, libc::O_WRONLY) {
            Ok(fd) => {
                drop(fd);
                return Ok(format!(
                    "exe-overwrite: opened the program {exe} ran for writing once it exited"
                ));
            }
            // The program still runs: the kernel refuses writes to it until it exits.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(Failure::new(format!("open({reopen})"), e)),
        }
    }
}

/// `MAX_HANDLE_SZ`: the largest handle any filesystem makes.
const MAX_HANDLE_BYTES: usize = 128;

/// `struct file_handle` with room for any handle.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_HANDLE_BYTES],
}

pub fn open_by_handle(path: &str) -> Result<String, Failure> {
    let c_path = c_string(path)?;
    let mut handle = FileHandle {
        handle_bytes: MAX_HANDLE_BYTES as u32,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_BYTES],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: a NUL-terminated path, a handle buffer as large as it says, a place for the id.
    let named = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &raw mut handle,
            &raw mut mount_id,
            0,
        )
    };
    if named < 0 {
        return Err(Failure::os(format!("name_to_handle_at({path})")));
    }
    let root =
        open_fd("/", libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| Failure::new("open(/)", e))?;
    // SAFETY: the handle the kernel just filled in; flags without O_CREAT.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            root.as_raw_fd(),
            &raw mut handle,
            libc::O_RDONLY,
        )
    };
    if fd < 0 {
        return Err(Failure::os(format!("open_by_handle_at({path})")));
    }
    // SAFETY: the kernel has just handed us this descriptor.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    Ok(format!("open-by-handle: opened {path} by its handle"))
}

fn open_fd(path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c_path = CString::new(path).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path; no mode is read without O_CREAT.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel has just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads the kernel module in `path` with finit_module(2).
pub fn load_module(path: &str) -> Result<String, Failure> {
    let file =
        fs::File::open(path).map_err(|error| Failure::new(format!("opening {path}"), error))?;
    let params = c_string("")?;
    // SAFETY: a descriptor we own, an empty NUL-terminated parameter string, no flags.
    let loaded =
        unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if loaded < 0 {
        return Err(Failure::os(format!("finit_module({path})")));
    }
    Ok(format!("load-module: loaded {path}"))
}
