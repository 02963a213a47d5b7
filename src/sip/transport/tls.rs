//! rustls configurations for both sides, the Teams client-certificate
//! verifier, and the mapping of handshake errors to metric reasons.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{
    AlertDescription, CertificateError, CipherSuite, ClientConfig, DigitallySignedStruct,
    DistinguishedName, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::material::TlsMaterial;
use super::metrics::HandshakeFailure;
use super::names;

/// The four configurations built from one [`TlsMaterial`]; swapped whole on
/// reload so a handshake never mixes old and new material.
pub(crate) struct TlsConfigs {
    pub(crate) teams_server: Arc<ServerConfig>,
    pub(crate) trunk_server: Arc<ServerConfig>,
    pub(crate) teams_client: Arc<ClientConfig>,
    pub(crate) trunk_client: Arc<ClientConfig>,
    pub(crate) peer_names: Arc<[String]>,
}

/// Error building the rustls configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// rustls refused the protocol versions, suites or certificate.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no CA roots).
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// TDR-SIG-02: Microsoft lists four ECDHE-RSA suites. rustls implements the
/// two GCM ones; the CBC ones (`TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384`,
/// `..._AES_128_CBC_SHA256`) do not exist in rustls, which is fine: the rule
/// asks for at least one of the four.
const TEAMS_TLS12_SUITES: [CipherSuite; 2] = [
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
static TLS13_AND_12: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

fn versions(tls13: bool) -> &'static [&'static SupportedProtocolVersion] {
    if tls13 { &TLS13_AND_12 } else { &TLS12_ONLY }
}

/// aws-lc-rs with the Teams suites only (plus the TLS 1.3 suites when allowed).
fn teams_provider(tls13: bool) -> Arc<CryptoProvider> {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites.retain(|suite| {
        TEAMS_TLS12_SUITES.contains(&suite.suite())
            || (tls13 && suite.version() == &rustls::version::TLS13)
    });
    Arc::new(provider)
}

fn trunk_provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

impl TlsConfigs {
    pub(crate) fn build(
        material: &TlsMaterial,
        teams_tls13: bool,
        trunk_tls13: bool,
    ) -> Result<Self, TlsConfigError> {
        // TDR-MT-05: one (wildcard) certificate whatever SNI arrives, so a
        // fixed resolver rather than an SNI map.
        let ours = Arc::new(SingleCertAndKey::from(Arc::clone(&material.certified)));
        let teams = teams_provider(teams_tls13);
        let trunk = trunk_provider();

        let inner = WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&material.roots),
            Arc::clone(&teams),
        )
        .build()?;
        let verifier = Arc::new(PeerNameVerifier {
            inner,
            peer_names: Arc::clone(&material.peer_names),
        });
        let teams_server = ServerConfig::builder_with_provider(Arc::clone(&teams))
            .with_protocol_versions(versions(teams_tls13))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(ours.clone());

        // Trunks rarely hold client certificates: no client auth there.
        let trunk_server = ServerConfig::builder_with_provider(Arc::clone(&trunk))
            .with_protocol_versions(versions(trunk_tls13))?
            .with_no_client_auth()
            .with_cert_resolver(ours.clone());

        // TDR-SIG-04: the SBC presents its certificate as TLS client too.
        // The server's chain is checked against our roots and its name
        // against the SNI we send (the host we dial).
        let client = |provider: &Arc<CryptoProvider>, tls13: bool| {
            Ok::<_, TlsConfigError>(Arc::new(
                ClientConfig::builder_with_provider(Arc::clone(provider))
                    .with_protocol_versions(versions(tls13))?
                    .with_root_certificates(Arc::clone(&material.roots))
                    .with_client_cert_resolver(ours.clone()),
            ))
        };
        Ok(Self {
            teams_server: Arc::new(teams_server),
            trunk_server: Arc::new(trunk_server),
            teams_client: client(&teams, teams_tls13)?,
            trunk_client: client(&trunk, trunk_tls13)?,
            peer_names: Arc::clone(&material.peer_names),
        })
    }
}

