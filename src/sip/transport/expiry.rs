//! When our certificate chain stops being valid, said before it happens. Teams refuses an
//! expired SBC certificate (504, Microsoft code 569008, TDR-MON-03) and every call of every
//! tenant stops; Microsoft's dashboard warns 30 days ahead (TDR-MON-01), and so do we: in
//! the log at start, on each reload and once a day, and as a gauge an alert can watch.

use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

/// How far ahead an expiry is warned of (TDR-MON-01).
pub const WARN_AHEAD: Duration = Duration::from_secs(30 * 86_400);

/// The certificate of the chain that expires first: an intermediate that lapses breaks the
/// chain as surely as the leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Its notAfter.
    pub not_after: SystemTime,
    /// Its place in the chain: 0 is our own certificate, 1 the intermediate that issued it, …
    pub position: usize,
}

/// What an expiry means at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// More than [`WARN_AHEAD`] left.
    Valid { left: Duration },
    /// Renew now: Teams will refuse it in `left`.
    Soon { left: Duration },
    /// Teams refuses it.
    Expired { since: Duration },
}

impl Expiry {
    /// The first notAfter of `chain`; `Err` names the certificate that is not X.509 DER, or
    /// says the chain is empty.
    pub fn of_chain(chain: &[CertificateDer<'_>]) -> Result<Expiry, String> {
        let mut first: Option<Expiry> = None;
        for (position, der) in chain.iter().enumerate() {
            let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
                .map_err(|e| format!("certificate {} of the chain: {e}", position + 1))?;
            let secs = cert.validity().not_after.timestamp();
            // Before 1970 is as expired as it gets; u64 seconds cannot say it otherwise.
            let not_after =
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs());
            if first.is_none_or(|f| not_after < f.not_after) {
                first = Some(Expiry {
                    not_after,
                    position,
                });
            }
        }
        first.ok_or_else(|| "no certificate".to_owned())
    }

    /// What this expiry means at `now`.
    pub fn standing(&self, now: SystemTime) -> Standing {
        match self.not_after.duration_since(now) {
            Ok(left) if left > WARN_AHEAD => Standing::Valid { left },
            Ok(left) => Standing::Soon { left },
            Err(e) => Standing::Expired {
                since: e.duration(),
            },
        }
    }

    /// Seconds since the Unix epoch, as the gauge carries it.
    pub fn unix_seconds(&self) -> f64 {
        self.not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// Sets `drawbridge_tls_certificate_expiry_timestamp_seconds` and logs the standing:
    /// info while valid, a warning inside [`WARN_AHEAD`], an error once expired.
    pub fn report(&self, cert: &std::path::Path, now: SystemTime) {
        ::metrics::gauge!("drawbridge_tls_certificate_expiry_timestamp_seconds")
            .set(self.unix_seconds());
        let until = crate::cdr::time::rfc3339_millis(self.not_after);
        let which = self.which();
        let cert = cert.display();
        match self.standing(now) {
            Standing::Valid { left } => tracing::info!(
                %cert, until, days_left = days(left),
                "TLS certificate valid"
            ),
            Standing::Soon { left } => tracing::warn!(
                %cert, until, days_left = days(left), which,
                "TLS certificate expires soon: renew it and send SIGHUP, or Teams will refuse \
                 every call (504, 569008)"
            ),
            Standing::Expired { since } => tracing::error!(
                %cert, until, days_ago = days(since), which,
                "TLS certificate expired: Teams refuses the SBC (504, 569008); renew it and \
                 send SIGHUP"
            ),
        }
    }

    /// One line for `check-config`.
    pub fn describe(&self, now: SystemTime) -> String {
        let until = crate::cdr::time::rfc3339_millis(self.not_after);
        match self.standing(now) {
            Standing::Valid { left } => format!("valid until {until} ({})", in_days(left)),
            Standing::Soon { left } => format!(
                "expires {until}, in {}: {} needs renewing (Teams warns 30 days ahead)",
                in_days(left),
                self.which()
            ),
            Standing::Expired { since } => format!(
                "EXPIRED {until}, {} ago: Teams refuses the SBC ({} needs renewing)",
                in_days(since),
                self.which()
            ),
        }
    }

    fn which(&self) -> &'static str {
        if self.position == 0 {
            "our certificate"
        } else {
            "an intermediate of our chain"
        }
    }
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

fn in_days(d: Duration) -> String {
    match days(d) {
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cert_until(not_after: (i32, u8, u8)) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["sbc.example.test".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_chains_first_expiry_is_the_one_that_counts() {
        // 2031-01-01 and 2029-06-30, midnight UTC.
        let leaf = cert_until((2031, 1, 1));
        let intermediate = cert_until((2029, 6, 30));
        let e = Expiry::of_chain(&[leaf.clone(), intermediate]).unwrap();
        assert_eq!(e.not_after, at(1_877_472_000));
        assert_eq!(e.position, 1);
        let e = Expiry::of_chain(&[leaf]).unwrap();
        assert_eq!(e.not_after, at(1_924_992_000));
        assert_eq!(e.position, 0);
        assert_eq!(e.unix_seconds(), 1_924_992_000.0);
    }

    #[test]
    fn thirty_days_ahead_is_a_warning_and_after_it_an_error_tdr_mon_01() {
        let e = Expiry {
            not_after: at(100 * 86_400),
            position: 0,
        };
        assert_eq!(
            e.standing(at(69 * 86_400)),
            Standing::Valid {
                left: Duration::from_secs(31 * 86_400)
            }
        );
        assert_eq!(
            e.standing(at(70 * 86_400)),
            Standing::Soon {
                left: Duration::from_secs(30 * 86_400)
            }
        );
        assert_eq!(
            e.standing(at(101 * 86_400)),
            Standing::Expired {
                since: Duration::from_secs(86_400)
            }
        );
    }

    #[test]
    fn bytes_that_are_not_a_certificate_are_named_by_position() {
        let good = cert_until((2031, 1, 1));
        let bad = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let err = Expiry::of_chain(&[good, bad]).unwrap_err();
        assert!(err.starts_with("certificate 2 of the chain"), "{err}");
    }
}
