//! HTTPS and WSS on the server's one port (rustls, no OpenSSL), with optional
//! mutual TLS: when a client CA is given, every client must present a
//! certificate it signed. The client commands (`rpcnode call`, `listen`,
//! `discover`) connect with [`client_config`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig, crypto};

/// Where the server's certificate and key, and the client CA, are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) that sign client certificates; requires and
    /// verifies a client certificate when set.
    pub client_ca: Option<PathBuf>,
}

/// Build the TLS acceptor; every error names the file at fault.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let certs = certificates(&files.cert, "certificate")?;
    let key = private_key(&files.key)?;
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            add_roots(&mut roots, ca, "client CA")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("client CA file {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "certificate {} and private key {} do not belong together",
            files.cert.display(),
            files.key.display()
        )
    })?;
    // HTTP/1.1 only: WebSocket upgrades need it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS settings of a client: the public web's roots and those in
/// `ca_file`, and, when given, a client certificate and its key.
pub fn client_config(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = ca_file {
        add_roots(&mut roots, ca, "CA")?;
    }
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert, "client certificate")?, private_key(key)?)
            .with_context(|| {
                format!(
                    "client certificate {} and key {} do not belong together",
                    cert.display(),
                    key.display()
                )
            })?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Trust the certificates of the PEM file `path` (`what` names it in errors).
fn add_roots(roots: &mut RootCertStore, path: &Path, what: &str) -> anyhow::Result<()> {
    for cert in certificates(path, what)? {
        roots.add(cert).with_context(|| {
            format!(
                "{what} file {} holds an unusable certificate",
                path.display()
            )
        })?;
    }
    Ok(())
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| {
        format!(
            "reading private key file {}: expected a PEM private key",
            path.display()
        )
    })
}

fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let context = || format!("reading {what} file {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(context)?
        .collect::<Result<Vec<_>, _>>()
        .with_context(context)?;
    if certs.is_empty() {
        bail!("{what} file {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}
