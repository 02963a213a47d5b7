//! Teams-side TLS over real loopback sockets: mutual TLS acceptance and
//! refusal (with the counted reason), TDR-SIG-02 suites, connection reuse and
//! outbound server-name verification. Peers are tokio-rustls clients and
//! servers; certificates come from `dev_certs` in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use drawbridge::sip::transport::dev_certs::{DevCertPaths, ensure_dev_certs};
use drawbridge::sip::transport::{
    HandshakeFailure, Side, Target, TlsMaterial, TransportError, TransportKind, TransportSettings,
    Transports,
};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

const BASE: &str = "sbc.example.test";
const PROXY: &str = "sip.pstnhub.microsoft.com";

/// Our CA, server and lab-Teams certificates, plus a second CA whose
/// "teams" certificate carries the right names but the wrong issuer.
struct Certs {
    ours: DevCertPaths,
    foreign: DevCertPaths,
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<(tempfile::TempDir, Certs)> = OnceLock::new();
    &CERTS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let ours = ensure_dev_certs(&dir.path().join("ours"), BASE).unwrap();
            let foreign = ensure_dev_certs(&dir.path().join("foreign"), "other.test").unwrap();
            (dir, Certs { ours, foreign })
        })
        .1
}

fn material(peer_names: &[&str]) -> TlsMaterial {
    let c = &certs().ours;
    TlsMaterial::load(
        &c.server_cert,
        &c.server_key,
        &c.ca_cert,
        peer_names.iter().map(|n| (*n).to_owned()).collect(),
    )
    .unwrap()
}

#[path = "support/transport_sbc.rs"]
mod transport_sbc;
use transport_sbc::{Sbc, WAIT};

/// The transports with the Teams TLS listener, accepting clients named in `peer_names`.
fn start_teams(peer_names: &[&str]) -> Sbc {
    let settings = TransportSettings {
        teams_tls: Some("127.0.0.1:0".parse().unwrap()),
        handshake_timeout: Duration::from_secs(5),
        ..TransportSettings::default()
    };
    Sbc::start(settings, Some(material(peer_names)))
}

/// What these tests ask of the harness beyond the shared part.
trait TeamsSide {
    fn teams_addr(&self) -> SocketAddr;
    /// Waits (bounded) until the handshake counter with these labels reaches `want`.
    async fn handshakes(&self, direction: &str, outcome: &str, reason: &str, want: u64) -> u64;
}

impl TeamsSide for Sbc {
    fn teams_addr(&self) -> SocketAddr {
        self.transports
            .local_addr(TransportKind::Tls, Side::Teams)
            .unwrap()
    }

    async fn handshakes(&self, direction: &str, outcome: &str, reason: &str, want: u64) -> u64 {
        let labels = [
            ("side", "teams"),
            ("direction", direction),
            ("outcome", outcome),
            ("reason", reason),
        ];
        self.counter_reaches("drawbridge_tls_handshakes_total", &labels, want)
            .await
    }
}

fn read_certs(path: &PathBuf) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn read_key(path: &PathBuf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap()
}

fn roots(ca: &PathBuf) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca) {
        roots.add(cert).unwrap();
    }
    Arc::new(roots)
}

/// A lab Teams proxy as TLS client; `identity` is (cert, key) or none.
fn proxy_client(identity: Option<(&PathBuf, &PathBuf)>) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&certs().ours.ca_cert));
    match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert), read_key(key))
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

