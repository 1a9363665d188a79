//! `douane geodb update` against a loopback HTTP server serving files in the formats the
//! real sources use (a plain `.mmdb`, MaxMind's `.tar.gz` behind a licence key and a
//! redirect, RouteViews/NRO-style ASN CSV), and from an offline bundle: a good file is
//! swapped in and a running douane reloads it; a truncated or a shrunken file is refused
//! and the running douane keeps answering with the old classification.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client;
use common::mmdb::country_db_bytes;
use common::parent;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture, ASNS, COUNTRIES};
use common::upstream;
use douane::geo::{GeoDb, Schema};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test server answers, by path (without the query); and every target asked for.
#[derive(Clone, Default)]
struct Files {
    by_path: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    redirects: Arc<Mutex<HashMap<String, String>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Files {
    fn serve(&self, path: &str, bytes: Vec<u8>) {
        self.by_path.lock().unwrap().insert(path.into(), bytes);
    }
}

/// A minimal HTTP/1.1 file server on loopback: 200 with the file, 302 for a redirect,
/// 404 for the rest; one request per connection.
async fn start_server(files: Files) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let files = files.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                files.asked.lock().unwrap().push(target.clone());
                let path = target.split('?').next().unwrap_or("/").to_owned();
                let redirect = files.redirects.lock().unwrap().get(&path).cloned();
                let body = files.by_path.lock().unwrap().get(&path).cloned();
                let answer = match (redirect, body) {
                    (Some(to), _) => {
                        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                            .into_bytes()
                    }
                    (None, Some(body)) => {
                        let mut a = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        a.extend_from_slice(&body);
                        a
                    }
                    (None, None) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn douane(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOUANE_CONFIG")
        .output()
        .expect("run douane")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The fixture's countries with 127.0.0.2 moved to `code`.
fn countries_with_2_in(code: &'static str) -> Vec<(&'static str, &'static str)> {
    COUNTRIES
        .iter()
        .map(|&(ip, c)| {
            if ip == "127.0.0.2" {
                (ip, code)
            } else {
                (ip, c)
            }
        })
        .collect()
}

async fn status_of_fr_test(forward: SocketAddr, port: u16) -> u16 {
    client::forward(forward, "GET", &format!("http://fr.test:{port}/"), &[])
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_download_never_replaces_the_data_a_running_douane_serves() {
    let files = Files::default();
    let server = start_server(files.clone()).await;
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        extra: format!(
            "[geo.update]\nmin_size_ratio = 0.5\n\n[[geo.update.source]]\ndatabase = \"country\"\nformat = \"mmdb\"\nurl = \"http://{server}/dbip-country-lite.mmdb\"\n"
        ),
        ..ConfigSpec::default()
    });
    let running = fx.start().await;
    assert_eq!(status_of_fr_test(running.forward, port).await, 200);
    let before = std::fs::read(fx.path("country.mmdb")).unwrap();
    let dir = fx.dir.path();

    // Nothing served yet: a 404 is named.
    let out = douane(dir, &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("HTTP 404"), "{}", text(&out));

    // A download cut short.
    let good = country_db_bytes(&countries_with_2_in("US"), Schema::GeoIp2);
    files.serve("/dbip-country-lite.mmdb", good[..good.len() / 2].to_vec());
    let out = douane(dir, &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("nothing was swapped in"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(fx.path("country.mmdb")).unwrap(), before);

    // A database that lost most of its networks.
    files.serve(
        "/dbip-country-lite.mmdb",
        country_db_bytes(&[("127.0.0.2", "US")], Schema::GeoIp2),
    );
    let out = douane(dir, &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("refused: the new country database has 1 networks, 20% of the 5"),
        "{said}"
    );
    assert!(said.contains("min_size_ratio = 0.5"), "{said}");
    assert_eq!(std::fs::read(fx.path("country.mmdb")).unwrap(), before);

    // Through all of that, the running douane kept the old data.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(status_of_fr_test(running.forward, port).await, 200);
    assert_eq!(running.log_count("reloaded"), 0, "{:?}", running.logs());

    // A good file: swapped in, and the file watch reloads it.
    files.serve("/dbip-country-lite.mmdb", good.clone());
    let out = douane(dir, &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("networks (5 before)"), "{}", text(&out));
    assert_eq!(std::fs::read(fx.path("country.mmdb")).unwrap(), good);
    assert!(
        running.wait_log("reloaded", Duration::from_secs(10)).await,
        "{:?}",
        running.logs()
    );
    assert_eq!(status_of_fr_test(running.forward, port).await, 451);
    // No scratch file is left beside the databases.
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".update"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, *bytes).unwrap();
        }
        tar.finish().unwrap();
    }
    gz.flush().unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmind_tar_gz_behind_a_licence_key_and_asn_csv_ranges() {
    let files = Files::default();
    let server = start_server(files.clone()).await;
    let fx = Fixture::new();
    std::fs::write(fx.path("maxmind.key"), "K3y-s3cret\n").unwrap();
    let country = country_db_bytes(&countries_with_2_in("DE"), Schema::GeoIp2);
    files.serve(
        "/files/GeoLite2-Country_20261201.tar.gz",
        tar_gz(&[
            ("GeoLite2-Country_20261201/COPYRIGHT.txt", b"test"),
            ("GeoLite2-Country_20261201/GeoLite2-Country.mmdb", &country),
        ]),
    );
    files.redirects.lock().unwrap().insert(
        "/app/geoip_download".into(),
        "/files/GeoLite2-Country_20261201.tar.gz".into(),
    );
    let csv: String = ASNS
        .iter()
        .map(|(ip, asn, org)| format!("{ip},{ip},{},\"{org}, NEW\"\n", asn + 10))
        .collect();
    files.serve("/asn-ipv4.csv", csv.into_bytes());
    files.serve("/asn-ipv6.csv", b"2a00::,2a00::ffff,64999,SIX\n".to_vec());
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        extra: format!(
            r#"[[geo.update.source]]
database = "country"
format = "maxmind-tar-gz"
url = "http://{server}/app/geoip_download?edition_id=GeoLite2-Country&license_key={{license_key}}&suffix=tar.gz"
file = "GeoLite2-Country.tar.gz"
license_key_file = "maxmind.key"

[[geo.update.source]]
database = "asn"
format = "asn-csv"
url = "http://{server}/asn-ipv4.csv"

[[geo.update.source]]
database = "asn"
format = "asn-csv"
url = "http://{server}/asn-ipv6.csv"
"#
        ),
        ..ConfigSpec::default()
    });
    let out = douane(fx.dir.path(), &["geodb", "update"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        !said.contains("K3y-s3cret"),
        "the key is never printed: {said}"
    );
    let asked = files.asked.lock().unwrap().clone();
    assert!(
        asked[0].contains("license_key=K3y-s3cret"),
        "the key reaches the server: {asked:?}"
    );
    assert!(
        asked.iter().any(|a| a.starts_with("/files/")),
        "the redirect was followed: {asked:?}"
    );

    let db = GeoDb::open(&fx.path("country.mmdb")).unwrap();
    assert_eq!(db.info.database_type, "GeoLite2-Country");
    assert_eq!(
        db.country("127.0.0.2".parse().unwrap()).unwrap().as_str(),
        "DE"
    );
    let db = GeoDb::open(&fx.path("asn.mmdb")).unwrap();
    assert_eq!(db.info.database_type, "douane-ASN");
    assert_eq!(
        db.asn("127.0.0.3".parse().unwrap()),
        Some((64511, Some("YANKEE, NEW")))
    );
    assert_eq!(db.asn("2a00::1".parse().unwrap()).map(|a| a.0), Some(64999));

    // A key file that went missing is named, and nothing changes.
    std::fs::remove_file(fx.path("maxmind.key")).unwrap();
    let before = std::fs::read(fx.path("asn.mmdb")).unwrap();
    let out = douane(fx.dir.path(), &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("maxmind.key"), "{}", text(&out));
    assert_eq!(std::fs::read(fx.path("asn.mmdb")).unwrap(), before);
}

