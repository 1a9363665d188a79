//! TLS: the server side of reverse listeners (certificates from PEM files, chosen by SNI,
//! ALPN h2 + http/1.1; replaceable while serving, for renewals) and the client side towards
//! upstreams (system roots and/or a CA bundle). Also the self-signed development
//! certificate for the shipped config.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::CertificatePaths;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {}", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no usable PEM private key in the file ({detail})", path.display())]
    NoKey { path: PathBuf, detail: String },
    #[error("{}: the key {} does not match or is not supported: {source}", cert.display(), key.display())]
    BadKey {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("{}: {detail}", path.display())]
    Roots { path: PathBuf, detail: String },
    #[error("no trusted root for upstream TLS: enable system_roots or give a ca_file")]
    NoRoots,
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// An I/O error in words, without the OS error number where its kind says it all.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "the file does not exist".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied: this user cannot read it".into()
        }
        _ => format!("cannot read: {e}"),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads one certificate chain and its key.
pub fn load_certified_key(paths: &CertificatePaths) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&paths.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: paths.cert.clone(),
        });
    }
    let key_pem = read(&paths.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: paths.key.clone(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::BadKey {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        source,
    })
}

/// Picks the certificate by SNI: exact names known in advance (the routes' hosts) are a map
/// lookup; any other name is matched against each certificate; no SNI gets the first one.
pub struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("certificates", &self.keys.len())
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SniResolver {
    pub fn new(keys: Vec<CertifiedKey>, known_names: &[&str]) -> Self {
        let keys: Vec<Arc<CertifiedKey>> = keys.into_iter().map(Arc::new).collect();
        let mut by_name = HashMap::new();
        for name in known_names {
            if let Some(key) = find_for(&keys, name) {
                by_name.insert(name.to_ascii_lowercase(), key);
            }
        }
        SniResolver { keys, by_name }
    }

    /// Whether some certificate is valid for `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || find_for(&self.keys, name).is_some()
    }
}

fn find_for(keys: &[Arc<CertifiedKey>], name: &str) -> Option<Arc<CertifiedKey>> {
    let server_name = ServerName::try_from(name).ok()?;
    keys.iter()
        .find(|k| {
            k.cert.first().is_some_and(|der| {
                webpki::EndEntityCert::try_from(der)
                    .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&server_name).is_ok())
            })
        })
        .cloned()
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            None => self.keys.first().cloned(),
            Some(name) => self
                .by_name
                .get(name)
                .cloned()
                .or_else(|| find_for(&self.keys, name))
                .or_else(|| self.keys.first().cloned()),
        }
    }
}

/// Reads every certificate of a listener into a resolver.
pub fn load_resolver(
    certificates: &[CertificatePaths],
    known_names: &[&str],
) -> Result<SniResolver, TlsError> {
    let keys = certificates
        .iter()
        .map(load_certified_key)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SniResolver::new(keys, known_names))
}

/// The certificates of one listener, replaceable while it serves: each handshake reads the
/// set in force when it starts (one atomic load, no lock); connections already established
/// keep the certificate they were made with. A renewal is a [`Certificates::replace`].
#[derive(Debug)]
pub struct Certificates(ArcSwap<SniResolver>);

impl Certificates {
    pub fn new(resolver: SniResolver) -> Self {
        Certificates(ArcSwap::from_pointee(resolver))
    }

    /// New handshakes get these certificates from now on.
    pub fn replace(&self, resolver: SniResolver) {
        self.0.store(Arc::new(resolver));
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolve(hello)
    }
}

/// The rustls server config of a reverse listener, and the handle that renews its
/// certificates.
pub fn server_config(
    certificates: &[CertificatePaths],
    known_names: &[&str],
) -> Result<(Arc<ServerConfig>, Arc<Certificates>), TlsError> {
    let certs = Arc::new(Certificates::new(load_resolver(certificates, known_names)?));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), certs))
}

/// The rustls client config for upstream connections.
pub fn client_config(
    ca_file: Option<&Path>,
    system_roots: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    if system_roots {
        // A missing system store is not fatal when a ca_file is given; errors of single
        // certificates are skipped, as every TLS client does.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    }
    if let Some(path) = ca_file {
        let pem = read(path)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Roots {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_owned(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Roots {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a self-signed certificate and key (PEM) for `names`, for development use.
pub fn write_self_signed(cert: &Path, key: &Path, names: &[&str]) -> Result<(), TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    for (path, pem) in [
        (cert, generated.cert.pem()),
        (key, generated.signing_key.serialize_pem()),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, pem).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_picks_the_certificate_that_names_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, names) in [vec!["a.localhost"], vec!["*.b.localhost", "b.localhost"]]
            .iter()
            .enumerate()
        {
            let p = CertificatePaths {
                cert: dir.path().join(format!("{i}.pem")),
                key: dir.path().join(format!("{i}-key.pem")),
                generate_if_missing: false,
                at: Default::default(),
            };
            write_self_signed(&p.cert, &p.key, names).unwrap();
            paths.push(p);
        }
        let keys: Vec<CertifiedKey> = paths
            .iter()
            .map(|p| load_certified_key(p).unwrap())
            .collect();
        let first = keys[0].cert[0].clone();
        let second = keys[1].cert[0].clone();
        let resolver = SniResolver::new(keys, &["a.localhost"]);
        assert_eq!(
            find_for(&resolver.keys, "x.b.localhost").unwrap().cert[0],
            second
        );
        assert_eq!(
            find_for(&resolver.keys, "a.localhost").unwrap().cert[0],
            first
        );
        assert!(resolver.covers("b.localhost"));
        assert!(!resolver.covers("c.localhost"));
        assert!(server_config(&paths, &["a.localhost"]).is_ok());
    }

    #[test]
    fn missing_and_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = CertificatePaths {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope-key.pem"),
            generate_if_missing: false,
            at: Default::default(),
        };
        let err = load_certified_key(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");

        let a = CertificatePaths {
            cert: dir.path().join("a.pem"),
            key: dir.path().join("a-key.pem"),
            generate_if_missing: false,
            at: Default::default(),
        };
        let b = CertificatePaths {
            cert: dir.path().join("b.pem"),
            key: dir.path().join("b-key.pem"),
            generate_if_missing: false,
            at: Default::default(),
        };
        write_self_signed(&a.cert, &a.key, &["a.localhost"]).unwrap();
        write_self_signed(&b.cert, &b.key, &["b.localhost"]).unwrap();
        let crossed = CertificatePaths {
            cert: a.cert.clone(),
            key: b.key.clone(),
            generate_if_missing: false,
            at: Default::default(),
        };
        let err = load_certified_key(&crossed).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
