#!/usr/bin/env bash
# benches/callgrind_connect.sh — user-space instructions (callgrind) or heap blocks (dhat)
# per CONNECT tunnel on the direct path of the forward listener: each tunnel decided (the
# policy on: classified, decided), connected, answered 200, its first 1 KiB judged (neither
# TLS nor HTTP: `other_protocol`, let through) and echoed back by a loopback upstream, then
# half-closed by the client and finished. douane runs under valgrind twice, serving FEW then
# MANY tunnels one after the other; the difference of the two totals over MANY - FEW is the
# cost of one tunnel (start-up and shutdown cancel out). Not a load test.
#
#   benches/callgrind_connect.sh [DOUANE_BIN]   (default: target/release/douane, built if missing)
# Environment: TOOL [callgrind|dhat] FEW [50] MANY [450] DIR [/tmp/douane-callgrind-connect]
#              PORT_BASE [28290]
# Needs: valgrind, curl, python3.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${DIR:-/tmp/douane-callgrind-connect}"
TOOL="${TOOL:-callgrind}"
FEW="${FEW:-50}"; MANY="${MANY:-450}"
P="${PORT_BASE:-28290}"; UP=$((P + 1)); ADMIN=$((P + 2))
for tool in valgrind curl python3; do
    command -v "$tool" >/dev/null || { echo "callgrind_connect.sh needs $tool" >&2; exit 2; }
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
cat > "$DIR/douane.toml" <<CONFIG
[policy]
dir = "policies"
operators = "$REPO/policies/operators.toml"
[geo]
country = "$REPO/data/country.mmdb"
asn = "$REPO/data/asn.mmdb"
[forward]
listen = "127.0.0.1:$P"
[admin]
listen = "127.0.0.1:$ADMIN"
[audit]
path = "audit"
[log]
level = "warn"
[reload]
watch = false
CONFIG

# A loopback upstream that echoes each connection until the client closes its side.
cat > "$DIR/upstream.py" <<'UPSTREAM'
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
UPSTREAM
# $3 tunnels, one after the other: CONNECT, 200, 1 KiB each way, half-close, end of file.
cat > "$DIR/client.py" <<'CLIENT'
import socket, sys
proxy, up, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
payload = bytes(range(256)) * 4
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", proxy))
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (up, up))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            sys.exit("closed before the 200")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(head.decode())
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += s.recv(65536)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
CLIENT
python3 "$DIR/upstream.py" "$UP" & UPSTREAM_PID=$!
trap 'kill $UPSTREAM_PID 2>/dev/null || true' EXIT

# The total of one douane run serving $1 tunnels: instructions, or heap blocks allocated.
run() {
    local n=$1 out="$DIR/$TOOL.$1.out"
    local opts=(--tool=callgrind --callgrind-out-file="$out")
    [ "$TOOL" = dhat ] && opts=(--tool=dhat --dhat-out-file="$out")
    (cd "$DIR" && exec valgrind "${opts[@]}" \
        "$BIN" run --config "$DIR/douane.toml" 2>"$DIR/valgrind.$n.log") &
    local pid=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null || { cat "$DIR/valgrind.$n.log" >&2; exit 1; }
    python3 "$DIR/client.py" "$P" "$UP" 1
    python3 "$DIR/client.py" "$P" "$UP" "$n"
    sleep 1 # the last tunnel's end
    kill -TERM "$pid"; wait "$pid" || true
    if [ "$TOOL" = dhat ]; then
        # "Total:     1,234 bytes in 56 blocks"
        awk '/Total:/ { gsub(",", ""); for (i = 1; i <= NF; i++) if ($i == "in") { print $(i + 1); exit } }' "$DIR/valgrind.$n.log"
    else
        awk '/^(summary|totals):/ { print $2; exit }' "$out"
    fi
}

few=$(run "$FEW")
many=$(run "$MANY")
per=$(( (many - few) / (MANY - FEW) ))
echo "binary=$BIN tool=$TOOL few=$FEW:$few many=$MANY:$many per_tunnel=$per"
