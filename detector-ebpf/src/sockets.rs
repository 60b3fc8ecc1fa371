//! Connections of container processes to the container runtimes' and the kubelet's APIs. A
//! unix socket is recognised by the inode it is bound to, so a bind mount under another name, a
//! symlink or /proc/PID/root cannot hide it; a TCP API by its port.

use aya_ebpf::programs::{FExitContext, RawTracePointContext, TracePointContext};
use detector_common::{
    ABSTRACT_NAME_LEN, EventKind, FIELD_MISSING, LossReason, TcpConnectEvent, UnixConnectEvent,
    WatchedFile,
};

use crate::{
    config::{is_runtime_api_port, offset},
    emit::{count_loss, reserve},
    files::fd_private_data,
    identity::{self, Actor},
    kread::{field, pointer, read_or_zero},
    maps::CONNECT_PENDING,
    syscall_record, task,
    watched::watched_as,
};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const TCP_SYN_SENT: i32 = 2;

pub fn on_connect_enter(ctx: &TracePointContext) {
    // connect(fd, addr, addrlen)
    let fd = syscall_record::arg(ctx, 0).unwrap_or(u64::MAX);
    syscall_record::keep(&CONNECT_PENDING, EventKind::UnixConnect, || fd as u32);
}

/// A connected unix socket's peer carries the listening socket's bound path (the kernel copies
/// it into the socket it creates for the connection), so the connected file is the server's.
pub fn on_connect_exit(ctx: &TracePointContext) {
    let Some((fd, actor)) = syscall_record::take(&CONNECT_PENDING, EventKind::UnixConnect) else {
        return;
    };
    if syscall_record::ret(ctx) != 0 {
        return;
    }
    // A successful connect was made on a socket: only a failed read finds none.
    let Some(sock) = fd_private_data(fd).and_then(|socket| pointer(socket, offset!(socket_sk)))
    else {
        count_loss(EventKind::UnixConnect, LossReason::ReadFailed);
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
    if let Some(actor) = identity::current(EventKind::UnixConnect) {
        report_if_watched(ctx.arg(1), &actor);
    }
}

/// A socket file is reported when it is watched; an abstract socket (no file, a name in the
/// network namespace) always, with its name: the agent judges it. The connection's socket
/// shares the listener's address, so both hooks read the same name.
#[inline(always)]
fn report_if_watched(unix_sock: *const u8, actor: &Actor) {
    let dentry = read_or_zero::<*const u8>(unix_sock, offset!(unix_sock_path_dentry));
    let socket = task::file_id(dentry);
    // `sun_path`, after the 2-byte family; an abstract name starts with a NUL.
    let address = read_or_zero::<*const u8>(unix_sock, offset!(unix_sock_addr));
    let sun_path = address.wrapping_add(offset!(unix_address_name) as usize + 2);
    if dentry.is_null() {
        if offset!(unix_address_name) == FIELD_MISSING || read_or_zero::<u8>(sun_path, 0) != 0 {
            return;
        }
    } else if !watched_as(&socket, WatchedFile::RuntimeSocket) {
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
        (*e)._pad = [0; 4];
        if dentry.is_null() {
            // The whole of `sun_path`; the address's length (family, NUL, name) says how much
            // of it is the name.
            (*e).abstract_name = read_or_zero(sun_path, 1);
            let len = read_or_zero::<i32>(address, offset!(unix_address_len)) - 3;
            (*e).abstract_len = len.clamp(0, ABSTRACT_NAME_LEN as i32) as u8;
        } else {
            (*e).abstract_name = [0; ABSTRACT_NAME_LEN];
            (*e).abstract_len = 0;
        }
    }
    entry.submit(0);
}

/// `inet_sock_set_state(const struct sock *sk, int oldstate, int newstate)`: a TCP socket
/// entering `SYN_SENT` is a `connect` (or a `sendto` with `MSG_FASTOPEN`, or an io_uring
/// connect), in the connecting task's context. A state change is rare next to syscalls, so this
/// costs the host nothing a syscall tracepoint would.
pub fn on_inet_sock_set_state(ctx: &RawTracePointContext) {
    let newstate: u64 = ctx.arg(2);
    if newstate as i32 != TCP_SYN_SENT {
        return;
    }
    let sock: *const u8 = ctx.arg(0);
    let port = u16::from_be(read_or_zero::<u16>(sock, offset!(sock_dport)));
    if !is_runtime_api_port(port) {
        return;
    }
    let family = read_or_zero::<u16>(sock, offset!(sock_family));
    let mut addr = [0u8; 16];
    match family {
        AF_INET => addr[..4].copy_from_slice(&read_or_zero::<[u8; 4]>(sock, offset!(sock_daddr))),
        AF_INET6 => addr = read_or_zero(sock, offset!(sock_v6_daddr)),
        _ => return,
    }
    let Some(actor) = identity::current(EventKind::TcpConnect) else {
        return;
    };
    let Some(mut entry) = reserve::<TcpConnectEvent>(EventKind::TcpConnect) else {
        return;
    };
    entry.write(TcpConnectEvent {
        header: actor.header(EventKind::TcpConnect),
        net_ns: task::net_ns(task::current()),
        family,
        port,
        addr,
    });
    entry.submit(0);
}
