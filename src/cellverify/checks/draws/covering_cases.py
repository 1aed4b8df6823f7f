"""Covering cases: every value of every dimension, by construction, not by luck.

A derandomized search of 25 examples drawn from 7 initializers, 7 optimizers,
6 input variants... misses some of them by chance, and the gate then passes a
cell it never tried on constant prices.  :func:`covering_cases` builds, for
one invariant's claim, ``n`` cases (``n`` the largest number of values of any
dimension) in which dimension ``d`` takes its values in turn from an offset of
its own, so that every value of every dimension appears at least once and the
values of different dimensions meet in varied pairs.  Each size (shape,
kernel counts, batch, sequence length) and the learning rate take the two
ends of their range at two cases of their own and are drawn at the others;
the other fields (seeds) are drawn too, from the same ranges as
:mod:`cellverify.checks.draws.strategies`, by a generator seeded from the
invariant's search seed: the same cases on every run and machine.  They run
first, as Hypothesis's explicit examples; the random search follows.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import Region, rate_at
from cellverify.checks.cases.sizes import size_ranges
from cellverify.checks.draws.coverage import ENDED, Dimension, dimensions, with_label
from cellverify.checks.draws.strategies import CELL_FIELDS, MAX_SEED, TRAIN_FIELDS, check_pinned
from cellverify.config import CellConfig, TrainConfig
from cellverify.data.inputs import InputSpec
from cellverify.vocabulary import DROPOUT_LAYERS

__all__ = ["covering_cases"]


def covering_cases(
    *,
    region: Region,
    adversarial_inputs: bool,
    seed: int,
    pinned: Mapping[str, Any] | None = None,
    min_batch: int = 1,
) -> list[Case]:
    """Cases that together reach every value each dimension may take
    (:func:`cellverify.checks.draws.coverage.dimensions`), with ``pinned`` fields fixed."""
    pins = dict(pinned or {})
    check_pinned(pins)
    dims = dimensions(region, adversarial_inputs, pins, min_batch=min_batch)
    rng = random.Random(seed)
    n = max(len(d.values) for d in dims)
    offsets = [rng.randrange(n if d.name in ENDED else len(d.values)) for d in dims]
    labels = [_labels(dims, offsets, i, n) for i in range(n)]
    # The first case with dropout layers has one after every conv, so that a
    # cell broken by dropout at one place only is tried there by construction.
    every_layer = next((i for i, case in enumerate(labels) if case["dropout"] != "off"), None)
    return [
        _covering_case(region, case, pins, min_batch, rng, every_layer=i == every_layer)
        for i, case in enumerate(labels)
    ]


def _labels(dims: list[Dimension], offsets: list[int], i: int, n: int) -> dict[str, str]:
    """Case ``i``'s values: each categorical dimension's in turn; each ranged
    one's two ends at two cases of its own (from its offset), drawn at the
    others, so that the values between the ends and their mixes are drawn too."""
    labels = {}
    for d, o in zip(dims, offsets, strict=True):
        if d.name not in ENDED:
            labels[d.name] = d.values[(i + o) % len(d.values)]
        elif (i - o) % n < len(d.values):
            labels[d.name] = d.values[(i - o) % n]
    return labels


def _covering_case(
    region: Region,
    labels: Mapping[str, str],
    pins: Mapping[str, Any],
    min_batch: int,
    rng: random.Random,
    *,
    every_layer: bool = False,
) -> Case:
    case = _drawn_case(region, labels["optimizer"], pins, min_batch, rng)
    if labels["dropout"] != "off" and "dropout_after" not in pins:
        # Drawn even where replaced, so that the later cases' draws stay the same.
        drawn = tuple(sorted(rng.sample(DROPOUT_LAYERS, rng.randint(1, len(DROPOUT_LAYERS)))))
        layers = DROPOUT_LAYERS if every_layer else drawn
        case = Case(case.cell.replace(dropout_after=layers), case.train, case.inputs)
    for name, label in labels.items():
        case = with_label(case, name, label, region)
    return case


def _drawn_case(
    region: Region, optimizer: str, pins: Mapping[str, Any], min_batch: int, rng: random.Random
) -> Case:
    """A case whose non-categorical fields are drawn from the strategies'
    ranges (the pinned ones held), for ``optimizer``'s learning rates."""
    ranges = size_ranges(region, min_batch)
    cell = CellConfig(
        assets=rng.randint(*ranges["assets"]),
        window=rng.randint(*ranges["window"]),
        features=rng.randint(*ranges["features"]),
        kernels=(rng.randint(*ranges["k1"]), rng.randint(*ranges["k2"]), 1),
        seed=rng.randint(0, MAX_SEED),
    )
    train = TrainConfig(
        optimizer=optimizer,
        learning_rate=rate_at(region, optimizer, rng.random()),
        batch_size=rng.randint(*ranges["batch"]),
        steps=rng.randint(*ranges["steps"]),
        train_steps=0,
        seed=rng.randint(0, MAX_SEED),
    )
    cell = cell.replace(**{k: v for k, v in pins.items() if k in CELL_FIELDS})
    train = train.replace(**{k: v for k, v in pins.items() if k in TRAIN_FIELDS})
    return Case(cell, train, InputSpec(seed=rng.randint(0, MAX_SEED)))
