//! The HTTP endpoints of CONTRACT.md: /metrics, /healthz, /readyz, routed by axum and served by
//! hyper's HTTP/1.1 (keep-alive, HEAD, 404 and 405 as the protocol says), with a deadline for the
//! request head that `axum::serve` does not set: the DaemonSet listens on the pod network.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;

use crate::{health::Health, metrics::Metrics};

/// Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A client that has not sent its request head by then is cut off, so idle connections cannot
/// pile up.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

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
    let router = router(endpoints);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                log::warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                log::debug!("http connection: {e}");
            }
        });
    }
}

fn router(endpoints: Arc<Endpoints>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(endpoints)
}

async fn metrics(State(endpoints): State<Arc<Endpoints>>) -> impl IntoResponse {
    (endpoints.before_scrape)();
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        endpoints.metrics.render(),
    )
}

async fn healthz(State(endpoints): State<Arc<Endpoints>>) -> impl IntoResponse {
    if endpoints.health.is_alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "event loop stalled\n")
    }
}

/// Ready, with the sensor each detection runs on, so that what is watched is never a guess.
async fn readyz(State(endpoints): State<Arc<Endpoints>>) -> impl IntoResponse {
    match endpoints.health.ready_sensors() {
        Some(sensors) => (StatusCode::OK, format!("ready\n{sensors}\n")),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    async fn server() -> (SocketAddr, Arc<Endpoints>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoints = Arc::new(Endpoints {
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::new().unwrap()),
            before_scrape: Arc::new(|| {}),
        });
        tokio::spawn(serve(listener, endpoints.clone()));
        (addr, endpoints)
    }

    /// The raw response to `method path` over a real connection.
    async fn request(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    async fn status(addr: SocketAddr, method: &str, path: &str) -> String {
        let response = request(addr, method, path).await;
        response.lines().next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn routes_by_method_and_path_and_reports_readiness() {
        let (addr, endpoints) = server().await;
        assert_eq!(
            status(addr, "GET", "/readyz").await,
            "HTTP/1.1 503 Service Unavailable"
        );
        assert_eq!(
            status(addr, "GET", "/healthz").await,
            "HTTP/1.1 503 Service Unavailable"
        );
        endpoints.health.beat();
        endpoints
            .health
            .set_ready("mounts (sensitive-mount): fentry".to_owned());
        let ready = request(addr, "GET", "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 200 OK\r\n"), "{ready}");
        assert!(
            ready.ends_with("\r\n\r\nready\nmounts (sensitive-mount): fentry\n"),
            "{ready}"
        );
        assert_eq!(status(addr, "GET", "/healthz?x=1").await, "HTTP/1.1 200 OK");
        assert_eq!(
            status(addr, "POST", "/metrics").await,
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(status(addr, "GET", "/nope").await, "HTTP/1.1 404 Not Found");
    }

    #[tokio::test]
    async fn serves_metrics_in_the_prometheus_format_and_head_without_a_body() {
        let (addr, _) = server().await;
        let response = request(addr, "GET", "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains(&format!("content-type: {METRICS_CONTENT_TYPE}\r\n")),
            "{response}"
        );
        assert!(
            response.contains("escape_detector_events_total"),
            "{response}"
        );
        let head = request(addr, "HEAD", "/metrics").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.ends_with("\r\n\r\n"),
            "HEAD answered with a body: {head}"
        );
    }

    /// A client that never finishes its request head is cut off rather than held forever.
    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_is_cut_off() {
        let (addr, _) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(HEAD_TIMEOUT * 2, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection was still open");
    }
}
