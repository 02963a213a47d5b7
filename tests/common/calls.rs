//! Calls with real peers: "Teams" is SIPp over TCP behind stunnel (mutual TLS both ways, as
//! Microsoft's proxies do), a contact-center trunk is SIPp over UDP. Message traces of every
//! SIPp are parsed back into messages so tests can check what each peer received.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::peers::{self, Proc, StunnelService};
use super::{Certs, free_tcp_port, free_udp_port, scenario};

/// Every SIPp run gets this: no test outlives it even if a peer goes silent.
pub const SIPP_TIMEOUT: &str = "30s";
/// Longest a whole call may take in these tests.
pub const CALL_WAIT: Duration = Duration::from_secs(40);

pub const TENANT1: &str = "customer1.sbc.example.test";
pub const TENANT2: &str = "customer2.sbc.example.test";
pub const PROXY1: &str = "sip.pstnhub.microsoft.com";
pub const PROXY2: &str = "sip2.pstnhub.microsoft.com";

/// One `[[tenant]]`.
pub struct Tenant<'a> {
    pub fqdn: &'a str,
    pub trunk: &'a str,
    pub max_calls: u32,
}

/// One `[[trunk]]` whose calls go to a SIPp on 127.0.0.1:`port` over UDP.
pub struct Trunk<'a> {
    pub name: &'a str,
    pub port: u16,
}