#[test]
fn an_offline_bundle_rebuilds_the_shipped_recipe() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec::default());
    let bundle = tempfile::tempdir().unwrap();
    let b = bundle.path();
    std::fs::write(
        b.join("geo-whois-asn-country.mmdb"),
        country_db_bytes(&countries_with_2_in("IT"), Schema::CountryCode),
    )
    .unwrap();
    let from = b.to_str().unwrap();

    // The ASN files are missing from the bundle: named, nothing swapped.
    let before = std::fs::read(fx.path("country.mmdb")).unwrap();
    let out = douane(fx.dir.path(), &["geodb", "update", "--from", from]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("has no `asn-ipv4.csv`"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(fx.path("country.mmdb")).unwrap(), before);

    let csv: String = ASNS
        .iter()
        .map(|(ip, asn, org)| format!("{ip},{ip},{asn},{org}\n"))
        .collect();
    std::fs::write(b.join("asn-ipv4.csv"), csv).unwrap();
    std::fs::write(b.join("asn-ipv6.csv"), "").unwrap();
    // --dry-run checks and swaps nothing.
    let out = douane(
        fx.dir.path(),
        &["geodb", "update", "--from", from, "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("dry run"), "{}", text(&out));
    assert_eq!(std::fs::read(fx.path("country.mmdb")).unwrap(), before);

    let out = douane(fx.dir.path(), &["geodb", "update", "--from", from]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let db = GeoDb::open(&fx.path("country.mmdb")).unwrap();
    assert_eq!(db.info.schema, Schema::CountryCode);
    assert_eq!(
        db.country("127.0.0.2".parse().unwrap()).unwrap().as_str(),
        "IT"
    );
    let asn = GeoDb::open(&fx.path("asn.mmdb")).unwrap();
    assert_eq!(
        asn.asn("127.0.0.4".parse().unwrap()).map(|a| a.0),
        Some(64502)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_go_through_the_parent_proxy_with_its_credentials() {
    let files = Files::default();
    let server = start_server(files.clone()).await;
    let (parent, seen) = parent::start(None).await;
    let fx = Fixture::new();
    files.serve("/dbip-country-lite.mmdb.gz", {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&country_db_bytes(
            &countries_with_2_in("ES"),
            Schema::GeoIp2,
        ))
        .unwrap();
        gz.finish().unwrap()
    });
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        parent_proxy: Some(format!("http://alice:s%40cret@{parent}")),
        extra: format!(
            "[[geo.update.source]]\ndatabase = \"country\"\nformat = \"mmdb-gz\"\nurl = \"http://{server}/dbip-country-lite.mmdb.gz\"\n"
        ),
        ..ConfigSpec::default()
    });
    let out = douane(fx.dir.path(), &["geodb", "update"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT {server} HTTP/1.1\r\n")),
        "{heads:?}"
    );
    assert!(
        heads[0].contains("Proxy-Authorization: Basic YWxpY2U6c0BjcmV0\r\n"),
        "{heads:?}"
    );
    let db = GeoDb::open(&fx.path("country.mmdb")).unwrap();
    assert_eq!(
        db.country("127.0.0.2".parse().unwrap()).unwrap().as_str(),
        "ES"
    );
}