/// Teams mutual TLS: the client certificate must chain to our CA roots
/// (webpki) and name one of the configured Microsoft proxies. Checking the
/// name inside the handshake turns a wrong name into a `bad_certificate`
/// alert the peer can log, rather than a silent close after the handshake.
#[derive(Debug)]
struct PeerNameVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    peer_names: Arc<[String]>,
}

impl ClientCertVerifier for PeerNameVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let presented = names::certificate_names(end_entity);
        if names::matching_name(&presented, &self.peer_names).is_none() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The identity a verified peer certificate proves: the configured name it
/// matched (Teams inbound) or the name we dialled (outbound), and every DNS
/// name it carries (for reuse toward another name the same certificate covers).
#[derive(Debug, Clone)]
pub(crate) struct PeerIdentity {
    pub(crate) name: Arc<str>,
    pub(crate) cert_names: Arc<[String]>,
}

impl PeerIdentity {
    pub(crate) fn from_certificates(
        certs: Option<&[CertificateDer<'static>]>,
        expected: &[String],
    ) -> Option<Self> {
        let cert_names = names::certificate_names(certs?.first()?);
        let name = names::matching_name(&cert_names, expected)?;
        Some(Self {
            name,
            cert_names: cert_names.into(),
        })
    }

    pub(crate) fn covers(&self, host: &str) -> bool {
        self.cert_names.iter().any(|n| names::name_matches(n, host))
    }
}

/// Maps a failed handshake (as tokio-rustls reports it: a `rustls::Error`
/// inside an `io::Error`) to its metric reason.
pub(crate) fn classify(err: &std::io::Error) -> HandshakeFailure {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(e) => classify_rustls(e),
        None => HandshakeFailure::Other,
    }
}

fn classify_rustls(err: &rustls::Error) -> HandshakeFailure {
    use rustls::Error as E;
    match err {
        E::NoCertificatesPresented => HandshakeFailure::NoCertificate,
        E::InvalidCertificate(cert) => classify_certificate(cert),
        // The peer refused us: its alert says why (we are the side whose
        // certificate was judged).
        E::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => HandshakeFailure::NoCertificate,
            AlertDescription::UnknownCA => HandshakeFailure::UnknownCa,
            AlertDescription::CertificateExpired => HandshakeFailure::Expired,
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown => HandshakeFailure::BadCertificate,
            _ => HandshakeFailure::Protocol,
        },
        E::General(_) | E::Other(_) => HandshakeFailure::Other,
        _ => HandshakeFailure::Protocol,
    }
}

fn classify_certificate(err: &CertificateError) -> HandshakeFailure {
    match err {
        CertificateError::UnknownIssuer => HandshakeFailure::UnknownCa,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            HandshakeFailure::NameMismatch
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => HandshakeFailure::Expired,
        _ => HandshakeFailure::BadCertificate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_provider_keeps_only_tdr_sig_02_suites_without_tls13() {
        let provider = teams_provider(false);
        let suites: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites.len(), 2);
        assert!(suites.iter().all(|s| TEAMS_TLS12_SUITES.contains(s)));
        let with13 = teams_provider(true);
        assert!(with13.cipher_suites.len() > 2);
    }

    #[test]
    fn handshake_errors_map_to_reasons() {
        let wrap = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert_eq!(
            classify(&wrap(rustls::Error::NoCertificatesPresented)),
            HandshakeFailure::NoCertificate
        );
        assert_eq!(
            classify(&wrap(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))),
            HandshakeFailure::UnknownCa
        );
        assert_eq!(
            classify(&wrap(rustls::Error::AlertReceived(
                AlertDescription::UnknownCA
            ))),
            HandshakeFailure::UnknownCa
        );
        assert_eq!(
            classify(&std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            HandshakeFailure::Other
        );
    }
}
