"""Render traces and results as text tables.  No TensorFlow here: only plain data in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cellverify.diagnosis.outcome import count_outcomes
from cellverify.trace import ACTIVATION_LAYERS, Trace

__all__ = [
    "format_table",
    "render_check",
    "render_coverage",
    "render_diagnosis",
    "render_kill_matrix",
    "render_sweep",
    "render_trace_comparison",
]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned table with a rule under the header."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(x: float) -> str:
    if np.isnan(x):
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.2e}"


def _checkpoints(steps: int) -> list[int]:
    marks = {0, 1, 2, 3, steps // 4, steps // 2, steps}
    return sorted(m for m in marks if 0 <= m <= steps)


def render_trace_comparison(traces: Mapping[str, Trace]) -> str:
    """Side-by-side summary of several traces at a few steps, then their outcomes."""
    names = list(traces)
    steps = min(t.steps for t in traces.values())
    rows: list[list[str]] = []
    for k in _checkpoints(steps):
        row = [str(k)]
        for name in names:
            t = traces[name]
            zero = "ZERO" if t.gradient_is_zero(k) else _fmt(float(np.linalg.norm(t.grad_norm[k])))
            row += [_fmt(float(t.loss[k])), zero, _fmt(float(t.uniform_rows[k]))]
        rows.append(row)
    header = ["step"]
    for name in names:
        header += [f"{name} loss", f"{name} |grad|", f"{name} uniform rows"]
    outcome_rows = []
    for name in names:
        t = traces[name]
        first = t.first_zero_gradient_step()
        dead = ", ".join(
            f"{layer} {_fmt(float(t.dead_fraction[0, i]))}"
            for i, layer in enumerate(ACTIVATION_LAYERS)
        )
        outcome_rows.append(
            [
                name,
                "never" if first is None else f"step {first}",
                f"{_fmt(t.eval_loss[0])} -> {_fmt(t.eval_loss[1])}",
                _fmt(t.uniform_loss),
                _fmt(t.reference_loss),
                dead,
            ]
        )
    outcome = format_table(
        ["run", "gradient exactly 0", "eval loss", "uniform", "reference", "dead at init"],
        outcome_rows,
    )
    return format_table(header, rows) + "\n\n" + outcome


def render_check(report: Mapping[str, Any]) -> str:
    """The ``cellverify check`` table, then each failure's minimal case and message.

    ``report`` is the JSON form of a suite result (docs/design.md, "The check
    report"), so this module needs nothing but plain data.  A pinned value
    outside an invariant's claimed region is flagged in the last column.
    """
    rows = [
        [
            r["name"],
            r["status"],
            r["examples"],
            f"{r['seconds']:.1f}s",
            r.get("region", ""),
            _outside(r.get("outside_region", [])),
        ]
        for r in report["invariants"]
    ]
    pinned = report.get("pinned") or {}
    lines = [
        f"cell: {report['cell']}   profile: {report['profile']}",
        *_spec_lines(report.get("spec")),
        *([f"pinned: {', '.join(f'{k}={v}' for k, v in pinned.items())}"] if pinned else []),
        "",
        format_table(["invariant", "status", "examples", "time", "claimed on", "pinned"], rows),
        *_coverage_lines(report["invariants"]),
    ]
    not_applicable = [r for r in report["invariants"] if r["status"] == "not_applicable"]
    if not_applicable:
        lines += [
            "",
            "not applicable to this cell (the claim needs a promise its contract does not make):",
        ]
        lines += [
            f"  {r['name']}: {r['message'].removeprefix('not applicable: ')}"
            for r in not_applicable
        ]
    for r in report["invariants"]:
        if r["status"] in ("failed", "error"):
            lines += ["", f"{r['status'].upper()} {r['name']}: {r['message']}"]
            lines += _reproduction_lines(r)
    return "\n".join([*lines, "", _check_verdict(report)])


def _spec_lines(spec: Mapping[str, Any] | None) -> list[str]:
    """What a spec'd cell draws and promises, and what it left at default."""
    if not spec:
        return []
    drawn = "; ".join(f"{k} {v}" for k, v in spec["params"].items()) or "nothing"
    promises = spec["contract"]
    lines = [
        f"  spec {spec['name']}: draws {drawn}; features {spec['features']}",
        f"  contract: output {promises['output']}, state is output: "
        f"{promises['state_is_output']}, equivariant axis: {promises['equivariant_axis']}, "
        f"dropout rates: {', '.join(promises['dropout']) or 'none'}"
        + (f"; trains on task {spec['task']}" if spec.get("task") else ""),
    ]
    left = spec.get("left_at_default") or {}
    if left:
        lines.append(f"  left at default: {', '.join(f'{k}={v}' for k, v in left.items())}")
    return lines


def _reproduction_lines(result: Mapping[str, Any]) -> list[str]:
    """The failure's reproduction, a pytest file to paste; else, where the
    factory has no import path, the minimal case alone."""
    source = result.get("reproduction")
    if source:
        return [
            "  minimal falsifying case (paste into a test), as a pytest file that reproduces it:",
            *(f"    {line}".rstrip() for line in source.splitlines()),
        ]
    case = result.get("falsifying")
    if case is None:
        return []
    return [
        "  minimal falsifying case (paste into a test):",
        f"    Case(cell=CellConfig.from_dict({case['cell']!r}),",
        f"         train=TrainConfig.from_dict({case['train']!r}),",
        f"         inputs=InputSpec(**{case['inputs']!r}))",
    ]


def render_coverage(coverage: Mapping[str, Any]) -> tuple[str, str]:
    """``inputs 6/6 · activation 3/3 · ...`` (values reached of those claimed,
    MISSING ones named), and the values left out, with why (may be empty)."""
    reached, left = [], []
    for name, d in coverage["dimensions"].items():
        got = len(d["values"]) - len(d["missing"])
        missing = f" (MISSING {', '.join(d['missing'])})" if d["missing"] else ""
        reached.append(f"{name} {got}/{len(d['values'])}{missing}")
        by_reason: dict[str, list[str]] = {}
        for value, why in d["left_out"].items():
            by_reason.setdefault(why, []).append(value)
        left += [f"{name} {', '.join(v)} ({why})" for why, v in by_reason.items()]
    return " · ".join(reached), "; ".join(left)


def _coverage_lines(invariants: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each invariant's examples covered, and what its claim left out."""
    ran = [r for r in invariants if r.get("coverage")]
    if not ran:
        return []
    width = max(len(r["name"]) for r in ran)
    lines = ["", "coverage (values reached / values claimed; left out of the claim, with why):"]
    for r in ran:
        reached, left = render_coverage(r["coverage"])
        lines.append(f"  {r['name']:{width}s}  {reached}")
        if left:
            lines.append(f"  {'':{width}s}  left out: {left}")
    return lines


def _outside(fields: Sequence[str]) -> str:
    return f"OUTSIDE the region: {', '.join(fields)}" if fields else ""


def _check_verdict(report: Mapping[str, Any]) -> str:
    statuses = [r["status"] for r in report["invariants"]]
    errors = [r["name"] for r in report["invariants"] if r["status"] == "error"]
    if errors:
        return f"the search could not be completed for {', '.join(errors)}: no verdict"
    if "failed" in statuses:
        return "some invariants FAILED"
    if "passed" not in statuses:
        return "nothing was checked"
    return "all invariants hold"


def render_kill_matrix(report: Mapping[str, Any]) -> str:
    """The mutation matrix: ``X`` caught, ``.`` held, ``E`` crashed, ``-``
    not applicable to the mutant's contract; ``*`` marks the invariants a
    mutant was written to break."""
    names = report["invariants"]
    marks = {"killed": "X", "survived": ".", "crashed": "E", "not_applicable": "-"}
    width = max(len(m["name"]) for m in report["mutants"])
    lines = ["invariants: " + ", ".join(f"{i}={n}" for i, n in enumerate(names))]
    lines.append(f"{'mutant':{width}s} " + " ".join(f"{i:>2d}" for i in range(len(names))))
    for m in report["mutants"]:
        cells = [marks[m["cells"][n]] + ("*" if n in m["targets"] else " ") for n in names]
        lines.append(f"{m['name']:{width}s} " + " ".join(f"{c:>2s}" for c in cells))
    lines += _clause_lines(report.get("clauses", []))
    if report["unkilled"]:
        lines.append(f"caught by no mutant (not tested): {', '.join(report['unkilled'])}")
    for mutant, invariant in report["escaped"]:
        lines.append(f"{mutant} escaped {invariant}, the invariant it was written to break")
    for mutant, invariant, aim, fired in report.get("misfired", []):
        lines.append(f"{mutant} was caught by {invariant}.{fired or '?'}, not by {aim}")
    for invariant, clause in report.get("untested_clauses", []):
        lines.append(f"{invariant}.{clause} fired on no mutant (not tested)")
    if report["complete"]:
        lines.append(
            "every invariant and every clause of it is caught by some mutant, "
            "and every mutant by the clauses it targets"
        )
    return "\n".join(lines)


def _clause_lines(clauses: Sequence[Mapping[str, Any]]) -> list[str]:
    """The matrix by clause: each clause and the mutants it caught."""
    if not clauses:
        return []
    width = max(len(f"{c['invariant']}.{c['clause']}") for c in clauses)
    lines = ["", "by clause (the mutants each clause caught):"]
    for c in clauses:
        name = f"{c['invariant']}.{c['clause']}"
        lines.append(f"  {name:{width}s}  {', '.join(c['mutants']) or 'NONE'}")
    return lines


def _steps_to_death(outcomes: Sequence[Mapping[str, Any]]) -> str:
    steps = count_outcomes(outcomes).death_steps
    if not steps:
        return ""
    return f" (step of death: median {int(np.median(steps))}, range {min(steps)}-{max(steps)})"


def _verdict_lines(d: Mapping[str, Any]) -> list[str]:
    verdict = d["verdict"]
    states = verdict["seeds"]
    per_seed = ", ".join(f"{seed} {state}" for seed, state in states.items())
    return [f"verdict: {verdict['name'].upper()} - {verdict['reason']}", f"  seeds: {per_seed}"]


def _finding_lines(d: Mapping[str, Any]) -> list[str]:
    if not d["findings"]:
        return ["no symptom on any seed"]
    lines = ["findings:"]
    lines += [f"  {f['severity']:8s} {f['name']:24s} {f['message']}" for f in d["findings"]]
    if d["causes"]:
        lines += ["", "likely causes:"]
        lines += [
            f"  {c['name']} ({', '.join(c['findings'])}): {c['explanation']}" for c in d["causes"]
        ]
    return lines


def _remedy_lines(remedies: Sequence[Mapping[str, Any]], n: int) -> list[str]:
    rows = [
        [
            r["remedy"]["name"],
            f"{r['before']['verdict']} -> {r['after']['verdict']}",
            f"{r['before']['learned']} -> {r['after']['learned']}",
            f"{r['before']['died']} -> {r['after']['died']}",
            "yes" if r["verified"] else "no",
            ", ".join(r["remaining_findings"]) or "none",
        ]
        for r in remedies
    ]
    header = ["remedy", "verdict", "learned", "died", "verified", "findings left"]
    return ["", f"remedies, re-run on the same {n} seeds:", format_table(header, rows)]


def _cell_line(c: Mapping[str, Any]) -> str:
    """The diagnosed configuration: a spec's keywords and input size, or the
    portfolio cell's fields."""
    if "params" in c:
        own = ", ".join(f"{k}={v!r}" for k, v in sorted(c["params"].items()))
        return f"cell: {own or 'its defaults'}; {c['features']} input features"
    return (
        f"cell: kernels {c['kernels']}, {c['activation']} convs, {c['output_activation']} last "
        f"conv, {c['initializer']}, {c['assets']}x{c['window']}x{c['features']}, dropout "
        f"{c['dropout']} after {c['dropout_after'] or 'none'}, cash bias {c['cash_bias']}"
    )


def render_diagnosis(report: Mapping[str, Any]) -> str:
    """The ``cellverify diagnose`` report: the verdict first, then outcomes,
    findings by severity, causes and verified remedies."""
    d = report["diagnosis"]
    outcomes = d["outcomes"]
    count = count_outcomes(outcomes)
    n, learned, died = count.runs, count.learned, count.died
    c, t = d["cell"], d["train"]
    lines = [
        *_verdict_lines(d),
        "",
        _cell_line(c),
        f"run:  {t['optimizer']} lr {t['learning_rate']:g}, {t['task']} task, batch "
        f"{t['batch_size']} x {t['steps']} steps, {t['train_steps']} updates, seeds {d['seeds']}",
        "",
        f"outcome: learned on {learned}/{n} seeds, died on {died}/{n}{_steps_to_death(outcomes)}",
        "",
        *_finding_lines(d),
    ]
    if report.get("remedies"):
        lines += _remedy_lines(report["remedies"], n)
    return "\n".join(lines)


def render_sweep(report: Mapping[str, Any]) -> str:
    """One row per grid point: P(learns) with its 95 % Wilson interval, P(dies), when."""
    names = list(report["grid"])
    rows = []
    for p in report["points"]:
        low, high = p["learned_ci"]
        death = p["median_death_step"]
        rows.append(
            [
                *(str(p["values"][n]) for n in names),
                f"{p['learned']}/{p['runs']}",
                f"{p['learned_rate']:.2f} [{low:.2f}, {high:.2f}]",
                f"{p['died_rate']:.2f}",
                "-" if death is None else f"{death:g}",
            ]
        )
    header = [*names, "learned", "P(learns) [95% CI]", "P(dies)", "median death step"]
    return "\n".join([format_table(header, rows), *_incomplete(report)])


def _incomplete(report: Mapping[str, Any]) -> list[str]:
    """A line saying what a merge lacks, if anything (older reports say nothing)."""
    missing = report.get("runs_missing", 0)
    if not missing:
        return []
    held = report["runs_expected"] - missing
    where = (
        f"shards not merged: {', '.join(report['shards_missing'])}"
        if report.get("shards_missing")
        else "a shard not merged, or a sweep stopped early (run it again with its --checkpoint)"
    )
    expected = report["runs_expected"]
    runs = "run" if expected == 1 else "runs"
    return [f"incomplete: {held} of the sweep's {expected} {runs}; {where}"]
