//! TOML errors as an operator can act on them: every syntax error of a file at once (the
//! parser recovers and goes on), and serde's type errors rewritten to name the key and what
//! it takes ("expected u32" says neither).

use crate::diag::{Errors, SourceFile};

/// All the errors of a file that `toml::from_str` refused: every syntax error when the
/// text does not parse (the parser recovers after each one), else the one
/// deserialisation error, reworded.
pub fn toml_errors(file: &SourceFile, err: &toml::de::Error) -> Errors {
    let (_, syntax) = toml::de::DeTable::parse_recoverable(&file.text);
    if !syntax.is_empty() {
        return Errors(syntax.iter().map(|e| file.toml_error(e)).collect());
    }
    let mut located = file.toml_error(err);
    if let Some(better) = reword(file, err) {
        located.message = better;
    }
    Errors(vec![located])
}

/// A clearer message for the errors serde words for programmers, if this is one.
fn reword(file: &SourceFile, err: &toml::de::Error) -> Option<String> {
    let message = err.message();
    let span = err.span()?;
    let value = file.text.get(span.clone())?.trim();
    let key = key_before(&file.text, span.start);
    let key_text = key.map_or_else(|| "this value".to_owned(), |k| format!("`{k}`"));
    if message.contains("invalid socket address syntax") {
        return Some(format!(
            "{key_text} = {value} is not an IP address and port: douane binds exactly the \
             address it is given and resolves no name there; write `127.0.0.1:PORT` (this \
             machine only), `[::1]:PORT`, `0.0.0.0:PORT` (every IPv4 interface) or the \
             address of one interface"
        ));
    }
    for (ty, max) in [
        ("u16", u64::from(u16::MAX)),
        ("u32", u64::from(u32::MAX)),
        ("u64", u64::MAX),
        ("usize", usize::MAX as u64),
    ] {
        if message.ends_with(&format!("expected {ty}")) {
            return Some(format!(
                "{key_text} takes a whole number from 0 to {max}, not {value}"
            ));
        }
    }
    if message.ends_with("expected a boolean") {
        return Some(format!("{key_text} is `true` or `false`, not {value}"));
    }
    None
}

/// The key of the `key = value` line holding `offset`, when the value starts on that line.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..offset)?;
    // Inside an inline table, the nearest `key =` before the value.
    let before = before.rsplit([',', '{']).next()?;
    let key = before.trim_end().strip_suffix('=')?.trim();
    (!key.is_empty()).then_some(key.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn errors(text: &str) -> Errors {
        Config::parse(&SourceFile::new("/etc/douane/douane.toml", text)).unwrap_err()
    }

    #[test]
    fn every_syntax_error_at_once() {
        let err = errors("[forward\nlisten = \"127.0.0.1:1\"\n[geo]\nx = = 2\n[log]\ny = [1,\n");
        assert!(err.0.len() >= 3, "{err}");
        let lines: Vec<usize> = err.0.iter().map(|e| e.line).collect();
        assert!(lines.contains(&1) && lines.contains(&4), "{err}");
    }

    #[test]
    fn numbers_name_the_key_and_the_range() {
        let err = errors("[geo]\nmax_age_days = -1\n");
        let e = &err.0[0];
        assert_eq!(e.line, 2, "{err}");
        assert!(
            e.message
                .contains("`max_age_days` takes a whole number from 0 to 4294967295, not -1"),
            "{err}"
        );
        assert!(!e.message.contains("expected u32"), "{err}");
        let err = errors("[limits]\nmax_connections = \"many\"\n");
        assert!(
            err.0[0]
                .message
                .contains("`max_connections` takes a whole number"),
            "{err}"
        );
    }

    #[test]
    fn a_host_name_is_not_a_listen_address() {
        let err = errors("[forward]\nlisten = \"localhost:3128\"\n");
        let e = &err.0[0];
        assert_eq!((e.line, e.column), (2, 10), "{err}");
        assert!(
            e.message
                .contains("`listen` = \"localhost:3128\" is not an IP address and port"),
            "{err}"
        );
        assert!(e.message.contains("127.0.0.1:PORT"), "{err}");
    }

    #[test]
    fn keys_before_values() {
        let t = "a = 1\ntls = [{ cert = \"x\", key = 3 }]\n";
        assert_eq!(key_before(t, 4), Some("a"));
        let at = t.find('3').unwrap();
        assert_eq!(key_before(t, at), Some("key"));
    }
}
