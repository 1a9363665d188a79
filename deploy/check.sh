#!/bin/sh
# Checks what deploy/ ships: the alert rules (syntax and unit tests), the Prometheus config,
# and lists every PromQL expression of the Grafana dashboard into dashboard-queries.txt
# (one per line, Grafana variables as written), failing if the committed list is out of date.
# Needs promtool (Debian: apt-get install prometheus) and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts_test.yml
promtool check config prometheus/prometheus.yml

list=$(python3 - grafana/douane.json <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
exprs = [t["expr"] for p in walk(dash["panels"]) for t in p.get("targets", []) if t.get("expr")]
if not exprs:
    sys.exit("no PromQL expression found in the dashboard")
for e in exprs:
    if "\n" in e:
        sys.exit(f"a dashboard expression spans lines: {e!r}")
    print(e)
PY
)
if [ "${1:-}" = "--write" ] || [ ! -f dashboard-queries.txt ]; then
    printf '%s\n' "$list" > dashboard-queries.txt
elif [ "$(cat dashboard-queries.txt)" != "$list" ]; then
    echo "deploy/dashboard-queries.txt is out of date: run deploy/check.sh --write" >&2
    exit 1
fi
echo "dashboard: $(printf '%s\n' "$list" | wc -l) queries in deploy/dashboard-queries.txt"
