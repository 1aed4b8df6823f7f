"""``CellSpec``: the contract of a cell under test, and the space its own
parameters are drawn from (docs/design.md, "Any Keras recurrent cell").

A spec names a factory called with the cell's own keyword parameters,
strategies for those parameters, the size of one step's input, and the
output's contract::

    GRU = CellSpec(
        factory=keras.layers.GRUCell,
        params={"units": st.integers(1, 16), "activation": ["tanh", "elu"]},
        features=st.integers(1, 6),
        output="real",
    )

A list is shorthand for ``st.sampled_from``.  A bare cell class gets a spec
derived from its constructor's signature (:func:`spec_from_class`).  The kit
seeds what it builds: Keras's global seed right before each build, and the
``seed`` keyword too when the factory takes one (Keras's own cells take it
for dropout only, and draw their initial weights from the global seed).

No TensorFlow at import: Keras is imported when a cell is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import find
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from cellverify.contracts import (
    MAX_FEATURES,
    PORTFOLIO_PROMISES,
    Contract,
    OutputKind,
    Params,
    adopt_task,
)
from cellverify.errors import InvalidConfig
from cellverify.vocabulary import TASKS

__all__ = [
    "DERIVED_ACTIVATIONS",
    "DERIVED_DROPOUT",
    "DERIVED_GATE_ACTIVATIONS",
    "DERIVED_INITIALIZERS",
    "DERIVED_UNITS",
    "CellSpec",
    "Domain",
    "contract_of",
    "domain_of",
    "simplest",
    "spec_from_class",
]

#: The most features a spec draws by default: small shapes, as the portfolio
#: cell's strategies draw (docs/design.md, "Cost of an example").
DEFAULT_FEATURES = st.integers(1, 6)


@dataclass(frozen=True)
class Domain:
    """What the gate can say it covered of one parameter: its listed values
    (``choices``), the two ends of a range (``low``, ``high``), or nothing
    (``opaque``: drawn from a strategy it cannot see into)."""

    name: str
    choices: tuple[Any, ...] = ()
    low: Any = None
    high: Any = None

    @property
    def opaque(self) -> bool:
        return not self.choices and self.low is None

    def values(self) -> tuple[Any, ...]:
        """The values a search must reach: each choice, or both ends."""
        if self.choices:
            return self.choices
        if self.low is None:
            return ()
        return (self.low,) if self.low == self.high else (self.low, self.high)


def _inner(strategy: SearchStrategy[Any]) -> Any:
    # Hypothesis wraps most strategies lazily; the wrapped one knows its bounds.
    try:
        return strategy.wrapped_strategy  # type: ignore[attr-defined]
    except AttributeError:
        return strategy


def domain_of(name: str, strategy: SearchStrategy[Any]) -> Domain:
    """The :class:`Domain` a strategy draws from, as far as it can be seen."""
    inner = _inner(strategy)
    kind = type(inner).__name__
    if kind in ("SampledFromStrategy", "JustStrategy"):
        return Domain(name, choices=tuple(getattr(inner, "elements", ())))
    if kind == "BooleansStrategy":
        return Domain(name, choices=(False, True))
    if kind == "IntegersStrategy" and inner.start is not None and inner.end is not None:
        return Domain(name, low=inner.start, high=inner.end)
    if kind == "FloatStrategy":
        low, high = inner.min_value, inner.max_value
        if low is not None and high is not None and low > -float("inf") and high < float("inf"):
            return Domain(name, low=low, high=high)
    return Domain(name)


def simplest(strategy: SearchStrategy[Any]) -> Any:
    """The simplest value a strategy draws (Hypothesis's own shrink target)."""
    return find(strategy, lambda _: True)


def _defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The factory's keyword defaults (none when its signature cannot be read)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in signature.parameters.values() if p.default is not p.empty}


def _as_strategy(owner: str, name: str, value: Any) -> SearchStrategy[Any]:
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
        return st.sampled_from(list(value))
    allowed = "a Hypothesis strategy, or a non-empty list of values"
    raise InvalidConfig(owner, f"params[{name!r}]", allowed, value)


#: What a Keras layer's ``**kwargs`` may carry besides its named keywords
#: (``keras.layers.Layer`` refuses anything else).
_LAYER_EXTRA_KEYWORDS = frozenset(
    {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights"}
)


def _keywords(factory: Callable[..., Any]) -> tuple[set[str], bool] | None:
    """The factory's keyword names and whether it takes any other keyword;
    None when its signature cannot be read.  A Keras layer class's
    ``**kwargs`` end at ``keras.layers.Layer``, which refuses what it does
    not know: its keywords are the named ones along the classes up to it."""
    if isinstance(factory, type) and _is_keras_layer(factory):
        names: set[str] = set(_LAYER_EXTRA_KEYWORDS)
        for cls in factory.__mro__:
            init = cls.__dict__.get("__init__")
            if init is not None:
                names |= _keywords_of(init)[0] - {"self"}
            if _is_layer_base(cls):
                return names, False
    return _keywords_of(factory)


def _keywords_of(function: Callable[..., Any]) -> tuple[set[str], bool]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return set(), True
    names = {
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return names, open_ended


def _is_layer_base(cls: type) -> bool:
    return cls.__name__ == "Layer" and cls.__module__.startswith("keras")


def _is_keras_layer(cls: type) -> bool:
    return any(_is_layer_base(base) for base in cls.__mro__)


@dataclass(frozen=True)
class CellSpec:
    """The contract of a cell under test (module doc).

    ``factory`` is called with the cell's keyword parameters and returns a
    Keras RNN cell; ``params`` maps each keyword the kit draws to a
    strategy (or a list of values); ``features`` is the size of one step's
    input (an int, or a strategy); ``output`` is ``"real"`` or
    ``"simplex"``.  ``state_is_output``: the state passed on is the output
    (a portfolio fed back, say); ``equivariant_axis``: an axis of one step's
    input the cell must be equivariant over; ``dropout``: the parameters
    that are dropout rates (default: those named ``*dropout``); ``task``:
    what it trains on: a built-in task's name, or a task of its own (an
    instance of a :class:`cellverify.Task` subclass with a name and a loss;
    default: the output's own, ``regression`` or ``distribution``).
    ``name`` names it in reports.
    """

    factory: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    features: int | SearchStrategy[int] = DEFAULT_FEATURES
    output: OutputKind | str = OutputKind.REAL
    state_is_output: bool = False
    equivariant_axis: int | None = None
    dropout: tuple[str, ...] | None = None
    task: str | Any | None = None
    name: str = ""
    #: For a spec derived from a class (:func:`spec_from_class`): the
    #: constructor's parameters left at their defaults, and their values.
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "CellSpec"
        if not callable(self.factory):
            raise InvalidConfig(
                owner, "factory", "a callable returning a Keras RNN cell", self.factory
            )
        strategies = {k: _as_strategy(owner, k, v) for k, v in dict(self.params).items()}
        object.__setattr__(self, "params", strategies)
        self._check_keywords(strategies)
        try:
            object.__setattr__(self, "output", OutputKind(self.output))
        except ValueError:
            allowed = f"one of {', '.join(k.value for k in OutputKind)}"
            raise InvalidConfig(owner, "output", allowed, self.output) from None
        self._check_features()
        adopt_task(owner, self.task)
        self._check_task_fits_output()
        if self.dropout is None:
            rates = tuple(k for k in strategies if k.endswith("dropout"))
            object.__setattr__(self, "dropout", rates)
        if not self.name:
            name = getattr(self.factory, "__qualname__", None) or repr(self.factory)
            object.__setattr__(self, "name", name)

    def _check_keywords(self, strategies: Mapping[str, Any]) -> None:
        found = _keywords(self.factory)
        if found is None:
            return
        names, open_ended = found
        unknown = sorted(k for k in strategies if k not in names)
        if unknown and not open_ended:
            allowed = f"keywords of {self.factory!r} ({', '.join(sorted(names))})"
            raise InvalidConfig("CellSpec", "params", allowed, unknown[0])

    def _check_task_fits_output(self) -> None:
        # A built-in task is the one of its output kind; the portfolio
        # tasks need market batches a spec's cell does not read.
        own = self.output_task
        if isinstance(self.task, str) and self.task in TASKS and self.task != own:
            allowed = f"{own} for a {self.output} output, or a task of the spec's own"
            raise InvalidConfig("CellSpec", "task", allowed, self.task)

    def _check_features(self) -> None:
        f = self.features
        if isinstance(f, SearchStrategy):
            return
        if not (isinstance(f, int) and not isinstance(f, bool) and 1 <= f <= MAX_FEATURES):
            allowed = f"an integer in [1, {MAX_FEATURES}] or a strategy of them"
            raise InvalidConfig("CellSpec", "features", allowed, f)

    @property
    def contract(self) -> Contract:
        """What the cell promises (:class:`cellverify.contracts.Contract`)."""
        return Contract(
            output=OutputKind(self.output),
            state_is_output=self.state_is_output,
            equivariant_axis=self.equivariant_axis,
            dropout=tuple(self.dropout or ()),
        )

    def keywords(self) -> set[str] | None:
        """The keywords the factory takes; None when any is (``**kwargs``,
        or a signature that cannot be read)."""
        found = _keywords(self.factory)
        if found is None or found[1]:
            return None
        return found[0] - {"seed"}

    @property
    def takes_seed(self) -> bool:
        """Whether the factory has a ``seed`` keyword (Keras's cells do)."""
        found = _keywords(self.factory)
        return found is not None and "seed" in found[0]

    def describe(self) -> dict[str, Any]:
        """The spec as plain data, for reports: its parameters and what is
        drawn for each, the input size, the contract, what was left at its
        default."""
        drawn = {name: _domain_text(d) for name, d in self.domains().items()}
        return {
            "name": self.name,
            "params": drawn,
            "features": _domain_text(domain_of("features", self.features_strategy())),
            "contract": self.contract.promises(),
            "task": self.training_task,
            "left_at_default": {k: repr(v) for k, v in self.defaults.items()},
        }

    def domains(self) -> dict[str, Domain]:
        """What can be said of each drawn parameter's values (:class:`Domain`)."""
        return {name: domain_of(name, s) for name, s in self.params.items()}

    @property
    def training_task(self) -> str:
        """The task it trains on: its own, else its output's (``regression``
        for a real output, ``distribution`` for a simplex)."""
        if isinstance(self.task, str):
            return self.task
        if self.task is not None:
            return str(self.task.name)
        return self.output_task

    @property
    def output_task(self) -> str:
        """The built-in task of its output kind: ``regression`` for a real
        output, ``distribution`` for a simplex."""
        return "distribution" if OutputKind(self.output) is OutputKind.SIMPLEX else "regression"

    def params_for(self, pinned: Mapping[str, Any], seed: int = 0) -> Params:
        """One configuration to train (``diagnose``, ``sweep``): the pinned
        keywords as given; every other keyword the spec draws at the
        factory's default when it has one, else at its simplest value; the
        input size pinned (``features``) or its simplest."""
        defaults = _defaults(self.factory)
        values = {
            name: simplest(strategy)
            for name, strategy in self.params.items()
            if name not in pinned and name not in defaults
        }
        values.update({k: v for k, v in pinned.items() if k != "features"})
        features = pinned.get("features") or simplest(self.features_strategy())
        return Params(values, int(features), seed)

    def features_strategy(self) -> SearchStrategy[int]:
        f = self.features
        return f if isinstance(f, SearchStrategy) else st.just(f)

    def build(self, params: Params) -> Any:
        """A fresh cell for ``params``, seeded (module doc)."""
        import keras

        kwargs = params.kwargs
        if self.takes_seed and "seed" not in kwargs:
            kwargs["seed"] = params.seed
        keras.utils.set_random_seed(params.seed)
        return self.factory(**kwargs)

    def __call__(self, params: Params) -> Any:
        """:meth:`build`: a spec is a factory of its own :class:`Params`."""
        return self.build(params)


#: Units drawn for a derived spec: small, as the gate's shapes are.
DERIVED_UNITS = st.integers(1, 8)
#: Activations drawn for a derived spec: Keras's smooth ones, saturating and
#: not (``relu`` is left out: a unit dead at birth has an exactly-zero
#: gradient, which ``gradients_nonzero`` would rightly report, so a spec
#: that wants it says so).
DERIVED_ACTIVATIONS = ("tanh", "sigmoid", "elu", "softsign", "linear")
#: Gate activations (``recurrent_activation``) drawn for a derived spec: a
#: gate is a share in [0, 1], so the sigmoids.
DERIVED_GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
#: Initializers drawn for a derived spec's kernels: Keras's usual ones (not
#: ``zeros``, whose units are all alike).  A bias initializer keeps its
#: default: ``orthogonal`` cannot shape a vector.
DERIVED_INITIALIZERS = ("glorot_uniform", "orthogonal", "he_normal", "lecun_normal")
#: Dropout rates drawn for a derived spec: none, and a rate that drops.
DERIVED_DROPOUT = (0.0, 0.3)


def _derived_strategy(name: str, default: Any) -> SearchStrategy[Any] | None:
    if name == "units":
        return DERIVED_UNITS
    if name == "recurrent_activation":
        return st.sampled_from(DERIVED_GATE_ACTIVATIONS)
    if name.endswith("activation"):
        return st.sampled_from(DERIVED_ACTIVATIONS)
    if name.endswith("initializer") and not name.startswith("bias") and isinstance(default, str):
        return st.sampled_from(DERIVED_INITIALIZERS)
    if name.endswith("dropout"):
        return st.sampled_from(DERIVED_DROPOUT)
    if isinstance(default, bool):
        return st.booleans()
    return None


def spec_from_class(cls: type[Any], **overrides: Any) -> tuple[CellSpec, dict[str, Any]]:
    """A spec for a cell class, derived from its constructor's signature and
    Keras's vocabularies, and what was left at its default (name: default).

    ``units`` -> small counts; ``*activation`` -> Keras activations (a
    gate's, sigmoids); kernels' ``*initializer`` -> Keras initializers;
    ``*dropout`` -> rates; boolean
    switches -> both values; ``seed`` is the kit's; the rest keep their
    defaults.  ``overrides`` are passed to :class:`CellSpec`."""
    signature = inspect.signature(cls)
    params: dict[str, SearchStrategy[Any]] = {}
    left: dict[str, Any] = {}
    for p in signature.parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name == "seed":
            continue
        default = None if p.default is p.empty else p.default
        strategy = _derived_strategy(p.name, default)
        if strategy is not None:
            params[p.name] = strategy
        elif p.default is p.empty:
            raise InvalidConfig(
                "spec_from_class",
                p.name,
                "a parameter the kit can draw (units, *activation, *initializer, *dropout, a "
                "boolean) or one with a default; write a CellSpec for this cell",
                f"{cls.__name__}({p.name}=<required>)",
            )
        else:
            left[p.name] = default
    spec = CellSpec(cls, params, **{"name": cls.__name__, "defaults": left, **overrides})
    return spec, left


def _domain_text(domain: Domain) -> str:
    if domain.choices:
        return ", ".join(map(str, domain.choices))
    if domain.low is not None:
        return f"{domain.low}..{domain.high}"
    return "drawn from its strategy"


def contract_of(factory: Any) -> Contract:
    """What the cells ``factory`` makes promise: a spec's contract, else the
    portfolio contract's (a ``factory(cell_config)``)."""
    return factory.contract if isinstance(factory, CellSpec) else PORTFOLIO_PROMISES
