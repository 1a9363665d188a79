//! `douane ranges import | info` and `douane registry gaps`, as an operator runs them.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn douane(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run douane");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn import_then_info_then_a_corrupt_file_refused() {
    let r = root();
    let providers = [
        r.join("../shared/data/providers"),
        r.join("../../shared/data/providers"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .expect("../shared/data/providers");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("published.bin");
    let (code, text) = douane(&[
        "ranges",
        "import",
        providers.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--fetched",
        "2025-07-25",
        "--build-date",
        "2026-12-01",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("aws-ip-ranges.json") && text.contains("13 sources"),
        "{text}"
    );
    // Same sources, same build date: the shipped artifact, byte for byte.
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(r.join("data/published.bin")).unwrap(),
        "data/published.bin is the compilation of ../shared/data/providers"
    );
    let (code, text) = douane(&["ranges", "info", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("dated 2025-07-24T20:23:14Z"), "{text}");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() - 1]).unwrap();
    let (code, text) = douane(&["ranges", "info", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("truncated"), "{text}");
}

#[test]
fn registry_gaps_lists_unattributed_asns() {
    let (code, text) = douane(&["registry", "gaps", "--top", "3"]);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[1].trim_start().starts_with("AS"), "{text}");
    // Attributed ASNs are not gaps.
    assert!(
        !text.contains("AS16509 ") && !text.contains("AS8069 "),
        "{text}"
    );
}
