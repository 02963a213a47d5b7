//! A real DNS server for tests: Debian's dnsmasq (package `dnsmasq-base`) as a
//! child process on 127.0.0.1 and a free port, serving records given on its
//! command line. Stopped by PID when the guard drops.
//!
//! Include with `#[path = "support/dnsmasq.rs"] mod dnsmasq;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const PACKAGE_HINT: &str = "dnsmasq not found: these tests need a real DNS server; \
     install the Debian package `dnsmasq-base` (apt-get install -y dnsmasq-base)";

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
}

type SharedLog = Arc<(Mutex<Log>, Condvar)>;

/// A running dnsmasq; killed (by its PID) and reaped on drop.
pub(crate) struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    log: SharedLog,
}

fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("dnsmasq"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{PACKAGE_HINT}"))
}

/// A port free on 127.0.0.1 for both UDP and TCP right now. dnsmasq may still
/// lose a race for it; `start` retries with another port then.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP+TCP port on 127.0.0.1 after 50 tries");
}

impl Dnsmasq {
    /// Starts dnsmasq authoritative-only for `local_domain` (unknown names
    /// there get NXDOMAIN, nothing is forwarded), with `records` such as
    /// `--srv-host=...`, logging every query.
    pub(crate) fn start(local_domain: &str, records: &[String]) -> Dnsmasq {
        let binary = find_binary();
        let mut last_output = Vec::new();
        for _ in 0..5 {
            match Self::try_start(&binary, local_domain, records) {
                Ok(server) => return server,
                Err(lines) => last_output = lines,
            }
        }
        panic!(
            "dnsmasq did not start; its output:\n{}",
            last_output.join("\n")
        );
    }

    fn try_start(
        binary: &Path,
        local_domain: &str,
        records: &[String],
    ) -> Result<Dnsmasq, Vec<String>> {
        let port = free_port();
        let mut child = Command::new(binary)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-negcache",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--pid-file=",
                "--log-facility=-",
                "--log-queries",
                "--local-ttl=3600",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--local=/{local_domain}/"))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));

        let log: SharedLog = Arc::default();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lock, cvar) = &*sink;
                lock.lock().unwrap().lines.push(line);
                cvar.notify_all();
            }
            let (lock, cvar) = &*sink;
            lock.lock().unwrap().closed = true;
            cvar.notify_all();
        });

        let server = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        // dnsmasq logs "started" after it has bound its sockets; a bind
        // failure ends the process (closing stderr) before that.
        if server.wait_for_log("started, version", Duration::from_secs(10)) {
            Ok(server)
        } else {
            Err(server.lines())
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// Query log lines (`query[SRV] _sip._tcp.x.test from 127.0.0.1`).
    pub(crate) fn queries(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter_map(|l| l.find("query[").map(|i| l[i..].to_owned()))
            .collect()
    }

    /// Blocks until a log line contains `needle`; false on timeout or exit.
    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.log;
        let guard = lock.lock().unwrap();
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |log| {
                !log.closed && !log.lines.iter().any(|l| l.contains(needle))
            })
            .unwrap();
        guard.lines.iter().any(|l| l.contains(needle))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
