"""A test case: the configurations and inputs one invariant check runs on.

Plain data (no TensorFlow), so that a falsifying case can be printed, saved as
JSON and pasted into a test.  ``cell`` is a :class:`~cellverify.CellConfig`
for the portfolio contract, or the :class:`~cellverify.contracts.Params` of a
:class:`~cellverify.CellSpec`'s cell; the batch is price windows for the one,
sequences of input vectors for the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params, cell_from_dict
from cellverify.data.inputs import InputSpec
from cellverify.data.market import batch_from_spec
from cellverify.data.sequences import SequenceBatch, sequence_batch

__all__ = ["Case", "SequenceBatch", "portfolio_config"]


@dataclass(frozen=True)
class Case:
    """Cell and training configurations, and a description of the input windows."""

    cell: CellConfig | Params
    train: TrainConfig
    inputs: InputSpec = field(default_factory=InputSpec)

    def batch(self) -> Any:
        """The batch the inputs describe: a :class:`~cellverify.data.Batch`
        of price windows, or a :class:`~cellverify.data.sequences.SequenceBatch`."""
        if isinstance(self.cell, Params):
            return sequence_batch(self.cell, self.train, self.inputs)
        return batch_from_spec(self.cell, self.train, self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell.to_dict(),
            "train": self.train.to_dict(),
            "inputs": self.inputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        cell = data["cell"]
        return cls(
            cell_from_dict(cell),
            TrainConfig.from_dict(data["train"]),
            InputSpec(**data.get("inputs", {})),
        )

    def to_python(self) -> str:
        """Source that rebuilds this case, to paste into a regression test."""
        kind = "Params" if isinstance(self.cell, Params) else "CellConfig"
        return (
            f"Case(cell={kind}.from_dict({self.cell.to_dict()!r}), "
            f"train=TrainConfig.from_dict({self.train.to_dict()!r}), "
            f"inputs=InputSpec(**{self.inputs.to_dict()!r}))"
        )


def portfolio_config(case: Case) -> CellConfig:
    """``case.cell`` where it must be the portfolio contract's configuration."""
    if not isinstance(case.cell, CellConfig):
        raise TypeError(
            "a portfolio case's cell is a CellConfig. "
            f"Received: {type(case.cell).__name__} (a spec'd cell's Params)"
        )
    return case.cell
