//! UDP and TCP transports over real loopback sockets: stream framing,
//! keepalive, limits, timeouts, and where sends go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use drawbridge::sip::transport::{
    Side, Target, TransportError, TransportKind, TransportSettings, Transports,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

#[path = "support/transport_sbc.rs"]
mod transport_sbc;
use transport_sbc::{Sbc, WAIT};

/// The transports with trunk-side UDP and TCP listeners, after `tune` adjusts the settings.
fn start_trunk(tune: impl FnOnce(&mut TransportSettings)) -> Sbc {
    let mut settings = TransportSettings {
        trunk_udp: Some("127.0.0.1:0".parse().unwrap()),
        trunk_tcp: Some("127.0.0.1:0".parse().unwrap()),
        ..TransportSettings::default()
    };
    tune(&mut settings);
    Sbc::start(settings, None)
}

/// What these tests ask of the harness beyond the shared part.
trait TrunkSide {
    fn addr(&self, kind: TransportKind) -> SocketAddr;
    /// Waits (bounded) for a transport error counter to reach `want`.
    async fn errors(&self, transport: &str, reason: &str, want: u64) -> u64;
}

impl TrunkSide for Sbc {
    fn addr(&self, kind: TransportKind) -> SocketAddr {
        self.transports.local_addr(kind, Side::Trunk).unwrap()
    }

    async fn errors(&self, transport: &str, reason: &str, want: u64) -> u64 {
        let labels = [("transport", transport), ("reason", reason)];
        self.counter_reaches("drawbridge_transport_errors_total", &labels, want)
            .await
    }
}

