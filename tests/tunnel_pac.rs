//! The PAC file on the forward listener, as a browser fetches it from the proxy port it is
//! configured with: a plain `GET /proxy.pac` (or `/wpad.dat`, origin-form) is answered by
//! douane itself on both engines — the same file as on the admin listener — and is no
//! request through the proxy (no decision, no audit record). Without `[pac]` it stays what
//! it was: a target that is not absolute-form, refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};

const PAC: &str =
    "[pac]\nproxies = [\"douane.mairie.example:3128\"]\nintranet_suffixes = [\"mairie.example\"]\n";

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: wpad\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

on_both_engines! {
    async fn the_forward_listener_serves_the_pac_file(engine: Engine) {
        let fx = Fixture::new();
        fx.write_policy(&policy("all", "enforce", &[443], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            extra: PAC.into(),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        let admin = get(douane.admin, "/proxy.pac");
        let (_, admin_pac) = admin.split_once("\r\n\r\n").expect("admin answer");
        for path in ["/proxy.pac", "/wpad.dat"] {
            let answer = get(douane.forward, path);
            let (head, pac) = answer.split_once("\r\n\r\n").expect("head and body");
            assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/x-ns-proxy-autoconfig"),
                "{head}"
            );
            assert!(pac.contains("PROXY douane.mairie.example:3128"), "{pac}");
            assert_eq!(pac, admin_pac, "{path}: the admin listener's file");
        }
        // Another origin-form path is still no proxy request.
        let other = get(douane.forward, "/other");
        assert!(other.starts_with("HTTP/1.1 400"), "{other}");
        assert!(fx.audit_records().is_empty(), "a PAC fetch is not a decided request");
    }

    async fn without_a_pac_table_the_forward_listener_refuses_the_path(engine: Engine) {
        let fx = Fixture::new();
        fx.write_policy(&policy("all", "enforce", &[443], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        let answer = get(douane.forward, "/proxy.pac");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}
