//! The HTTP endpoints: /metrics, /healthz, /readyz. A deliberately small HTTP/1.1 server: GET
//! only, one request per connection, bounded request size.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{health::Health, metrics::Metrics};

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Refreshes values that are pulled, not pushed (kernel loss counters), before a scrape.
pub type BeforeScrape = Arc<dyn Fn() + Send + Sync>;

pub struct Endpoints {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub before_scrape: BeforeScrape,
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, endpoints: Arc<Endpoints>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let endpoints = endpoints.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, &endpoints).await {
                        log::debug!("http connection: {e}");
                    }
                });
            }
            Err(e) => {
                log::warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }
}

async fn handle(mut stream: TcpStream, endpoints: &Endpoints) -> std::io::Result<()> {
    let request = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    let response = route(&request, endpoints);
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.reason,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(response.body.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the end of the request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn route(request: &str, endpoints: &Endpoints) -> Response {
    let mut words = request.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "Method Not Allowed", "only GET is served");
    }
    match path {
        "/metrics" => {
            (endpoints.before_scrape)();
            Response {
                status: 200,
                reason: "OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: endpoints.metrics.render(),
            }
        }
        "/healthz" if endpoints.health.is_alive() => Response::text(200, "OK", "ok"),
        "/healthz" => Response::text(503, "Service Unavailable", "event loop stalled"),
        "/readyz" => match endpoints.health.ready_sensors() {
            Some(sensors) => Response::text(200, "OK", &format!("ready\n{sensors}")),
            None => Response::text(503, "Service Unavailable", "not ready"),
        },
        _ => Response::text(404, "Not Found", "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::new().unwrap()),
            before_scrape: Arc::new(|| {}),
        }
    }

    #[test]
    fn routes_by_method_and_path_and_reports_readiness() {
        let e = endpoints();
        assert_eq!(route("GET /readyz HTTP/1.1\r\n\r\n", &e).status, 503);
        assert_eq!(route("GET /healthz HTTP/1.1\r\n\r\n", &e).status, 503);
        e.health.beat();
        e.health
            .set_ready("mounts (sensitive-mount): fentry".to_owned());
        let ready = route("GET /readyz HTTP/1.1\r\n\r\n", &e);
        assert_eq!(ready.status, 200);
        assert_eq!(ready.body, "ready\nmounts (sensitive-mount): fentry\n");
        assert_eq!(route("GET /healthz?x=1 HTTP/1.1\r\n\r\n", &e).status, 200);
        let metrics = route("GET /metrics HTTP/1.1\r\n\r\n", &e);
        assert_eq!(metrics.status, 200);
        assert!(metrics.body.contains("escape_detector_events_total"));
        assert_eq!(route("POST /metrics HTTP/1.1\r\n\r\n", &e).status, 405);
        assert_eq!(route("GET /nope HTTP/1.1\r\n\r\n", &e).status, 404);
        assert_eq!(route("", &e).status, 405);
    }

    #[tokio::test]
    async fn serves_real_connections_on_loopback() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let e = Arc::new(endpoints());
        e.health.beat();
        tokio::spawn(serve(listener, e));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nok\n"), "{out}");
    }
}
