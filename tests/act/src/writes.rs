//! `write-via`: one write to an existing file by each road the kernel offers to it, so that a
//! test can show the detector every one: the system call that opens it (`openat`, `openat2`,
//! `open`, `creat`), the one that writes (`write`, `pwrite`, `writev`), and who holds the
//! descriptor when it writes (the opener; the opener after it dropped root; another process it
//! was passed to over a unix socket).

use std::{
    ffi::CString,
    io, mem,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    ptr,
};

use crate::{Failure, calls::c_string};

/// The system call that opens the file for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenCall {
    Openat,
    Openat2,
    Open,
    /// `creat(2)`: open with `O_CREAT | O_WRONLY | O_TRUNC`, under a syscall number of its own.
    Creat,
}

/// The system call that writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCall {
    Write,
    Pwrite,
    /// The value and its newline as two buffers.
    Writev,
}

/// Who writes through the descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// The process that opened it.
    Opener,
    /// The opener, after it gave up root (uid and gid `nobody`, no groups): files that check
    /// the caller at write time refuse it then.
    Setuid,
    /// A second process: the opener, a child, sends it over a unix socket (SCM_RIGHTS) and exits.
    Socket,
}

#[derive(Clone)]
pub struct WriteVia {
    pub open: OpenCall,
    pub write: WriteCall,
    pub handoff: Handoff,
    pub path: String,
    pub value: String,
}

impl WriteVia {
    /// `OPEN WRITE HANDOFF PATH VALUE`.
    pub fn parse(words: &[&str]) -> Option<WriteVia> {
        let [open, write, handoff, path, value] = words else {
            return None;
        };
        Some(WriteVia {
            open: match *open {
                "openat" => OpenCall::Openat,
                "openat2" => OpenCall::Openat2,
                "open" => OpenCall::Open,
                "creat" => OpenCall::Creat,
                _ => return None,
            },
            write: match *write {
                "write" => WriteCall::Write,
                "pwrite" => WriteCall::Pwrite,
                "writev" => WriteCall::Writev,
                _ => return None,
            },
            handoff: match *handoff {
                "opener" => Handoff::Opener,
                "setuid" => Handoff::Setuid,
                "socket" => Handoff::Socket,
                _ => return None,
            },
            path: (*path).to_owned(),
            value: (*value).to_owned(),
        })
    }
}

/// `nobody` and `nogroup`.
const NOBODY: libc::uid_t = 65534;

pub fn write_via(w: &WriteVia) -> Result<String, Failure> {
    let path = c_string(&w.path)?;
    let fd = match w.handoff {
        Handoff::Opener => open(w.open, &path)?,
        Handoff::Setuid => {
            let fd = open(w.open, &path)?;
            drop_root()?;
            fd
        }
        Handoff::Socket => open_in_child(w.open, &path)?,
    };
    let what = format!("write({}, {:?})", w.path, w.value);
    let line = format!("{}\n", w.value);
    let written = write(w.write, &fd, &line).map_err(|e| Failure::new(&what, e))?;
    if written != line.len() {
        return Err(Failure::new(
            what,
            format!("wrote {written} of {} bytes", line.len()),
        ));
    }
    Ok(format!(
        "write-via: {:?} then {:?} by {:?}: wrote {:?} to {}",
        w.open, w.write, w.handoff, w.value, w.path
    ))
}

/// `struct open_how` (include/uapi/linux/openat2.h); the libc crate's cannot be built.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn open(call: OpenCall, path: &CString) -> Result<OwnedFd, Failure> {
    let flags = libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path that outlives each call; `how` too, of the size passed.
    let fd = unsafe {
        match call {
            OpenCall::Openat => {
                libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags)
            }
            OpenCall::Openat2 => {
                let how = OpenHow {
                    flags: flags as u64,
                    mode: 0,
                    resolve: 0,
                };
                libc::syscall(
                    libc::SYS_openat2,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    &raw const how,
                    mem::size_of::<OpenHow>(),
                )
            }
            // Raw syscalls: the C library may implement open() and creat() with openat.
            OpenCall::Open => libc::syscall(libc::SYS_open, path.as_ptr(), flags),
            OpenCall::Creat => libc::syscall(libc::SYS_creat, path.as_ptr(), 0o644),
        }
    };
    if fd < 0 {
        return Err(Failure::os(format!("{call:?}({path:?})")));
    }
    // SAFETY: the kernel has just handed us this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn write(call: WriteCall, fd: &OwnedFd, line: &str) -> io::Result<usize> {
    let fd = fd.as_raw_fd();
    let (value, newline) = line.split_at(line.len() - 1);
    let iov = [value, newline].map(|part| libc::iovec {
        iov_base: part.as_ptr().cast_mut().cast(),
        iov_len: part.len(),
    });
    // SAFETY: buffers that outlive the calls, of the lengths passed; the kernel only reads them.
    let written = unsafe {
        match call {
            WriteCall::Write => libc::write(fd, line.as_ptr().cast(), line.len()),
            WriteCall::Pwrite => libc::pwrite(fd, line.as_ptr().cast(), line.len(), 0),
            WriteCall::Writev => libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int),
        }
    };
    if written < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(written.unsigned_abs())
}

