//! Test harness: the daemon in-process on loopback, real peers (SIPp, stunnel) as child
//! processes stopped by PID, and waiting on events with timeouts (never sleep-and-hope).
// External peers run on the wall clock, not tokio's: deadlines here read the real time.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]

pub mod calls;
pub mod peers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drawbridge::{Server, config};
use tokio_util::sync::CancellationToken;

/// Test certificates: a CA, the SBC's server cert, and a "Teams" cert, made by the daemon's own
/// development-certificate code in a temporary directory.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new(base_domain: &str) -> Certs {
        let dir = tempfile::tempdir().unwrap();
        drawbridge::sip::transport::dev_certs::ensure_dev_certs(dir.path(), base_domain).unwrap();
        Certs { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Config text for an in-process daemon with every listener on port 0.
pub fn lab_config(certs: &Certs, extra: &str) -> String {
    format!(
        r#"
[sbc]
base_domain = "sbc.example.test"
[listen]
teams_tls = "127.0.0.1:0"
trunk_udp = "127.0.0.1:0"
trunk_tcp = "127.0.0.1:0"
metrics = "127.0.0.1:0"
[tls]
cert = "{cert}"
key = "{key}"
ca = "{ca}"
peer_names = ["sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com"]
[[tenant]]
fqdn = "customer1.sbc.example.test"
trunk = "cc1"
[[trunk]]
name = "cc1"
uri = "sip:127.0.0.1:5080;transport=udp"
allow = ["127.0.0.1/32"]
{extra}
"#,
        cert = certs.path("server.crt").display(),
        key = certs.path("server.key").display(),
        ca = certs.path("ca.crt").display(),
    )
}

/// A daemon running in this process.
pub struct Daemon {
    pub server: Option<Server>,
    pub shutdown: CancellationToken,
    pub addrs: drawbridge::LocalAddrs,
}

impl Daemon {
    pub async fn start(text: &str) -> Daemon {
        // Daemon logs go to the test's captured output: shown when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "debug".into()),
            )
            .with_test_writer()
            .try_init();
        let c = config::from_str(text, Path::new("test.toml"), Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let server = Server::start(c, shutdown.clone()).await.unwrap();
        let addrs = server.local_addrs().clone();
        Daemon {
            server: Some(server),
            shutdown,
            addrs,
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), s.stopped())
                .await
                .expect("daemon did not stop within 10 s");
        }
    }

    /// The Prometheus text from /metrics.
    pub fn metrics(&self) -> String {
        http_get(self.addrs.metrics, "/metrics").1
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A blocking HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sum of the samples of `name` whose labels contain every `label="value"` in `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            if n != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Polls `f` until it returns Some or `timeout` passes.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free port on 127.0.0.1 for a peer that must be told its port before it starts.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tests/sipp/NAME
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Waits for a child process to exit without blocking the runtime's threads.
pub async fn wait_exit(mut p: peers::Proc, timeout: Duration) -> (peers::Proc, i32) {
    tokio::task::spawn_blocking(move || {
        let code = p.wait_exit(timeout);
        (p, code)
    })
    .await
    .unwrap()
}

/// A `[teams]` section whose only proxy is at `addr` under `host`, port 5061.
pub fn teams_section(host: &str, addr: &str, interval_s: u64, timeout_ms: u64) -> String {
    teams_section_at(host, 5061, addr, interval_s, timeout_ms)
}

/// As `teams_section`, with the proxy's configured `port`. That port is in the proxy's
/// `drawbridge_teams_proxy_up{proxy="host:port"}` series, and daemons started by one test
/// binary share one process-wide metrics recorder: a port only one daemon names keeps its
/// series its own.
pub fn teams_section_at(
    host: &str,
    port: u16,
    addr: &str,
    interval_s: u64,
    timeout_ms: u64,
) -> String {
    format!(
        "[teams]\noptions_interval_s = {interval_s}\noptions_timeout_ms = {timeout_ms}\nallow = [\"127.0.0.0/8\"]\n[[teams.proxy]]\nhost = \"{host}\"\nport = {port}\naddress = \"{addr}\"\n"
    )
}
