//! Certificates for the HTTPS block page: a leaf minted for the requested host by the
//! collectivité's local CA (`[local_ca]`, deployed to its browsers by GPO or enterprise
//! policy), short-lived, cached (bounded), served as a rustls `ServerConfig` with ALPN
//! `h2` and `http/1.1`. Only blocked tunnels are answered with it: allowed tunnels are never
//! decrypted.
//!
//! One leaf key (ECDSA P-256) is generated at start and signs every minted certificate's
//! public key, so a mint is one signature; the cache makes a repeated host a map lookup.
//! The cache takes a lock, on the blocked path only (never on allowed traffic).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Deserialize;

/// `[local_ca]` in `douane.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalCaConfig {
    /// The CA certificate (PEM) the browsers trust.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8). Keep it readable by douane only.
    pub key: PathBuf,
    /// How long a minted certificate is valid, in hours (default 24).
    #[serde(default = "default_validity")]
    pub leaf_validity_hours: u32,
    /// How many hosts' certificates are kept (default 1024).
    #[serde(default = "default_cache")]
    pub cache_entries: usize,
}

fn default_validity() -> u32 {
    24
}

fn default_cache() -> usize {
    1024
}

/// Why the CA cannot be used or a certificate cannot be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("{path}: cannot read the local CA file: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("the local CA certificate or key is not usable: {0} (give the CA certificate and its PKCS#8 key, both PEM)")]
    Ca(String),
    #[error("cannot mint a certificate for `{host}`: {detail}")]
    Mint { host: String, detail: String },
    #[error("cannot build the TLS config: {0}")]
    Tls(String),
}

struct Entry {
    config: Arc<ServerConfig>,
    fresh_until: Instant,
}

#[derive(Default)]
struct Cache {
    map: HashMap<Box<str>, Entry>,
    order: VecDeque<Box<str>>,
}

/// Mints and caches certificates signed by the local CA.
pub struct Minter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    validity: Duration,
    capacity: usize,
    provider: Arc<CryptoProvider>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("validity", &self.validity)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<String, MintError> {
    std::fs::read_to_string(path).map_err(|e| MintError::Read {
        path: path.clone(),
        detail: e.to_string(),
    })
}

impl Minter {
    /// Reads the CA from `[local_ca]`.
    pub fn load(config: &LocalCaConfig) -> Result<Minter, MintError> {
        let cert = read(&config.cert)?;
        let key = read(&config.key)?;
        Minter::from_pem(
            &cert,
            &key,
            Duration::from_secs(u64::from(config.leaf_validity_hours.max(1)) * 3600),
            config.cache_entries,
        )
    }

    /// The CA from PEM text: a certificate and its key.
    pub fn from_pem(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        validity: Duration,
        capacity: usize,
    ) -> Result<Minter, MintError> {
        let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|e| MintError::Ca(e.to_string()))?;
        let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(ca_cert_pem.as_bytes())
            .map_err(|e: rustls_pki_types::pem::Error| MintError::Ca(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(|e| MintError::Ca(e.to_string()))?;
        let leaf_key = KeyPair::generate().map_err(|e| MintError::Ca(e.to_string()))?;
        Ok(Minter {
            issuer,
            ca_der,
            leaf_key,
            validity,
            capacity: capacity.max(1),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// A new certificate for `host` (a DNS name or an IP address), DER, not cached.
    pub fn mint(&self, host: &str) -> Result<CertificateDer<'static>, MintError> {
        let err = |e: rcgen::Error| MintError::Mint {
            host: host.to_owned(),
            detail: e.to_string(),
        };
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, host);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "douane (page de blocage)");
        let now = time::OffsetDateTime::now_utc();
        // An hour back for clients whose clock runs late.
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + self.validity;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(err)?;
        Ok(cert.der().clone())
    }

    /// The TLS config that presents a certificate for `host`: from the cache while it is in
    /// the first half of its validity, else minted and cached (the oldest entry evicted).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, MintError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock() {
            if let Some(e) = cache.map.get(host.as_str()) {
                if e.fresh_until > now {
                    return Ok(e.config.clone());
                }
            }
        }
        let cert = self.mint(&host)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| MintError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![cert, self.ca_der.clone()], key)
            .map_err(|e| MintError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if let Ok(mut cache) = self.cache.lock() {
            let key: Box<str> = host.into();
            if cache
                .map
                .insert(
                    key.clone(),
                    Entry {
                        config: config.clone(),
                        fresh_until: now + self.validity / 2,
                    },
                )
                .is_none()
            {
                cache.order.push_back(key);
            }
            while cache.map.len() > self.capacity {
                match cache.order.pop_front() {
                    Some(old) => {
                        cache.map.remove(&old);
                    }
                    None => break,
                }
            }
        }
        Ok(config)
    }

    /// How many hosts are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.map.len())
    }
}

#[cfg(test)]
#[path = "mint_tests.rs"]
mod tests;
