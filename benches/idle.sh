#!/usr/bin/env bash
# benches/idle.sh — douane's resident memory with many idle client connections, the shipped
# data loaded (data/country.mmdb, data/asn.mmdb, data/published.bin, the operator registry):
# KEEPALIVE connections on the plain reverse listener and TLS keep-alive connections on the
# TLS one (each after one answered GET, then idle), and TUNNELS idle CONNECT tunnels (open
# to the upstream, nothing sent). Prints RSS at start, after each group and at the end.
#
# Usage: benches/idle.sh            (defaults: 4,000 plain + 2,000 TLS keep-alive + 4,000 tunnels)
# Environment: KEEPALIVE [4000] TLS_KEEPALIVE [2000] TUNNELS [4000] DIR [/tmp/douane-idle]
#              DOUANE_BIN [target/release/douane, built if missing] WORKERS [1]
# Ports 28xxx on 127.0.0.1 (not the load harness's). Needs: nginx, curl, python3.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
KEEPALIVE=${KEEPALIVE:-4000}; TLS_KEEPALIVE=${TLS_KEEPALIVE:-2000}; TUNNELS=${TUNNELS:-4000}
DIR=${DIR:-/tmp/douane-idle}; WORKERS=${WORKERS:-1}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"   # 10,000 clients + 4,000 upstreams
NOFILE=$(ulimit -n)
if [ -z "${DOUANE_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet --bin douane); DOUANE_BIN=$REPO/target/release/douane
fi
rm -rf "$DIR"; mkdir -p "$DIR"/{body,proxy,fastcgi,uwsgi,scgi,policies,audit}
"$DOUANE_BIN" certs dev --cert "$DIR/cert.pem" --key "$DIR/key.pem" --name 127.0.0.1 >/dev/null
cat > "$DIR/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections 32768; }
http {
    access_log off; keepalive_timeout 600s;
    client_body_temp_path $DIR/body; proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi; uwsgi_temp_path $DIR/uwsgi; scgi_temp_path $DIR/scgi;
    server { listen 127.0.0.1:28180 backlog=4096; location = /ok { return 200 "ok"; } }
}
EOF
cat > "$DIR/douane.toml" <<EOF
[policy]
dir = "policies"
operators = "$REPO/policies/operators.toml"
[geo]
country = "$REPO/data/country.mmdb"
asn = "$REPO/data/asn.mmdb"
published = "$REPO/data/published.bin"
[forward]
listen = "127.0.0.1:28128"
[[reverse]]
name = "plain"
listen = "127.0.0.1:28448"
[[reverse]]
name = "tls"
listen = "127.0.0.1:28443"
tls = [{ cert = "cert.pem", key = "key.pem" }]
[[route]]
name = "plain"
listener = "plain"
host = "127.0.0.1"
upstream = "http://127.0.0.1:28180"
[[route]]
name = "tls"
listener = "tls"
host = "127.0.0.1"
upstream = "http://127.0.0.1:28180"
[admin]
listen = "127.0.0.1:28480"
[audit]
path = "audit"
[log]
level = "warn"
[limits]
max_connections = 20000
header_read_timeout_ms = 600000
max_upstream_connections_per_address = 0
idle_timeout_ms = 600000
[reload]
watch = false
EOF
cat > "$DIR/policies/policy.toml" <<EOF
[policy]
name = "idle"
allowed_locations = ["EU", "EEA"]
allowed_operators = ["EU", "EEA"]
allowed_ports = [28180]
[[network]]
cidr = "127.0.0.0/8"
location = "FR"
operator = "FR"
label = "loopback"
EOF
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null; true; }
trap cleanup EXIT
nginx -p "$DIR" -c "$DIR/nginx.conf"
(cd "$DIR" && exec "$DOUANE_BIN" run --workers "$WORKERS" --config "$DIR/douane.toml" 2>"$DIR/douane.log") &
PID=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:28480/readyz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:28480/readyz >/dev/null || { cat "$DIR/douane.log"; exit 1; }
python3 - "$PID" "$KEEPALIVE" "$TLS_KEEPALIVE" "$TUNNELS" <<'PY'
import socket, ssl, sys, time
pid, plain, tls, tunnels = (int(a) for a in sys.argv[1:])
def rss():
    return int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
def answered(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"closed early: {data!r}")
        data += chunk
    return data
time.sleep(1)
start = rss()
print(f"label=idle group=start connections=0 rss_kb={start}")
socks = []
get = b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
for _ in range(plain):
    s = socket.create_connection(("127.0.0.1", 28448)); s.sendall(get); answered(s); socks.append(s)
time.sleep(1); after_plain = rss()
print(f"label=idle group=keepalive connections={plain} rss_kb={after_plain} per_conn_b={(after_plain - start) * 1024 // max(plain, 1)}")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
for _ in range(tls):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 28443)), server_hostname="127.0.0.1")
    s.sendall(get); answered(s); socks.append(s)
time.sleep(1); after_tls = rss()
print(f"label=idle group=tls-keepalive connections={tls} rss_kb={after_tls} per_conn_b={(after_tls - after_plain) * 1024 // max(tls, 1)}")
for _ in range(tunnels):
    s = socket.create_connection(("127.0.0.1", 28128))
    s.sendall(b"CONNECT 127.0.0.1:28180 HTTP/1.1\r\nHost: 127.0.0.1:28180\r\n\r\n")
    head = answered(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    socks.append(s)
time.sleep(1); end = rss()
print(f"label=idle group=tunnels connections={tunnels} rss_kb={end} per_conn_b={(end - after_tls) * 1024 // max(tunnels, 1)}")
total = plain + tls + tunnels
print(f"label=idle group=total connections={total} rss_kb={end} rss_mb={end / 1024:.1f} added_per_conn_b={(end - start) * 1024 // max(total, 1)}")
PY
