//! Text into HTML: the one escape used by every page douane writes (the block page, the
//! DPO's report, the SaaS inventory).

use std::fmt::Write as _;

/// Escapes text for HTML content and attribute values; control characters become numeric
/// references, so untrusted text (host names, log fields) can never start markup.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_controls_are_escaped() {
        assert_eq!(
            super::escape("<script>\"x\" & 'y'\u{1b}"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&#27;"
        );
    }
}
