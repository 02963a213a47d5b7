//! External peers as child processes: SIPp and stunnel. Each is stopped by its PID when dropped.
//! A missing tool fails the test with the package to install; it never skips.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails with a clear message when a tool is not installed.
pub fn require(tool: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} not found: install the Debian package {package} (scripts/test.sh does)");
}

/// A child process killed (by PID) on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not finish within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
    let out = fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc {
        child,
        name: name.to_owned(),
        log,
    }
}

/// SIPp with `args`; its logs go to `dir`.
pub fn sipp(dir: &Path, name: &str, args: &[&str]) -> Proc {
    let bin = require("sipp", "sip-tester");
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir).args(args).args([
        "-trace_err",
        "-error_file",
        &dir.join(format!("{name}-errors.log")).to_string_lossy(),
        "-nostdin",
    ]);
    spawn(name, &mut cmd, dir.join(format!("{name}.log")))
}

/// stunnel in the foreground with one service.
pub struct StunnelService<'a> {
    pub name: &'a str,
    pub client: bool,
    pub accept: String,
    pub connect: String,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub ca: &'a Path,
    /// Name the peer's certificate must carry (checkHost), if any.
    pub check_host: Option<&'a str>,
    pub sni: Option<&'a str>,
}

pub fn stunnel(dir: &Path, services: &[StunnelService<'_>]) -> Proc {
    stunnel_with(dir, services, "")
}

/// stunnel with `extra` option lines added to every service.
pub fn stunnel_with(dir: &Path, services: &[StunnelService<'_>], extra: &str) -> Proc {
    let bin = require("stunnel4", "stunnel4");
    let mut conf = format!(
        "foreground = yes\npid =\ndebug = info\noutput = {}\n",
        dir.join("stunnel.out").display()
    );
    for s in services {
        conf += &format!(
            "[{}]\nclient = {}\naccept = {}\nconnect = {}\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.2\n",
            s.name,
            if s.client { "yes" } else { "no" },
            s.accept,
            s.connect,
            s.cert.display(),
            s.key.display(),
            s.ca.display(),
        );
        if let Some(h) = s.check_host {
            conf += &format!("checkHost = {h}\n");
        }
        if let Some(n) = s.sni {
            conf += &format!("sni = {n}\n");
        }
        conf += extra;
    }
    let path = dir.join("stunnel.conf");
    fs::write(&path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(&path);
    let p = spawn("stunnel", &mut cmd, dir.join("stunnel.log"));
    for s in services {
        wait_tcp_listening(&s.accept, Duration::from_secs(10));
    }
    p
}

/// Waits until a socket listens on `addr`'s port, read from /proc/net/tcp: connecting to find
/// out would start a session in the peer (stunnel would open a TLS connection onward).
pub fn wait_tcp_listening(addr: &str, timeout: Duration) {
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    let needle = format!(":{port:04X} ");
    let deadline = Instant::now() + timeout;
    loop {
        let listening = ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
            fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
                })
        });
        if listening {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
