//! Edge cases of host, authority and URL parsing.

use super::*;

fn name(s: &str) -> Host {
    Host::Name(s.into())
}

fn v4(s: &str) -> Host {
    Host::Ip(s.parse().unwrap())
}

fn err(s: &str) -> &'static str {
    Host::parse(s).unwrap_err().as_str()
}

#[test]
fn names_are_lowercased_and_lose_one_trailing_dot() {
    assert_eq!(Host::parse("Example.COM").unwrap(), name("example.com"));
    assert_eq!(Host::parse("example.com.").unwrap(), name("example.com"));
    assert_eq!(Host::parse("EXAMPLE.com.").unwrap(), name("example.com"));
    assert_eq!(Host::parse("localhost").unwrap(), name("localhost"));
    assert_eq!(err("example.com.."), "trailing_dots");
    assert_eq!(err("."), "empty");
    assert_eq!(err(""), "empty");
    assert_eq!(err(".example.com"), "empty_label");
    assert_eq!(err("a..example"), "empty_label");
}

#[test]
fn idna_becomes_punycode() {
    assert_eq!(
        Host::parse("bücher.example").unwrap(),
        name("xn--bcher-kva.example")
    );
    assert_eq!(
        Host::parse("BÜCHER.Example").unwrap(),
        name("xn--bcher-kva.example")
    );
    assert_eq!(
        Host::parse("XN--BCHER-KVA.example").unwrap(),
        name("xn--bcher-kva.example")
    );
    // Ideographic full stop is a dot under UTS 46.
    assert_eq!(Host::parse("example。com").unwrap(), name("example.com"));
    assert_eq!(
        Host::parse("bücher.example.").unwrap(),
        name("xn--bcher-kva.example")
    );
    // Invalid punycode is refused, not passed on.
    assert_eq!(err("xn--a.example"), "idna");
}

#[test]
fn fullwidth_digits_are_an_ipv4_address() {
    assert_eq!(Host::parse("１２７.０.０.１").unwrap(), v4("127.0.0.1"));
}

#[test]
fn label_rules() {
    assert_eq!(
        Host::parse("_dmarc.example").unwrap(),
        name("_dmarc.example")
    );
    assert_eq!(Host::parse("a-b.example").unwrap(), name("a-b.example"));
    assert_eq!(err("-a.example"), "bad_hyphen");
    assert_eq!(err("a-.example"), "bad_hyphen");
    let long = "a".repeat(63);
    assert!(Host::parse(&format!("{long}.example")).is_ok());
    assert_eq!(err(&format!("a{long}.example")), "label_too_long");
    let total = vec!["abcdefghi"; 26].join("."); // 26*9 + 25 = 259
    assert_eq!(err(&total), "name_too_long");
    let ok = vec!["abcdefghi"; 25].join("."); // 249
    assert!(Host::parse(&ok).is_ok());
    assert_eq!(err(&"a".repeat(2000)), "too_long");
    assert_eq!(err("exa mple.com"), "invalid_char");
    assert_eq!(err(" example.com"), "invalid_char");
    assert_eq!(err("example.com\n"), "invalid_char");
    assert_eq!(err("exa\u{0}mple.com"), "invalid_char");
    assert_eq!(err("ex%61mple.com"), "percent_encoded");
    assert_eq!(err("exa/mple.com"), "idna");
    assert_eq!(err("exa*mple.com"), "invalid_char");
}

#[test]
fn ipv4_in_every_inet_aton_form() {
    for (input, want) in [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("1.0xffffff", "1.255.255.255"),
        ("169.254.43518", "169.254.169.254"),
        ("4294967295", "255.255.255.255"),
        ("00000127.0.0.1", "87.0.0.1"),
    ] {
        assert_eq!(Host::parse(input).unwrap(), v4(want), "{input}");
    }
}

#[test]
fn bad_ipv4_is_refused_never_a_name() {
    for input in [
        "256.1.1.1",
        "0x1ffffffff",
        "4294967296",
        "1.2.3.4.5",
        "example.123",
        "example.0x1f",
        "example.0x",
        "1.2.3.256",
        "1.256.1",
        "1.2.65536",
        "08.1.1.1",
        "1..1",
        "0xg.1.1.1",
        "99999999999999999999999",
    ] {
        assert_eq!(err(input), "bad_ipv4", "{input}");
    }
    // A last label that is only partly numeric is a name.
    assert_eq!(Host::parse("example.1a").unwrap(), name("example.1a"));
    assert_eq!(Host::parse("123.example").unwrap(), name("123.example"));
    assert_eq!(Host::parse("0xzz.example").unwrap(), name("0xzz.example"));
}

#[test]
fn ipv6_literals() {
    let ip = |s: &str| Host::Ip(s.parse().unwrap());
    assert_eq!(Host::parse("[::1]").unwrap(), ip("::1"));
    assert_eq!(Host::parse("[2001:DB8:0:0::1]").unwrap(), ip("2001:db8::1"));
    assert_eq!(Host::parse("::1").unwrap(), ip("::1"));
    // IPv4-mapped stays as written; geo canonicalises.
    assert_eq!(
        Host::parse("[::ffff:127.0.0.1]").unwrap(),
        ip("::ffff:127.0.0.1")
    );
    assert_eq!(err("[fe80::1%25eth0]"), "ipv6_zone");
    assert_eq!(err("[fe80::1%eth0]"), "ipv6_zone");
    assert_eq!(err("[::1"), "bad_ipv6");
    assert_eq!(err("[127.0.0.1]"), "bad_ipv6");
    assert_eq!(err("[example.com]"), "bad_ipv6");
    assert_eq!(err("[]"), "bad_ipv6");
    assert_eq!(
        Host::parse("[2001:db8::1]").unwrap().to_string(),
        "[2001:db8::1]"
    );
}

