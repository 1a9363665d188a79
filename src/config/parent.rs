//! `[upstream] parent_proxy = "http://[user:password@]host:port"`: the authority douane
//! CONNECTs to, and the `Proxy-Authorization` value computed once at load.

use base64::Engine;

/// The `host:port` of the parent and, when the URL carries credentials, the
/// `Basic …` value of the `Proxy-Authorization` header sent with each CONNECT.
pub fn parse(text: &str) -> Result<(String, Option<String>), String> {
    let rest = match text.split_once("://") {
        None => text,
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "`{scheme}://`: douane talks to a parent proxy in plain HTTP (CONNECT); write `http://host:port`"
            ))
        }
    };
    let rest = rest.trim_end_matches('/');
    let (userinfo, authority) = match rest.rsplit_once('@') {
        Some((user, authority)) => (Some(user), authority),
        None => (None, rest),
    };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => {
            return Err(
                "a parent proxy is `http://host:port` (or `http://user:password@host:port`)".into(),
            )
        }
    }
    let authorization = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user =
                percent_decode(user).ok_or("the parent proxy's user name has a bad %-escape")?;
            let password =
                percent_decode(password).ok_or("the parent proxy's password has a bad %-escape")?;
            let pair = [user.as_slice(), b":", password.as_slice()].concat();
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
    };
    Ok((authority.to_owned(), authorization))
}

/// `%40` → `@` and so on, as URL user information is written.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_a_basic_header() {
        assert_eq!(
            parse("http://proxy.local:3128").unwrap(),
            ("proxy.local:3128".into(), None)
        );
        assert_eq!(parse("10.0.0.1:8080").unwrap().0, "10.0.0.1:8080");
        let (authority, auth) = parse("http://alice:s%40cret@proxy.local:3128/").unwrap();
        assert_eq!(authority, "proxy.local:3128");
        // base64("alice:s@cret")
        assert_eq!(auth.as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
        assert!(parse("https://proxy.local:3128")
            .unwrap_err()
            .contains("plain HTTP"));
        assert!(parse("http://proxy.local").is_err());
        assert!(parse("http://a:%zz@proxy.local:1").is_err());
    }
}