async fn connect(
    config: ClientConfig,
    addr: SocketAddr,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

fn options(branch: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{BASE}:5061;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{PROXY}>;tag=1\r\nTo: <sip:{BASE}>\r\n\
         Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// After a refused handshake the client sees an alert or a close: it never
/// gets to exchange data. (In TLS 1.3 the client finishes first and learns
/// of the refusal on its first read.)
async fn assert_refused(result: std::io::Result<TlsStream<TcpStream>>) {
    if let Ok(mut tls) = result {
        let _ = tls.write_all(&options("refused")).await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT, tls.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "refused connection still carries data"
        );
    }
}

#[tokio::test]
async fn teams_mtls_accepts_proxy_certificate_and_delivers_message_with_peer_name() {
    let mut sbc = start_teams(&[PROXY, "sip2.pstnhub.microsoft.com"]);
    let c = &certs().ours;
    // TDR-MT-05: any tenant FQDN as SNI gets our (wildcard) certificate.
    let mut tls = connect(
        proxy_client(Some((&c.teams_cert, &c.teams_key))),
        sbc.teams_addr(),
        &format!("t1.{BASE}"),
    )
    .await
    .unwrap();
    tls.write_all(&options("accept")).await.unwrap();

    let incoming = sbc.next_incoming().await;
    assert_eq!(incoming.data, Bytes::from(options("accept")));
    assert_eq!(incoming.transport, TransportKind::Tls);
    assert_eq!(incoming.side, Side::Teams);
    assert_eq!(incoming.peer_name.as_deref(), Some(PROXY));
    assert_eq!(incoming.source, tls.get_ref().0.local_addr().unwrap());
    assert!(incoming.conn.is_some());
    assert_eq!(sbc.handshakes("inbound", "ok", "none", 1).await, 1);
}

#[tokio::test]
async fn teams_mtls_serves_the_same_certificate_for_any_sni_tdr_mt_05() {
    let sbc = start_teams(&[PROXY]);
    let c = &certs().ours;
    for sni in [format!("t1.{BASE}"), format!("t2.{BASE}"), BASE.to_owned()] {
        let tls = connect(
            proxy_client(Some((&c.teams_cert, &c.teams_key))),
            sbc.teams_addr(),
            &sni,
        )
        .await
        .unwrap();
        let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(served, read_certs(&c.server_cert)[0], "SNI {sni}");
    }
}

#[tokio::test]
async fn teams_mtls_refuses_client_without_certificate() {
    let mut sbc = start_teams(&[PROXY]);
    assert_refused(connect(proxy_client(None), sbc.teams_addr(), BASE).await).await;
    assert_eq!(
        sbc.handshakes("inbound", "failed", "no_certificate", 1)
            .await,
        1
    );
    assert_eq!(sbc.handshakes("inbound", "ok", "none", 0).await, 0);
    assert!(sbc.incoming.try_recv().is_err());
}

#[tokio::test]
async fn teams_mtls_refuses_certificate_without_a_configured_peer_name() {
    // The lab certificate chains fine but names sip*.pstnhub.microsoft.com.
    let mut sbc = start_teams(&["sip.pstnhub.gov.teams.microsoft.us"]);
    let c = &certs().ours;
    assert_refused(
        connect(
            proxy_client(Some((&c.teams_cert, &c.teams_key))),
            sbc.teams_addr(),
            BASE,
        )
        .await,
    )
    .await;
    assert_eq!(
        sbc.handshakes("inbound", "failed", "name_mismatch", 1)
            .await,
        1
    );
    assert!(sbc.incoming.try_recv().is_err());
}

#[tokio::test]
async fn teams_mtls_refuses_certificate_from_another_ca() {
    let mut sbc = start_teams(&[PROXY]);
    let f = &certs().foreign;
    assert_refused(
        connect(
            proxy_client(Some((&f.teams_cert, &f.teams_key))),
            sbc.teams_addr(),
            BASE,
        )
        .await,
    )
    .await;
    assert_eq!(
        sbc.handshakes("inbound", "failed", "unknown_ca", 1).await,
        1
    );
    assert!(sbc.incoming.try_recv().is_err());
}

/// A client restricted to TLS 1.2 and one cipher suite.
fn tls12_client(suite: rustls::CipherSuite) -> ClientConfig {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites.retain(|s| s.suite() == suite);
    let c = &certs().ours;
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&c.ca_cert))
        .with_client_auth_cert(read_certs(&c.teams_cert), read_key(&c.teams_key))
        .unwrap()
}

