//! A minimal HTTP/1.0 GET over std, enough to poll the agent's /readyz and scrape /metrics.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Response {
    pub status: u16,
    pub body: String,
}

/// GET `path` from `addr`. HTTP/1.0 so that the server closes the connection after the body
/// and never answers in chunks.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("could not connect to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .with_context(|| format!("could not send GET {path} to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("could not read the answer to GET {path} from {addr}"))?;
    parse(&String::from_utf8_lossy(&raw)).with_context(|| format!("GET http://{addr}{path}"))
}

fn parse(raw: &str) -> Result<Response> {
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        bail!("the answer has no end of headers");
    };
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|header| {
        header.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
        })
    });
    if chunked {
        bail!("chunked answer to an HTTP/1.0 request");
    }
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let response = parse("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nready\n").unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "ready\n");
    }

    #[test]
    fn refuses_chunked_bodies() {
        assert!(
            parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nready\r\n0\r\n\r\n")
                .is_err()
        );
    }

    #[test]
    fn refuses_a_truncated_answer() {
        assert!(parse("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n").is_err());
    }
}
