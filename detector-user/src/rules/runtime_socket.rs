//! runtime-socket-access: a container process connected to a container runtime's or the
//! kubelet's API, which starts privileged containers on request. A unix socket is known by its
//! inode, whatever name the container gives it; a TCP API by its port on one of the node's own
//! addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use detector_common::{TcpConnectEvent, UnixConnectEvent, WatchedFile};
use serde_json::json;

use super::{Finding, Repeat, RuleInfo, Severity, Subject};
use crate::state::{host_addresses::HostAddresses, runtime_files};

const AF_INET: u16 = 2;

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

/// A TCP connection to a watched port counts when it reaches this node: one of the host's
/// addresses (a bridge's gateway, the node's IP), or loopback from the host's network
/// namespace (a host-network container). The same port elsewhere is another machine's service,
/// and a container's own loopback is its own.
pub fn runtime_tcp_api_access(
    e: &TcpConnectEvent,
    subject: &Subject,
    host: &HostAddresses,
) -> Option<Finding> {
    let addr = if e.family == AF_INET {
        let [a, b, c, d, ..] = e.addr;
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    } else {
        IpAddr::V6(Ipv6Addr::from(e.addr))
    };
    if addr.to_canonical().is_loopback() && e.net_ns != subject.host_ns.net {
        return None;
    }
    if !host.contains(addr) {
        return None;
    }
    let service = match e.port {
        10250 | 10255 => "kubelet",
        2375 | 2376 => "docker",
        _ => "runtime",
    };
    let endpoint = match addr {
        IpAddr::V4(a) => format!("tcp://{a}:{}", e.port),
        IpAddr::V6(a) => format!("tcp://[{a}]:{}", e.port),
    };
    Some(Finding {
        rule: &RUNTIME_SOCKET_ACCESS,
        message: format!(
            "{} connected to the {service} API at {endpoint}",
            subject.describe()
        ),
        details: json!({ "syscall": "connect", "socket": endpoint, "service": service }),
        repeat: Repeat::OncePerProcess(endpoint),
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

    fn tcp(addr: IpAddr, port: u16, net_ns: u32) -> TcpConnectEvent {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => {
                let mut bytes = [0; 16];
                bytes[..4].copy_from_slice(&a.octets());
                (2, bytes)
            }
            IpAddr::V6(a) => (10, a.octets()),
        };
        TcpConnectEvent {
            header: header(EventKind::TcpConnect),
            net_ns,
            family,
            port,
            addr: bytes,
        }
    }

    fn host() -> HostAddresses {
        use crate::state::host_addresses::tests::{FIB_TRIE, IF_INET6};
        HostAddresses::parse(FIB_TRIE, IF_INET6)
    }

    #[test]
    fn the_nodes_kubelet_and_docker_ports_are_reported() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let own_net = s.host_ns.net + 1;
        let kubelet = tcp("192.0.2.2".parse().unwrap(), 10250, own_net);
        let finding = runtime_tcp_api_access(&kubelet, &s, &host()).unwrap();
        assert_eq!(finding.details["socket"], "tcp://192.0.2.2:10250");
        assert_eq!(finding.details["service"], "kubelet");
        let docker = tcp("fd00::2".parse().unwrap(), 2375, own_net);
        let finding = runtime_tcp_api_access(&docker, &s, &host()).unwrap();
        assert_eq!(finding.details["socket"], "tcp://[fd00::2]:2375");
        assert_eq!(finding.details["service"], "docker");
        // A port from `runtime_api_ports`: the kernel only sends the configured ones.
        let custom = tcp("192.0.2.2".parse().unwrap(), 18443, own_net);
        let finding = runtime_tcp_api_access(&custom, &s, &host()).unwrap();
        assert_eq!(finding.details["service"], "runtime");
    }

    #[test]
    fn loopback_is_the_hosts_only_in_the_hosts_network_namespace() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        let lo = "127.0.0.1".parse().unwrap();
        let host_net = tcp(lo, 2375, s.host_ns.net);
        assert!(runtime_tcp_api_access(&host_net, &s, &host()).is_some());
        let own_net = tcp(lo, 2375, s.host_ns.net + 1);
        assert!(runtime_tcp_api_access(&own_net, &s, &host()).is_none());
        let mapped = tcp("::ffff:127.0.0.1".parse().unwrap(), 2375, s.host_ns.net + 1);
        assert!(runtime_tcp_api_access(&mapped, &s, &host()).is_none());
    }

    #[test]
    fn another_machines_api_is_not_this_nodes() {
        let fs = Filesystems::default();
        let s = subject(&fs);
        // Docker-in-docker service of a CI job, another node's kubelet.
        let other = tcp("192.0.2.3".parse().unwrap(), 2375, s.host_ns.net + 1);
        assert!(runtime_tcp_api_access(&other, &s, &host()).is_none());
    }
}
