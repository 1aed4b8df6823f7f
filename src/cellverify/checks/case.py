"""A test case: the configurations and inputs one invariant check runs on.

Plain data (no TensorFlow), so that a falsifying case can be printed, saved as
JSON and pasted into a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellverify.config import CellConfig, TrainConfig
from cellverify.data.inputs import InputSpec
from cellverify.data.market import Batch, batch_from_spec

__all__ = ["Case"]


@dataclass(frozen=True)
class Case:
    """Cell and training configurations, and a description of the input windows."""

    cell: CellConfig
    train: TrainConfig
    inputs: InputSpec = field(default_factory=InputSpec)

    def batch(self) -> Batch:
        return batch_from_spec(self.cell, self.train, self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell.to_dict(),
            "train": self.train.to_dict(),
            "inputs": self.inputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        return cls(
            CellConfig.from_dict(data["cell"]),
            TrainConfig.from_dict(data["train"]),
            InputSpec(**data.get("inputs", {})),
        )

    def to_python(self) -> str:
        """Source that rebuilds this case, to paste into a regression test."""
        return (
            f"Case(cell=CellConfig.from_dict({self.cell.to_dict()!r}), "
            f"train=TrainConfig.from_dict({self.train.to_dict()!r}), "
            f"inputs=InputSpec(**{self.inputs.to_dict()!r}))"
        )
