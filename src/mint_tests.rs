//! Tests of the minter: a real handshake against the minted certificate, trusted through
//! the CA only; the cache and its bound.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A CA as a collectivité would make it: (cert PEM, key PEM).
pub(crate) fn ca() -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Mairie test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn client(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let der: CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).expect("pem");
    roots.add(der).expect("root");
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

async fn handshake(minter: &Minter, ca_pem: &str, host: &str, alpn: &[&[u8]]) -> Option<Vec<u8>> {
    let server = minter.server_config(host).expect("config");
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let srv = tokio::spawn(async move {
        let mut tls = acceptor.accept(b).await.expect("accept");
        tls.write_all(b"451").await.expect("write");
        tls.shutdown().await.ok();
    });
    let connector = tokio_rustls::TlsConnector::from(client(ca_pem, alpn));
    let name = ServerName::try_from(host.to_owned()).expect("name");
    let mut tls = connector
        .connect(name, a)
        .await
        .expect("the browser trusts the minted certificate");
    let proto = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await.ok();
    assert_eq!(got, b"451");
    srv.await.expect("server");
    proto
}

#[tokio::test]
async fn a_browser_trusting_the_ca_accepts_the_minted_certificate() {
    let (cert, key) = ca();
    let minter = Minter::from_pem(&cert, &key, Duration::from_secs(3600), 16).expect("minter");
    assert_eq!(
        handshake(&minter, &cert, "blocked.example", &[b"h2", b"http/1.1"])
            .await
            .as_deref(),
        Some(&b"h2"[..])
    );
    assert_eq!(
        handshake(&minter, &cert, "blocked.example", &[b"http/1.1"])
            .await
            .as_deref(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(handshake(&minter, &cert, "127.0.0.1", &[]).await, None);
}

#[tokio::test]
async fn another_ca_is_not_trusted() {
    let (cert, key) = ca();
    let (other, _) = ca();
    let minter = Minter::from_pem(&cert, &key, Duration::from_secs(3600), 16).expect("minter");
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor =
        tokio_rustls::TlsAcceptor::from(minter.server_config("x.example").expect("config"));
    tokio::spawn(async move { acceptor.accept(b).await.ok() });
    let connector = tokio_rustls::TlsConnector::from(client(&other, &[]));
    let name = ServerName::try_from("x.example").expect("name");
    assert!(connector.connect(name, a).await.is_err());
}

#[test]
fn the_cache_returns_the_same_config_and_stays_bounded() {
    let (cert, key) = ca();
    let minter = Minter::from_pem(&cert, &key, Duration::from_secs(3600), 2).expect("minter");
    let a1 = minter.server_config("a.example").expect("a");
    let a2 = minter.server_config("A.example.").expect("a again");
    assert!(Arc::ptr_eq(&a1, &a2), "cached");
    minter.server_config("b.example").expect("b");
    minter.server_config("c.example").expect("c");
    assert_eq!(minter.cached(), 2);
    let a3 = minter.server_config("a.example").expect("a re-minted");
    assert!(!Arc::ptr_eq(&a1, &a3), "a was evicted first");
}

#[test]
fn a_bad_ca_says_what_to_give() {
    let (cert, _) = ca();
    let err =
        Minter::from_pem(&cert, "not a key", Duration::from_secs(60), 1).expect_err("bad key");
    assert!(err.to_string().contains("PKCS#8"), "{err}");
    let err = Minter::from_pem("nope", &ca().1, Duration::from_secs(60), 1).expect_err("bad cert");
    assert!(err.to_string().contains("not usable"), "{err}");
}
