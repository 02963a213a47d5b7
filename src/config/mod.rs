//! Configuration: one TOML file -> validated, immutable [`Config`].
//!
//! Parse (serde, `deny_unknown_fields` everywhere) -> [`validate`] -> `Arc<Config>`. Every error an
//! operator can see names the file, line and column (`drawbridge.toml:42:7: tenant[3].trunk: ...`);
//! the file's contents are never echoed, since it holds paths to keys and may hold secrets.

pub mod default;
mod location;
mod policy;
mod schema;
mod trunk_uri;
mod validate;

use std::path::{Path, PathBuf};

pub use policy::{
    DiversionPolicy, HistoryInfoPolicy, NumberFieldName, NumberRewriteConfig, PassOrStrip,
    Q850Rewrite, RewriteToward, TrunkHeaders,
};
pub use schema::{
    CdrConfig, Config, DnsSection, ListenSection, NumberPolicy, ProxyConfig, SbcSection,
    SipSection, TeamsSection, TenantConfig, TlsSection, TrunkConfig,
};
pub use validate::Issue;

/// Why a config file was refused. `Display` gives one `FILE:LINE:COL: reason` line per problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        reason: String,
    },
    #[error("{}", render_invalid(.path, .issues))]
    Invalid {
        path: PathBuf,
        issues: Vec<LocatedIssue>,
    },
}

/// A validation problem with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedIssue {
    pub line: usize,
    pub col: usize,
    pub key: String,
    pub reason: String,
}

fn render_invalid(path: &Path, issues: &[LocatedIssue]) -> String {
    let lines: Vec<String> = issues
        .iter()
        .map(|i| {
            format!(
                "{}:{}:{}: {}: {}",
                path.display(),
                i.line,
                i.col,
                i.key,
                i.reason
            )
        })
        .collect();
    lines.join("\n")
}

impl ConfigError {
    /// The validation problems, for tests and `check-config`.
    pub fn issues(&self) -> &[LocatedIssue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

/// Reads, parses and validates a config file. Relative paths inside it (certificates, CDR file)
/// are taken relative to the file's own directory, which is what an operator editing
/// `/etc/drawbridge/drawbridge.toml` expects.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    from_str(&text, path, base)
}

/// Parses and validates config text. `path` is only used in messages; `base_dir` anchors
/// relative file paths.
pub fn from_str(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| location::line_col(text, s.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            col,
            // toml's message is one line of prose; its Display would quote the offending
            // source line, which may hold a secret.
            reason: e.message().trim().to_owned(),
        }
    })?;
    config.resolve_paths(base_dir);
    let issues = validate::validate(&config);
    if issues.is_empty() {
        return Ok(config);
    }
    let located = issues
        .into_iter()
        .map(|issue| {
            let (line, col) = location::locate(text, &issue.path);
            LocatedIssue {
                line,
                col,
                key: issue.key_string(),
                reason: issue.reason,
            }
        })
        .collect();
    Err(ConfigError::Invalid {
        path: path.to_owned(),
        issues: located,
    })
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
