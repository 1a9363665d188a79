#!/usr/bin/env bash
# benches/realistic/run.sh — the paths real traffic takes, douane side by side with the peer
# users would pick instead and with the direct connection (the limit), in one run,
# interleaved rounds (every row once per round), medians (per-round min–max):
#
#   rev-plain         keep-alive GET, plain reverse route (wrk)             nginx   direct
#   rev-tlsplain      keep-alive GET, TLS terminated, plain upstream        nginx
#   rev-tlstls        keep-alive GET, TLS terminated, https upstream        nginx (keep-alive, session reuse, verification on)
#   rev-h2            HTTP/2 on the TLS listener, many streams (h2load)     nginx (`listen … ssl http2`)
#   rev-handshake     a new TLS connection per request                      nginx   direct TLS
#   fwd-tunnel-plain  a new CONNECT tunnel per request, plain inside        squid   direct
#   fwd-tunnel-tls    a new CONNECT tunnel, TLS handshake + GET inside      squid   direct TLS
#   fwd-abs           keep-alive absolute-form GET, forward proxy           squid
#
# Usage: benches/realistic/run.sh [ROUNDS] [SECS]        (defaults 3 rounds of 6 s)
# Environment:
#   ROWS=REGEX     only the rows whose name matches (e.g. ROWS='rev-tlstls|rev-h2')
#   WORKERS=N      N server threads/processes: douane --workers N, nginx worker_processes N,
#                  and nothing pinned (N=1, the default: clients on CPU 0, servers on CPU 1)
#   DOUANE_BIN     the binary (default: target/release/douane of this checkout, built)
#   DIR            scratch directory (default /tmp/realistic)
#   H2_CONNS, H2_STREAMS   h2load connections and streams per connection (4 × 32)
# Needs: nginx, squid, wrk, h2load, curl, python3, cargo
#   (Debian: apt-get install nginx squid wrk nghttp2-client curl). Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-3}; SECS=${2:-6}
ROWS=${ROWS:-.}; WORKERS=${WORKERS:-1}; H2_CONNS=${H2_CONNS:-4}; H2_STREAMS=${H2_STREAMS:-32}
DIR=${DIR:-/tmp/realistic}
for tool in nginx squid wrk h2load curl python3 cargo; do
  command -v "$tool" >/dev/null || { echo "run.sh needs $tool" >&2; exit 2; }
done
if [ -z "${DOUANE_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet --bin douane); DOUANE_BIN=$REPO/target/release/douane
fi
BIN=$DOUANE_BIN
. "$HERE/scratch.sh"; CL=$(connect_load)  # the new-connection client
# another run (this harness or the shared one) holds the same loopback ports: wait for it
for _ in $(seq 120); do ss -ltn | grep -qE '127\.0\.0\.1:(18180|18480|13128) ' || break; sleep 5; done
! ss -ltn | grep -qE '127\.0\.0\.1:(18180|18480|13128) ' || { echo "ports in use by another run" >&2; exit 1; }
if [ "$WORKERS" = 1 ]; then C="taskset -c 0"; S="taskset -c 1"; else C=""; S=""; fi
rm -rf "$DIR"; mkdir -p "$DIR"/{www,body,proxy,fastcgi,uwsgi,scgi,policies,audit}
head -c 102400 /dev/urandom > "$DIR/www/100k"
"$BIN" certs dev --cert "$DIR/cert.pem" --key "$DIR/key.pem" --name localhost --name 127.0.0.1 >/dev/null
for f in nginx nginx-proxy squid; do
  sed -e "s#@DIR@#$DIR#g" -e "s#@WORKERS@#$WORKERS#g" "$HERE/$f.conf" > "$DIR/$f.conf"
done
sed "s#@REPO@#$REPO#g" "$HERE/douane.toml" > "$DIR/douane.toml"; cp "$HERE/policy.toml" "$DIR/policies/"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in nginx nginx-proxy squid; do [ -f "$DIR/$f.pid" ] && kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true; done; }
trap cleanup EXIT
$S nginx -p "$DIR" -c "$DIR/nginx.conf"; $S nginx -p "$DIR" -c "$DIR/nginx-proxy.conf"
$S squid -f "$DIR/squid.conf" -N >"$DIR/squid.out" 2>&1 & PIDS+=($!)
(cd "$DIR" && exec $S "$BIN" run --workers "$WORKERS" --config "$DIR/douane.toml" 2>"$DIR/douane.log") & PIDS+=($!)
DOUANE_PID=${PIDS[1]}
sleep 2
for _ in $(seq 50); do curl -sf http://127.0.0.1:18480/readyz >/dev/null && break; sleep 0.2; done
RAW=$DIR/raw; : > "$RAW"
want() { [[ $1 =~ $ROWS ]]; }
wrkr() { # label url abs
  want "${1%%/*}" || return 0
  local o; o=$(WRK_ABS_URL="$3" $C wrk -t1 -c64 -d"${SECS}s" --timeout 5s -s "$HERE/report.lua" "$2" | grep '^RESULT')
  echo "label=$1 ${o#RESULT }" | tee -a "$RAW"; }
