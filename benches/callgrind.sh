#!/usr/bin/env bash
# benches/callgrind.sh — user-space instructions per request on the direct path's plain
# reverse route (policy on: every request resolved, classified, decided), counted by
# callgrind. douane runs under valgrind twice, serving FEW then MANY keep-alive requests
# from one curl connection to a keep-alive upstream on loopback; the difference of the two
# totals over MANY - FEW is the cost of one request (start-up and shutdown cancel out).
# Not a load test: one connection, one request at a time.
#
#   benches/callgrind.sh [DOUANE_BIN]      (default: target/release/douane, built if missing)
# Environment: FEW [200] MANY [2200] DIR [/tmp/douane-callgrind] PORT_BASE [28190]
# Needs: valgrind, curl, python3.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${DIR:-/tmp/douane-callgrind}"
FEW="${FEW:-200}"; MANY="${MANY:-2200}"
P="${PORT_BASE:-28190}"; UP=$((P + 1)); ADMIN=$((P + 2))
for tool in valgrind curl python3; do
    command -v "$tool" >/dev/null || { echo "callgrind.sh needs $tool" >&2; exit 2; }
done
BIN="${1:-}"
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --release --quiet)
    BIN="$REPO/target/release/douane"
fi
BIN="$(realpath "$BIN")"

rm -rf "$DIR"; mkdir -p "$DIR/policies"
cp "$REPO/benches/load/policy.toml" "$DIR/policies/"
sed -i "s/18180/$UP/" "$DIR/policies/policy.toml"
cat > "$DIR/douane.toml" <<EOF
[policy]
dir = "policies"
operators = "$REPO/policies/operators.toml"
[geo]
country = "$REPO/data/country.mmdb"
asn = "$REPO/data/asn.mmdb"
[forward]
listen = "127.0.0.1:$((P + 3))"
[[reverse]]
name = "http"
listen = "127.0.0.1:$P"
[[route]]
name = "bench-http"
listener = "http"
host = "127.0.0.1"
upstream = "http://127.0.0.1:$UP"
[admin]
listen = "127.0.0.1:$ADMIN"
[audit]
path = "audit"
[log]
level = "warn"
[reload]
watch = false
EOF

# A keep-alive HTTP/1.1 upstream answering every GET with 2 bytes.
cat > "$DIR/upstream.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$DIR/upstream.py" "$UP" & UPSTREAM=$!
trap 'kill $UPSTREAM 2>/dev/null || true' EXIT

# Total instructions of one douane run serving $1 requests.
run() {
    local n=$1 out="$DIR/callgrind.$1.out"
    (cd "$DIR" && exec valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$BIN" run --config "$DIR/douane.toml" 2>"$DIR/valgrind.$n.log") &
    local pid=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null || { cat "$DIR/valgrind.$n.log" >&2; exit 1; }
    curl -sf -o /dev/null "http://127.0.0.1:$P/warm" -H 'Host: 127.0.0.1'
    local urls=()
    for i in $(seq 1 "$n"); do urls+=("http://127.0.0.1:$P/r$i"); done
    curl -sf -H "Host: 127.0.0.1" "${urls[@]}" >/dev/null
    kill -TERM "$pid"; wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

few=$(run "$FEW")
many=$(run "$MANY")
per=$(( (many - few) / (MANY - FEW) ))
echo "binary=$BIN few=$FEW:$few many=$MANY:$many instructions_per_request=$per"