fn request(call_id: &str, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:agent@cc.example.test SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:agent@cc.example.test>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads until EOF or error, bounded; returns whether the peer closed.
async fn closed_by_peer(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn tcp_two_messages_in_one_write_arrive_as_two() {
    let mut sbc = start_trunk(|_| {});
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    let (first, second) = (request("one", "hello"), request("two", "world!"));
    tcp.write_all(&[first.clone(), second.clone()].concat())
        .await
        .unwrap();

    let a = sbc.next_incoming().await;
    let b = sbc.next_incoming().await;
    assert_eq!((a.data, b.data), (Bytes::from(first), Bytes::from(second)));
    assert_eq!(a.transport, TransportKind::Tcp);
    assert_eq!(a.source, tcp.local_addr().unwrap());
    assert_eq!(a.local, sbc.addr(TransportKind::Tcp));
    assert_eq!(a.conn, b.conn);
    assert!(a.conn.is_some());
}

#[tokio::test]
async fn tcp_message_split_byte_by_byte_arrives_whole() {
    let mut sbc = start_trunk(|_| {});
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let message = request("bytes", "split into single octets");
    for byte in &message {
        tcp.write_all(&[*byte]).await.unwrap();
        tcp.flush().await.unwrap();
    }
    assert_eq!(sbc.next_incoming().await.data, Bytes::from(message));
    assert!(sbc.incoming.try_recv().is_err(), "exactly one message");
}

#[tokio::test]
async fn tcp_double_crlf_ping_is_answered_with_single_crlf_rfc5626() {
    let mut sbc = start_trunk(|_| {});
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    tcp.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    // The connection stays usable and nothing was handed to the core.
    assert!(sbc.incoming.try_recv().is_err());
    tcp.write_all(&request("after-ping", "")).await.unwrap();
    assert_eq!(
        sbc.next_incoming().await.data,
        Bytes::from(request("after-ping", ""))
    );
}

#[tokio::test]
async fn tcp_oversize_message_closes_the_connection() {
    let mut sbc = start_trunk(|s| s.max_message_bytes = 1024);
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    let big = request("big", &"x".repeat(2000));
    // The peer may reset while we still write: ignore that.
    let _ = tcp.write_all(&big).await;
    assert!(closed_by_peer(&mut tcp).await);
    assert_eq!(sbc.errors("tcp", "too_large", 1).await, 1);
    assert!(sbc.incoming.try_recv().is_err());
}

#[tokio::test]
async fn tcp_idle_connection_is_closed_after_idle_timeout() {
    let idle = Duration::from_millis(300);
    let sbc = start_trunk(|s| s.idle_timeout = idle);
    let opened = tokio::time::Instant::now();
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    assert!(closed_by_peer(&mut tcp).await);
    assert!(opened.elapsed() >= idle, "closed before the idle timeout");
    assert_eq!(sbc.errors("tcp", "idle_timeout", 1).await, 1);
}

#[tokio::test]
async fn tcp_connections_above_the_cap_are_refused() {
    let mut sbc = start_trunk(|s| s.max_connections = 1);
    let mut first = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    first.write_all(&request("first", "")).await.unwrap();
    sbc.next_incoming().await;
    let mut second = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    assert!(closed_by_peer(&mut second).await);
    assert_eq!(sbc.errors("tcp", "connection_limit", 1).await, 1);
    // The first connection is unaffected.
    first.write_all(&request("still", "")).await.unwrap();
    assert_eq!(
        sbc.next_incoming().await.data,
        Bytes::from(request("still", ""))
    );
}

#[tokio::test]
async fn tcp_response_goes_back_on_the_request_connection() {
    let mut sbc = start_trunk(|_| {});
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    tcp.write_all(&request("req", "")).await.unwrap();
    let incoming = sbc.next_incoming().await;
    let response = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    let target = Target {
        transport: TransportKind::Tcp,
        addr: incoming.source,
        conn: incoming.conn,
        server_name: None,
        side: Side::Trunk,
    };
    let used = sbc
        .transports
        .send(&target, Bytes::from_static(response))
        .await
        .unwrap();
    assert_eq!(used, incoming.conn);
    let mut got = vec![0u8; response.len()];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, response);
}

#[tokio::test]
async fn tcp_response_opens_a_new_connection_to_sent_by_when_the_original_is_gone() {
    let mut sbc = start_trunk(|_| {});
    let mut tcp = TcpStream::connect(sbc.addr(TransportKind::Tcp))
        .await
        .unwrap();
    tcp.write_all(&request("gone", "")).await.unwrap();
    let incoming = sbc.next_incoming().await;
    drop(tcp);
    // Wait until the SBC noticed the close.
    let deadline = tokio::time::Instant::now() + WAIT;
    while sbc.transports.connection_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sbc.transports.connection_count(), 0);

    // RFC 3261 §18.2.2: connection gone, so connect to the Via sent-by.
    let sent_by = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target {
        transport: TransportKind::Tcp,
        addr: sent_by.local_addr().unwrap(),
        conn: incoming.conn,
        server_name: None,
        side: Side::Trunk,
    };
    let response = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    let used = sbc
        .transports
        .send(&target, Bytes::from_static(response))
        .await
        .unwrap();
    assert_ne!(used, incoming.conn);
    let (mut peer, _) = tokio::time::timeout(WAIT, sent_by.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = vec![0u8; response.len()];
    tokio::time::timeout(WAIT, peer.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, response);

    // A request arriving on that new connection is delivered too, and a
    // second send to the same address reuses it.
    let again = sbc
        .transports
        .send(
            &Target {
                conn: None,
                ..target
            },
            Bytes::from_static(response),
        )
        .await
        .unwrap();
    assert_eq!(again, used);
    peer.write_all(&request("back", "")).await.unwrap();
    assert_eq!(sbc.next_incoming().await.conn, used);
}

#[tokio::test]
async fn tcp_connect_failure_is_reported_with_the_address() {
    let sbc = start_trunk(|_| {});
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let target = Target {
        transport: TransportKind::Tcp,
        addr,
        conn: None,
        server_name: None,
        side: Side::Trunk,
    };
    let err = sbc
        .transports
        .send(&target, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Connect { addr: a, .. } if a == addr),
        "{err}"
    );
}

#[tokio::test]
async fn udp_datagram_is_delivered_with_its_source() {
    let mut sbc = start_trunk(|_| {});
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let message = request("udp", "over udp");
    peer.send_to(&message, sbc.addr(TransportKind::Udp))
        .await
        .unwrap();
    let incoming = sbc.next_incoming().await;
    assert_eq!(incoming.data, Bytes::from(message));
    assert_eq!(incoming.transport, TransportKind::Udp);
    assert_eq!(incoming.source, peer.local_addr().unwrap());
    assert_eq!(incoming.local, sbc.addr(TransportKind::Udp));
    assert_eq!(incoming.conn, None);
}

#[tokio::test]
async fn udp_send_leaves_from_the_listening_port() {
    let sbc = start_trunk(|_| {});
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = Target {
        transport: TransportKind::Udp,
        addr: peer.local_addr().unwrap(),
        conn: None,
        server_name: None,
        side: Side::Trunk,
    };
    let message = request("out", "");
    assert_eq!(
        sbc.transports
            .send(&target, Bytes::from(message.clone()))
            .await
            .unwrap(),
        None
    );
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], &message[..]);
    assert_eq!(from, sbc.addr(TransportKind::Udp));
}

#[tokio::test]
async fn start_names_the_address_it_cannot_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let settings = TransportSettings {
        trunk_tcp: Some(addr),
        ..TransportSettings::default()
    };
    let err = Transports::start(settings, None, CancellationToken::new()).unwrap_err();
    assert!(matches!(err, TransportError::Bind { addr: a, .. } if a == addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
