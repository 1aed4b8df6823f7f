"""The package's layers, in the order the data flows: no import cycle, no
module importing a higher layer, and no TensorFlow below the model or in the
rendering.  Imports inside functions count: they are how a module defers
TensorFlow, not a way around the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cellverify"

#: Lowest first.  A module may import its own layer and those before it.
LAYERS: dict[str, tuple[str, ...]] = {
    "ground": ("errors", "vocabulary", "config", "contracts", "trace", "cli.codes",
               "cli.interrupt"),
    "spec": ("spec",),
    "data": ("data.prices", "data.inputs", "data.tasks", "data.market", "data.sequences",
             "data.stream", "data"),
    "model": ("model.cell", "model.fast", "model.factory", "model.rnn", "model.flops", "model"),
    "execution": ("execution",),
    "training": ("training.devices", "training.compiled", "training.notices", "training.probe",
                 "training.steps", "training.trainer", "training.runs", "training"),
    "checks.cases": ("checks.cases.case", "checks.cases.regions", "checks.cases.sizes",
                     "checks.cases"),
    "checks.judges": ("checks.judges.numerics.tolerances", "checks.judges.numerics.gradcheck",
                      "checks.judges.numerics.precision", "checks.judges.numerics",
                      "checks.judges.registry", "checks.judges.invariants.harness",
                      "checks.judges.invariants.structure", "checks.judges.invariants.gradients",
                      "checks.judges.invariants.learning", "checks.judges.invariants.equivalence",
                      "checks.judges.invariants.initial", "checks.judges.invariants.mixed",
                      "checks.judges.invariants", "checks.judges.catalog", "checks.judges"),
    "checks.draws": ("checks.draws.profiles", "checks.draws.strategies", "checks.draws.coverage",
                     "checks.draws.covering_cases", "checks.draws.spec_strategies",
                     "checks.draws.spec_space", "checks.draws.space", "checks.draws"),
    "checks.runs": ("checks.runs.crashes", "checks.runs.reproduction", "checks.runs.results",
                    "checks.runs.search", "checks.runs.suite", "checks.runs.testing",
                    "checks.runs"),
    "checks.mutants": ("checks.mutants.base", "checks.mutants.wiring", "checks.mutants.gradients",
                       "checks.mutants.reproducibility", "checks.mutants.precision",
                       "checks.mutants.sequence", "checks.mutants.mutation",
                       "checks.mutants.kill_matrix", "checks.mutants", "checks"),
    "diagnosis": ("diagnosis.outcome", "diagnosis.findings", "diagnosis.detectors",
                  "diagnosis.causes", "diagnosis.verdict", "diagnosis.diagnose", "diagnosis"),
    "monitor": ("monitor.probes", "monitor.tensorboard", "monitor.recording", "monitor.reporting",
                "monitor.callback", "monitor"),
    "experiments": ("experiments.checkpoint", "experiments.merge", "experiments.verify",
                    "experiments.sweep",
                    "experiments"),
    "render": ("render.report", "render.plots", "render.outputs", "render"),
    "tools": (
        "tools.labelled",
        "tools.tables",
        "tools.calibrate",
        "tools.measure_region",
        "tools",
    ),
    "cli": ("cli.progress", "cli", "cli.__main__", "cli.check", "cli.options", "cli.train"),
    "faces": ("cell", "case", "prices", "testing", "mutation", "keras", "calibrate",
              "pytest_plugin"),
}  # fmt: skip
#: The package's face re-exports from every layer (lazily), as chex's does.
FACE = ""
#: Layers that never import TensorFlow or Keras, directly or through others.
NO_TENSORFLOW = ("ground", "data", "render")


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        names[".".join(p for p in parts if p != "__init__")] = path
    return names


def _imports(path: Path) -> set[str]:
    """Every module named in an import anywhere in the file (top level or in a
    function): ``cellverify.x`` as ``x``; others as ``:package`` (so that the
    keras package is not the kit's ``cellverify.keras``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {
        name.removeprefix("cellverify.")
        if name.startswith("cellverify.")
        else f":{name.split('.')[0]}"
        for name in found
        if name != "cellverify"
    }


MODULES = _module_names()
GRAPH = {name: _imports(path) & set(MODULES) - {name} for name, path in MODULES.items()}
LAYER_OF = {module: i for i, modules in enumerate(LAYERS.values()) for module in modules}


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(LAYER_OF) - {FACE}) == []
    assert sorted(set(LAYER_OF) - set(MODULES)) == []  # no stale entry


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} ({layer_name(module)}) imports {target} ({layer_name(target)})"
        for module, targets in GRAPH.items()
        if module != FACE
        for target in sorted(targets)
        if LAYER_OF[target] > LAYER_OF[module]
    ]
    assert upward == []


def layer_name(module: str) -> str:
    return list(LAYERS)[LAYER_OF[module]]


def _cycle_from(start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for target in GRAPH[module]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_cycle_passes_through(module):
    assert _cycle_from(module) is None


def _reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for target in GRAPH[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


@pytest.mark.parametrize("module", [m for layer in NO_TENSORFLOW for m in LAYERS[layer]])
def test_ground_and_rendering_never_import_tensorflow(module):
    reached = {module, *_reachable(module)}
    third_party = set().union(*(_imports(MODULES[m]) - set(MODULES) for m in reached))
    assert third_party.isdisjoint({":tensorflow", ":keras"}), sorted(reached)


def test_the_layering_check_finds_an_upward_import_and_a_cycle(monkeypatch):
    """The checks above can fail: an edge from the config to the CLI is both."""
    monkeypatch.setitem(GRAPH, "config", GRAPH["config"] | {"cli"})
    with pytest.raises(AssertionError):
        test_no_module_imports_a_higher_layer()
    assert _cycle_from("config") is not None


def test_the_package_face_and_the_light_modules_import_no_tensorflow():
    """What the graph above cannot see: importing ``cellverify.model.factory``
    runs ``cellverify/model/__init__`` first.  So import them for real, in a
    fresh interpreter (``cellverify --help`` stays fast)."""
    import subprocess
    import sys

    light = [
        "cellverify",
        "cellverify.model.factory",
        "cellverify.model.flops",
        "cellverify.checks.judges.registry",
        "cellverify.render.report",
        "cellverify.diagnosis",
    ]
    code = (
        f"import sys\nfor m in {light!r}: __import__(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'keras')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
