//! Admin HTTP on `listen.metrics`: `GET /metrics` (Prometheus text) and
//! `GET /healthz` (200 "ok", 503 "draining").
//!
//! hyper does the HTTP/1.1; this module bounds what a client may cost: header
//! size, time to send headers, connection lifetime and concurrent connections.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// Request line plus headers; a scrape needs a few hundred bytes. hyper's
/// read buffer cannot go below 8 KiB, so that is the cap.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// A client has this long to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Hard cap on one connection, keep-alive included, so a client that stops
/// reading its response cannot hold a slot forever.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// The exporter drains histogram buffers on upkeep; without scrapes they would grow.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Run before each render so the media plane can publish per-worker sums.
pub type Collector = Box<dyn Fn() + Send + Sync>;

pub struct AdminState {
    pub handle: PrometheusHandle,
    pub collectors: Vec<Collector>,
    /// Set when the SBC starts draining; `/healthz` then answers 503 so a
    /// load balancer stops sending new work.
    pub draining: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin listener {addr:?}: accept failed: {source}")]
    Accept {
        addr: Option<SocketAddr>,
        source: io::Error,
    },
}

/// Serves until `shutdown` is cancelled, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    let state = Arc::new(state);
    let local = listener.local_addr().ok();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tracker = TaskTracker::new();
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_header_size(MAX_HEADER_BYTES);

    let result = loop {
        // Take a slot before accepting: at the cap, clients queue in the
        // kernel backlog instead of costing us a task each.
        let permit = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            _ = upkeep.tick() => { state.handle.run_upkeep(); continue; }
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_transient(&e) => {
                    // Out of descriptors or a client gone before accept: back
                    // off briefly rather than spin or give up the listener.
                    warn!(error = %e, "admin accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(source) => break Err(AdminError::Accept { addr: local, source }),
            },
        };
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, &req)) }
            }),
        );
        tracker.spawn(async move {
            let _permit = permit;
            let mut conn = std::pin::pin!(conn);
            let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::pin!(lifetime);
            let outcome = tokio::select! {
                r = conn.as_mut() => r,
                () = &mut lifetime => { debug!(%peer, "admin connection reached its lifetime"); return; }
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        r = conn.as_mut() => r,
                        () = &mut lifetime => return,
                    }
                }
            };
            if let Err(e) = outcome {
                debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    };
    tracker.close();
    tracker.wait().await;
    result
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 /* ENFILE */ | 24 /* EMFILE */))
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut rsp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        rsp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return rsp;
    }
    match req.uri().path() {
        "/metrics" => {
            for collect in &state.collectors {
                collect();
            }
            let mut rsp = Response::new(Full::new(Bytes::from(state.handle.render())));
            rsp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
            rsp
        }
        "/healthz" if state.draining.load(Ordering::Relaxed) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}
