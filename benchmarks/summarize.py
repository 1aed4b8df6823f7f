"""Turn a pytest-benchmark JSON into the tables of docs/performance.md.

    pytest benchmarks --benchmark-only --benchmark-json bench.json
    python -m benchmarks.summarize bench.json > docs/performance-tables.md

Ratios are of medians from the same run: to the floor (the step's FLOPs at
the rate the machine reaches on conv2's matmul alone) and to the reference
LSTM in the same mode.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from typing import Any

from cellverify.model.flops import LayerWork


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


def _median(rows: list[dict[str, Any]], name: str) -> float:
    return next(r["stats"]["median"] for r in rows if r["name"] == name)


def roofline(rows: list[dict[str, Any]]) -> None:
    """The roofline table: each layer's floor at the matmul rate and at the
    bandwidth of a conv1-sized stream, against its time alone; every time
    alone (the matmul's and the streams' too) less one ``tf.function`` call's
    fixed cost.  The step is set against the sum of the floors."""
    layers = [r for r in rows if r["name"].startswith("test_layer[")]
    names = {r["name"] for r in rows}
    if not layers or "test_floor_matmul[question-cpu]" not in names:
        return
    dispatch = _median(rows, "test_dispatch[cpu]")
    matmul = next(r for r in rows if r["name"] == "test_floor_matmul[question-cpu]")
    rate = matmul["info"]["flops"] / (matmul["stats"]["median"] - dispatch)
    bandwidth = {
        size: r["info"]["bytes"] / (r["stats"]["median"] - dispatch)
        for r in rows
        if r["name"].startswith("test_stream[")
        for size in [r["name"].split("[")[1].rsplit("-", 1)[0]]
    }
    cache, dram = bandwidth["conv1-sized"], bandwidth["64MB"]
    print(f"- matmul rate (conv2's matmul alone): {rate / 1e9:.1f} GFLOP/s")
    print(f"- bandwidth: {cache / 1e9:.1f} GB/s conv1-sized, {dram / 1e9:.1f} GB/s at 64 MB")
    print(f"- one tf.function call's fixed cost: {dispatch * 1e3:.3f} ms\n")
    columns = ("layer", "direction", "MFLOP", "MB", "floor ms", "bound by", "DRAM floor ms")
    print("| " + " | ".join((*columns, "alone ms", "x floor")) + " |")
    print("|---" * (len(columns) + 2) + "|")
    floor = dram_floor = alone = 0.0
    for r in layers:
        f, d, a = _layer_row(r, rate, cache, dram, dispatch)
        floor, dram_floor, alone = floor + f, dram_floor + d, alone + a
    print(f"| **step** | | | | **{_ms(floor)}** | | {_ms(dram_floor)} | {_ms(alone)} | |\n")
    lstm = {
        m: _median(rows, f"test_train_step[lstm-question-{m}-cpu]") for m in ("function", "xla")
    }
    for impl in ("fast", "plain"):
        for mode in ("function", "xla"):
            name = f"test_train_step[{impl}-question-{mode}-cpu]"
            if not any(r["name"] == name for r in rows):
                continue
            step = _median(rows, name)
            print(
                f"- training step, {impl} path, {mode}: {_ms(step)} ms = {step / floor:.2f}x the "
                f"floor ({step / dram_floor:.2f}x at DRAM bandwidth), "
                f"{step / lstm[mode]:.2f}x the LSTM"
            )
    print()


def _layer_row(
    r: dict[str, Any], rate: float, cache: float, dram: float, dispatch: float
) -> tuple[float, float, float]:
    """Print one layer's row; return its floor, DRAM floor and time alone."""
    info = r["info"]
    work = LayerWork(info["layer"], info["direction"], info["flops"], info["bytes"])
    floor, dram_floor = work.floor_seconds(rate, cache), work.floor_seconds(rate, dram)
    compute, memory = work.flops / rate, work.bytes / cache
    alone = max(r["stats"]["median"] - dispatch, 0.0)
    bound = "FLOPs" if compute >= memory else "bytes"
    print(
        f"| {info['layer']} | {info['direction']} | {info['flops'] / 1e6:.2f} | "
        f"{info['bytes'] / 1e6:.2f} | {_ms(floor)} | {bound} | {_ms(dram_floor)} | "
        f"{_ms(alone)} | {alone / floor:.1f} |"
    )
    return floor, dram_floor, alone


