//! A certificate authority made at test time (rcgen) and the server
//! certificates it signs, for the TLS listener and HTTPS peer tests. Private
//! keys exist only in memory and in the test's temp dir.

use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};

/// A self-signed CA.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

/// A server certificate signed by a [`TestCa`].
pub struct Leaf {
    /// Leaf then CA certificate, PEM (a `tls_cert_file`).
    pub chain_pem: String,
    /// The leaf's private key, PEM (a `tls_key_file`).
    pub key_pem: String,
    /// The leaf certificate, DER (what a client sees as the peer's).
    pub der: Vec<u8>,
}

impl TestCa {
    /// A new CA with a fresh key.
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// The CA certificate, PEM (a `peer_ca_file` or client trust root).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A rustls client configuration trusting only this CA, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let roots = fdfs_httpd::tls::parse_roots(self.pem().as_bytes()).unwrap();
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// A leaf for `name`: an IP address SAN if it parses as one, else a
    /// DNS name SAN.
    pub fn leaf(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A fresh private key, PEM, that matches no certificate.
pub fn stray_key_pem() -> String {
    KeyPair::generate().unwrap().serialize_pem()
}
