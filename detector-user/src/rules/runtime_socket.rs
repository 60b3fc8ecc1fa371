//! runtime-socket-access: a container process connected to a container runtime's or the
//! kubelet's API socket, which starts privileged containers on request. The socket is known by
//! its inode, whatever name the container gives it.

use detector_common::{UnixConnectEvent, WatchedFile};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};
use crate::state::runtime_files;

pub const RUNTIME_SOCKET_ACCESS: RuleInfo = RuleInfo {
    id: "runtime-socket-access",
    severity: Severity::High,
    mitre: &["T1611", "T1609"],
    description: "connects to a container runtime or kubelet API socket (docker, containerd, \
                  cri-o, podman, kubelet), however it is named inside the container",
};

pub fn runtime_socket_access(e: &UnixConnectEvent, subject: &Subject) -> Option<Finding> {
    let path = if e.abstract_len > 0 {
        let name = &e.abstract_name[..usize::from(e.abstract_len).min(e.abstract_name.len())];
        let name = String::from_utf8_lossy(name);
        if !runtime_files::is_runtime_abstract_socket(&name) {
            return None;
        }
        format!("@{name}")
    } else {
        subject
            .runtime_files
            .path_of(&e.socket, WatchedFile::RuntimeSocket)?
            .display()
            .to_string()
    };
    Some(Finding {
        rule: &RUNTIME_SOCKET_ACCESS,
        message: format!("{} connected to {path}", subject.describe()),
        details: json!({ "syscall": "connect", "socket": path, "inode": e.socket.ino }),
        // API clients reconnect for every request.
        repeat: Repeat::OncePerProcess(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::test_support::{header, subject},
        state::{filesystems::Filesystems, runtime_files::RuntimeFiles},
    };
    use detector_common::{ABSTRACT_NAME_LEN, EventKind, FileId};

    #[test]
    fn names_the_watched_socket_by_its_host_path() {
        let fs = Filesystems::default();
        let sockets = RuntimeFiles::with_known(&[(
            8,
            4242,
            "/run/containerd/containerd.sock",
            WatchedFile::RuntimeSocket,
        )]);
        let mut s = subject(&fs);
        s.runtime_files = &sockets;
        let socket = FileId {
            dev: 8,
            _pad: 0,
            ino: 4242,
        };
        let e = UnixConnectEvent {
            header: header(EventKind::UnixConnect),
            socket,
            abstract_name: [0; ABSTRACT_NAME_LEN],
            abstract_len: 0,
            _pad: [0; 4],
        };
        let finding = runtime_socket_access(&e, &s).unwrap();
        assert_eq!(finding.details["socket"], "/run/containerd/containerd.sock");
        let unknown = UnixConnectEvent {
            socket: FileId { ino: 1, ..socket },
            ..e
        };
        assert!(runtime_socket_access(&unknown, &s).is_none());
    }

    #[test]
    fn abstract_sockets_are_judged_by_name_up_to_their_length() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let mut name = [0u8; ABSTRACT_NAME_LEN];
        let shim = b"/containerd-shim/moby/3f2a/shim.sock";
        name[..shim.len()].copy_from_slice(shim);
        // Bytes past the length are not the name.
        name[shim.len()] = b'x';
        let e = UnixConnectEvent {
            header: header(EventKind::UnixConnect),
            socket: FileId::default(),
            abstract_name: name,
            abstract_len: shim.len() as u8,
            _pad: [0; 4],
        };
        let finding = runtime_socket_access(&e, &s).unwrap();
        assert_eq!(
            finding.details["socket"],
            "@/containerd-shim/moby/3f2a/shim.sock"
        );
        let other = UnixConnectEvent {
            abstract_len: 5,
            ..e
        };
        assert!(runtime_socket_access(&other, &s).is_none(), "@/cont");
    }
}