def _spread(values: list[float]) -> str:
    """Median of per-round values, and their range."""
    ordered = sorted(values)
    return f"{statistics.median(ordered):.2f} ({ordered[0]:.2f}-{ordered[-1]:.2f})"


def in_turns(rows: list[dict[str, Any]]) -> None:
    """Ratios from timings taken in turns (benchmarks/test_in_turns.py)."""
    for r in rows:
        if r["name"].startswith("test_step_against_lstm_in_turns["):
            m = r["info"]["medians"]
            mode = r["name"].split("[")[1].rstrip("]")
            times = ", ".join(f"{impl} {_ms(statistics.median(t))} ms" for impl, t in m.items())
            ratio = _spread([x / y for x, y in zip(m["fast"], m["lstm"], strict=True)])
            print(f"- in turns, {mode}: {times}; fast / lstm per round {ratio}")
        if r["name"] == "test_step_against_its_roofline_in_turns":
            _roofline_in_turns(r["info"])
        if r["name"] == "test_diagnose_run_against_its_updates_in_turns":
            _run_in_turns(r["info"]["medians"])
        if r["name"] == "test_recording_parts_in_turns":
            _recording_in_turns(r["info"]["medians"])
    print()


def _round_rates(info: dict[str, Any], i: int) -> tuple[float, float]:
    """Round ``i``'s matmul rate and conv1-sized bandwidth, less a call's fixed cost."""
    m, fixed, size = info["medians"], info["medians"]["dispatch"][i], "conv1-sized"
    rate = info["matmul_flops"] / (m["matmul"][i] - fixed)
    return rate, info["stream_bytes"][size] / (m[f"stream {size}"][i] - fixed)


def _layer_floor(info: dict[str, Any], name: str, rates: tuple[float, float]) -> float:
    x = info["work"][name]
    return LayerWork(name, "", x["flops"], x["bytes"]).floor_seconds(*rates)


def _roofline_in_turns(info: dict[str, Any]) -> None:
    m, rounds = info["medians"], range(len(info["medians"]["step"]))
    rates = [_round_rates(info, i) for i in rounds]
    print(
        f"- in turns: matmul rate {statistics.median(r for r, _ in rates) / 1e9:.1f} GFLOP/s, "
        f"bandwidth {statistics.median(b for _, b in rates) / 1e9:.1f} GB/s (conv1-sized)"
    )
    floors = [sum(_layer_floor(info, name, rates[i]) for name in info["work"]) for i in rounds]
    ratios = [m["step"][i] / floors[i] for i in rounds]
    print(f"- in turns: fast step / its roofline floor per round {_spread(ratios)}")
    print("\n| layer, in turns | floor ms | alone ms | x floor per round |\n|---|---|---|---|")
    for name in info["work"]:
        floor = [_layer_floor(info, name, rates[i]) for i in rounds]
        alone = [m[name][i] - m["dispatch"][i] for i in rounds]
        ratios = [a / f for a, f in zip(alone, floor, strict=True)]
        print(
            f"| {name} | {_ms(statistics.median(floor))} | {_ms(statistics.median(alone))} | "
            f"{_spread(ratios)} |"
        )
    step = statistics.median(m["step"])
    print(f"| **step** | {_ms(statistics.median(floors))} | {_ms(step)} | |")


def _run_in_turns(m: dict[str, list[float]]) -> None:
    parts = ", ".join(
        f"{part} / bare {_spread([a / b for a, b in zip(m[part], m['bare'], strict=True)])}"
        for part in ("recorded", "probed", "run")
    )
    print(f"- in turns, a diagnose run: bare updates {statistics.median(m['bare']):.2f} s; {parts}")


def _recording_in_turns(m: dict[str, list[float]]) -> None:
    parts = ", ".join(
        f"{part} {_spread([a / b for a, b in zip(m[part], m['update'], strict=True)])}"
        for part in m
        if part != "update"
    )
    update = statistics.median(m["update"]) * 1e3
    print(f"- in turns, the recorded step / a bare update ({update:.2f} ms): {parts}")


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
    roofline(rows)
    in_turns(rows)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    for group, members in groups.items():
        if group.startswith(("floor", "roofline", "in turns")):
            continue
        lstm = {
            (m["info"].get("mode"), m["info"].get("shape")): m["stats"]["median"]
            for m in members
            if m["info"].get("impl") == "lstm"
        }
        print(f"### {group}\n")
        print("| benchmark | median ms | IQR ms | x FLOP floor | x LSTM |")
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
