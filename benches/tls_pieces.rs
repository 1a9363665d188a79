//! The TLS pieces of the HTTPS block page and the tunnel check: minting a certificate for a
//! blocked host (target: under 5 ms), the cached lookup, and reading a real ClientHello's
//! SNI (on every inspected tunnel: must be negligible next to a handshake).
//! Run with `cargo bench --bench tls_pieces -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::client_hello::inspect;
use douane::mint::Minter;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::ServerName;

fn ca() -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client_hello(name: &str) -> Vec<u8> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    let mut conn = ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn bench(c: &mut Criterion) {
    let (cert, key) = ca();
    let minter = Minter::from_pem(&cert, &key, Duration::from_secs(86_400), 100_000).unwrap();
    // Outside the routine: criterion calls it more than once, every host must be new.
    let n = AtomicU64::new(0);
    c.bench_function("mint: new certificate and ServerConfig for a host", |b| {
        b.iter(|| {
            let host = format!("h{}.blocked.example", n.fetch_add(1, Ordering::Relaxed));
            black_box(minter.server_config(&host).unwrap())
        })
    });
    minter.server_config("cached.example").unwrap();
    c.bench_function("mint: cached lookup", |b| {
        b.iter(|| black_box(minter.server_config(black_box("cached.example")).unwrap()))
    });
    let hello = client_hello("outlook.office365.com");
    c.bench_function("client_hello: inspect a real ClientHello", |b| {
        b.iter(|| black_box(inspect(black_box(&hello))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
