"""The distinct finding groups one results file has and another lacks.

    .venv/bin/python bench/compare_groups.py WIDER.json NARROWER.json

A group is (impl, quantity, wrt, dtype, class, regime of inputs): what a finding
stands for. Prints how many groups each file has, how many of the wider file's the
narrower lacks (those in cells it did not run, and those in cells it ran, by
framework and class), and the (impl, class) pairs and (impl, quantity, wrt, class)
kinds that the narrower file lacks entirely: what a profile leaves to a wider one.
"""

from __future__ import annotations

import json
import sys
from collections import Counter


def _key(q) -> str:
    return q if isinstance(q, str) else json.dumps(q, sort_keys=True)


def load(path: str) -> tuple[dict, set]:
    try:
        r = json.loads(open(path).read())
    except (OSError, ValueError) as e:
        sys.exit(f"compare_groups: cannot read {path}: {e}")
    groups = {
        (f["impl"], _key(f["quantity"]), f.get("wrt"), f["dtype"], f["class"],
         json.dumps(f["group"], sort_keys=True)): f
        for f in r["findings"]
    }  # fmt: skip
    cells = {(c["impl"], c["dtype"], _key(c["quantity"]), c.get("wrt")) for c in r["cells"]}
    return groups, cells


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    wide, _ = load(sys.argv[1])
    narrow, ran = load(sys.argv[2])
    print(f"{sys.argv[1]}: {len(wide)} groups; {sys.argv[2]}: {len(narrow)} groups")
    missing = [k for k in wide if k not in narrow]
    in_ran = [k for k in missing if (k[0], k[3], k[1], k[2]) in ran]
    print(f"{len(missing)} groups missing: {len(missing) - len(in_ran)} in cells not run, "
          f"{len(in_ran)} in cells run")  # fmt: skip
    by = Counter((k[0].split(":")[0], k[4]) for k in in_ran)
    print(
        "  in cells run, by framework and class:",
        ", ".join(f"{a} {b} {n}" for (a, b), n in by.most_common()),
    )
    kinds = {(k[0], k[1], k[2], k[4]) for k in wide} - {(k[0], k[1], k[2], k[4]) for k in narrow}
    print(f"{len(kinds)} (impl, quantity, wrt, class) kinds missing:")
    for k in sorted(kinds, key=str):
        print("  ", *[x for x in k if x is not None])
    pairs = {(k[0], k[4]) for k in wide} - {(k[0], k[4]) for k in narrow}
    print(
        f"{len(pairs)} (impl, class) pairs missing:",
        ", ".join(f"{a} {b}" for a, b in sorted(pairs)),
    )


if __name__ == "__main__":
    main()
