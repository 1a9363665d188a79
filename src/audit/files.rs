//! Where the log lives: rotated files named `<stem>.<UTC date>.<n>.jsonl` (`n` zero-padded,
//! so that a shell glob lists them in order too), listing them in chain order, and reading
//! the tail of the newest one to continue its chain.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use time::Date;

/// The default file stem when `path` names a directory.
pub const DEFAULT_STEM: &str = "douane-audit";

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Rotated files `dir/<stem>.<date>.<n>.jsonl`.
    Rotating { dir: PathBuf, stem: String },
    /// An existing device or pipe (`/dev/stdout`, `/dev/full`): written to directly, no
    /// rotation, no tail to continue (each start begins a chain at seq 0).
    Device(PathBuf),
}

impl Target {
    /// Reads `audit.path`: an existing directory, an existing non-regular file (device,
    /// pipe), or a file base whose `.jsonl` extension, if any, is dropped.
    pub fn from_path(path: &Path) -> Target {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Target::Rotating {
                    dir: path.to_path_buf(),
                    stem: DEFAULT_STEM.into(),
                }
            }
            Ok(m) if !m.is_file() => return Target::Device(path.to_path_buf()),
            _ => {}
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let stem = match name {
            Some(n) => n.strip_suffix(".jsonl").unwrap_or(&n).to_owned(),
            None => DEFAULT_STEM.to_owned(),
        };
        let stem = if stem.is_empty() {
            DEFAULT_STEM.to_owned()
        } else {
            stem
        };
        Target::Rotating { dir, stem }
    }
}

/// One rotated file and its place in the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedFile {
    pub path: PathBuf,
    pub stem: String,
    pub date: Date,
    pub n: u32,
}

/// `<stem>.<YYYY-MM-DD>.<nnnn>.jsonl`
pub fn file_name(stem: &str, date: Date, n: u32) -> String {
    format!(
        "{stem}.{:04}-{:02}-{:02}.{n:04}.jsonl",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Reads a rotated file name back: `(stem, date, n)`.
pub fn parse_name(name: &str) -> Option<(&str, Date, u32)> {
    let rest = name.strip_suffix(".jsonl")?;
    let (rest, n) = rest.rsplit_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = n.parse().ok()?;
    let (stem, date) = rest.rsplit_once('.')?;
    let b = date.as_bytes();
    if stem.is_empty() || b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = date[0..4].parse().ok()?;
    let month: u8 = date[5..7].parse().ok()?;
    let day: u8 = date[8..10].parse().ok()?;
    let date = Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some((stem, date, n))
}

/// The rotated files in `dir`, optionally of one stem, in chain order (date, then number).
pub fn list(dir: &Path, stem: Option<&str>) -> io::Result<Vec<RotatedFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((s, date, n)) = parse_name(name) else {
            continue;
        };
        if stem.is_some_and(|want| want != s) || !entry.file_type()?.is_file() {
            continue;
        }
        out.push(RotatedFile {
            path: entry.path(),
            stem: s.to_owned(),
            date,
            n,
        });
    }
    out.sort_by(|a, b| (a.date, a.n, &a.stem).cmp(&(b.date, b.n, &b.stem)));
    Ok(out)
}

/// The last lines of a file, oldest first. The last one may lack its newline (`terminated`
/// false): a write cut short.
#[derive(Debug, Default)]
pub struct Tail {
    pub lines: Vec<Vec<u8>>,
    pub terminated: bool,
}

/// Reads up to `count` last lines, going back in growing chunks (lines can be long).
pub fn read_tail(path: &Path, count: usize) -> io::Result<Tail> {
    let mut file = File::open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(Tail {
            lines: Vec::new(),
            terminated: true,
        });
    }
    let mut chunk: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        (&mut file).take(len - start).read_to_end(&mut buf)?;
        let terminated = buf.last() == Some(&b'\n');
        let body = if terminated {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let mut parts: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        // Unless we read from the start, the first part may be a partial line.
        let complete = if start == 0 {
            parts.len()
        } else {
            parts.len() - 1
        };
        if complete >= count || start == 0 {
            let keep = count.min(complete);
            let lines = parts
                .split_off(parts.len() - keep)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            return Ok(Tail { lines, terminated });
        }
        chunk = chunk.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn names_round_trip_and_sort_numerically() {
        let name = file_name("douane-audit", date!(2026 - 03 - 01), 7);
        assert_eq!(name, "douane-audit.2026-03-01.0007.jsonl");
        assert_eq!(
            parse_name(&name),
            Some(("douane-audit", date!(2026 - 03 - 01), 7))
        );
        assert_eq!(parse_name("a.b.2026-13-01.0001.jsonl"), None);
        assert_eq!(parse_name("x.jsonl"), None);
        assert_eq!(
            parse_name("my.log.2026-03-01.0012.jsonl").map(|p| p.0),
            Some("my.log")
        );

        let dir = tempfile::tempdir().expect("tempdir");
        for (d, n) in [
            (date!(2026 - 03 - 02), 0),
            (date!(2026 - 03 - 01), 10),
            (date!(2026 - 03 - 01), 2),
        ] {
            std::fs::write(dir.path().join(file_name("s", d, n)), "").expect("write");
        }
        std::fs::write(dir.path().join("notes.txt"), "").expect("write");
        let got: Vec<_> = list(dir.path(), Some("s"))
            .expect("list")
            .into_iter()
            .map(|f| (f.date, f.n))
            .collect();
        assert_eq!(
            got,
            [
                (date!(2026 - 03 - 01), 2),
                (date!(2026 - 03 - 01), 10),
                (date!(2026 - 03 - 02), 0)
            ]
        );
    }

    #[test]
    fn target_from_path() {
        assert_eq!(
            Target::from_path(Path::new("audit/douane-audit.jsonl")),
            Target::Rotating {
                dir: "audit".into(),
                stem: "douane-audit".into()
            }
        );
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Target::from_path(dir.path()),
            Target::Rotating {
                dir: dir.path().into(),
                stem: DEFAULT_STEM.into()
            }
        );
        assert_eq!(
            Target::from_path(Path::new("/dev/null")),
            Target::Device("/dev/null".into())
        );
    }

    #[test]
    fn tail_reads_long_and_cut_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        let long = "x".repeat(200_000);
        std::fs::write(&p, format!("a\n{long}\nb\n")).expect("write");
        let t = read_tail(&p, 2).expect("tail");
        assert_eq!(t.lines, [long.as_bytes().to_vec(), b"b".to_vec()]);
        assert!(t.terminated);
        std::fs::write(&p, "a\nhalf").expect("write");
        let t = read_tail(&p, 2).expect("tail");
        assert_eq!(t.lines, [b"a".to_vec(), b"half".to_vec()]);
        assert!(!t.terminated);
        std::fs::write(&p, "").expect("write");
        assert!(read_tail(&p, 1).expect("tail").lines.is_empty());
    }
}
