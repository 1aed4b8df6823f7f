"""Compiled training steps, kept clear of a grappler rewrite that fails on them.

TensorFlow's grappler *remapper* fuses a convolution (or matmul), its bias
and its activation into one oneDNN kernel.  For ``LeakyRelu`` in a graph
that also takes its gradient it fails: ``LeakyReluGrad`` reads the
pre-activation (the ``BiasAdd``'s output) that the fusion removes, and
TensorFlow logs ``E ... meta_optimizer.cc] remapper failed: INVALID_ARGUMENT:
Mutation::Apply error: fanout '.../LeakyReluGrad' exist for missing node
'.../BiasAdd'`` at the first call, then runs the graph unfused.  Harmless,
but an error line on every run that trains a leaky-ReLU cell, which a user
reads as an error.

:func:`compile_step` traces the function first; when its graph (or any
function in its library: an RNN's loop bodies and their gradients) holds
such a gradient, every call runs with grappler's remapping off.  The graph
then runs exactly as it did after the failed rewrite (unfused), so the
numbers and the speed are those of before, without the error line; every
other graph keeps the remapper and its fusions (docs/design.md, "Compiled
steps").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow as tf

__all__ = ["UNFUSABLE_GRADIENTS", "compile_step", "remapping_off"]

#: Gradient ops that read an activation's input, which the remapper's fusion
#: of the forward op removes (TF 2.21: its rewrite fails on these).
UNFUSABLE_GRADIENTS = frozenset({"LeakyReluGrad"})


@contextlib.contextmanager
def remapping_off() -> Iterator[None]:
    """Grappler's remapper off for the functions called inside, on this thread."""
    before = tf.config.optimizer.get_experimental_options().get("remapping", True)
    tf.config.optimizer.set_experimental_options({"remapping": False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"remapping": before})


def _ops_of(concrete: Any) -> set[str]:
    graph_def = concrete.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


class _Step:
    """A ``tf.function`` that decides, at its first call, whether its graph
    must run without the remapper."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self._function = tf.function(fn, **options)
        self.unfusable: bool | None = None

    def __call__(self, *args: Any) -> Any:
        if self.unfusable is None:
            concrete = self._function.get_concrete_function(*args)
            self.unfusable = bool(_ops_of(concrete) & UNFUSABLE_GRADIENTS)
        if not self.unfusable:
            return self._function(*args)
        with remapping_off():
            return self._function(*args)

    def experimental_get_tracing_count(self) -> int:
        """How often the function was traced (``tf.function``'s own count)."""
        return int(self._function.experimental_get_tracing_count())


def compile_step(
    fn: Callable[..., Any],
    *,
    jit_compile: bool = False,
    autograph: bool = False,
    reduce_retracing: bool = False,
) -> Callable[..., Any]:
    """``fn`` as a ``tf.function`` (no AutoGraph by default, as Keras's own
    ``fit()`` compiles its step; XLA if ``jit_compile``), run without
    grappler's remapping where its graph would fail it."""
    options = {
        "jit_compile": jit_compile,
        "autograph": autograph,
        "reduce_retracing": reduce_retracing,
    }
    return _Step(fn, options)
