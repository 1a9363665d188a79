#!/usr/bin/env bash
# benches/load.sh — douane under load, side by side with the upstream alone and with nginx,
# in one run, interleaved rounds (A B C … A B C …), medians. Loopback only.
#
#   direct        wrk → upstream nginx                     http://127.0.0.1:18180/ok
#   nginx         wrk → nginx reverse proxy → upstream     http://127.0.0.1:18181/ok
#   douane-http   wrk → douane reverse route (policy on)   http://127.0.0.1:18190/ok
#   douane-hyper  the same route with direct_http1 = false  http://127.0.0.1:18191/ok
#   douane-tls    wrk → douane TLS-terminating route       https://127.0.0.1:18443/ok
#   douane-fwd    wrk → douane forward proxy, absolute-form GET http://127.0.0.1:18180/ok
# then, for each target, a fixed-rate phase at half of its own peak (benches/load/rate, open
# loop, latency from the scheduled send time) with the upstream alone at the same rate alongside,
# then a 100 MB body through a CONNECT tunnel vs direct, and douane's resident memory with
# 1,000 idle client connections.
# The side-by-side harness of the paths real traffic takes (https upstreams, HTTP/2, CONNECT
# tunnels vs nginx and squid) is benches/realistic/run.sh; idle memory: benches/idle.sh.
#
# Pinning (2 cores): wrk and rate on CPU 0, every server on CPU 1 (tokio then runs one worker).
# Environment: ROUNDS [3] DURATION [10s] CONNS [64] LAT_DURATION [5s] DIR [/tmp/douane-load]
#              DOUANE_BIN [target/release/douane, built if missing]
# Needs: nginx, wrk, curl, python3, cargo (Debian: apt-get install nginx wrk curl).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$REPO/benches/load"
DIR="${DIR:-/tmp/douane-load}"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10s}"; CONNS="${CONNS:-64}"; LAT_DURATION="${LAT_DURATION:-5s}"
CLIENT="taskset -c 0"; SERVER="taskset -c 1"

for tool in nginx wrk curl python3 taskset cargo; do
    command -v "$tool" >/dev/null || { echo "load.sh needs $tool (apt-get install nginx wrk curl)" >&2; exit 2; }
done
if [ -z "${DOUANE_BIN:-}" ]; then
    (cd "$REPO" && cargo build --release --quiet)
    DOUANE_BIN="$REPO/target/release/douane"
fi
# the fixed-rate client: a package of its own, built with its own lock file and target/
cargo build --release --quiet --manifest-path "$HERE/rate/Cargo.toml"
RATE_BIN="$HERE/rate/target/release/rate"

rm -rf "$DIR"; mkdir -p "$DIR/www" "$DIR/policies" "$DIR"/{body,proxy,fastcgi,uwsgi,scgi}
head -c 102400 /dev/urandom > "$DIR/www/100k"
head -c 104857600 /dev/zero > "$DIR/www/100m"
for conf in upstream proxy; do sed "s#@DIR@#$DIR#g" "$HERE/nginx-$conf.conf" > "$DIR/nginx-$conf.conf"; done
sed "s#@REPO@#$REPO#g" "$HERE/douane.toml" > "$DIR/douane.toml"
cp "$HERE/policy.toml" "$DIR/policies/"
"$DOUANE_BIN" certs dev --cert "$DIR/cert.pem" --key "$DIR/key.pem" --name 127.0.0.1 --name localhost >/dev/null

cleanup() {
    [ -n "${DOUANE_PID:-}" ] && kill "$DOUANE_PID" 2>/dev/null || true
    for p in upstream proxy; do [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null; done; true
}
trap cleanup EXIT
$SERVER nginx -p "$DIR" -c "$DIR/nginx-upstream.conf"
$SERVER nginx -p "$DIR" -c "$DIR/nginx-proxy.conf"
(cd "$DIR" && exec $SERVER "$DOUANE_BIN" run --config "$DIR/douane.toml" 2>"$DIR/douane.log") &
DOUANE_PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18480/readyz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:18480/readyz >/dev/null || { cat "$DIR/douane.log"; exit 1; }
echo "label=memory mode=start rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$DOUANE_PID/status")" > "$DIR/start-rss"

