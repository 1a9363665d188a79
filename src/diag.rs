//! Errors that point into a text file: `path:line:column: message`.
//!
//! Config, policy and operator files are all loaded from a `&str` with their path, so that
//! every error, from the TOML parser or from validation, names the exact place to fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file's text, kept so that byte offsets can be turned into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Reads a file; the error names the path.
    pub fn read(path: &Path) -> Result<Self, Located> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile::new(path, text)),
            Err(e) => Err(Located {
                path: path.to_owned(),
                line: 0,
                column: 0,
                message: format!("cannot read file: {e}"),
            }),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// An error at the start of a span.
    pub fn error_at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> Located {
        let (line, column) = span.map_or((0, 0), |s| self.line_col(s.start));
        Located {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Turns a TOML parse or deserialisation error into a located one.
    pub fn toml_error(&self, err: &toml::de::Error) -> Located {
        self.error_at(err.span(), err.message().trim_end().to_owned())
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An error at a place in a file. Line 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Located {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Located {
    /// An error whose message already says where (e.g. names its file).
    pub fn message(message: impl Into<String>) -> Located {
        Located {
            path: PathBuf::new(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            f.write_str(&self.message)
        } else if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Several located errors, reported together (a `check` lists every error at once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Errors(pub Vec<Located>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<Located> for Errors {
    fn from(e: Located) -> Self {
        Errors(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("p.toml", "a = 1\nbé = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(9), (2, 3), "columns count characters, not bytes");
        let e = f.error_at(Some(6..7), "bad key");
        assert_eq!(e.to_string(), "p.toml:2:1: bad key");
    }

    #[test]
    fn toml_errors_are_located() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let f = SourceFile::new("t.toml", "a = 1\nb = 2\n");
        let err = toml::from_str::<T>(&f.text).unwrap_err();
        let located = f.toml_error(&err);
        assert_eq!((located.line, located.column), (2, 1), "{located}");
        assert!(located.message.contains("unknown field `b`"), "{located}");
    }
}
