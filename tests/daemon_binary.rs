//! The binary as an operator runs it: `drawbridge run` on the built-in lab config creates its
//! development certificates, serves /healthz, answers OPTIONS, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::peers::wait_tcp_listening;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_config_makes_dev_certs_serves_and_stops_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let log = cwd.path().join("drawbridge.log");
    // Started under a soft open-files limit of 256, as a shell with a small default would: the
    // daemon raises it to the hard limit (checked below).
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 256 && exec \"$0\" run",
            env!("CARGO_BIN_EXE_drawbridge"),
        ])
        .current_dir(cwd.path())
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(cwd.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let pid = child.id();
    let guard = scopeguard(pid);
    tokio::task::spawn_blocking(|| wait_tcp_listening("127.0.0.1:9090", Duration::from_secs(20)))
        .await
        .unwrap();
    for f in [
        "ca.crt",
        "server.crt",
        "server.key",
        "teams.crt",
        "teams.key",
    ] {
        assert!(
            cwd.path().join("certs/dev").join(f).exists(),
            "certs/dev/{f} not created"
        );
    }
    let (status, body) = http_get("127.0.0.1:9090".parse().unwrap(), "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft open-files limit not raised to the hard one: {open_files:?}"
    );

    // OPTIONS on the lab's trunk UDP port.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let opt = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbin1\r\nMax-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: bin-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    sock.send_to(opt.as_bytes(), "127.0.0.1:5060").unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200 OK"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let code = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    std::mem::forget(guard); // exited and reaped: its PID may be reused, never kill it now
    let stderr = std::fs::read_to_string(cwd.path().join("stderr.log")).unwrap_or_default();
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, Some(0), "exit code; log:\n{out}\n{stderr}");
    assert!(
        format!("{out}{stderr}").contains("not for production"),
        "no development-certificate warning:\n{out}{stderr}"
    );
}

/// Kills the daemon by PID if the test fails before it stops it.
struct KillOnDrop(u32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}
fn scopeguard(pid: u32) -> KillOnDrop {
    KillOnDrop(pid)
}

/// The certificate the Teams listener serves to a Teams client right now.
async fn served_certificate(certs: &std::path::Path, addr: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(certs.join("teams.crt"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs.join("teams.key")).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("sbc.example.test").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A config file on loopback with the dev certificates under `certs/`, no tenant or trunk,
/// a Teams proxy where nothing listens, and 1,000 media ports from `media`.
fn file_config(tls: u16, udp: u16, metrics: u16, media: u16) -> String {
    let last = media + 999;
    format!(
        "[sbc]\nbase_domain = \"sbc.example.test\"\n[listen]\nteams_tls = \"127.0.0.1:{tls}\"\ntrunk_udp = \"127.0.0.1:{udp}\"\nmetrics = \"127.0.0.1:{metrics}\"\n[tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\nca = \"certs/ca.crt\"\npeer_names = [\"sip.pstnhub.microsoft.com\"]\n[teams]\nallow = [\"127.0.0.0/8\"]\n[[teams.proxy]]\nhost = \"sip.pstnhub.microsoft.com\"\naddress = \"127.0.0.1:9\"\n[media]\nport_min = {media}\nport_max = {last}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_renewed_certificate_for_new_handshakes_tdr_sig_06() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(&certs, "sbc.example.test").unwrap();
    let (tls, udp, metrics) = (free_tcp_port(), free_udp_port(), free_tcp_port());
    let config = file_config(tls, udp, metrics, 41000);
    std::fs::write(dir.path().join("drawbridge.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .args(["run", "--config"])
        .arg(dir.path().join("drawbridge.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = scopeguard(child.id());
    let addr = format!("127.0.0.1:{tls}");
    let wait = addr.clone();
    tokio::task::spawn_blocking(move || wait_tcp_listening(&wait, Duration::from_secs(20)))
        .await
        .unwrap();
    let before = served_certificate(&certs, &addr).await;

    // Renewal: a new leaf from the same CA in place of the old files.
    std::fs::remove_file(certs.join("server.crt")).unwrap();
    std::fs::remove_file(certs.join("server.key")).unwrap();
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(&certs, "sbc.example.test").unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if served_certificate(&certs, &addr).await != before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still the old certificate 10 s after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stops_cleanly_on_sigterm(child, guard).await;
}

/// SIGTERM to the daemon, which must exit 0 (no call is up, so the drain ends at once).
async fn stops_cleanly_on_sigterm(mut child: std::process::Child, guard: KillOnDrop) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    std::mem::forget(guard); // reaped: its PID may be reused, never kill it now
    assert!(status.success(), "{status:?}");
}

/// An OPTIONS from 127.0.0.1 to the trunk-side UDP listener `to`; its status line, if an
/// answer comes within 300 ms.
async fn trunk_options(to: u16, n: u32) -> Option<String> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:127.0.0.1:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreload{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:cc@127.0.0.1>;tag=r{n}\r\nTo: <sip:127.0.0.1:{to}>\r\n\
         Call-ID: reload-{n}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), ("127.0.0.1", to))
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await;
    let n = got.ok()?.ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_owned)
}

/// SIGHUP reads the config file again: a trunk added to it is let in without a restart (its
/// source gets answers, where the trunk ACL dropped it before); a file that does not load is
/// refused with its reason in the log, and the running config stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_tenants_and_trunks_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(&certs, "sbc.example.test").unwrap();
    let (tls, udp, metrics) = (free_tcp_port(), free_udp_port(), free_tcp_port());
    let base = file_config(tls, udp, metrics, 42000);
    let file = dir.path().join("drawbridge.toml");
    std::fs::write(&file, &base).unwrap();
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "info")
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = scopeguard(child.id());
    let wait = format!("127.0.0.1:{tls}");
    tokio::task::spawn_blocking(move || wait_tcp_listening(&wait, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(
        trunk_options(udp, 0).await,
        None,
        "no trunk allows 127.0.0.1 yet"
    );

    let added = format!(
        "{base}[[tenant]]\nfqdn = \"t1.sbc.example.test\"\ntrunk = \"cc1\"\n[[trunk]]\nname = \"cc1\"\nuri = \"sip:127.0.0.1:5080;transport=udp\"\nallow = [\"127.0.0.1/32\"]\n"
    );
    std::fs::write(&file, &added).unwrap();
    let hup = || {
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
    };
    hup();
    let mut answered = None;
    for n in 1..30 {
        answered = trunk_options(udp, n).await;
        if answered.is_some() {
            break;
        }
    }
    assert_eq!(answered.as_deref(), Some("SIP/2.0 200 OK"));

    // A broken file: refused, said in the log with its line, and nothing changes.
    std::fs::write(&file, format!("{added}[[trunk]]\nname = 5\n")).unwrap();
    hup();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("config reload refused")) {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refusal.contains("drawbridge.toml"), "{refusal}");
    assert_eq!(
        trunk_options(udp, 99).await.as_deref(),
        Some("SIP/2.0 200 OK"),
        "the running config stays"
    );
    stops_cleanly_on_sigterm(child, guard).await;
}

/// Replaces `certs/server.crt` and its key with a certificate for the SBC's names that
/// expires at `not_after` (and is valid from 1975 on).
fn certificate_expiring_at(certs: &std::path::Path, not_after: std::time::SystemTime) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        "sbc.example.test".to_owned(),
        "*.sbc.example.test".to_owned(),
    ])
    .unwrap();
    params.not_after = not_after.into();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(certs.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(certs.join("server.key"), key.serialize_pem()).unwrap();
}

