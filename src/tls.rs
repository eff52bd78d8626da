//! TLS with rustls (ring): the server side of `tls_listen` (PEM certificate
//! chain and private key, ALPN `h2` and `http/1.1`) and the client side for
//! HTTPS peers (`peer_scheme = https`, trusting the CAs in `peer_ca_file`).
//!
//! Issue 5 item 1; docs/user-reports.md #16 (HTTPS fronts). PEM parsing is pure
//! ([`parse_chain`], [`parse_key`], [`parse_roots`], [`server_config_from_pem`]);
//! the `load_*` functions read the files. A reload builds a new
//! [`ServerConfig`]: connections accepted afterwards get the new certificate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::Config;

/// ALPN protocols offered by TLS listeners, in preference order.
pub const ALPN_SERVER: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN protocol offered to HTTPS peers (the proxy speaks HTTP/1.1).
pub const ALPN_CLIENT: [&[u8]; 1] = [b"http/1.1"];

/// Which PEM input a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemRole {
    /// `tls_cert_file`.
    Certificate,
    /// `tls_key_file`.
    Key,
    /// `peer_ca_file`.
    CaBundle,
}

impl fmt::Display for PemRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemRole::Certificate => "certificate chain",
            PemRole::Key => "private key",
            PemRole::CaBundle => "CA bundle",
        })
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// What the file holds.
        role: PemRole,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// A PEM section is malformed.
    Pem {
        /// What the input holds.
        role: PemRole,
        /// The PEM error.
        error: pem::Error,
    },
    /// No item of the expected kind (`CERTIFICATE`, `PRIVATE KEY`, ...).
    Empty(PemRole),
    /// The private key does not belong to the first certificate.
    KeyMismatch,
    /// A CA certificate is not a usable trust anchor.
    BadCa(rustls::Error),
    /// rustls refused the key or the configuration.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { role, path, error } => {
                write!(f, "cannot read {role} {}: {error}", path.display())
            }
            TlsError::Pem { role, error } => write!(f, "{role}: bad PEM: {error}"),
            TlsError::Empty(role) => write!(f, "{role}: no PEM item of the expected kind"),
            TlsError::KeyMismatch => {
                f.write_str("private key does not match the first certificate")
            }
            TlsError::BadCa(e) => write!(f, "CA bundle: unusable certificate: {e}"),
            TlsError::Rustls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Maps a PEM error, turning "nothing found" into [`TlsError::Empty`].
fn pem_error(role: PemRole, error: pem::Error) -> TlsError {
    match error {
        pem::Error::NoItemsFound => TlsError::Empty(role),
        error => TlsError::Pem { role, error },
    }
}

/// The `CERTIFICATE` items of a PEM text, leaf first (other items ignored).
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(PemRole::Certificate, e))?;
    if chain.is_empty() {
        return Err(TlsError::Empty(PemRole::Certificate));
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM text.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| pem_error(PemRole::Key, e))
}

/// A root store holding every `CERTIFICATE` of a PEM CA bundle.
pub fn parse_roots(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| pem_error(PemRole::CaBundle, e))?;
        roots.add(cert).map_err(TlsError::BadCa)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Empty(PemRole::CaBundle));
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration from PEM texts: the chain, its key (checked to
/// match the leaf) and ALPN `h2`, `http/1.1`.
pub fn server_config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, TlsError> {
    let chain = parse_chain(cert_pem)?;
    let key = parse_key(key_pem)?;
    let provider = provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        e => TlsError::Rustls(e),
    })?;
    // `from_der` lets an unknown consistency pass; ring always knows.
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => return Err(TlsError::KeyMismatch),
    }
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    cfg.alpn_protocols = ALPN_SERVER.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

fn read(role: PemRole, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        role,
        path: path.to_path_buf(),
        error,
    })
}

/// Reads the PEM certificate chain and key files into a server configuration.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read(PemRole::Certificate, cert)?;
    let key_pem = read(PemRole::Key, key)?;
    server_config_from_pem(&cert_pem, &key_pem).map(Arc::new)
}

