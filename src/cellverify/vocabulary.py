"""The vocabularies of the configurations: activations, initializers,
optimizers, tasks, data sources, the layers a dropout may follow, the words
of a boolean.  Each is a ``StrEnum`` (the CLI's choices and the validation
read them); the tuples beside them are their values, as configurations hold
them.  No TensorFlow.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVATIONS",
    "ADAPTIVE_OPTIMIZERS",
    "BOOLEAN_WORDS",
    "DATA_SOURCES",
    "DROPOUT_LAYERS",
    "GRADIENT_SCALED_OPTIMIZERS",
    "INITIALIZERS",
    "INITIALIZER_CLASSES",
    "OPTIMIZERS",
    "OPTIMIZER_CLASSES",
    "OWN_TASKS",
    "PORTFOLIO_TASKS",
    "SEQUENCE_TASKS",
    "TASKS",
    "Activation",
    "DataSource",
    "Initializer",
    "Optimizer",
    "TaskName",
    "know_task_name",
    "task_names",
]


#: Activation names accepted for ``activation`` and ``output_activation``,
#: simplest first (linear, smooth, then the piecewise-linear ReLU family):
#: Hypothesis shrinks towards the first, so a falsifying case keeps only the
#: activation it needs.  ``leaky_relu`` has negative slope 0.2 (Keras's
#: default, and the slope measured in docs/design.md).
class Activation(StrEnum):
    LINEAR = "linear"
    TANH = "tanh"
    ELU = "elu"
    SELU = "selu"
    LEAKY_RELU = "leaky_relu"
    RELU = "relu"


ACTIVATIONS: tuple[str, ...] = tuple(a.value for a in Activation)


#: Kernel initializers: name -> (Keras class, its arguments besides the seed),
#: simplest first as above.  ``small_normal`` is N(0, 0.01²), the "small
#: random init" people try first when He init misbehaves.
class Initializer(StrEnum):
    GLOROT_UNIFORM = "glorot_uniform"
    GLOROT_NORMAL = "glorot_normal"
    LECUN_NORMAL = "lecun_normal"
    HE_UNIFORM = "he_uniform"
    HE_NORMAL = "he_normal"
    ORTHOGONAL = "orthogonal"
    SMALL_NORMAL = "small_normal"


INITIALIZER_CLASSES: dict[str, tuple[str, dict[str, float]]] = {
    Initializer.GLOROT_UNIFORM.value: ("GlorotUniform", {}),
    Initializer.GLOROT_NORMAL.value: ("GlorotNormal", {}),
    Initializer.LECUN_NORMAL.value: ("LecunNormal", {}),
    Initializer.HE_UNIFORM.value: ("HeUniform", {}),
    Initializer.HE_NORMAL.value: ("HeNormal", {}),
    Initializer.ORTHOGONAL.value: ("Orthogonal", {}),
    Initializer.SMALL_NORMAL.value: ("RandomNormal", {"mean": 0.0, "stddev": 0.01}),
}
INITIALIZERS: tuple[str, ...] = tuple(i.value for i in Initializer)


#: Optimizers: name -> Keras class, with Keras's defaults but for the rate.
class Optimizer(StrEnum):
    ADAM = "adam"
    NADAM = "nadam"
    ADAMW = "adamw"
    ADAMAX = "adamax"
    RMSPROP = "rmsprop"
    ADAGRAD = "adagrad"
    SGD = "sgd"


OPTIMIZER_CLASSES: dict[str, str] = {
    Optimizer.ADAM.value: "Adam",
    Optimizer.NADAM.value: "Nadam",
    Optimizer.ADAMW.value: "AdamW",
    Optimizer.ADAMAX.value: "Adamax",
    Optimizer.RMSPROP.value: "RMSprop",
    Optimizer.ADAGRAD.value: "Adagrad",
    Optimizer.SGD.value: "SGD",
}
OPTIMIZERS: tuple[str, ...] = tuple(o.value for o in Optimizer)
#: Optimizers whose step scales with the gradient (a tiny gradient: a tiny
#: step); the others step by about the learning rate whatever its scale.
GRADIENT_SCALED_OPTIMIZERS: tuple[str, ...] = (Optimizer.ADAGRAD.value, Optimizer.SGD.value)
ADAPTIVE_OPTIMIZERS: tuple[str, ...] = tuple(
    name for name in OPTIMIZERS if name not in GRADIENT_SCALED_OPTIMIZERS
)


class TaskName(StrEnum):
    """The training tasks: the portfolio contract's EIIE portfolio loss and
    supervised cross-entropy over the assets; any other cell's regression
    through a read-out the kit adds (a real output) and cross-entropy to a
    target distribution (a simplex one) (docs/design.md, "Tasks")."""

    PORTFOLIO = "portfolio"
    SUPERVISED = "supervised"
    REGRESSION = "regression"
    DISTRIBUTION = "distribution"


PORTFOLIO_TASKS: tuple[str, ...] = (TaskName.PORTFOLIO.value, TaskName.SUPERVISED.value)


class DataSource(StrEnum):
    """Named data sources besides a path: the synthetic market and the S&P 500 sample."""

    SYNTHETIC = "synthetic"
    SP500 = "sp500"


DATA_SOURCES: tuple[str, ...] = tuple(d.value for d in DataSource)
SEQUENCE_TASKS: tuple[str, ...] = (TaskName.REGRESSION.value, TaskName.DISTRIBUTION.value)
#: Every built-in training task.
TASKS: tuple[str, ...] = PORTFOLIO_TASKS + SEQUENCE_TASKS

#: Tasks that specs brought (``CellSpec(task=...)``), by name: the task
#: vocabulary a user extends.  A spec registers its task when it is made, so
#: every process that imports the spec (a worker, a printed reproduction)
#: knows the name a configuration carries (docs/design.md, "Tasks").
OWN_TASKS: dict[str, object] = {}


def know_task_name(name: str) -> None:
    """Let configurations here carry ``name``: a spec's own task that the
    workers define (they import the spec) and this process, which never
    imports the cell, knows by name only."""
    if name not in TASKS:
        OWN_TASKS.setdefault(name, None)


def task_names() -> tuple[str, ...]:
    """Every task a configuration may name: the built-in ones, then the
    specs' own."""
    return TASKS + tuple(OWN_TASKS)


#: The convs a dropout layer may follow (``dropout_after``), by number.
DROPOUT_LAYERS: tuple[int, ...] = (1, 2, 3)

#: Spellings of a boolean accepted on the command line and in grids.
BOOLEAN_WORDS: dict[str, bool] = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}