cl() { # label args...
  want "${1%%/*}" || return 0
  local l=$1; shift; local o; o=$($C "$CL" --label "$l" --secs "$SECS" --conc 64 "$@" | grep '^RESULT')
  echo "${o#RESULT }" | tee -a "$RAW"; }
h2() { # label url: h2load, H2_CONNS connections × H2_STREAMS streams, SECS seconds
  want "${1%%/*}" || return 0
  local o rps ok failed mean
  o=$($C h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$SECS" --warm-up-time=1 "$2")
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$o")
  ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' <<<"$o")
  mean=$(awk '/^time for request:/ {print $5}' <<<"$o")
  echo "label=$1 rps=$rps succeeded=${ok% *} failed=${ok#* } mean=$mean" | tee -a "$RAW"; }
# preflight
curl -sfk https://127.0.0.1:18443/ok >/dev/null || { echo "douane tls-plain"; cat "$DIR/douane.log"; exit 1; }
curl -sfk https://127.0.0.1:18446/ok >/dev/null || { echo "douane tls-tls"; cat "$DIR/douane.log"; exit 1; }
curl -sfk https://127.0.0.1:18445/ok >/dev/null || { echo "nginx tls-tls"; exit 1; }
curl -sfk --http2 https://127.0.0.1:18449/ok >/dev/null || { echo "nginx h2"; exit 1; }
# squid may take a few seconds to listen
for _ in $(seq 50); do curl -sf -x 127.0.0.1:13128 http://127.0.0.1:18180/ok >/dev/null && break; sleep 0.2; done
curl -sf -x 127.0.0.1:13128 http://127.0.0.1:18180/ok >/dev/null || { echo "squid abs"; cat "$DIR/squid.out"; exit 1; }
curl -sfk -p -x 127.0.0.1:18128 https://127.0.0.1:18182/ok >/dev/null || { echo "douane connect"; cat "$DIR/douane.log"; exit 1; }
echo "douane rss_kb_start=$(awk '/VmRSS/{print $2}' "/proc/$DOUANE_PID/status") workers=$WORKERS rounds=$ROUNDS secs=$SECS rows=$ROWS" | tee "$DIR/meta"
for r in $(seq "$ROUNDS"); do
  echo "== round $r/$ROUNDS"
  wrkr rev-plain/direct http://127.0.0.1:18180/ok ""
  wrkr rev-plain/nginx http://127.0.0.1:18447/ok ""
  wrkr rev-plain/douane http://127.0.0.1:18448/ok ""
  wrkr rev-tlsplain/nginx https://127.0.0.1:18444/ok ""
  wrkr rev-tlsplain/douane https://127.0.0.1:18443/ok ""
  wrkr rev-tlstls/nginx https://127.0.0.1:18445/ok ""
  wrkr rev-tlstls/douane https://127.0.0.1:18446/ok ""
  h2 rev-h2/nginx https://127.0.0.1:18449/ok
  h2 rev-h2/douane https://127.0.0.1:18443/ok
  cl rev-handshake/direct --target 127.0.0.1:18182 --tls --sni 127.0.0.1
  cl rev-handshake/nginx --target 127.0.0.1:18444 --tls --sni 127.0.0.1
  cl rev-handshake/douane --target 127.0.0.1:18443 --tls --sni 127.0.0.1
  cl fwd-tunnel-plain/direct --target 127.0.0.1:18180 --sni 127.0.0.1
  cl fwd-tunnel-plain/squid --proxy 127.0.0.1:13128 --target 127.0.0.1:18180 --sni 127.0.0.1
  cl fwd-tunnel-plain/douane --proxy 127.0.0.1:18128 --target 127.0.0.1:18180 --sni 127.0.0.1
  cl fwd-tunnel-tls/direct --target 127.0.0.1:18182 --tls --sni localhost
  cl fwd-tunnel-tls/squid --proxy 127.0.0.1:13128 --target 127.0.0.1:18182 --tls --sni localhost
  cl fwd-tunnel-tls/douane --proxy 127.0.0.1:18128 --target 127.0.0.1:18182 --tls --sni localhost
  wrkr fwd-abs/squid http://127.0.0.1:13128/ http://127.0.0.1:18180/ok
  wrkr fwd-abs/douane http://127.0.0.1:18128/ http://127.0.0.1:18180/ok
done
echo "douane rss_kb=$(awk '/VmRSS/{print $2}' "/proc/$DOUANE_PID/status")" | tee -a "$DIR/meta"
python3 "$HERE/summary.py" "$RAW" | tee "$DIR/summary.md"
