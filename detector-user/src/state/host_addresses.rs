//! The host's own IP addresses: where a container reaches the node's kubelet or runtime over
//! TCP. Read from the host reference process's network namespace (`/proc/PID/net`), so an
//! agent in a pod without the host's network still knows them; read when asked, since a
//! connection to a watched port is rare and addresses come and go with interfaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostAddresses {
    /// IPv4 prefixes the host's routing table delivers locally (`LOCAL` routes).
    v4: Vec<(Ipv4Addr, u8)>,
    v6: Vec<Ipv6Addr>,
}

impl HostAddresses {
    /// The addresses of `pid`'s network namespace; none that cannot be read (an IPv4-only
    /// kernel has no `if_inet6`).
    pub fn of_process(pid: u32) -> HostAddresses {
        let read = |name: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{name}")).unwrap_or_default()
        };
        HostAddresses::parse(&read("fib_trie"), &read("if_inet6"))
    }

    /// From the texts of `/proc/net/fib_trie` and `/proc/net/if_inet6`.
    pub fn parse(fib_trie: &str, if_inet6: &str) -> HostAddresses {
        HostAddresses {
            v4: local_v4_prefixes(fib_trie),
            v6: v6_addresses(if_inet6),
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.iter().any(|&(net, len)| in_prefix(a, net, len)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a) => self.contains(IpAddr::V4(a)),
                None => self.v6.contains(&a),
            },
        }
    }
}

fn in_prefix(addr: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(addr) & mask == u32::from(net) & mask
}

/// The `LOCAL` entries of `/proc/net/fib_trie`: a `|-- ADDR` line, then one line per route to
/// it (`/32 host LOCAL`, `/8 host LOCAL` for all of 127/8).
fn local_v4_prefixes(fib_trie: &str) -> Vec<(Ipv4Addr, u8)> {
    let mut prefixes = Vec::new();
    let mut leaf = None;
    for line in fib_trie.lines().map(str::trim) {
        if let Some(addr) = line.strip_prefix("|-- ") {
            leaf = addr.parse::<Ipv4Addr>().ok();
        } else if let (Some(addr), Some(route)) = (leaf, line.strip_prefix('/')) {
            let mut fields = route.split_whitespace();
            let len = fields.next().and_then(|l| l.parse::<u8>().ok());
            if let (Some(len), Some("LOCAL")) = (len, fields.nth(1))
                && !prefixes.contains(&(addr, len))
            {
                prefixes.push((addr, len));
            }
        }
    }
    prefixes
}

/// `/proc/net/if_inet6`: one address per line, 32 hex digits first.
fn v6_addresses(if_inet6: &str) -> Vec<Ipv6Addr> {
    if_inet6
        .lines()
        .filter_map(|line| u128::from_str_radix(line.split_whitespace().next()?, 16).ok())
        .map(Ipv6Addr::from)
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 172.17.0.1
        /32 host LOCAL
";

    pub const IF_INET6: &str = "00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000002 04 40 00 82     eth0
";

    fn addresses() -> HostAddresses {
        HostAddresses::parse(FIB_TRIE, IF_INET6)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_routes_are_the_hosts_addresses() {
        let a = addresses();
        assert!(a.contains(ip("192.0.2.2")));
        assert!(
            a.contains(ip("172.17.0.1")),
            "a bridge's address is the host's"
        );
        assert!(a.contains(ip("127.0.0.1")));
        assert!(a.contains(ip("127.3.4.5")), "all of 127/8 is local");
    }

    #[test]
    fn other_routes_are_not() {
        let a = addresses();
        assert!(!a.contains(ip("192.0.2.3")), "a neighbour on the link");
        assert!(!a.contains(ip("192.0.2.255")), "broadcast");
        assert!(!a.contains(ip("10.0.0.1")));
    }

    #[test]
    fn ipv6_addresses_and_mapped_ipv4() {
        let a = addresses();
        assert!(a.contains(ip("::1")));
        assert!(a.contains(ip("fd00::2")));
        assert!(!a.contains(ip("fd00::3")));
        assert!(a.contains(ip("::ffff:192.0.2.2")));
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(local_v4_prefixes("|-- not an address\n/32 host LOCAL\n").is_empty());
        assert!(v6_addresses("zz 01\n\n").is_empty());
    }
}
