#!/usr/bin/env python3
"""The allocation sites that grow with the requests, between two DHAT files.

    benches/allocs_sites.py FEW.json MANY.json REQUESTS

Each site is named by its first frames outside the standard library and the allocator;
printed: allocations and bytes per request, largest first (used by benches/allocs.sh).
"""
import collections
import json
import re
import sys

SKIP = re.compile(r"vgpreload|library/(std|alloc|core)/|raw_vec|bytes_mut\.rs|/vec/")


def sites(path):
    dump = json.load(open(path))
    frames = dump["ftbl"]
    blocks, nbytes = collections.Counter(), collections.Counter()
    for point in dump["pps"]:
        own = [re.sub(r"^0x[0-9A-Fa-f]+: ", "", frames[i]) for i in point["fs"]]
        own = [f[:140] for f in own if not SKIP.search(f)][:3]
        key = "\n      ".join(own)
        blocks[key] += point["tbk"]
        nbytes[key] += point["tb"]
    return blocks, nbytes


def main():
    few_path, many_path, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    few_blocks, few_bytes = sites(few_path)
    many_blocks, many_bytes = sites(many_path)
    grown = sorted(
        ((many_blocks[k] - few_blocks[k], many_bytes[k] - few_bytes[k], k) for k in many_blocks),
        reverse=True,
    )
    for blocks, nbytes, key in grown:
        if blocks / requests < 0.05:
            break
        print(f"{blocks / requests:5.2f} x {nbytes / max(blocks, 1):6.0f} B  {key}")


if __name__ == "__main__":
    main()
