"""Train the question's cell with plain ``model.fit`` on real prices, watched
by cellverify's monitor.

    python examples/fit_with_monitor.py                 # S&P 500 (pip install 'cellverify[data]')
    python examples/fit_with_monitor.py --data my.csv   # or your own closes
    python examples/fit_with_monitor.py --epochs 1 --examples 640   # a short run

The cell is the 2018 question's: ReLU convs, a ReLU before the softmax,
He-normal init, trained with Adam at 1e-3 on the portfolio loss.  The monitor
prints each finding once, with the step it appeared at, and the verdict; it
says "will not learn" at the first probe whose evidence allows it (seed 4:
step 0, where the whole gradient is exactly 0 and every row uniform).

Whether a given seed dies depends on its initial weights and on the first
batches: on these S&P 500 windows seeds 4 and 6 are dead from step 0, while
seeds 0, 1, 3 and 8 were still alive after 16 steps (docs/question.md, "The question
on real prices", gives the rates over seeds).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from cellverify import AS_ASKED, ConvRNNCell
from cellverify.data import markets_for, sample_batch
from cellverify.keras import Monitor
from cellverify.model import keras_loss
from cellverify.prices import resolve_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="sp500", help="sp500 or a CSV of closes")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=6400, help="training sequences")
    parser.add_argument("--every", type=int, default=10, help="steps between probes")
    args = parser.parse_args()

    history = resolve_data(args.data)
    assets = min(AS_ASKED.cell.assets, history.assets)
    cell_config = AS_ASKED.cell.replace(assets=assets, features=1, seed=args.seed)
    train_config = AS_ASKED.train.replace(data=args.data, seed=args.seed)
    print(f"{history.source}: {assets} of {history.assets} assets, {history.periods} days")

    # Windows of 100 days, each divided by its latest close, in sequences of 4
    # steps; the targets are the next day's price relatives.
    train_market, _ = markets_for(cell_config, train_config)
    rng = np.random.default_rng(args.seed)
    data = sample_batch(
        train_market, window=cell_config.window, steps=train_config.steps,
        batch_size=args.examples, features=1, rng=rng,
    )  # fmt: skip

    keras.utils.set_random_seed(args.seed)
    inputs = keras.Input((train_config.steps, assets, cell_config.window, 1))
    outputs = keras.layers.RNN(ConvRNNCell(cell_config), return_sequences=True)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras_loss("portfolio"))

    monitor = Monitor(every=args.every, print_fn=print)
    model.fit(
        data.inputs, data.relatives, batch_size=train_config.batch_size,
        epochs=args.epochs, callbacks=[monitor], verbose=0,
    )  # fmt: skip
    died = monitor.trace().first_zero_gradient_step()
    if died is None:
        print("the gradient stayed alive")
    else:
        print("the whole gradient became exactly 0 at step", died, "and stayed there")


if __name__ == "__main__":
    main()
