//! Sealing certificates: reading them as kubeseal does, and describing them.

use std::fmt;

use der::{Decode, Encode};
use time::OffsetDateTime;

use crate::keys::PublicKey;
use crate::{pem, Error, Fingerprint};

/// An X.509 certificate that publishes an RSA sealing key.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    public_key: PublicKey,
    subject: String,
    issuer: String,
    serial_hex: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM text (a chain is allowed; the rest is
    /// ignored, as kubeseal and the controller do). Other PEM blocks are skipped.
    pub fn from_pem(text: &[u8]) -> Result<Self, Error> {
        let blocks = pem::blocks(text);
        let Some(block) = blocks.iter().find(|b| b.label == "CERTIFICATE") else {
            return Err(if blocks.iter().any(|b| b.label.ends_with("PRIVATE KEY")) {
                Error::KeyInsteadOfCertificate
            } else {
                Error::NoCertificate
            });
        };
        Self::from_der(&block.der)
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| Error::InvalidCertificate(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::InvalidCertificate(e.to_string()))?;
        let public_key = PublicKey::from_spki_der(&spki)?;
        let to_time = |t: &x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .map_err(|e| Error::InvalidCertificate(e.to_string()))
        };
        // Without the DER sign byte, as openssl prints serials.
        let serial = tbs.serial_number.as_bytes();
        let serial = &serial[serial
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(serial.len().saturating_sub(1))..];
        let serial_hex = serial.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Certificate {
            der: der.to_vec(),
            public_key,
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_hex,
            not_before: to_time(&tbs.validity.not_before)?,
            not_after: to_time(&tbs.validity.not_after)?,
        })
    }

    /// Refuses a certificate whose NotAfter has passed, with kubeseal's message. Like kubeseal,
    /// NotBefore and KeyUsage are not checked.
    pub fn check_not_expired(&self, now: OffsetDateTime) -> Result<(), Error> {
        if now > self.not_after {
            return Err(Error::ExpiredCertificate(go_date(self.not_after)));
        }
        Ok(())
    }

    /// The RSA public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The key's SSH SHA256 fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        self.public_key.fingerprint()
    }

    /// Subject DN in RFC 4514 form; empty for the controller's default certificate.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Issuer DN in RFC 4514 form.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Serial number as lower-case hex.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// Start of validity (also the key's ordering time in the controller by default).
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// One PEM `CERTIFICATE` block with a final newline, as `/v1/cert.pem` serves it.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der).to_string()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("fingerprint", self.fingerprint())
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Go's `January 2, 2006` layout, which kubeseal uses in its expiry error.
pub fn go_date(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[month repr:long] [day padding:none], [year]");
    t.format(fmt).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_date_layout() {
        let t = time::macros::datetime!(2006-01-02 15:04:05 UTC);
        assert_eq!(go_date(t), "January 2, 2006");
    }

    #[test]
    fn a_private_key_where_a_certificate_belongs_is_named() {
        let key = b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(
            Certificate::from_pem(key),
            Err(Error::KeyInsteadOfCertificate)
        ));
        assert!(matches!(
            Certificate::from_pem(b"not pem"),
            Err(Error::NoCertificate)
        ));
    }
}