/// Becomes `nobody` for good: groups first, while that is still allowed.
fn drop_root() -> Result<(), Failure> {
    // SAFETY: plain syscalls.
    unsafe {
        if libc::setgroups(0, ptr::null()) < 0 {
            return Err(Failure::os("setgroups([])"));
        }
        if libc::setresgid(NOBODY, NOBODY, NOBODY) < 0 {
            return Err(Failure::os("setresgid(nobody)"));
        }
        if libc::setresuid(NOBODY, NOBODY, NOBODY) < 0 {
            return Err(Failure::os("setresuid(nobody)"));
        }
    }
    Ok(())
}

/// A child opens the file and sends the descriptor over a socket pair; returns the descriptor
/// received, once the child has exited.
fn open_in_child(call: OpenCall, path: &CString) -> Result<OwnedFd, Failure> {
    let mut pair = [0; 2];
    // SAFETY: `pair` has room for the two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) } < 0 {
        return Err(Failure::os("socketpair"));
    }
    // SAFETY: the kernel has just handed us these descriptors.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: the child only opens, sends and exits; this process has a single thread.
    let child = match unsafe { libc::fork() } {
        0 => {
            let code = match open(call, path).and_then(|fd| send_fd(&theirs, &fd)) {
                Ok(()) => 0,
                Err(Failure(failure)) => {
                    eprintln!("escape-act: in the child: {failure}");
                    1
                }
            };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid if pid < 0 => return Err(Failure::os("fork")),
        pid => pid,
    };
    drop(theirs);
    let received = receive_fd(&ours);
    let mut status = 0;
    // SAFETY: status is a valid place for waitpid to write to.
    if unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        return Err(Failure::os(format!("waitpid({child})")));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(Failure::new(
            format!("the opening child (PID {child})"),
            format!("ended with status {status:#x}"),
        ));
    }
    received
}

/// Room for one descriptor's control message.
#[repr(C)]
union ControlBuffer {
    bytes: [u8; 64],
    // Aligns the buffer for the cmsghdr the kernel writes at its start.
    _align: libc::cmsghdr,
}

fn message(data: &mut [u8; 1], control: &mut ControlBuffer) -> (libc::msghdr, libc::iovec) {
    let iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data, valid all zero.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iovlen = 1;
    msg.msg_control = (&raw mut *control).cast();
    // SAFETY: a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as usize;
    (msg, iov)
}

fn send_fd(socket: &OwnedFd, fd: &OwnedFd) -> Result<(), Failure> {
    let mut data = [b'f'];
    let mut control = ControlBuffer { bytes: [0; 64] };
    let (mut msg, mut iov) = message(&mut data, &mut control);
    msg.msg_iov = &raw mut iov;
    // SAFETY: msg points at a control buffer large enough for one descriptor, which the
    // CMSG macros address within.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as usize;
        ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd.as_raw_fd());
        if libc::sendmsg(socket.as_raw_fd(), &msg, 0) < 0 {
            return Err(Failure::os("sendmsg(SCM_RIGHTS)"));
        }
    }
    Ok(())
}

fn receive_fd(socket: &OwnedFd) -> Result<OwnedFd, Failure> {
    let mut data = [0];
    let mut control = ControlBuffer { bytes: [0; 64] };
    let (mut msg, mut iov) = message(&mut data, &mut control);
    msg.msg_iov = &raw mut iov;
    // SAFETY: as in send_fd; the descriptor is read only when the kernel put one there.
    unsafe {
        if libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
            return Err(Failure::os("recvmsg"));
        }
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(Failure::new("recvmsg", "no descriptor came"));
        }
        let fd = ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_every_road_and_nothing_else() {
        let w = WriteVia::parse(&["creat", "writev", "socket", "/f", "v"]).unwrap();
        assert_eq!(
            (w.open, w.write, w.handoff),
            (OpenCall::Creat, WriteCall::Writev, Handoff::Socket)
        );
        assert!(WriteVia::parse(&["openat", "pwrite", "setuid", "/f", "v"]).is_some());
        assert!(WriteVia::parse(&["openat", "write", "opener", "/f"]).is_none());
        assert!(WriteVia::parse(&["fopen", "write", "opener", "/f", "v"]).is_none());
        assert!(WriteVia::parse(&["open", "send", "opener", "/f", "v"]).is_none());
        assert!(WriteVia::parse(&["open", "write", "thread", "/f", "v"]).is_none());
    }

    /// Every road writes the file, through a pipe of this process for the handoffs that keep
    /// root (the setuid one would leave the test process `nobody`).
    #[test]
    fn each_road_writes_the_value() {
        let dir = std::env::temp_dir().join(format!("escape-act-write-via-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        for (open, write, handoff) in [
            ("openat", "write", "opener"),
            ("openat2", "pwrite", "opener"),
            ("open", "writev", "opener"),
            ("creat", "write", "opener"),
            ("openat", "write", "socket"),
        ] {
            std::fs::write(&file, "old contents\n").unwrap();
            let path = file.to_str().unwrap();
            let w = WriteVia::parse(&[open, write, handoff, path, "new"]).unwrap();
            write_via(&w).unwrap_or_else(|Failure(f)| panic!("{open} {write} {handoff}: {f}"));
            let expected = if open == "creat" {
                "new\n"
            } else {
                "new\ncontents\n"
            };
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                expected,
                "{open} {write} {handoff}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
