//! The real tools some tests need (prometheus, rsyslogd, pacparser, systemd-analyze…): where
//! they are, and whether a missing one is a failure (under CI) or a skip (on a laptop).

use std::path::PathBuf;

/// `CI` is set to anything but empty, `0` or `false` (CI services set `CI=true`): a test
/// whose real component is missing must then fail instead of passing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The first `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