/// Config text for an in-process daemon on loopback with these tenants, trunks and Teams
/// proxies (host, address). The media range lies below the kernel's ephemeral ports, where
/// the free ports handed to SIPp come from.
pub fn config(
    certs: &Certs,
    tenants: &[Tenant<'_>],
    trunks: &[Trunk<'_>],
    proxies: &[(&str, String)],
    teams_extra: &str,
) -> String {
    let mut text = format!(
        r#"
[sbc]
base_domain = "sbc.example.test"
[listen]
teams_tls = "127.0.0.1:0"
trunk_udp = "127.0.0.1:0"
metrics = "127.0.0.1:0"
[tls]
cert = "{cert}"
key = "{key}"
ca = "{ca}"
peer_names = ["sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com"]
[media]
port_min = 20000
port_max = 29999
[teams]
options_interval_s = 180
allow = ["127.0.0.0/8"]
{teams_extra}
"#,
        cert = certs.path("server.crt").display(),
        key = certs.path("server.key").display(),
        ca = certs.path("ca.crt").display(),
    );
    for (host, addr) in proxies {
        text += &format!("[[teams.proxy]]\nhost = \"{host}\"\nport = 5061\naddress = \"{addr}\"\n");
    }
    for t in tenants {
        text += &format!(
            "[[tenant]]\nfqdn = \"{}\"\ntrunk = \"{}\"\nmax_calls = {}\n",
            t.fqdn, t.trunk, t.max_calls
        );
    }
    for t in trunks {
        text += &format!(
            "[[trunk]]\nname = \"{}\"\nuri = \"sip:127.0.0.1:{};transport=udp\"\nallow = [\"127.0.0.1/32\"]\n",
            t.name, t.port
        );
    }
    text
}

/// A Teams proxy address where nothing listens (port 9, privileged: no test can take it), for
/// tests whose calls only come from Teams: the OPTIONS pings to it fail and harm nothing.
pub fn no_proxy() -> (&'static str, String) {
    (PROXY1, "127.0.0.1:9".to_owned())
}

/// stunnel's half of a Teams peer: a server service presenting the Teams certificate and
/// requiring the SBC's (checked against the SBC name), forwarding to SIPp's TCP port; and,
/// when the SBC's TLS address is known, a client service carrying SIPp's own connection to it.
pub struct TeamsTls {
    pub dir: PathBuf,
    /// SIPp listens here (plain TCP).
    pub sipp_port: u16,
    /// The "Teams" TLS address: Via/Contact port, and a proxy's `address`.
    pub tls_port: u16,
    /// SIPp connects here to reach the SBC (when built with `sbc`).
    pub out_port: u16,
    pub stunnel: Proc,
}

impl TeamsTls {
    pub fn start(root: &Path, name: &str, certs: &Certs, sbc: Option<u16>) -> TeamsTls {
        Self::start_to(root, name, certs, sbc, free_tcp_port())
    }

    /// As `start`, with the TLS listener forwarding to `sipp_port` (whoever listens there).
    pub fn start_to(
        root: &Path,
        name: &str,
        certs: &Certs,
        sbc: Option<u16>,
        sipp_port: u16,
    ) -> TeamsTls {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let (tls_port, out_port) = (free_tcp_port(), free_tcp_port());
        let (cert, key, ca) = (
            certs.path("teams.crt"),
            certs.path("teams.key"),
            certs.path("ca.crt"),
        );
        let mut services = vec![StunnelService {
            name: "teams-in",
            client: false,
            accept: format!("127.0.0.1:{tls_port}"),
            connect: format!("127.0.0.1:{sipp_port}"),
            cert: &cert,
            key: &key,
            ca: &ca,
            check_host: Some("sbc.example.test"),
            sni: None,
        }];
        if let Some(sbc_port) = sbc {
            services.push(StunnelService {
                name: "teams-out",
                client: true,
                accept: format!("127.0.0.1:{out_port}"),
                connect: format!("127.0.0.1:{sbc_port}"),
                cert: &cert,
                key: &key,
                ca: &ca,
                check_host: Some("sbc.example.test"),
                sni: Some("sbc.example.test"),
            });
        }
        // SIP messages are small: Nagle must not hold them back.
        let stunnel = peers::stunnel_with(
            &dir,
            &services,
            "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n",
        );
        TeamsTls {
            dir,
            sipp_port,
            tls_port,
            out_port,
            stunnel,
        }
    }

    pub fn tls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// A Teams UAC: SIPp connects through the client service; `keys` are extra `-key` pairs.
    pub fn uac(&self, name: &str, sf: &str, keys: &[(&str, &str)], extra: &[&str]) -> Proc {
        let remote = format!("127.0.0.1:{}", self.out_port);
        let mut args = vec![remote];
        args.extend(sipp_common(&self.dir, name, sf, "t1", self.sipp_port));
        args.extend(key_args(&[("teams_port", &self.tls_port.to_string())]));
        args.extend(key_args(keys));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        run_sipp(&self.dir, name, args)
    }

    /// A Teams UAS (a SIP proxy the SBC calls) that exits after `calls` SIPp calls: the
    /// SBC's first OPTIONS ping counts as one.
    pub fn uas(&self, name: &str, sf: &str, calls: u32, keys: &[(&str, &str)]) -> Proc {
        let mut args = sipp_args(&self.dir, name, sf, "t1", self.sipp_port, calls);
        args.extend(key_args(&[("teams_port", &self.tls_port.to_string())]));
        args.extend(key_args(keys));
        run_sipp(&self.dir, name, args)
    }

    pub fn trace(&self, name: &str) -> Trace {
        Trace::read(&self.dir, name)
    }
}

/// A contact-center trunk peer: SIPp over UDP on its own port.
pub struct TrunkPeer {
    pub dir: PathBuf,
    pub port: u16,
}

impl TrunkPeer {
    pub fn new(root: &Path, name: &str) -> TrunkPeer {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        TrunkPeer {
            dir,
            port: free_udp_port(),
        }
    }

    pub fn uas(&self, name: &str, sf: &str, extra: &[&str]) -> Proc {
        let mut args = sipp_common(&self.dir, name, sf, "u1", self.port);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        run_sipp(&self.dir, name, args)
    }

    /// A UAC sending to the SBC's trunk-side UDP address.
    pub fn uac(&self, name: &str, sf: &str, sbc: &str, keys: &[(&str, &str)]) -> Proc {
        let mut args = vec![sbc.to_owned()];
        args.extend(sipp_common(&self.dir, name, sf, "u1", self.port));
        args.extend(key_args(keys));
        run_sipp(&self.dir, name, args)
    }

    pub fn trace(&self, name: &str) -> Trace {
        Trace::read(&self.dir, name)
    }
}

fn sipp_common(dir: &Path, name: &str, sf: &str, transport: &str, port: u16) -> Vec<String> {
    sipp_args(dir, name, sf, transport, port, 1)
}

/// `calls`: how many calls (SIPp counts every out-of-dialog request as one) before it exits.
fn sipp_args(
    dir: &Path,
    name: &str,
    sf: &str,
    transport: &str,
    port: u16,
    calls: u32,
) -> Vec<String> {
    let trace = dir.join(format!("{name}-messages.log"));
    let calls = calls.to_string();
    [
        "-m",
        &calls,
        "-sf",
        &scenario(sf).to_string_lossy(),
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-timeout",
        SIPP_TIMEOUT,
        "-trace_msg",
        "-message_file",
        &trace.to_string_lossy(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn key_args(keys: &[(&str, &str)]) -> Vec<String> {
    keys.iter()
        .flat_map(|(k, v)| ["-key".to_owned(), (*k).to_owned(), (*v).to_owned()])
        .collect()
}

fn run_sipp(dir: &Path, name: &str, args: Vec<String>) -> Proc {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    peers::sipp(dir, name, &refs)
}

/// Waits for a SIPp run to end and asserts it succeeded (every call passed its scenario and
/// checks); on failure shows its log, its errors and its message trace.
pub async fn expect_success(p: Proc, dir: &Path, name: &str) {
    let (p, code) = super::wait_exit(p, CALL_WAIT).await;
    if code != 0 {
        let errors = fs::read_to_string(dir.join(format!("{name}-errors.log"))).unwrap_or_default();
        let trace =
            fs::read_to_string(dir.join(format!("{name}-messages.log"))).unwrap_or_default();
        panic!(
            "{name} exited with {code}\n--- errors:\n{errors}\n--- messages:\n{trace}\n--- log:\n{}",
            tail(&p.log_text(), 3000)
        );
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

/// A SIPp message trace, split into the messages it received and sent.
pub struct Trace {
    pub received: Vec<String>,
    pub sent: Vec<String>,
    pub raw: String,
}

impl Trace {
    pub fn read(dir: &Path, name: &str) -> Trace {
        let raw = fs::read_to_string(dir.join(format!("{name}-messages.log"))).unwrap_or_default();
        Trace::parse(raw)
    }

    fn parse(raw: String) -> Trace {
        let (mut received, mut sent) = (Vec::new(), Vec::new());
        // Each entry: a dashed line with the time, then "<T> message received [N] bytes :" or
        // "<T> message sent (N bytes):", a blank line, and the message.
        for entry in raw.split("----------------------------------------------- ") {
            let Some((head, rest)) = entry.split_once('\n') else {
                continue;
            };
            let _ = head;
            let Some((kind, msg)) = rest.split_once('\n') else {
                continue;
            };
            let msg = msg.trim_start_matches(['\r', '\n']).trim_end().to_owned();
            if kind.contains("message received") {
                received.push(msg);
            } else if kind.contains("message sent") {
                sent.push(msg);
            }
        }
        Trace {
            received,
            sent,
            raw,
        }
    }

    /// Received requests of `method`, in order.
    pub fn requests(&self, method: &str) -> Vec<&str> {
        let prefix = format!("{method} ");
        self.received
            .iter()
            .filter(|m| m.starts_with(&prefix))
            .map(String::as_str)
            .collect()
    }

    /// Received responses with this status code, in order.
    pub fn responses(&self, status: u16) -> Vec<&str> {
        let prefix = format!("SIP/2.0 {status} ");
        self.received
            .iter()
            .filter(|m| m.starts_with(&prefix))
            .map(String::as_str)
            .collect()
    }

    /// The one received request of `method` (the first when there are several).
    pub fn request(&self, method: &str) -> &str {
        self.requests(method).first().copied().unwrap_or_else(|| {
            panic!("no {method} received; trace:\n{}", self.raw);
        })
    }

    pub fn response(&self, status: u16) -> &str {
        self.responses(status).first().copied().unwrap_or_else(|| {
            panic!("no {status} received; trace:\n{}", self.raw);
        })
    }
}

/// Values of header `name` (case-insensitive, compact forms not handled: the SBC writes long
/// names) in a message.
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    head(msg)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

pub fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    headers(msg, name)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {name} header in:\n{msg}"))
}

pub fn head(msg: &str) -> &str {
    msg.split("\n\n")
        .next()
        .map(|h| h.split("\r\n\r\n").next().unwrap_or(h))
        .unwrap_or(msg)
}

pub fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n")
        .or_else(|| msg.split_once("\n\n"))
        .map(|(_, b)| b)
        .unwrap_or("")
}

pub fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or("").trim_end()
}

/// The SDP line starting with `prefix` (e.g. "m=audio", "c=", "a=crypto:").
pub fn sdp_line<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    body(msg)
        .lines()
        .map(str::trim_end)
        .find(|l| l.starts_with(prefix))
}

/// The `inline:` key of the first a=crypto line.
pub fn sdes_key(msg: &str) -> Option<&str> {
    let line = sdp_line(msg, "a=crypto:")?;
    let inline = line.split("inline:").nth(1)?;
    Some(inline.split(['|', ' ']).next().unwrap_or(inline))
}

/// A TCP listener that accepts and records what it reads, and never answers: behind stunnel
/// it is a Teams proxy that takes the TLS connection and then stays silent.
pub struct SilentPeer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<u8>>>,
}

impl SilentPeer {
    pub fn start() -> SilentPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        // The thread ends with the test process; it holds only loopback sockets.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        SilentPeer { port, received }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}
