//! Unix-socket connections of container processes to the sockets the agent watches (container
//! runtime and kubelet APIs). The socket is recognised by the inode it is bound to, so a bind
//! mount under another name, a symlink or /proc/PID/root cannot hide it.

use aya_ebpf::programs::{FExitContext, TracePointContext};
use detector_common::{EventKind, UnixConnectEvent, WatchedFile};

use crate::{
    config::offset,
    emit::reserve,
    files::fd_private_data,
    identity::{self, Actor},
    kread::{field, pointer},
    maps::CONNECT_PENDING,
    syscall_record, task,
    watched::watched_as,
};

const AF_UNIX: u16 = 1;

pub fn on_connect_enter(ctx: &TracePointContext) {
    // connect(fd, addr, addrlen)
    let fd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    syscall_record::keep(&CONNECT_PENDING, || fd as u32);
}

/// A connected unix socket's peer carries the listening socket's bound path (the kernel copies
/// it into the socket it creates for the connection), so the connected file is the server's.
pub fn on_connect_exit(ctx: &TracePointContext) {
    let Some((fd, actor)) = syscall_record::take(&CONNECT_PENDING) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    let Some(sock) = fd_private_data(fd).and_then(|socket| pointer(socket, offset!(socket_sk)))
    else {
        return;
    };
    if field::<u16>(sock, offset!(sock_family)) != Some(AF_UNIX) {
        return;
    }
    if let Some(peer) = pointer(sock, offset!(unix_sock_peer)) {
        report_if_watched(peer, &actor);
    }
}

/// `security_unix_stream_connect(struct sock *sock, struct sock *other, struct sock *newsk)`
/// returned; `other` is the listening socket.
pub fn on_unix_stream_connect(ctx: &FExitContext) {
    let ret: i32 = ctx.arg(3);
    if ret != 0 {
        return;
    }
    if let Some(actor) = identity::current() {
        report_if_watched(ctx.arg(1), &actor);
    }
}

#[inline(always)]
fn report_if_watched(unix_sock: *const u8, actor: &Actor) {
    let Some(dentry) = pointer(unix_sock, offset!(unix_sock_path_dentry)) else {
        return;
    };
    let socket = task::file_id(dentry);
    if !watched_as(&socket, WatchedFile::RuntimeSocket) {
        return;
    }
    let Some(mut entry) = reserve::<UnixConnectEvent>(EventKind::UnixConnect) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved, exclusively owned UnixConnectEvent.
    unsafe {
        (*e).header = actor.header(EventKind::UnixConnect);
        (*e).socket = socket;
    }
    entry.submit(0);
}
