//! The binary as an operator runs it: `drawbridge run` on the built-in lab config creates its
//! development certificates, serves /healthz, answers OPTIONS, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::peers::wait_tcp_listening;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_config_makes_dev_certs_serves_and_stops_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let log = cwd.path().join("drawbridge.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .arg("run")
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
