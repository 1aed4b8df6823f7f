"""Turn a pytest-benchmark JSON into the tables of docs/performance.md.

    pytest benchmarks --benchmark-only --benchmark-json bench.json
    python -m benchmarks.summarize bench.json > docs/performance-tables.md

Ratios are of medians from the same run: to the floor (the step's FLOPs at
the rate the machine reaches on conv2's matmul alone) and to the reference
LSTM in the same mode.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"group": b["group"], "name": b["name"], "info": b["extra_info"], "stats": b["stats"]}
        for b in data["benchmarks"]
    ]


def _floor_rates(rows: list[dict[str, Any]]) -> dict[str, float]:
    """FLOP/s of the floor matmul per shape name."""
    rates = {}
    for r in rows:
        if r["group"].startswith("floor"):
            shape = r["name"].split("[")[1].split("-")[0]
            rates[shape] = r["info"]["flops"] / r["stats"]["median"]
    return rates


def main(path: str) -> int:
    with open(path) as f:
        data = json.load(f)
    rows = _rows(data)
    rates = _floor_rates(rows)
    machine = data["machine_info"]
    print(
        f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"{machine.get('cpu_count')} cores; TensorFlow {machine['tensorflow']['version']}; "
        f"devices {[d['name'] for d in machine['devices'] if d['available']]}.\n"
    )
    for shape, rate in rates.items():
        print(f"- attainable rate, conv2's matmul at the {shape} shape: {rate / 1e9:.1f} GFLOP/s")
    print()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    for group, members in groups.items():
        if group.startswith("floor"):
            continue
        lstm = {
            (m["info"].get("mode"), m["info"].get("shape")): m["stats"]["median"]
            for m in members
            if m["info"].get("impl") == "lstm"
        }
        print(f"### {group}\n")
        print("| benchmark | median ms | IQR ms | x floor | x LSTM |")
        print("|---|---|---|---|---|")
        for m in sorted(members, key=lambda m: m["stats"]["median"]):
            info, stats = m["info"], m["stats"]
            shape = info.get("shape", "question")
            flops = info.get("flops")
            floor = flops / rates[shape] if flops and shape in rates else None
            ref = lstm.get((info.get("mode"), info.get("shape")))
            median = stats["median"]
            to_floor = "-" if floor is None else f"{median / floor:.1f}"
            to_lstm = "-" if ref is None or info.get("impl") == "lstm" else f"{median / ref:.1f}"
            label = m["name"].split("[", 1)[1].rstrip("]")
            print(f"| {label} | {_ms(median)} | {_ms(stats['iqr'])} | {to_floor} | {to_lstm} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
