//! Mutual TLS on the Teams listener (TDR-SIG-04/-05): a client without a certificate, with one
//! for a name not in `peer_names`, or from another CA is refused during the handshake, and
//! /metrics says why. The client is a rustls test peer: stunnel cannot be made to send no
//! certificate while the listener requires one and still report the refusal distinctly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPTIONS: &str = "OPTIONS sip:sbc.example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:sbc.example.test>\r\nCall-ID: tls-refusal-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

fn roots(certs: &Certs) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.path("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn client(
    certs: &Certs,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> tokio_rustls::TlsConnector {
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots(certs));
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn identity_from(
    certs: &Certs,
    cert: &str,
    key: &str,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = CertificateDer::pem_file_iter(certs.path(cert))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    (
        chain,
        PrivateKeyDer::from_pem_file(certs.path(key)).unwrap(),
    )
}

/// Connects, sends OPTIONS and returns what came back: a SIP answer, or None when the server
/// refused (handshake error, alert or close before any answer).
async fn try_options(d: &Daemon, connector: tokio_rustls::TlsConnector) -> Option<String> {
    let tcp = tokio::net::TcpStream::connect(d.addrs.teams_tls)
        .await
        .unwrap();
    options_over(tcp, connector).await
}

/// The same from a chosen loopback source address.
async fn try_options_from(
    d: &Daemon,
    source: &str,
    connector: tokio_rustls::TlsConnector,
) -> Option<String> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(d.addrs.teams_tls).await.unwrap();
    options_over(tcp, connector).await
}

async fn options_over(
    tcp: tokio::net::TcpStream,
    connector: tokio_rustls::TlsConnector,
) -> Option<String> {
    let name = ServerName::try_from("sbc.example.test").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return None;
    };
    // With TLS 1.3 the client's side of the handshake ends before the server has judged the
    // client certificate, so the refusal arrives as an alert on the first read.
    if tls.write_all(OPTIONS.as_bytes()).await.is_err() {
        return None;
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(_) => None,
        Err(_) => panic!("no answer and no refusal within 5 s"),
    }
}

fn failed(d: &Daemon, reason: &str) -> f64 {
    metric(
        &d.metrics(),
        "drawbridge_tls_handshakes_total",
        &[("side", "teams"), ("outcome", "failed"), ("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_outside_teams_allow_are_closed_before_the_handshake_tdr_sig_08() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000)
        .replace("allow = [\"127.0.0.0/8\"]", "allow = [\"127.0.0.2/32\"]");
    assert!(teams.contains("127.0.0.2/32"), "{teams}");
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    let teams_identity = || {
        client(
            &certs,
            Some(identity_from(&certs, "teams.crt", "teams.key")),
        )
    };

    // From inside the list, with a good certificate: answered.
    let ok = try_options_from(&d, "127.0.0.2", teams_identity()).await;
    assert!(
        ok.as_deref()
            .is_some_and(|r| r.starts_with("SIP/2.0 200 OK")),
        "{ok:?}"
    );
    // From outside it, the same certificate does not help: closed, counted, no handshake.
    assert_eq!(
        try_options_from(&d, "127.0.0.3", teams_identity()).await,
        None,
        "accepted from outside [teams] allow"
    );
    wait_for("source_not_allowed counted", Duration::from_secs(5), || {
        let refused = metric(
            &d.metrics(),
            "drawbridge_transport_errors_total",
            &[("transport", "tls"), ("reason", "source_not_allowed")],
        );
        (refused >= 1.0).then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_listener_requires_a_client_certificate_tdr_sig_04() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;

    // The accepted case first, so a refusal below cannot be a broken listener.
    let ok = try_options(
        &d,
        client(
            &certs,
            Some(identity_from(&certs, "teams.crt", "teams.key")),
        ),
    )
    .await;
    assert!(
        ok.as_deref()
            .is_some_and(|r| r.starts_with("SIP/2.0 200 OK")),
        "{ok:?}"
    );

    assert_eq!(
        try_options(&d, client(&certs, None)).await,
        None,
        "accepted without a client certificate"
    );
    wait_for("no_certificate counted", Duration::from_secs(5), || {
        (failed(&d, "no_certificate") >= 1.0).then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_for_a_name_not_in_peer_names_is_refused_tdr_sig_05() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    // Same CA, but the certificate names the SBC, not a Microsoft proxy.
    let r = try_options(
        &d,
        client(
            &certs,
            Some(identity_from(&certs, "server.crt", "server.key")),
        ),
    )
    .await;
    assert_eq!(
        r, None,
        "accepted a certificate whose names are not in peer_names"
    );
    wait_for("name_mismatch counted", Duration::from_secs(5), || {
        (failed(&d, "name_mismatch") >= 1.0).then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_is_refused() {
    let certs = Certs::new("sbc.example.test");
    let other = Certs::new("other.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    // A Microsoft-named certificate, but issued by a CA the SBC does not trust.
    let r = try_options(
        &d,
        client(
            &certs,
            Some(identity_from(&other, "teams.crt", "teams.key")),
        ),
    )
    .await;
    assert_eq!(r, None, "accepted a certificate from an untrusted CA");
    wait_for("unknown_ca counted", Duration::from_secs(5), || {
        (failed(&d, "unknown_ca") >= 1.0).then_some(())
    })
    .await;
    d.stop().await;
}

/// Sends one request over an accepted Teams connection and returns the answer's first line.
async fn teams_request(d: &Daemon, certs: &Certs, request: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(d.addrs.teams_tls)
        .await
        .unwrap();
    let name = ServerName::try_from("sbc.example.test").unwrap();
    let connector = client(certs, Some(identity_from(certs, "teams.crt", "teams.key")));
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

fn invite(host: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:+15550100@{host};user=phone SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:+15550199@sip.pstnhub.microsoft.com;user=phone>;tag=t1\r\nTo: <sip:+15550100@{host};user=phone>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:sip.pstnhub.microsoft.com:5061;transport=tls>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_for_an_unknown_tenant_fqdn_gets_404_tdr_inv_09() {
    let certs = Certs::new("sbc.example.test");
    let teams = teams_section("sip3.pstnhub.microsoft.com", "127.0.0.1:9", 60, 1000);
    let d = Daemon::start(&lab_config(&certs, &teams)).await;
    let unknown = teams_request(&d, &certs, &invite("nobody.sbc.example.test", "ten-1")).await;
    assert_eq!(unknown, "SIP/2.0 404 Not Found - unknown tenant");
    // A configured tenant is not refused as unknown (calls themselves come with the B2BUA).
    let known = teams_request(&d, &certs, &invite("CUSTOMER1.sbc.example.test", "ten-2")).await;
    assert!(!known.starts_with("SIP/2.0 404"), "{known}");
    let m = d.metrics();
    assert!(
        metric(&m, "drawbridge_sip_unknown_tenant_total", &[]) >= 1.0,
        "unknown tenant not counted"
    );
    d.stop().await;
}
