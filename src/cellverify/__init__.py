"""cellverify: find out why a Keras recurrent cell trains badly, and keep it fixed.

The configuration layer (:class:`CellConfig`, :class:`TrainConfig`, presets,
errors) imports without TensorFlow; names that need TensorFlow are imported on
first use, so ``import cellverify`` and ``cellverify --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import (
    INIT_REGION,
    LEARNABLE_REGION,
    REGIONS,
    ROBUST_REGION,
    WHOLE_SPACE,
    Region,
)
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.registry import Invariant, fail, invariant
from cellverify.config import (
    AS_ASKED,
    PGPORTFOLIO,
    PRESETS,
    REMEDIED,
    CellConfig,
    Preset,
    TrainConfig,
    preset,
)
from cellverify.contracts import Contract, OutputKind, Params
from cellverify.data.inputs import InputSpec
from cellverify.data.tasks import DistributionTask, RegressionTask, Task
from cellverify.errors import (
    BadCellFactory,
    CellVerifyError,
    CheckCrashed,
    InvalidConfig,
    InvariantViolation,
)
from cellverify.spec import CellSpec, spec_from_class
from cellverify.trace import Trace

if TYPE_CHECKING:
    from cellverify.checks.judges.invariants import INVARIANTS
    from cellverify.checks.mutants.kill_matrix import kill_matrix
    from cellverify.checks.mutants.mutation import Mutant
    from cellverify.checks.runs.testing import CellInvariants
    from cellverify.data.market import Batch, Market, batch_for, synthetic_market
    from cellverify.diagnosis import diagnose
    from cellverify.experiments.verify import diagnose_and_verify
    from cellverify.model.cell import ConvRNNCell, conv_rnn_cell
    from cellverify.model.fast import FastConvRNN
    from cellverify.model.rnn import build_model, cross_entropy_loss, portfolio_loss
    from cellverify.training.trainer import Trainer, train

__version__ = "0.1.0"

# name -> module, for the names that import TensorFlow or Keras.
_LAZY: dict[str, str] = {
    "ConvRNNCell": "cellverify.model.cell",
    "conv_rnn_cell": "cellverify.model.cell",
    "Batch": "cellverify.data",
    "Market": "cellverify.data",
    "batch_for": "cellverify.data",
    "synthetic_market": "cellverify.data",
    "diagnose": "cellverify.diagnosis",
    "diagnose_and_verify": "cellverify.experiments.verify",
    "FastConvRNN": "cellverify.model.fast",
    "INVARIANTS": "cellverify.checks.judges.invariants",
    "CellInvariants": "cellverify.checks.runs.testing",
    "Mutant": "cellverify.checks.mutants.mutation",
    "kill_matrix": "cellverify.checks.mutants.kill_matrix",
    "build_model": "cellverify.model",
    "cross_entropy_loss": "cellverify.model",
    "portfolio_loss": "cellverify.model",
    "Trainer": "cellverify.training.trainer",
    "train": "cellverify.training.trainer",
}

__all__ = [
    "AS_ASKED",
    "INIT_REGION",
    "INVARIANTS",
    "LEARNABLE_REGION",
    "PGPORTFOLIO",
    "PRESETS",
    "REGIONS",
    "REMEDIED",
    "ROBUST_REGION",
    "WHOLE_SPACE",
    "BadCellFactory",
    "Batch",
    "Case",
    "CellConfig",
    "CellInvariants",
    "CellSpec",
    "CellVerifyError",
    "CheckCrashed",
    "Contract",
    "ConvRNNCell",
    "DistributionTask",
    "FastConvRNN",
    "InputSpec",
    "InvalidConfig",
    "Invariant",
    "InvariantViolation",
    "Market",
    "Mutant",
    "OutputKind",
    "Params",
    "Preset",
    "Region",
    "RegressionTask",
    "Task",
    "Trace",
    "TrainConfig",
    "Trainer",
    "batch_for",
    "build_model",
    "check",
    "conv_rnn_cell",
    "cross_entropy_loss",
    "diagnose",
    "diagnose_and_verify",
    "fail",
    "invariant",
    "kill_matrix",
    "portfolio_loss",
    "preset",
    "spec_from_class",
    "synthetic_market",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellverify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
