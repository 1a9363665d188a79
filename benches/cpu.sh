#!/usr/bin/env bash
# benches/cpu.sh — what one request costs each process, douane and nginx as reverse proxies
# in front of the realistic harness's origin: user and system CPU per request of the proxy
# and of the origin, and how often each was switched out (voluntary: it slept; involuntary:
# it was preempted). The harness's requests per second say who is faster; this says where.
# Proxy and origin share CPU 1, the client runs on CPU 0, rounds alternate the two proxies.
#
#   benches/cpu.sh [ROUNDS] [SECS]                (defaults 3 rounds of 5 s)
# Environment:
#   ROW=plain|h2        plain: wrk -c64 on the plain listener; h2: h2load -c4 -m32 on TLS
#   PEER_HEADERS=none|forwarding
#                       none: the harness's nginx as is (it sends the origin no client
#                       address); forwarding: nginx sets the four headers douane sets
#                       (X-Forwarded-For, -Proto, -Host, Forwarded), the same work
#   DOUANE_BIN          the binary (default: target/release/douane of this checkout, built)
#   DIR                 scratch directory (default /tmp/douane-cpu)
# Needs: nginx, wrk, h2load, curl. Loopback only; the harness's ports (18xxx).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/.." && pwd); R=$HERE/realistic
ROUNDS=${1:-3}; SECS=${2:-5}
ROW=${ROW:-plain}; PEER_HEADERS=${PEER_HEADERS:-none}; DIR=${DIR:-/tmp/douane-cpu}
for tool in nginx wrk h2load curl; do
  command -v "$tool" >/dev/null || { echo "cpu.sh needs $tool" >&2; exit 2; }
done
if [ -z "${DOUANE_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet --bin douane); DOUANE_BIN=$REPO/target/release/douane
fi
! ss -ltn | grep -qE '127\.0\.0\.1:(18180|18480) ' || { echo "ports in use by another run" >&2; exit 1; }
. "$R/scratch.sh"; prepare_scratch "$DIR" "$DOUANE_BIN"
case $PEER_HEADERS in
  none) ;;
  forwarding) sed -i 's#proxy_set_header Connection "";#& proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host; proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$http_host\\"";#' "$DIR/nginx-proxy.conf" ;;
  *) echo "PEER_HEADERS is none or forwarding" >&2; exit 2 ;;
esac
DPID=
cleanup() { [ -n "$DPID" ] && kill "$DPID" 2>/dev/null || true
  for f in nginx nginx-proxy; do [ -f "$DIR/$f.pid" ] && kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 1 nginx -p "$DIR" -c "$DIR/nginx.conf"; taskset -c 1 nginx -p "$DIR" -c "$DIR/nginx-proxy.conf"
(cd "$DIR" && exec taskset -c 1 "$DOUANE_BIN" run --workers 1 --config "$DIR/douane.toml" 2>"$DIR/douane.log") & DPID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18480/readyz >/dev/null && break; sleep 0.2; done
sleep 0.5
# nginx's worker is the master's only child.
worker() { pgrep -P "$(cat "$DIR/$1.pid")" | head -1; }
ORIGIN=$(worker nginx); PEER=$(worker nginx-proxy)
case $ROW in
  plain) url() { [ "$1" = douane ] && echo http://127.0.0.1:18448/ok || echo http://127.0.0.1:18447/ok; }
         load() { taskset -c 0 wrk -t1 -c64 -d"${SECS}s" "$1" | sed -n 's/^ *\([0-9]*\) requests in .*/\1/p'; } ;;
  h2) url() { [ "$1" = douane ] && echo https://127.0.0.1:18443/ok || echo https://127.0.0.1:18449/ok; }
      load() { taskset -c 0 h2load -t1 -c4 -m32 -D"$SECS" "$1" | sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p'; } ;;
  *) echo "ROW is plain or h2" >&2; exit 2 ;;
esac
for p in douane nginx; do curl -sfk --http2 "$(url $p)" >/dev/null || { echo "$p does not answer on $(url $p)" >&2; exit 1; }; done
# utime stime voluntary involuntary, summed over the process's threads
sample() { local pid=$1 ut st vol=0 inv=0 f
  read -r ut st < <(awk '{print $14, $15}' "/proc/$pid/stat")
  for f in /proc/"$pid"/task/*/status; do
    vol=$((vol + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$f")))
    inv=$((inv + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$f")))
  done; echo "$ut $st $vol $inv"; }
TCK=$(getconf CLK_TCK)
per() { # name before after requests -> user µs, sys µs, sleeps, preemptions per request
  awk -v n="$1" -v tck="$TCK" -v q="$4" -v b="$2" -v a="$3" 'BEGIN { split(b, x, " "); split(a, y, " ");
    printf " %s_user_us=%.2f %s_sys_us=%.2f %s_sleeps=%.2f %s_preempted=%.2f", n, (y[1]-x[1])*1e6/tck/q,
      n, (y[2]-x[2])*1e6/tck/q, n, (y[3]-x[3])/q, n, (y[4]-x[4])/q }'; }
echo "row=$ROW peer_headers=$PEER_HEADERS rounds=$ROUNDS secs=$SECS bin=$DOUANE_BIN"
for r in $(seq "$ROUNDS"); do
  order="douane nginx"; [ $((r % 2)) = 0 ] && order="nginx douane"
  for p in $order; do
    pid=$([ $p = douane ] && echo "$DPID" || echo "$PEER")
    pb=$(sample "$pid"); ob=$(sample "$ORIGIN")
    n=$(load "$(url $p)")
    pa=$(sample "$pid"); oa=$(sample "$ORIGIN")
    echo "round=$r proxy=$p requests=$n rps=$((n / SECS))$(per proxy "$pb" "$pa" "$n")$(per origin "$ob" "$oa" "$n")"
  done
done
