//! The admin HTTP endpoint over real TCP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use drawbridge::admin::{self, AdminState, Collector};
use drawbridge::dns::SipTransport;
use drawbridge::metrics::{self as m, Direction, SipCounters};
use drawbridge::sip::Method;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The metrics recorder is process-global: one install per test binary.
fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| m::install().unwrap()).clone()
}

struct Admin {
    addr: SocketAddr,
    draining: Arc<AtomicBool>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), admin::AdminError>>,
}

async fn start(collectors: Vec<Collector>) -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let draining = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let state = AdminState {
        handle: handle(),
        collectors,
        draining: Arc::clone(&draining),
    };
    let task = tokio::spawn(admin::serve(listener, state, shutdown.clone()));
    Admin {
        addr,
        draining,
        shutdown,
        task,
    }
}

/// Sends raw bytes, reads until the server closes; returns (status, body).
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let io = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .expect("admin server did not answer within 10 s");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head:?}"));
    (status, body.to_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: sbc\r\nConnection: close\r\n\r\n");
    exchange(addr, req.as_bytes()).await
}

#[tokio::test]
async fn metrics_shows_counters_and_collector_values() {
    let published = Arc::new(AtomicU64::new(0));
    let source = Arc::clone(&published);
    let collector: Collector = Box::new(move || {
        // What the media plane does on scrape: publish the sum of its workers.
        metrics::counter!(m::MEDIA_PACKETS, "direction" => "teams_to_trunk")
            .absolute(source.load(Ordering::Relaxed));
    });
    let admin = start(vec![collector]).await;
    let counters = SipCounters::new();
    counters
        .message(Direction::In, SipTransport::Tls, &Method::Options, None)
        .increment(3);
    published.store(4242, Ordering::Relaxed);

    let (status, body) = get(admin.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            r#"drawbridge_sip_messages_total{direction="in",transport="tls",method="OPTIONS",status_class="req"} 3"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"drawbridge_media_packets_total{direction="teams_to_trunk"} 4242"#),
        "{body}"
    );

    // The collector runs on every scrape, not once.
    published.store(4300, Ordering::Relaxed);
    let (_, body) = get(admin.addr, "/metrics").await;
    assert!(
        body.contains(r#"drawbridge_media_packets_total{direction="teams_to_trunk"} 4300"#),
        "{body}"
    );
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn healthz_turns_503_when_draining() {
    let admin = start(Vec::new()).await;
    assert_eq!(get(admin.addr, "/healthz").await, (200, "ok\n".to_owned()));
    admin.draining.store(true, Ordering::Relaxed);
    assert_eq!(
        get(admin.addr, "/healthz").await,
        (503, "draining\n".to_owned())
    );
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_path_is_404_and_other_methods_405() {
    let admin = start(Vec::new()).await;
    assert_eq!(get(admin.addr, "/admin").await.0, 404);
    let (status, _) = exchange(
        admin.addr,
        b"POST /metrics HTTP/1.1\r\nHost: sbc\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn oversized_request_headers_are_refused() {
    let admin = start(Vec::new()).await;
    let big = "a".repeat(admin::MAX_HEADER_BYTES + 1024);
    let req =
        format!("GET /metrics HTTP/1.1\r\nHost: sbc\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let (status, _) = exchange(admin.addr, req.as_bytes()).await;
    assert_eq!(status, 431);
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn client_that_never_finishes_its_headers_is_dropped() {
    let admin = start(Vec::new()).await;
    let mut s = TcpStream::connect(admin.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: sb")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server must close within its header timeout (plus slack), not hang.
    let closed = tokio::time::timeout(
        admin::HEADER_READ_TIMEOUT + Duration::from_secs(5),
        s.read_to_end(&mut buf),
    )
    .await;
    assert!(closed.is_ok(), "slow client still connected");
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let admin = start(Vec::new()).await;
    assert_eq!(get(admin.addr, "/healthz").await.0, 200);
    admin.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), admin.task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(admin.addr).await.is_err());
}
