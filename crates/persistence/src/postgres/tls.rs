//! TLS for the PostgreSQL connections: rustls with the ring provider, chosen
//! by the URL's `sslmode` as libpq does.
//!
//! | `sslmode`          | encryption                    | server certificate                               |
//! |--------------------|-------------------------------|--------------------------------------------------|
//! | `disable`          | never                         | —                                                |
//! | `prefer` (default) | if the server offers it       | verified against the Mozilla roots; plaintext if the TLS handshake fails |
//! | `require`          | always                        | not verified (libpq's meaning of `require`)      |
//! | `verify-ca`        | always                        | chain verified against the Mozilla roots, any host name |
//! | `verify-full`      | always                        | chain and host name verified against the Mozilla roots |
//!
//! tokio-postgres 0.7 only knows `disable`, `prefer` and `require`, so
//! `verify-ca` and `verify-full` are taken out of the URL here and handed to
//! it as `require`, with a verifying TLS configuration.

use std::borrow::Cow;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL's `sslmode` asks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// `disable`, `prefer` or absent: tokio-postgres's own `sslmode` decides
    /// whether to encrypt; a certificate, if any, is verified in full.
    Driver,
    /// `require`: encrypted, certificate not verified.
    None,
    /// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
    Chain,
    /// `verify-full`: the chain and the host name are checked.
    Full,
}

/// Takes `sslmode=verify-ca` or `sslmode=verify-full` out of `url` (which
/// tokio-postgres would refuse), putting `sslmode=require` in its place, and
/// says what the certificate check must be. The last `sslmode` wins, as in
/// tokio-postgres's own parser.
pub(crate) fn split_sslmode(url: &str) -> (Cow<'_, str>, Verification) {
    let Some((base, query)) = url.split_once('?') else {
        return (Cow::Borrowed(url), Verification::Driver);
    };
    let mut verification = Verification::Driver;
    let mut rewritten = false;
    let params: Vec<&str> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some(("sslmode", value)) => {
                verification = match value {
                    "verify-ca" => Verification::Chain,
                    "verify-full" => Verification::Full,
                    "require" => Verification::None,
                    _ => Verification::Driver,
                };
                if matches!(verification, Verification::Chain | Verification::Full) {
                    rewritten = true;
                    "sslmode=require"
                } else {
                    param
                }
            }
            _ => param,
        })
        .collect();
    if rewritten {
        (Cow::Owned(format!("{base}?{}", params.join("&"))), verification)
    } else {
        (Cow::Borrowed(url), verification)
    }
}

/// The TLS connector for a parsed configuration: unverified for
/// `sslmode=require`, verifying otherwise.
pub(crate) fn connector(config: &tokio_postgres::Config, verification: Verification) -> MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verification = match (config.get_ssl_mode(), verification) {
        (SslMode::Require, Verification::Driver | Verification::None) => Verification::None,
        (_, chosen) => chosen,
    };
    let roots = Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => Arc::new(AcceptAnyCertificate { algorithms: provider.signature_verification_algorithms }),
        Verification::Driver | Verification::Full | Verification::Chain => {
            let webpki = webpki_verifier(roots, &provider);
            if verification == Verification::Chain { Arc::new(AnyServerName(webpki)) } else { webpki }
        }
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default TLS versions"))
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    MakeRustlsConnect::new(tls)
}

fn webpki_verifier(roots: Arc<RootCertStore>, provider: &Arc<CryptoProvider>) -> Arc<WebPkiServerVerifier> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .unwrap_or_else(|_| unreachable!("the Mozilla root store is not empty"))
}

/// Whether `error` (from opening a connection) is a failed TLS handshake, as
/// opposed to a server that cannot be reached or refused the login.
pub(crate) fn is_tls_failure(error: &tokio_postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cause = current.source();
    }
    false
}

/// `error` with its causes: tokio-postgres's own message for a failed
/// handshake is only "error performing TLS handshake", without the why
/// (an unknown issuer, a name mismatch).
pub(crate) fn explain(error: &tokio_postgres::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        let part = current.to_string();
        if !message.contains(&part) {
            message.push_str(": ");
            message.push_str(&part);
        }
        cause = current.source();
    }
    message
}

/// The verifier for `sslmode=require`. libpq's `require` means "encrypt, but
/// do not check who is at the other end": servers with self-signed
/// certificates (the PostgreSQL default when `ssl=on`) work with it. The
/// certificate is taken as presented; the handshake signatures are still
/// checked, so the server holds the certificate's key, which SCRAM channel
/// binding (`SCRAM-SHA-256-PLUS`) then ties the login to.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The verifier for `sslmode=verify-ca`: the full check, except that a
/// certificate issued for another name is accepted. webpki checks the chain
/// before the name, so a name error means the chain was good.
#[derive(Debug)]
struct AnyServerName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
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
mod tests {
    use super::{Verification, split_sslmode};

    #[test]
    fn verify_modes_are_handed_to_the_driver_as_require() {
        let (url, v) = split_sslmode("postgres://u@h/db?application_name=x&sslmode=verify-full");
        assert_eq!((url.as_ref(), v), ("postgres://u@h/db?application_name=x&sslmode=require", Verification::Full));
        let (url, v) = split_sslmode("postgres://u@h/db?sslmode=verify-ca");
        assert_eq!((url.as_ref(), v), ("postgres://u@h/db?sslmode=require", Verification::Chain));
        let (url, v) = split_sslmode("postgres://u@h/db?sslmode=verify-full&sslmode=disable");
        assert_eq!(v, Verification::Driver);
        assert!(url.ends_with("sslmode=require&sslmode=disable"), "{url}");
        for plain in ["postgres://u@h/db", "postgres://u@h/db?sslmode=require", "postgres://u@h/db?sslmode=prefer"] {
            assert_eq!(split_sslmode(plain).0.as_ref(), plain);
        }
        assert_eq!(split_sslmode("postgres://u@h/db?sslmode=require").1, Verification::None);
    }
}