# label | URL wrk connects to | absolute-form target ("" for none)
TARGETS=(
  "direct|http://127.0.0.1:18180/ok|"
  "nginx|http://127.0.0.1:18181/ok|"
  "douane-http|http://127.0.0.1:18190/ok|"
  "douane-hyper|http://127.0.0.1:18191/ok|"
  "douane-tls|https://127.0.0.1:18443/ok|"
  "douane-fwd|http://127.0.0.1:18128/|http://127.0.0.1:18180/ok"
)
RAW="$DIR/results.raw"; : > "$RAW"
run_wrk() { # label url abs conns duration mode
    local out
    out=$(ABS_URL="$3" $CLIENT wrk -t1 -c"$4" -d"$5" --timeout 5s -s "$HERE/report.lua" "$2" | grep '^RESULT')
    echo "label=$1 mode=$6 ${out#RESULT }" | tee -a "$RAW"
}
run_rate() { # label url abs rate mode: open loop at a fixed rate, CONNS connections, DURATION (+1 s warm-up)
    local out target=(--url "$2")
    [ -n "$3" ] && target=(--url "$3" --proxy "${2%/}")
    out=$($CLIENT "$RATE_BIN" "${target[@]}" --rate "$4" --duration "$DURATION" --connections "$CONNS" | grep '^RESULT')
    echo "label=$1 mode=$5 ${out#RESULT }" | tee -a "$RAW"
}
for t in "${TARGETS[@]}"; do  # preflight and warm-up
    IFS='|' read -r label url abs <<<"$t"
    if [ -n "$abs" ]; then code=$(curl -s -o /dev/null -w '%{http_code}' -x "${url%/}" "$abs")
    else code=$(curl -sk -o /dev/null -w '%{http_code}' "$url"); fi
    [ "$code" = 200 ] || { echo "$label answered $code" >&2; cat "$DIR/douane.log" >&2; exit 1; }
    ABS_URL="$abs" $CLIENT wrk -t1 -c"$CONNS" -d1s -s "$HERE/report.lua" "$url" >/dev/null
done
for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r label url abs <<<"$t"
        run_wrk "$label" "$url" "$abs" "$CONNS" "$DURATION" load
        run_wrk "$label" "$url" "$abs" 1 "$LAT_DURATION" c1
    done
done

echo "== fixed rate at half of each target's peak median, the upstream alone at the same rate alongside"
declare -A HALF
for t in "${TARGETS[@]}"; do
    IFS='|' read -r label _ _ <<<"$t"
    HALF[$label]=$(python3 - "$RAW" "$label" <<'PY'
import statistics, sys
rps = [float(kv["rps"]) for kv in (dict(f.split("=", 1) for f in l.split() if "=" in f) for l in open(sys.argv[1]))
       if kv.get("label") == sys.argv[2] and kv.get("mode") == "load"]
print(max(1, round(statistics.median(rps) / 2)))
PY
)
done
DIRECT_URL="${TARGETS[0]#*|}"; DIRECT_URL="${DIRECT_URL%%|*}"
for round in $(seq "$ROUNDS"); do
    echo "== fixed-rate round $round/$ROUNDS"
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r label url abs <<<"$t"
        run_rate "$label" "$url" "$abs" "${HALF[$label]}" half
        [ "$label" = direct ] || run_rate "$label" "$DIRECT_URL" "" "${HALF[$label]}" half-direct
    done
done

echo "== 100 MB bodies through a CONNECT tunnel vs direct (10 transfers a round, one connection)"
urls=(); for _ in $(seq 10); do urls+=(-o /dev/null http://127.0.0.1:18180/100m); done
for round in $(seq "$ROUNDS"); do
    $CLIENT curl -s -w 'label=bulk-direct mode=bulk bytes_per_s=%{speed_download}\n' "${urls[@]}" | tee -a "$RAW"
    $CLIENT curl -s -p -x http://127.0.0.1:18128 -w 'label=bulk-connect mode=bulk bytes_per_s=%{speed_download}\n' "${urls[@]}" | tee -a "$RAW"
done

echo "== resident memory with 1,000 idle client connections"
python3 - "$DOUANE_PID" <<'PY' | tee -a "$RAW"
import socket, sys, time
socks = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", 18128))
    s.sendall(b"GET http://127.0.0.1:18180/ok HTTP/1.1\r\nHost: 127.0.0.1:18180\r\n\r\n")
    socks.append(s)
for s in socks:
    s.recv(4096)  # answered; the connection stays open, idle, kept alive
time.sleep(1)
rss = [l for l in open(f"/proc/{sys.argv[1]}/status") if l.startswith("VmRSS")][0].split()[1]
print(f"label=memory mode=idle1000 rss_kb={rss}")
PY
tee -a "$RAW" < "$DIR/start-rss"

python3 "$HERE/summarize.py" "$RAW" | tee "$DIR/results.md"
