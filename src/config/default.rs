//! The built-in lab configuration used by `drawbridge run` without `--config`: everything on
//! loopback, development certificates under `certs/dev/` (created where missing).

/// Directory (relative to the working directory) holding the development certificates.
pub const DEV_CERT_DIR: &str = "certs/dev";

/// The lab config. Kept as TOML text so it goes through exactly the same parsing and
/// validation as an operator's file.
pub const DEFAULT_TOML: &str = r#"
[sbc]
base_domain = "sbc.example.test"

[listen]
teams_tls = "127.0.0.1:5061"
trunk_udp = "127.0.0.1:5060"
trunk_tcp = "127.0.0.1:5060"
metrics = "127.0.0.1:9090"

[tls]
cert = "certs/dev/server.crt"
key = "certs/dev/server.key"
ca = "certs/dev/ca.crt"
peer_names = ["sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"]

[teams]
options_interval_s = 60
# The lab's "Teams" peers run on this host; a real SBC keeps Microsoft's ranges (the default).
allow = ["127.0.0.0/8", "::1/128"]

[[teams.proxy]]
host = "sip.pstnhub.microsoft.com"
address = "127.0.0.1:15061"

[[teams.proxy]]
host = "sip2.pstnhub.microsoft.com"
address = "127.0.0.1:15062"

[[tenant]]
fqdn = "customer1.sbc.example.test"
trunk = "cc1"
max_calls = 100

[[trunk]]
name = "cc1"
uri = "sip:127.0.0.1:5080;transport=udp"
allow = ["127.0.0.1/32"]

[media]
port_min = 40000
port_max = 49999
"#;

/// Why the lab config could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum LabConfigError {
    #[error("development certificates: {0}")]
    DevCerts(#[from] crate::sip::transport::dev_certs::DevCertError),
    #[error(transparent)]
    Config(#[from] super::ConfigError),
}

/// The lab config, with development certificates created under [`DEV_CERT_DIR`] where missing.
pub fn lab_config() -> Result<super::Config, LabConfigError> {
    let dir = std::path::Path::new(DEV_CERT_DIR);
    crate::sip::transport::dev_certs::ensure_dev_certs(dir, "sbc.example.test")?;
    tracing::warn!(
        dir = %dir.display(),
        "running the built-in lab config with development certificates: not for production"
    );
    Ok(super::from_str(
        DEFAULT_TOML,
        std::path::Path::new("<built-in lab config>"),
        std::path::Path::new("."),
    )?)
}
