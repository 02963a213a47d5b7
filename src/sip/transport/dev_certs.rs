//! Development certificates: a private CA, the SBC's server certificate and a
//! lab "Teams" client certificate, so the daemon and a lab peer can do mutual
//! TLS without a public CA. Never for production: Teams trusts only public CAs
//! (TDR-SIG-04).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};

/// Where [`ensure_dev_certs`] put (or found) each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertPaths {
    /// The development CA certificate: trust anchor for both sides.
    pub ca_cert: PathBuf,
    /// The CA key (needed to issue further lab certificates).
    pub ca_key: PathBuf,
    /// The SBC certificate: `base_domain`, `*.base_domain`, localhost, 127.0.0.1.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The lab Teams peer certificate: sip/sip2/sip3.pstnhub.microsoft.com.
    pub teams_cert: PathBuf,
    /// Its key.
    pub teams_key: PathBuf,
}

/// Why development certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// Creating the directory or reading/writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// rcgen refused to generate a key or certificate.
    #[error("generating {what}: {source}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The existing CA key could not be read back.
    #[error("{path}: unusable CA key: {source}")]
    CaKey {
        /// The key file.
        path: PathBuf,
        /// rcgen's error.
        source: rcgen::Error,
    },
}

/// The lab Teams peer names: what Microsoft's SIP proxies present (TDR-SIG-07).
pub const LAB_TEAMS_NAMES: [&str; 3] = [
    "sip.pstnhub.microsoft.com",
    "sip2.pstnhub.microsoft.com",
    "sip3.pstnhub.microsoft.com",
];

/// Creates in `dir`, only where missing, `ca.crt`/`ca.key`,
/// `server.crt`/`server.key` and `teams.crt`/`teams.key` (keys mode 0600).
/// Keys are RSA-2048 because every TDR-SIG-02 suite is ECDHE-RSA (TDR-SIG-04).
/// Leaf certificates carry serverAuth and clientAuth: the SBC and the lab
/// peer are each TLS client and server.
///
/// A new CA is made only if `ca.key` is missing; then both leaves are
/// reissued from it, since the old ones would no longer chain.
pub fn ensure_dev_certs(dir: &Path, base_domain: &str) -> Result<DevCertPaths, DevCertError> {
    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Io {
        path: dir.into(),
        source,
    })?;
    let paths = DevCertPaths {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        teams_cert: dir.join("teams.crt"),
        teams_key: dir.join("teams.key"),
    };
    let ca_params = ca_params(base_domain)?;
    let fresh_ca = !paths.ca_key.exists() || !paths.ca_cert.exists();
    let ca_key = if fresh_ca {
        let key = rsa_key("development CA")?;
        let cert = ca_params
            .self_signed(&key)
            .map_err(|source| DevCertError::Generate {
                what: "development CA",
                source,
            })?;
        write_file(&paths.ca_key, key.serialize_pem().as_bytes(), true)?;
        write_file(&paths.ca_cert, cert.pem().as_bytes(), false)?;
        key
    } else {
        let pem = std::fs::read_to_string(&paths.ca_key).map_err(|source| DevCertError::Io {
            path: paths.ca_key.clone(),
            source,
        })?;
        KeyPair::from_pem(&pem).map_err(|source| DevCertError::CaKey {
            path: paths.ca_key.clone(),
            source,
        })?
    };
    // The issuer is rebuilt from the same fixed parameters (name, key id from
    // the key), so leaves issued later still chain to the CA on disk.
    let issuer = Issuer::new(ca_params, ca_key);

    if fresh_ca || !paths.server_cert.exists() || !paths.server_key.exists() {
        let names = vec![
            base_domain.to_owned(),
            format!("*.{base_domain}"),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        issue_leaf(
            &issuer,
            "server",
            base_domain,
            names,
            &paths.server_cert,
            &paths.server_key,
        )?;
    }
    if fresh_ca || !paths.teams_cert.exists() || !paths.teams_key.exists() {
        let names = LAB_TEAMS_NAMES.iter().map(|n| (*n).to_owned()).collect();
        issue_leaf(
            &issuer,
            "teams",
            LAB_TEAMS_NAMES[0],
            names,
            &paths.teams_cert,
            &paths.teams_key,
        )?;
    }
    Ok(paths)
}

/// The CA's name carries the base domain so two development CAs are told
/// apart by name (a peer from the other lab is `unknown_ca`, not a forgery);
/// it is fixed so the issuer can be rebuilt from the key alone.
fn ca_params(base_domain: &str) -> Result<CertificateParams, DevCertError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|source| DevCertError::Generate {
            what: "development CA",
            source,
        })?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("drawbridge development CA {base_domain}"),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn rsa_key(what: &'static str) -> Result<KeyPair, DevCertError> {
    KeyPair::generate_for(&PKCS_RSA_SHA256)
        .map_err(|source| DevCertError::Generate { what, source })
}

fn issue_leaf(
    issuer: &Issuer<'_, KeyPair>,
    what: &'static str,
    common_name: &str,
    names: Vec<String>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), DevCertError> {
    let key = rsa_key(what)?;
    let mut params =
        CertificateParams::new(names).map_err(|source| DevCertError::Generate { what, source })?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| DevCertError::Generate { what, source })?;
    write_file(key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(cert_path, cert.pem().as_bytes(), false)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), DevCertError> {
    let io = |source| DevCertError::Io {
        path: path.into(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn dev_certs_load_as_tls_material_and_are_created_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure_dev_certs(dir.path(), "sbc.example.test").unwrap();
        let material = crate::sip::transport::TlsMaterial::load(
            &paths.server_cert,
            &paths.server_key,
            &paths.ca_cert,
            vec!["sip.pstnhub.microsoft.com".into()],
        )
        .unwrap();
        assert_eq!(material.chain().len(), 1);
        let names = crate::sip::transport::names::certificate_names(&material.chain()[0]);
        assert!(names.contains(&"*.sbc.example.test".to_owned()));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&paths.server_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let before = std::fs::read(&paths.server_cert).unwrap();
        std::fs::remove_file(&paths.teams_cert).unwrap();
        ensure_dev_certs(dir.path(), "sbc.example.test").unwrap();
        assert_eq!(std::fs::read(&paths.server_cert).unwrap(), before);
        // The reissued Teams certificate still chains to the CA on disk.
        let teams = crate::sip::transport::TlsMaterial::load(
            &paths.teams_cert,
            &paths.teams_key,
            &paths.ca_cert,
            vec![],
        )
        .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&teams.roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&teams.chain()[0], &[], rustls_pki_types::UnixTime::now())
            .unwrap();
    }
}
