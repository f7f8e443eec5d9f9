//! `sslmode` for the PostgreSQL audit store, with the meanings the SQL sources give
//! it (libpq's): `disable`; `prefer` (the default: TLS when the server offers it,
//! the certificate not checked); `require` (TLS, the certificate not checked, or
//! checked against `sslrootcert` when one is given); `verify-ca` (the chain checked
//! against the web PKI roots and `sslrootcert`); `verify-full` (the chain and the host
//! name). The PostgreSQL client does not know `verify-ca`, `verify-full` or
//! `sslrootcert`, so they are taken out of the URL here and turned into a rustls
//! configuration.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

use crate::store::StoreError;

/// What the URL asks of TLS.
pub(crate) enum Tls {
    /// No TLS.
    Off,
    /// TLS with this configuration.
    On(tokio_postgres_rustls::MakeRustlsConnect),
}

/// The client configuration and TLS for `url`.
pub(crate) fn parse(url: &str) -> Result<(tokio_postgres::Config, Tls), StoreError> {
    let bad = |why: String| StoreError::Config(format!("audit url: {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut mode = "prefer".to_owned();
    let mut root_cert = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| match k.as_ref() {
            "sslmode" => {
                mode = v.into_owned();
                None
            }
            "sslrootcert" => {
                root_cert = Some(v.into_owned());
                None
            }
            _ => Some((k.into_owned(), v.into_owned())),
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let mut config: tokio_postgres::Config = parsed
        .as_str()
        .parse()
        .map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = || -> Result<Arc<RootCertStore>, StoreError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &root_cert {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
            }
        }
        Ok(Arc::new(roots))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode.as_str() {
        "disable" => {
            config.ssl_mode(SslMode::Disable);
            return Ok((config, Tls::Off));
        }
        "prefer" | "allow" if root_cert.is_none() => {
            config.ssl_mode(SslMode::Prefer);
            Arc::new(Unchecked(Arc::clone(&provider)))
        }
        "require" if root_cert.is_none() => {
            config.ssl_mode(SslMode::Require);
            Arc::new(Unchecked(Arc::clone(&provider)))
        }
        "prefer" | "allow" | "require" | "verify-ca" => {
            config.ssl_mode(if mode == "prefer" || mode == "allow" {
                SslMode::Prefer
            } else {
                SslMode::Require
            });
            Arc::new(ChainOnly(webpki(roots()?, &provider)?))
        }
        "verify-full" => {
            config.ssl_mode(SslMode::Require);
            webpki(roots()?, &provider)?
        }
        other => {
            return Err(bad(format!(
                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((
        config,
        Tls::On(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
    ))
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(|e| StoreError::Config(format!("audit url: {e}")))
}

/// `prefer` and `require` without a root certificate: encrypted, not authenticated
/// (the handshake's signatures are still checked).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let (config, tls) =
            parse("postgres://u@db:5432/x?sslmode=disable&application_name=a").unwrap();
        assert!(matches!(tls, Tls::Off));
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(config.get_application_name(), Some("a"));
        let (config, tls) = parse("postgres://u@db/x").unwrap();
        assert!(matches!(tls, Tls::On(_)));
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);
        let (config, _) = parse("postgres://u@db/x?sslmode=verify-full").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert!(parse("postgres://u@db/x?sslmode=sometimes").is_err());
        let err = parse("postgres://u@db/x?sslmode=verify-ca&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }
}
