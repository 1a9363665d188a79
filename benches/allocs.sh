#!/usr/bin/env bash
# benches/allocs.sh — heap allocations per request on one row, counted by valgrind's DHAT.
# douane runs under valgrind twice, serving FEW then MANY requests (h2load) in front of the
# realistic harness's origin (nginx); the difference of the two totals over MANY - FEW is
# what one request costs (start-up, data loading and shutdown cancel out). Not a load test:
# valgrind serialises the process; the counts, not the times, are the figure.
#
#   benches/allocs.sh [DOUANE_BIN]      (default: target/release/douane)
# Environment: ROW [h2] — h2: h2load -c4 -m32 on the TLS listener (HTTP/2 streams);
#              plain: h2load --h1 -c4 on the plain reverse listener (keep-alive HTTP/1.1).
#              FEW [1000] MANY [11000] DIR [/tmp/douane-allocs]
#              SITES [0] — 1: also list the allocation sites that grow with the requests
#              (benches/allocs_sites.py on the two DHAT files left in DIR).
# Needs: valgrind, nginx, h2load (nghttp2-client), curl. Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/.." && pwd)
BIN=$(realpath "${1:-$REPO/target/release/douane}")
ROW=${ROW:-h2}; FEW=${FEW:-1000}; MANY=${MANY:-11000}; DIR=${DIR:-/tmp/douane-allocs}
for tool in valgrind nginx h2load curl; do
  command -v "$tool" >/dev/null || { echo "allocs.sh needs $tool" >&2; exit 2; }
done
case $ROW in
  h2) url="https://127.0.0.1:18443/ok"; client=(-c4 -m32) ;;
  plain) url="http://127.0.0.1:18448/ok"; client=(--h1 -c4) ;;
  *) echo "ROW is h2 or plain" >&2; exit 2 ;;
esac
! ss -ltn | grep -qE '127\.0\.0\.1:(18180|18443|18448|18480) ' || { echo "ports in use by another run" >&2; exit 1; }
. "$HERE/realistic/scratch.sh"; prepare_scratch "$DIR" "$BIN"
cleanup() { [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
nginx -p "$DIR" -c "$DIR/nginx.conf"

# The totals DHAT prints at exit ("Total: N bytes in M blocks") after serving $1 requests.
totals() {
  (cd "$DIR" && exec valgrind --tool=dhat --dhat-out-file="$DIR/dhat-$1.json" \
      "$BIN" run --workers 1 --config douane.toml 2> "$DIR/dhat-$1.log") & local pid=$!
  for _ in $(seq 300); do curl -sf http://127.0.0.1:18480/readyz >/dev/null && break; sleep 0.2; done
  if ! curl -sfk --http2 "$url" >/dev/null; then
    echo "douane does not answer on $url (see $DIR/dhat-$1.log)" >&2; kill "$pid"; return 1
  fi
  h2load -t1 "${client[@]}" -n"$1" "$url" | grep -q "succeeded, 0 failed" ||
    echo "warning: some of $1 requests failed" >&2
  kill -INT "$pid"; wait "$pid" || true
  sed -n 's/.*Total: *\([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' "$DIR/dhat-$1.log" | tr -d ,
}
few=$(totals "$FEW"); many=$(totals "$MANY")
read -r few_bytes few_blocks <<< "$few"; read -r many_bytes many_blocks <<< "$many"
[ -n "$few_blocks" ] && [ -n "$many_blocks" ] || { echo "no DHAT totals in $DIR/dhat-*.log" >&2; exit 1; }
n=$((MANY - FEW))
awk -v b=$((many_bytes - few_bytes)) -v a=$((many_blocks - few_blocks)) -v n=$n -v row="$ROW" \
  'BEGIN { printf "row=%s per request: %.1f allocations, %.0f bytes (%d vs %d requests)\n", row, a / n, b / n, '"$FEW"', '"$MANY"' }'
[ "${SITES:-0}" = 1 ] && python3 "$HERE/allocs_sites.py" "$DIR/dhat-$FEW.json" "$DIR/dhat-$MANY.json" "$n"
exit 0
