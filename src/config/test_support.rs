//! Configs for unit tests elsewhere in the crate.

use std::path::Path;

use super::Config;

/// Parses `text`, a config that names its certificates `certs/dev/…` as the
/// default config does, with development certificates made in a fresh
/// directory. A clean checkout has no `certs/dev/` until the daemon first
/// runs, so a test must never read the repository's copy.
pub(crate) fn with_dev_certs(text: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    crate::sip::transport::dev_certs::ensure_dev_certs(dir.path(), "sbc.example.test")
        .unwrap_or_else(|e| panic!("development certificates: {e}"));
    let text = text.replace("certs/dev/", "");
    let config =
        super::from_str(&text, Path::new("t.toml"), dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}
