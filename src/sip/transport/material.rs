//! Certificates and keys from PEM files, checked before any socket opens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::expiry::Expiry;

/// What the TLS side of the SBC needs: our certificate chain and key (served
/// as server and presented as client), the CA roots that peers must chain to,
/// and the names a Teams peer certificate must carry.
#[derive(Clone)]
pub struct TlsMaterial {
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) peer_names: Arc<[String]>,
    expiry: Expiry,
}

impl std::fmt::Debug for TlsMaterial {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("chain_len", &self.certified.cert.len())
            .field("roots", &self.roots.len())
            .field("peer_names", &self.peer_names)
            .finish_non_exhaustive()
    }
}

/// Why TLS material could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsMaterialError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{path}: bad PEM: {source}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// The PEM decoder's error.
        source: rustls_pki_types::pem::Error,
    },
    /// A block of the certificate file is not an X.509 certificate.
    #[error("{path}: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Which certificate, and the parser's reason.
        reason: String,
    },
    /// The certificate file holds no CERTIFICATE block.
    #[error("{path}: no certificate found")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block.
    #[error("{path}: no private key found")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is of a type or encoding the crypto provider refuses.
    #[error("{path}: unusable private key: {source}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The key is not the one the first certificate in the chain was issued for.
    #[error("{key}: private key does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A CA certificate is not a usable trust anchor.
    #[error("{path}: bad CA certificate: {source}")]
    BadCa {
        /// The CA file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The CA file holds no certificate.
    #[error("{path}: no CA certificate found")]
    NoCa {
        /// The CA file.
        path: PathBuf,
    },
}

impl TlsMaterial {
    /// Loads our certificate chain (leaf first, then intermediates: Teams
    /// resets connections with a missing intermediate, TDR-SIG-04), its key,
    /// and the CA roots peers must chain to.
    pub fn load(
        cert: &Path,
        key: &Path,
        ca: &Path,
        peer_names: Vec<String>,
    ) -> Result<Self, TlsMaterialError> {
        let chain = read_certificates(cert)?;
        if chain.is_empty() {
            return Err(TlsMaterialError::NoCertificate { path: cert.into() });
        }
        let expiry =
            Expiry::of_chain(&chain).map_err(|reason| TlsMaterialError::BadCertificate {
                path: cert.into(),
                reason,
            })?;
        let key_der = read_key(key)?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|source| TlsMaterialError::BadKey {
                path: key.into(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsMaterialError::KeyMismatch {
                    cert: cert.into(),
                    key: key.into(),
                });
            }
            // The provider could not derive the public key: the handshake
            // will tell, as rustls' own `CertifiedKey::from_der` accepts.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(source) => {
                return Err(TlsMaterialError::BadKey {
                    path: cert.into(),
                    source,
                });
            }
        }

        let ca_certs = read_certificates(ca)?;
        if ca_certs.is_empty() {
            return Err(TlsMaterialError::NoCa { path: ca.into() });
        }
        let mut roots = RootCertStore::empty();
        for der in ca_certs {
            roots.add(der).map_err(|source| TlsMaterialError::BadCa {
                path: ca.into(),
                source,
            })?;
        }
        Ok(Self {
            certified: Arc::new(certified),
            roots: Arc::new(roots),
            peer_names: peer_names
                .into_iter()
                .map(|name| name.to_ascii_lowercase())
                .collect(),
            expiry,
        })
    }

    /// The names a Teams peer certificate must carry (one of them).
    pub fn peer_names(&self) -> &[String] {
        &self.peer_names
    }

    /// When the first certificate of our chain expires (TDR-MON-01).
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// Our certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsMaterialError> {
    std::fs::read(path).map_err(|source| TlsMaterialError::Unreadable {
        path: path.into(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsMaterialError> {
    let pem = read(path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsMaterialError::BadPem {
            path: path.into(),
            source,
        })
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsMaterialError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsMaterialError::NoKey { path: path.into() },
        source => TlsMaterialError::BadPem {
            path: path.into(),
            source,
        },
    })
}