#[tokio::test]
async fn tdr_sig_02_tls12_client_with_ecdhe_rsa_gcm_suites_is_accepted() {
    let mut sbc = start_teams(&[PROXY]);
    for suite in [
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ] {
        let mut tls = connect(tls12_client(suite), sbc.teams_addr(), BASE)
            .await
            .unwrap();
        let session = tls.get_ref().1;
        assert_eq!(
            session.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(session.negotiated_cipher_suite().unwrap().suite(), suite);
        tls.write_all(&options("tls12")).await.unwrap();
        assert_eq!(
            sbc.next_incoming().await.data,
            Bytes::from(options("tls12"))
        );
    }
}

#[tokio::test]
async fn tdr_sig_02_teams_side_refuses_suites_outside_the_list() {
    let sbc = start_teams(&[PROXY]);
    let suite = rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256;
    assert!(
        connect(tls12_client(suite), sbc.teams_addr(), BASE)
            .await
            .is_err()
    );
    assert_eq!(sbc.handshakes("inbound", "failed", "protocol", 1).await, 1);
}

#[tokio::test]
async fn send_reuses_the_tls_connection_a_teams_proxy_opened() {
    let mut sbc = start_teams(&[PROXY]);
    let c = &certs().ours;
    let mut tls = connect(
        proxy_client(Some((&c.teams_cert, &c.teams_key))),
        sbc.teams_addr(),
        BASE,
    )
    .await
    .unwrap();
    tls.write_all(&options("in")).await.unwrap();
    let incoming = sbc.next_incoming().await;

    // By source address (a response, or a request to where the proxy is).
    let by_addr = Target {
        transport: TransportKind::Tls,
        addr: incoming.source,
        conn: None,
        server_name: Some(PROXY.to_owned()),
        side: Side::Teams,
    };
    let used = sbc
        .transports
        .send(&by_addr, Bytes::from(options("out1")))
        .await
        .unwrap();
    assert_eq!(used, incoming.conn);
    // By the proxy's name at its IP, toward its listening port (TDR-SIG-03:
    // 5061) where nothing listens on loopback: only reuse can deliver it.
    let by_name = Target {
        addr: SocketAddr::new(incoming.source.ip(), 5061),
        ..by_addr
    };
    let used = sbc
        .transports
        .send(&by_name, Bytes::from(options("out2")))
        .await
        .unwrap();
    assert_eq!(used, incoming.conn);

    let mut expected = options("out1");
    expected.extend_from_slice(&options("out2"));
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(WAIT, tls.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected);
    assert_eq!(sbc.transports.connection_count(), 1);
}

/// A lab Teams proxy as TLS server that requires a client certificate from
/// our CA; returns its address and the first bytes plus peer names it saw.
async fn lab_proxy_server() -> (SocketAddr, mpsc::Receiver<(Vec<u8>, usize)>) {
    let c = &certs().ours;
    let verifier = rustls::server::WebPkiClientVerifier::builder(roots(&c.ca_cert))
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&c.teams_cert), read_key(&c.teams_key))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let acceptor = TlsAcceptor::from(Arc::new(config));
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let client_certs = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
                let mut buf = vec![0u8; 4096];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                buf.truncate(n);
                let _ = tx.send((buf, client_certs)).await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn outbound_tls_presents_our_certificate_and_verifies_the_proxy_name() {
    let sbc = start_teams(&[PROXY]);
    let (addr, mut seen) = lab_proxy_server().await;
    let target = Target {
        transport: TransportKind::Tls,
        addr,
        conn: None,
        server_name: Some(PROXY.to_owned()),
        side: Side::Teams,
    };
    sbc.transports
        .send(&target, Bytes::from(options("dial")))
        .await
        .unwrap()
        .unwrap();
    let (bytes, client_certs) = tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, options("dial"));
    assert_eq!(
        client_certs, 1,
        "TDR-SIG-04: the SBC presents its certificate as client"
    );
    assert_eq!(sbc.handshakes("outbound", "ok", "none", 1).await, 1);

    let wrong = Target {
        server_name: Some("sip.example.net".to_owned()),
        ..target
    };
    let err = sbc
        .transports
        .send(&wrong, Bytes::from(options("wrong")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Handshake {
                reason: HandshakeFailure::NameMismatch,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        sbc.handshakes("outbound", "failed", "name_mismatch", 1)
            .await,
        1
    );
}

#[tokio::test]
async fn teams_handshake_that_never_starts_is_dropped_after_the_timeout() {
    let settings = TransportSettings {
        teams_tls: Some("127.0.0.1:0".parse().unwrap()),
        handshake_timeout: Duration::from_millis(200),
        ..TransportSettings::default()
    };
    let sbc = Sbc::start(settings, Some(material(&[PROXY])));
    // TCP connects, but no ClientHello ever comes.
    let mut tcp = TcpStream::connect(sbc.teams_addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)));
    assert_eq!(sbc.handshakes("inbound", "failed", "timeout", 1).await, 1);
}

#[tokio::test]
async fn reloaded_certificate_is_served_to_new_handshakes_tdr_sig_06() {
    let mut sbc = start_teams(&[PROXY]);
    let (c, f) = (&certs().ours, &certs().foreign);
    let before = connect(
        proxy_client(Some((&c.teams_cert, &c.teams_key))),
        sbc.teams_addr(),
        BASE,
    )
    .await
    .unwrap();

    // The renewed server certificate (here from the other lab CA); client
    // certificates are still checked against our CA.
    let renewed = TlsMaterial::load(
        &f.server_cert,
        &f.server_key,
        &c.ca_cert,
        vec![PROXY.into()],
    )
    .unwrap();
    sbc.transports.reload_tls(renewed).unwrap();

    let mut roots = RootCertStore::empty();
    roots.add(read_certs(&f.ca_cert)[0].clone()).unwrap();
    let client = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(read_certs(&c.teams_cert), read_key(&c.teams_key))
        .unwrap();
    let after = connect(client, sbc.teams_addr(), "t1.other.test")
        .await
        .unwrap();
    assert_eq!(
        after.get_ref().1.peer_certificates().unwrap()[0],
        read_certs(&f.server_cert)[0]
    );
    // The connection made before the reload is still open and usable.
    let (_, session) = before.get_ref();
    assert_eq!(
        session.peer_certificates().unwrap()[0],
        read_certs(&c.server_cert)[0]
    );
    let mut before = before;
    before.write_all(&options("still-open")).await.unwrap();
    assert_eq!(
        sbc.next_incoming().await.data,
        Bytes::from(options("still-open"))
    );
}

#[tokio::test]
async fn trunk_tls_listener_needs_no_client_certificate() {
    let settings = TransportSettings {
        trunk_tls: Some("127.0.0.1:0".parse().unwrap()),
        ..TransportSettings::default()
    };
    let shutdown = CancellationToken::new();
    let (transports, mut incoming) =
        Transports::start(settings, Some(material(&[PROXY])), shutdown.clone()).unwrap();
    let addr = transports
        .local_addr(TransportKind::Tls, Side::Trunk)
        .unwrap();
    let mut tls = connect(proxy_client(None), addr, "localhost")
        .await
        .unwrap();
    tls.write_all(&options("trunk")).await.unwrap();
    let got = tokio::time::timeout(WAIT, incoming.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.side, Side::Trunk);
    assert_eq!(got.peer_name, None);
    assert_eq!(got.data, Bytes::from(options("trunk")));
    shutdown.cancel();
}