/// The server configuration `config` asks for: `None` without `tls_listen`.
pub fn server_config_for(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    match &config.tls {
        Some(t) => load_server_config(&t.cert_file, &t.key_file).map(Some),
        None => Ok(None),
    }
}

/// A client configuration for HTTPS peers trusting the CAs of a PEM text
/// (no system roots: peers are usually signed by a private CA).
pub fn client_config_from_pem(ca_pem: &[u8]) -> Result<ClientConfig, TlsError> {
    let roots = parse_roots(ca_pem)?;
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = ALPN_CLIENT.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Reads `ca_file` (PEM) into a client configuration for HTTPS peers.
/// ALPN offers `http/1.1` only.
pub fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let pem = read(PemRole::CaBundle, ca_file)?;
    client_config_from_pem(&pem).map(Arc::new)
}

/// The peer client configuration `config` asks for: `None` without
/// `peer_ca_file`.
pub fn client_config_for(config: &Config) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    config
        .peer_ca_file
        .as_deref()
        .map(client_config)
        .transpose()
}

/// How peers are spoken to over HTTP, settled when the state is built
/// (docs/replication-lag.md "HTTPS peers").
#[derive(Debug, Clone)]
pub enum PeerHttp {
    /// Plain HTTP (`peer_scheme = http`).
    Plain,
    /// HTTPS trusting this client configuration (`peer_ca_file`).
    Tls(Arc<ClientConfig>),
    /// `peer_scheme = https` without a client configuration: only redirect
    /// mode or `proxy_via = storage` reach peers (the configuration refuses
    /// HTTP proxying without `peer_ca_file`).
    NoCa,
}

/// The peer transport of `config`: `peer_scheme` with its CA bundle read.
pub fn peer_http_for(config: &Config) -> Result<PeerHttp, TlsError> {
    Ok(match (config.peer_scheme, client_config_for(config)?) {
        (crate::config::Scheme::Http, _) => PeerHttp::Plain,
        (crate::config::Scheme::Https, Some(c)) => PeerHttp::Tls(c),
        (crate::config::Scheme::Https, None) => PeerHttp::NoCa,
    })
}

/// Checks every TLS file `config` names (used by `--check-config`).
pub fn check(config: &Config) -> Result<(), TlsError> {
    server_config_for(config)?;
    client_config_for(config)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_and_leaf() -> (String, String, String, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        (
            ca.pem(),
            ca_key.serialize_pem(),
            leaf.pem(),
            leaf_key.serialize_pem(),
        )
    }

    #[test]
    fn server_config_offers_h2_then_http11() {
        let (ca, _, leaf, key) = ca_and_leaf();
        let chain = format!("{leaf}{ca}");
        let cfg = server_config_from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(parse_chain(chain.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let (_, ca_key, leaf, _) = ca_and_leaf();
        let e = server_config_from_pem(leaf.as_bytes(), ca_key.as_bytes()).unwrap_err();
        assert!(matches!(e, TlsError::KeyMismatch), "{e}");
    }

    #[test]
    fn empty_and_wrong_inputs() {
        let (ca, _, leaf, key) = ca_and_leaf();
        assert!(matches!(
            parse_chain(b""),
            Err(TlsError::Empty(PemRole::Certificate))
        ));
        // A key file holds no certificate and a certificate no key.
        assert!(matches!(
            parse_chain(key.as_bytes()),
            Err(TlsError::Empty(PemRole::Certificate))
        ));
        assert!(matches!(
            parse_key(leaf.as_bytes()),
            Err(TlsError::Empty(PemRole::Key))
        ));
        assert!(matches!(
            parse_roots(b"junk"),
            Err(TlsError::Empty(PemRole::CaBundle))
        ));
        assert!(parse_roots(ca.as_bytes()).is_ok());
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            parse_chain(broken.as_bytes()),
            Err(TlsError::Pem { .. })
        ));
    }

    #[test]
    fn client_config_trusts_the_bundle() {
        let (ca, _, _, _) = ca_and_leaf();
        let cfg = client_config_from_pem(ca.as_bytes()).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_file_names_path() {
        let e = client_config(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(matches!(
            e,
            TlsError::Read {
                role: PemRole::CaBundle,
                ..
            }
        ));
    }
}
