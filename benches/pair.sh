#!/usr/bin/env bash
# benches/pair.sh — two douane binaries, A and B, side by side and loaded at the same moment:
# an A/B that a shared, noisy machine does not blur. Both run the realistic harness's config
# on CPU 1 in front of one origin (nginx); each round, two identical clients on CPU 0 load A
# and B at once for SECS seconds, so whatever the machine does to one it does to the other.
# The figure is B ÷ A per round (the two compete for CPU 1: the ratio is the inverse of their
# cost per request). Rounds alternate which client starts first.
#
#   benches/pair.sh A_BIN B_BIN [ROUNDS] [SECS]
# Environment: ROW [h2] — h2: h2load -c4 -m32 on the TLS listener (the HTTP/2 row);
#              plain: wrk -c64 on the plain reverse listener;
#              tunnel: a new CONNECT tunnel per request, plain GET inside (connect-load
#              --conc 64, the harness's fwd-tunnel-plain row); tunnel-tls: the same with a
#              TLS handshake inside (fwd-tunnel-tls).
#              DIR [/tmp/douane-pair]
# Needs: nginx, h2load (nghttp2-client), wrk, curl; cargo for connect-load. Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
A=$(realpath "$1"); B=$(realpath "$2"); ROUNDS=${3:-6}; SECS=${4:-5}
ROW=${ROW:-h2}; DIR=${DIR:-/tmp/douane-pair}
for tool in nginx h2load wrk curl; do
  command -v "$tool" >/dev/null || { echo "pair.sh needs $tool" >&2; exit 2; }
done
! ss -ltn | grep -qE '127\.0\.0\.1:(18180|28480|29480) ' || { echo "ports in use by another run" >&2; exit 1; }
. "$HERE/realistic/scratch.sh"; prepare_scratch "$DIR" "$A"
# A's listeners on 28xxx, B's on 29xxx; both route to the one origin (18180, 18182).
for side in a b; do
  off=$([ $side = a ] && echo 10000 || echo 11000)
  mkdir -p "$DIR/$side/audit"
  cp -r "$DIR/policies" "$DIR/cert.pem" "$DIR/key.pem" "$DIR/douane.toml" "$DIR/$side/"
  for port in 18128 18448 18443 18446 18480; do
    sed -i "s/127\.0\.0\.1:$port\"/127.0.0.1:$((port + off))\"/" "$DIR/$side/douane.toml"
  done
done
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 nginx -p "$DIR" -c "$DIR/nginx.conf"
(cd "$DIR/a" && exec taskset -c 1 "$A" run --workers 1 --config douane.toml 2>log) & PIDS+=($!)
(cd "$DIR/b" && exec taskset -c 1 "$B" run --workers 1 --config douane.toml 2>log) & PIDS+=($!)
for admin in 28480 29480; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.2; done
done
case $ROW in
  h2) url() { echo "https://127.0.0.1:$1/ok"; }; pa=28443; pb=29443
      load() { taskset -c 0 h2load -t1 -c4 -m32 -D"$SECS" "$1" | sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p'; } ;;
  plain) url() { echo "http://127.0.0.1:$1/ok"; }; pa=28448; pb=29448
      load() { taskset -c 0 wrk -t1 -c64 -d"${SECS}s" "$1" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; } ;;
  tunnel|tunnel-tls)
      CL=$(connect_load)
      inside=(--target 127.0.0.1:18180 --sni 127.0.0.1)
      [ "$ROW" = tunnel-tls ] && inside=(--target 127.0.0.1:18182 --tls --sni localhost)
      url() { echo "127.0.0.1:$1"; }; pa=28128; pb=29128
      load() { taskset -c 0 "$CL" --proxy "$1" "${inside[@]}" --conc 64 --secs "$SECS" |
               sed -n 's/^RESULT .* tps=\([0-9.]*\) .*/\1/p'; } ;;
  *) echo "ROW is h2, plain, tunnel or tunnel-tls" >&2; exit 2 ;;
esac
for port in $pa $pb; do
  case $ROW in
    tunnel*) curl -sf -p -x "$(url $port)" http://127.0.0.1:18180/ok >/dev/null ;;
    *) curl -sfk --http2 "$(url $port)" >/dev/null ;;
  esac || { echo "douane on $port does not answer" >&2; exit 1; }
done
echo "row=$ROW rounds=$ROUNDS secs=$SECS A=$A B=$B"
for r in $(seq "$ROUNDS"); do
  # Never a bare `wait`: the two douanes are background jobs of this shell too.
  if [ $((r % 2)) = 1 ]; then
    load "$(url $pa)" > "$DIR/ra" & first=$!; sleep 0.05; load "$(url $pb)" > "$DIR/rb" & second=$!
  else
    load "$(url $pb)" > "$DIR/rb" & first=$!; sleep 0.05; load "$(url $pa)" > "$DIR/ra" & second=$!
  fi
  wait "$first" "$second"
  a=$(cat "$DIR/ra"); b=$(cat "$DIR/rb")
  echo "round=$r a=$a b=$b b_over_a=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
done | tee "$DIR/rounds"
awk -F'b_over_a=' '/b_over_a/ { print $2 }' "$DIR/rounds" | sort -n |
  awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
         printf "median B/A %.3f (range %.3f-%.3f, %d rounds)\n", m, v[1], v[NR], NR }'
