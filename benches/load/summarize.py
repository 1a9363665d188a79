#!/usr/bin/env python3
"""benches/load.sh: medians (min-max) of the interleaved rounds, and ratios measured side by side."""
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    if "label" in kv:
        runs[(kv["label"], kv["mode"])].append(kv)


def med(label, mode, key):
    values = [float(r[key]) for r in runs.get((label, mode), []) if key in r]
    return (statistics.median(values), min(values), max(values)) if values else None


labels = [l for l in ["direct", "nginx", "douane-http", "douane-hyper", "douane-tls", "douane-fwd"] if (l, "load") in runs]
print(
    "| target | req/s median (min-max) | vs nginx | vs direct | p50 ms | p99 ms | c1 p50 ms | c1 p99 ms | c1 p99 added over direct ms "
    "| half-peak req/s (achieved) | half p50 ms | half p99 ms | half p99 added over direct ms "
    "| quietest-round half p99 added ms | errors |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
nginx = med("nginx", "load", "rps")
direct = med("direct", "load", "rps")
direct_c1_p99 = med("direct", "c1", "p99_us")
for label in labels:
    rps = med(label, "load", "rps")
    p50 = med(label, "load", "p50_us")
    p99 = med(label, "load", "p99_us")
    c50 = med(label, "c1", "p50_us")
    c99 = med(label, "c1", "p99_us")
    errors = sum(int(r.get("errors", 0)) for m in ("load", "c1", "half") for r in runs.get((label, m), []))
    added = (c99[0] - direct_c1_p99[0]) / 1000 if c99 and direct_c1_p99 else float("nan")
    # fixed rate (benches/load/rate) at half this target's peak; the upstream alone ran at the same
    # rate alongside (mode half-direct; for direct itself, the half run is its own baseline)
    h_rate = med(label, "half", "rate_target")
    h_done = med(label, "half", "rate_achieved")
    h50 = med(label, "half", "p50_ms")
    h99 = med(label, "half", "p99_ms")
    h_direct99 = med(label, "half-direct", "p99_ms") if label != "direct" else h99
    if h_rate and h_done and h50 and h99:
        half = f"{h_rate[0]:.0f} ({h_done[0]:.0f}) | {h50[0]:.3f} | {h99[0]:.3f} | "
        half += f"{h99[0] - h_direct99[0]:.3f}" if h_direct99 else "nan"
        # A shared machine's stalls reach p99 in whole rounds at a time: the lowest p99 of
        # each side across rounds is the least disturbed view of what the proxy adds.
        half += f" | {h99[1] - h_direct99[1]:.3f}" if h_direct99 else " | nan"
    else:
        half = "- | - | - | - | -"
    print(
        f"| {label} | {rps[0]:.0f} ({rps[1]:.0f}-{rps[2]:.0f}) | {rps[0] / nginx[0]:.2f} | {rps[0] / direct[0]:.2f} "
        f"| {p50[0] / 1000:.3f} | {p99[0] / 1000:.3f} | {c50[0] / 1000:.3f} | {c99[0] / 1000:.3f} | {added:.3f} | {half} | {errors} |"
    )
bulk_d = med("bulk-direct", "bulk", "bytes_per_s")
bulk_t = med("bulk-connect", "bulk", "bytes_per_s")
if bulk_d and bulk_t:
    print()
    print(
        f"100 MB body: direct {bulk_d[0] / 1e6:.0f} MB/s, through CONNECT {bulk_t[0] / 1e6:.0f} MB/s "
        f"({bulk_t[0] / bulk_d[0]:.2f} of direct; medians of {len(runs[('bulk-direct', 'bulk')])} transfers each)"
    )
start = med("memory", "start", "rss_kb")
idle = med("memory", "idle1000", "rss_kb")
if start and idle:
    print(f"resident memory: {start[0] / 1024:.1f} MiB after start, {idle[0] / 1024:.1f} MiB with 1,000 idle connections (after the load runs)")
