"""An invariant and a mutant of a user's own, registered the public way;
imported by ``--invariants tests.user_invariants``."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

import cellverify
from cellverify.cell import ConvRNNCell
from cellverify.mutation import Mutant, mutant_factory, register_mutant


@cellverify.invariant(adversarial_inputs=True)
def long_only(factory, case):
    """No portfolio weight is negative: the cell never sells short."""
    rnn = keras.layers.RNN(factory(case.cell), return_sequences=True)
    weights = np.asarray(rnn(case.batch().inputs))
    if (weights < 0).any():
        cellverify.fail(f"a weight of {weights.min():.3g} is negative in {list(weights.shape)}")


class ShortSelling(ConvRNNCell):
    """Shifts every weight down by 1/outputs: still sums to 0, not 1, and goes short."""

    def portfolio(self, logits):
        return ops.softmax(logits, axis=-1) - 1.0 / logits.shape[-1]


register_mutant(Mutant("ShortSelling", mutant_factory(ShortSelling), kills=("long_only",)))