fn check_config(file: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// TDR-MON-01: Microsoft's dashboard warns 30 days before the SBC's certificate expires, and
/// Teams refuses it once expired (569008). The daemon says it first: a warning in its log, the
/// expiry on /metrics for an alert, and `check-config` refuses an expired certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_expiry_is_warned_of_in_the_log_on_metrics_and_by_check_config_tdr_mon_01()
 {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(&certs, "sbc.example.test").unwrap();
    // Ten days from now, in whole seconds: X.509 keeps no fraction.
    let now = std::time::SystemTime::now();
    let unix = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 10 * 86_400;
    let not_after = std::time::UNIX_EPOCH + Duration::from_secs(unix);
    certificate_expiring_at(&certs, not_after);
    let (tls, udp, metrics) = (free_tcp_port(), free_udp_port(), free_tcp_port());
    let file = dir.path().join("drawbridge.toml");
    std::fs::write(&file, file_config(tls, udp, metrics, 43000)).unwrap();

    let (code, said) = check_config(&file);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("in 9 days") && said.contains("needs renewing"),
        "{said}"
    );

    let log_path = dir.path().join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = scopeguard(child.id());
    // The metrics listener opens last of all: once it listens, the start is logged whole.
    let wait = format!("127.0.0.1:{metrics}");
    tokio::task::spawn_blocking(move || wait_tcp_listening(&wait, Duration::from_secs(20)))
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("TLS certificate expires soon"))
        .unwrap_or_else(|| panic!("no expiry warning in the log:\n{log}"));
    assert!(
        warning.contains("WARN") && warning.contains("days_left=9"),
        "{warning}"
    );
    let (status, body) = http_get(format!("127.0.0.1:{metrics}").parse().unwrap(), "/metrics");
    assert_eq!(status, 200);
    let gauge = body
        .lines()
        .find_map(|l| l.strip_prefix("drawbridge_tls_certificate_expiry_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no expiry gauge:\n{body}"));
    assert_eq!(gauge.trim().parse::<f64>().unwrap(), unix as f64);
    stops_cleanly_on_sigterm(child, guard).await;

    // Expired yesterday: Teams would refuse every call, so the check fails.
    certificate_expiring_at(&certs, now - Duration::from_secs(86_400));
    let (code, said) = check_config(&file);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("EXPIRED") && said.contains("1 day ago"),
        "{said}"
    );
}
