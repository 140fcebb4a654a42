//! TLS on both sides, with rustls on ring, TLS 1.2 and 1.3.
//!
//! Terminating: the certificate chain and key from PEM files, ALPN `h2` and `http/1.1` so that browsers get HTTP/2.
//! Upstream: `https://` upstreams verified against a route's CA file or the system's roots, SNI from the URL's host,
//! an optional client certificate, ALPN per protocol ([`Transport`]). Every file is read with the rest of the
//! configuration, so a SIGHUP that reloads it picks up renewed certificates; connections already open keep the
//! settings they started with.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// The TLS settings of a certificate chain and its key (PEM: the chain leaf first, the key PKCS#8, PKCS#1 or SEC1).
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let (chain, key) = (cert_chain(cert)?, private_key(key)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and the key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How a route's upstream connections are made: plain or TLS, HTTP/1.1 or HTTP/2. Routes with the same settings
/// share one (the configuration builds each once), and the upstream pool keys its connections by it as well as by
/// the upstream's address, so a connection verified under one route's TLS settings never serves a route with others.
pub(crate) struct Transport {
    /// Requests go over HTTP/2 (ALPN `h2` over TLS, prior knowledge over plain TCP); WebSocket upgrades still take
    /// an HTTP/1.1 connection of their own.
    pub(crate) http2: bool,
    /// `https://` upstreams.
    pub(crate) tls: Option<ClientTls>,
    /// For `--check` and logs: what the settings are, without secrets.
    pub(crate) describe: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Transport {
    /// Plain HTTP/1.1, the default.
    pub(crate) fn plain() -> Arc<Transport> {
        Arc::new(Transport { http2: false, tls: None, describe: "http/1.1".into() })
    }
}

/// The TLS client settings of an `https://` upstream: one connector per protocol, as ALPN is offered per handshake.
pub(crate) struct ClientTls {
    /// ALPN `http/1.1`.
    pub(crate) http1: tokio_rustls::TlsConnector,
    /// ALPN `h2` only (with `http2 = true`): an upstream that does not agree fails the handshake rather than
    /// silently falling back.
    pub(crate) http2: Option<tokio_rustls::TlsConnector>,
}

/// The upstream-side settings of a route, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct TransportSettings {
    pub(crate) https: bool,
    pub(crate) http2: bool,
    pub(crate) ca_file: Option<std::path::PathBuf>,
    pub(crate) client_cert: Option<std::path::PathBuf>,
    pub(crate) client_key: Option<std::path::PathBuf>,
}

impl TransportSettings {
    /// Builds the transport: the CA file (or the system's roots) and the client certificate are read now, so a
    /// SIGHUP that reloads the configuration picks up renewed files.
    pub(crate) fn build(&self) -> Result<Arc<Transport>, String> {
        let protocol = if self.http2 { "h2" } else { "http/1.1" };
        if !self.https {
            if self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some() {
                return Err("ca_file, client_cert and client_key need an https:// upstream".into());
            }
            let describe = if self.http2 { "h2c (prior knowledge)" } else { protocol };
            return Ok(Arc::new(Transport {
                http2: self.http2,
                tls: None,
                describe: describe.into(),
            }));
        }
        let roots = match &self.ca_file {
            Some(path) => ca_roots(path)?,
            None => system_roots(),
        };
        let client = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert_chain(cert)?, private_key(key)?)),
            _ => return Err("client_cert and client_key go together".into()),
        };
        let connector = |alpn: &[u8]| -> Result<tokio_rustls::TlsConnector, String> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots.clone());
            let mut config = match &client {
                None => builder.with_no_client_auth(),
                Some((chain, key)) => {
                    builder.with_client_auth_cert(chain.clone(), key.clone_key()).map_err(|e| {
                        format!("the client certificate and key do not go together: {e}")
                    })?
                }
            };
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        };
        let tls = ClientTls {
            http1: connector(b"http/1.1")?,
            http2: if self.http2 { Some(connector(b"h2")?) } else { None },
        };
        let mut describe = format!("https, {protocol}, verified against ");
        match &self.ca_file {
            Some(path) => describe.push_str(&path.display().to_string()),
            None if roots.is_empty() => describe.push_str(
                "the system's roots, of which there are none: install ca-certificates or set ca_file",
            ),
            None => {
                describe.push_str(&format!("the system's roots ({} certificates)", roots.len()))
            }
        }
        if let Some(cert) = &self.client_cert {
            describe.push_str(&format!(", client certificate {}", cert.display()));
        }
        Ok(Arc::new(Transport { http2: self.http2, tls: Some(tls), describe }))
    }
}

fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The CA certificates of a PEM file, each of which must parse.
fn ca_roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in cert_chain(path)? {
        roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The system's trusted roots, read once per process (the files are many). Certificates that do not parse are
/// skipped, as every TLS client on the system does; none at all leaves an empty store, which verifies nothing, and
/// `--check` says so.
pub(crate) fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's CA certificates");
            }
            let mut roots = rustls::RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                tracing::debug!(
                    added,
                    ignored,
                    "system CA certificates that did not parse were skipped"
                );
            }
            Arc::new(roots)
        })
        .clone()
}
