//! Tests of the tunnel inspector: real ClientHellos from rustls clients, every prefix of
//! them, hand-made ECH and split records, plain HTTP; and arbitrary bytes (proptest).

use std::sync::Arc;

use proptest::prelude::*;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::ServerName;

use super::*;

fn client_config(alpn: bool) -> Arc<ClientConfig> {
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    if alpn {
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Arc::new(c)
}

/// The bytes a rustls client sends first when connecting to `name`.
fn real_client_hello(name: &str, alpn: bool) -> Vec<u8> {
    let server = ServerName::try_from(name.to_owned()).expect("server name");
    let mut conn = ClientConnection::new(client_config(alpn), server).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
}

/// A ClientHello built by hand with the given extensions, in one record.
fn hand_hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    for (kind, data) in exts {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    record(&hs)
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut r = vec![0x16, 0x03, 0x01];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn sni_ext(name: &str) -> (u16, Vec<u8>) {
    let mut entry = vec![0];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name.as_bytes());
    let mut data = (entry.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&entry);
    (0, data)
}

fn tls(sni: Option<&str>, ech: bool) -> Inspection {
    Inspection::Tls(ClientHello {
        sni: sni.map(str::to_owned),
        ech,
    })
}

#[test]
fn a_real_client_hello_gives_its_server_name() {
    let hello = real_client_hello("outlook.office365.com", true);
    assert_eq!(inspect(&hello), tls(Some("outlook.office365.com"), false));
    // With bytes after it (the client may send early data), the same.
    let mut more = hello.clone();
    more.extend_from_slice(b"\x17\x03\x03\x00\x10garbage");
    assert_eq!(inspect(&more), tls(Some("outlook.office365.com"), false));
}

#[test]
fn every_prefix_of_a_client_hello_needs_more() {
    let hello = real_client_hello("blocked.example", false);
    for n in 0..hello.len() {
        assert_eq!(
            inspect(&hello[..n]),
            Inspection::NeedMore,
            "prefix of {n} bytes"
        );
    }
}

#[test]
fn an_ip_address_client_hello_has_no_sni() {
    // rustls sends no server_name for an IP address, as RFC 6066 says.
    let hello = real_client_hello("127.0.0.3", false);
    assert_eq!(inspect(&hello), tls(None, false));
}

#[test]
fn ech_and_missing_sni_are_told_apart() {
    let ech = hand_hello(&[sni_ext("public.example"), (0xfe0d, vec![0; 40])]);
    assert_eq!(inspect(&ech), tls(Some("public.example"), true));
    assert_eq!(
        inspect(&hand_hello(&[(0x000a, vec![0, 2, 0, 0x1d])])),
        tls(None, false)
    );
    assert_eq!(
        inspect(&hand_hello(&[sni_ext("Mixed.Case.Example.")])),
        tls(Some("mixed.case.example"), false)
    );
    assert_eq!(
        inspect(&hand_hello(&[sni_ext("bad name")])),
        Inspection::MalformedTls
    );
}

#[test]
fn a_client_hello_split_across_records_is_gathered() {
    let hello = real_client_hello("split.example", true);
    let payload = &hello[5..];
    let (a, b) = payload.split_at(40);
    let mut split = record(a);
    split.extend_from_slice(&record(b));
    assert_eq!(inspect(&split), tls(Some("split.example"), false));
    assert_eq!(inspect(&split[..split.len() - 1]), Inspection::NeedMore);
}

#[test]
fn plain_http_gives_its_host() {
    let get = |s: &str| inspect(s.as_bytes());
    assert_eq!(
        get("GET / HTTP/1.1\r\nHost: Other.Example:8080\r\n\r\n"),
        Inspection::Http {
            host: Some("other.example".into())
        }
    );
    assert_eq!(
        get("GET http://abs.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n"),
        Inspection::Http {
            host: Some("abs.example".into())
        }
    );
    assert_eq!(
        get("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
        Inspection::Http {
            host: Some("::1".into())
        }
    );
    assert_eq!(
        get("GET / HTTP/1.0\r\n\r\n"),
        Inspection::Http { host: None }
    );
    assert_eq!(
        get("GET / HTTP/1.1\r\nHost: a.example\r\n"),
        Inspection::NeedMore
    );
    assert_eq!(get("GE"), Inspection::NeedMore);
    assert_eq!(get("SSH-2.0-OpenSSH_9.2\r\n"), Inspection::Other);
    assert_eq!(inspect(b"\x00\x01binary"), Inspection::Other);
    assert_eq!(
        inspect(b"\x16\x02\x00\x00\x05hello"),
        Inspection::MalformedTls
    );
}

#[tokio::test]
async fn read_first_keeps_the_bytes_it_read() {
    let hello = real_client_hello("kept.example", true);
    let (mut client, mut server) = tokio::io::duplex(256);
    let sent = hello.clone();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in sent.chunks(100) {
            client.write_all(chunk).await.expect("write");
        }
        client
    });
    let mut buf = Vec::new();
    let got = read_first(&mut server, &mut buf, 64 * 1024, Duration::from_secs(5))
        .await
        .expect("read");
    assert_eq!(got, tls(Some("kept.example"), false));
    assert_eq!(buf, hello, "every byte read is kept to be forwarded");
    let _client = writer.await.expect("writer");

    let (client, mut server) = tokio::io::duplex(256);
    drop(client);
    let mut buf = Vec::new();
    assert!(matches!(
        read_first(&mut server, &mut buf, 1024, Duration::from_secs(5)).await,
        Err(ReadFirstError::Closed(0))
    ));
    let (_client, mut server) = tokio::io::duplex(256);
    assert!(matches!(
        read_first(
            &mut server,
            &mut Vec::new(),
            1024,
            Duration::from_millis(50)
        )
        .await,
        Err(ReadFirstError::Timeout(_))
    ));
}

fn dns_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 1..5)
        .prop_map(|labels| labels.join(".") + ".example")
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = inspect(&bytes);
    }

    #[test]
    fn never_panics_on_bytes_that_start_like_tls(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = vec![0x16, 0x03, 0x01];
        bytes.extend_from_slice(&tail);
        let _ = inspect(&bytes);
    }

    #[test]
    fn recovers_the_sni_of_real_client_hellos(name in dns_name(), alpn in any::<bool>()) {
        let hello = real_client_hello(&name, alpn);
        prop_assert_eq!(inspect(&hello), tls(Some(&name), false));
    }

    #[test]
    fn a_corrupted_client_hello_never_panics(name in dns_name(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut hello = real_client_hello(&name, true);
        let i = at.index(hello.len());
        hello[i] = byte;
        let _ = inspect(&hello);
    }
}
