#!/bin/sh
# `systemd-analyze verify` on deploy/systemd/: the unit, the data-update service and its
# timer. The units name /usr/local/bin/douane; verify needs an executable there, so a copy of
# the units naming the built binary (argument 1, default target/debug/douane) is verified.
# Needs systemd-analyze (Debian: apt-get install systemd).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-$here/../target/debug/douane}")
[ -x "$bin" ] || { echo "no douane binary at $bin (cargo build first)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in douane.service douane-data-update.service douane-data-update.timer; do
    sed "s|/usr/local/bin/douane|$bin|g" "$here/systemd/$unit" > "$work/$unit"
done
# verify prints its findings and, on systemd 252, does not always fail on them: any output
# is a failure here.
out=$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
    ./douane.service ./douane-data-update.service ./douane-data-update.timer 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
}
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    exit 1
fi
# The hardening as systemd scores it (0 = fully confined, 10 = exposed): stay at 2.0 or less.
for unit in douane.service douane-data-update.service; do
    (cd "$work" && systemd-analyze security --offline=yes --threshold=20 --no-pager "./$unit" \
        > "$work/security.txt" 2>&1) || {
        cat "$work/security.txt" >&2
        echo "$unit: exposure above 2.0" >&2
        exit 1
    }
    echo "$unit: $(grep -o 'Overall exposure level.*' "$work/security.txt")"
done
echo "systemd: douane.service, douane-data-update.service, douane-data-update.timer verified"