#[test]
fn authorities() {
    let d = Destination::parse_authority("Example.com.:443").unwrap();
    assert_eq!(d.host, name("example.com"));
    assert_eq!(d.port, 443);
    assert_eq!(d.to_string(), "example.com:443");
    let d = Destination::parse_authority("[::1]:8443").unwrap();
    assert_eq!(d.to_string(), "[::1]:8443");
    let d = Destination::parse_authority("0x7f.1:80").unwrap();
    assert_eq!(d.to_string(), "127.0.0.1:80");

    let e = |s: &str| Destination::parse_authority(s).unwrap_err().as_str();
    assert_eq!(e("example.com"), "missing_port");
    assert_eq!(e("example.com:"), "missing_port");
    assert_eq!(e("[::1]"), "missing_port");
    assert_eq!(e("::1"), "ipv6_needs_brackets");
    assert_eq!(e("::1:443"), "ipv6_needs_brackets");
    assert_eq!(e("example.com:0"), "bad_port");
    assert_eq!(e("example.com:65536"), "bad_port");
    assert_eq!(e("example.com:+443"), "bad_port");
    assert_eq!(e("example.com:443 "), "bad_port");
    assert_eq!(e("example.com:00000443"), "bad_port");
    assert_eq!(e("user@example.com:443"), "userinfo");
    assert_eq!(e("[::1]x:443"), "bad_ipv6");
    assert_eq!(e(":443"), "empty");
    assert_eq!(e(""), "empty");
    assert_eq!(e("256.0.0.1:443"), "bad_ipv4");
    assert_eq!(
        Destination::parse_authority("example.com:65535")
            .unwrap()
            .port,
        65535
    );
}

#[test]
fn absolute_form_uris() {
    let parse = |s: &str| Destination::from_uri(&s.parse::<http::Uri>().unwrap());
    let (scheme, d) = parse("http://Example.com/path").unwrap();
    assert_eq!(
        (scheme, d.to_string().as_str()),
        (Scheme::Http, "example.com:80")
    );
    let (scheme, d) = parse("https://example.com/").unwrap();
    assert_eq!((scheme, d.port), (Scheme::Https, 443));
    let (_, d) = parse("http://[::1]:8080/").unwrap();
    assert_eq!(d.to_string(), "[::1]:8080");
    let (_, d) = parse("http://2130706433/").unwrap();
    assert_eq!(d.to_string(), "127.0.0.1:80");

    assert_eq!(
        parse("ftp://example.com/").unwrap_err().as_str(),
        "unsupported_scheme"
    );
    assert_eq!(
        parse("http://u:p@example.com/").unwrap_err().as_str(),
        "userinfo"
    );
    assert_eq!(parse("/relative").unwrap_err().as_str(), "not_absolute");
    assert_eq!(
        parse("http://example.com:0/").unwrap_err().as_str(),
        "bad_port"
    );
}

#[test]
fn urls_for_explain() {
    let t = Target::parse_url("https://CRM.example/login?next=/x#frag").unwrap();
    assert_eq!(t.scheme, Scheme::Https);
    assert_eq!(t.destination.to_string(), "crm.example:443");
    assert_eq!(&*t.path, "/login");
    assert_eq!(t.to_string(), "https://crm.example:443/login");

    let t = Target::parse_url("crm.example").unwrap();
    assert_eq!((t.scheme, &*t.path), (Scheme::Https, "/"));
    assert_eq!(t.destination.port, 443);

    let t = Target::parse_url("http://bücher.example:8080").unwrap();
    assert_eq!(t.destination.to_string(), "xn--bcher-kva.example:8080");
    assert_eq!(&*t.path, "/");

    let e = |s: &str| Target::parse_url(s).unwrap_err().as_str();
    assert_eq!(e(""), "empty");
    assert_eq!(e("ftp://example.com"), "unsupported_scheme");
    assert_eq!(e("https://exa mple.com/"), "bad_url");
    assert_eq!(e("https://ex%41mple.com/"), "percent_encoded");
    assert_eq!(e("https://user@example.com/"), "userinfo");
    assert_eq!(e("https://example.123/"), "bad_ipv4");
}

#[test]
fn messages_name_the_input_and_escape_it() {
    let msg = Host::parse("exa\u{1b}mple").unwrap_err().to_string();
    assert!(msg.contains("exa\\u{1b}mple"), "{msg}");
    let msg = Host::parse("256.1.1.1").unwrap_err().to_string();
    assert!(msg.contains("`256.1.1.1`") && msg.contains("ipv4"), "{msg}");
    let msg = Host::parse(&"a".repeat(300)).unwrap_err().to_string();
    assert!(msg.len() < 250, "{msg}");
}
