//! The redis workload: redis-server on a loopback port pinned to one CPU, persistence off;
//! redis-benchmark pinned to the other (the workloads' CPU), SET and GET with a fixed number of
//! requests.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result};

use super::{cpu, daemon::Daemon, wait, workload::Throughput};
use crate::cmd;

const READY_LIMIT: Duration = Duration::from_secs(10);
const TESTS: [(&str, &str); 2] = [("SET", "redis SET"), ("GET", "redis GET")];

pub fn benchmark(requests: u64) -> Result<Vec<Throughput>> {
    let addr = free_loopback_addr()?;
    let port = addr.port().to_string();
    let mut server = Command::new("redis-server");
    server.args(["--bind", "127.0.0.1", "--port", &port]).args([
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]);
    cpu::pin(&mut server, cpu::SERVER_CPU);
    let mut server = Daemon::spawn("redis-server", &mut server, libc::SIGTERM)?;
    wait::until("redis-server answering PING", READY_LIMIT, || {
        server.ensure_running()?;
        Ok(answers_ping(addr))
    })?;
    let mut client = Command::new("redis-benchmark");
    client
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get", "--csv"])
        .args(["-n", &requests.to_string()]);
    cpu::pin(&mut client, cpu::WORKLOAD_CPU);
    let printed = cmd::output(&mut client)?;
    server.stop()?;
    TESTS
        .iter()
        .map(|(test, measure)| {
            let per_second = requests_per_second(&printed, test)
                .with_context(|| format!("redis-benchmark printed no {test} rate:\n{printed}"))?;
            Ok(Throughput {
                measure,
                ops: requests,
                seconds: requests as f64 / per_second,
            })
        })
        .collect()
}

/// A port nobody listens on right now; the server binds it a moment later.
fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("could not find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

fn answers_ping(addr: SocketAddr) -> bool {
    let ping = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, READY_LIMIT)?;
        stream.set_read_timeout(Some(READY_LIMIT))?;
        stream.write_all(b"PING\r\n")?;
        let mut answer = [0; 7];
        stream.read_exact(&mut answer)?;
        Ok(&answer == b"+PONG\r\n")
    };
    ping().unwrap_or(false)
}

/// The requests per second of `test` in redis-benchmark's `--csv` output, whose lines read
/// `"SET","87719.30","0.303",...` after a header line.
fn requests_per_second(printed: &str, test: &str) -> Option<f64> {
    printed.lines().find_map(|line| {
        let mut fields = line.split(',').map(|field| field.trim().trim_matches('"'));
        if fields.next()? != test {
            return None;
        }
        fields.next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\
                       \"SET\",\"87719.30\",\"0.303\",\"0.080\"\n\
                       \"GET\",\"90909.09\",\"0.290\",\"0.072\"\n";

    #[test]
    fn reads_each_tests_rate_from_the_csv() {
        assert_eq!(requests_per_second(CSV, "SET"), Some(87719.30));
        assert_eq!(requests_per_second(CSV, "GET"), Some(90909.09));
        assert_eq!(requests_per_second(CSV, "LPUSH"), None);
    }
}
