"""How far back can a vanilla RNN, an LSTM and a GRU remember? The lag task, at equal budget.

`lag_accuracy` trains one small many-to-one model per (cell, lag) on the lag task
(`rnn_toolkit.data.lag_task_batches`: a symbol at step 0, `lag` distractor steps, then
name the symbol) and scores it on held-out sequences. Every model gets the same budget:
the same units, optimizer, learning rate, gradient clipping, number of steps, batch size
and seed; only the cell differs (so do the parameter counts, which are reported: an LSTM
has four times a vanilla RNN's recurrent weights, a GRU three times).

What the initialisation does, measured by `benchmarks/gradient_flow_and_lag.py` (the
defaults below, 4 symbols, 4 distractors, chance 0.25; mean held-out accuracy over
seeds 0-2, and how many of the 3 runs reached 0.9):

    model                        T = 10     T = 40     T = 120    T = 200
    vanilla RNN (Keras)          1.00 3/3   1.00 3/3   0.25 0/3   0.24 0/3
    LSTM, gate_bias=3            1.00 3/3   1.00 3/3   0.76 2/3   0.43 0/3
    GRU, gate_bias=3             1.00 3/3   1.00 3/3   1.00 3/3   0.92 2/3
    LSTM, Keras (forget 1)       1.00 3/3   0.52 0/3   0.25 0/3   0.26 0/3
    GRU, Keras (update 0)        1.00 3/3   0.25 0/3   0.24 0/3   0.25 0/3

Every cell starts from Keras' initialisation, whose orthogonal recurrent kernel already
lets a vanilla RNN carry a gradient over tens of steps. The lecture's point (the vanilla
RNN at chance beyond some lag while the gated cells still learn) shows when the gates
start where they remember (`gate_bias=3`, the default: an LSTM's forget gate and a
GRU's update gate keep sigmoid(3) = 95% of the state per step). With Keras' own gate
biases (`gate_bias=None`: forget gate sigmoid(1) = 73%, update gate 50%) the gated
cells' gradient back to the symbol vanishes faster than the orthogonal vanilla RNN's
(see `gradient_flow.gradient_ratio_sweep`), and at this budget they reach shorter lags
than it does.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.lag_task import lag_task_batches
from rnn_toolkit.inspection.gradient_flow import (
    RecordTable,
    StepHistory,
    build_recurrent_classifier,
    model_state_gradient_norms,
    set_gru_update_bias,
    set_lstm_forget_bias,
)
from rnn_toolkit.layers.recurrent_stack import CELL_TYPES

_SET_GATE_BIAS = {"lstm": set_lstm_forget_bias, "gru": set_gru_update_bias}


def lag_accuracy(
    cells=("rnn", "lstm", "gru"),
    lags=(10, 40, 120),
    *,
    units=32,
    steps=500,
    batch_size=32,
    learning_rate=3e-3,
    clip_norm=1.0,
    gate_bias=3.0,
    num_symbols=4,
    num_distractors=4,
    train_examples=4096,
    validation_examples=512,
    seed=0,
    verbose=0,
):
    """Held-out accuracy on the lag task per cell and lag, every model on the same budget.

    For each lag, every cell trains on the same sequences in the same order
    (`lag_task_batches(lag, seed=seed)`): each model starts from `keras.utils.
    set_random_seed(seed)` (this sets the global Python, NumPy and TensorFlow seeds),
    trains with Adam for exactly `steps` steps of `batch_size` sequences, and is scored on
    all `validation_examples` held-out sequences. The defaults took 44 s on two idle
    CPU cores (9 models).

    Args:
        cells: cell types, of `"rnn"`, `"lstm"`, `"gru"`.
        lags: the lags T (steps between the symbol and the read-out).
        units: hidden units of every model.
        steps: training steps of every model.
        batch_size: sequences per step.
        learning_rate: Adam's learning rate.
        clip_norm: global gradient-norm clipping threshold of every model (None: off).
        gate_bias: the initial bias of the LSTM's forget gate and of the GRU's update
            gate (`set_lstm_forget_bias`, `set_gru_update_bias`), or None for Keras'
            (1 and 0). The vanilla RNN has no gate: it keeps Keras' initialisation
            either way.
        num_symbols: symbols to remember (chance accuracy is `1 / num_symbols`).
        num_distractors: distractor symbols (0: blank steps).
        train_examples: training sequences per lag (the steps cycle over them).
        validation_examples: held-out sequences per lag.
        seed: fixes the data, the initial weights and the training order.
        verbose: 1 prints each record as it is measured.

    Returns:
        A `RecordTable` (a list of dicts that prints as a table), one record per cell and
        lag: `cell`, `lag`, `accuracy` (held out), `loss` (held out), `train_accuracy`
        (mean over the last tenth of the steps), `ratio_h` (the trained model's
        `||dL/dh_0|| / ||dL/dh_T||` for its cross-entropy on the first held-out batch,
        `T = lag + 1`, see `model_state_gradient_norms`), `ratio_c` (the same for an
        LSTM's cell state, else None), `chance`, `parameters`
        (trainable), `gate_bias` (None for the vanilla RNN), `seed`, `steps`, `seconds`
        (wall time of the training).

    Raises:
        ValueError: for an unknown cell, or a lag or size that is not a positive integer.

    Example:

    >>> from rnn_toolkit.inspection import lag_accuracy
    >>> table = lag_accuracy(cells=("gru",), lags=(2,), units=4, steps=2, batch_size=8,
    ...                      train_examples=16, validation_examples=8)
    >>> [(record["cell"], record["lag"], record["chance"]) for record in table]
    [('gru', 2, 0.25)]
    """
    cells = [_check_cell(cell) for cell in cells]
    lags = [check_positive_int("lag", lag) for lag in lags]
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    table = RecordTable(columns=(
        "cell", "gate_bias", "lag", "accuracy", "train_accuracy", "loss", "ratio_h", "ratio_c", "parameters",
        "seconds",
    ))
    for lag in lags:
        for cell in cells:
            # Every cell must see the same batches: a new pipeline each (each iterator
            # of one dataset object would draw a new order), created after the global
            # seed is set (TensorFlow combines it with the shuffle's own seed).
            keras.utils.set_random_seed(seed)
            train, validation = lag_task_batches(
                lag, num_symbols=num_symbols, num_distractors=num_distractors,
                train_examples=train_examples, validation_examples=validation_examples,
                batch_size=batch_size, seed=seed,
            )
            model = build_recurrent_classifier(
                num_symbols + num_distractors, num_symbols, cell=cell, units=units,
                learning_rate=learning_rate, clip_norm=clip_norm,
            )
            if gate_bias is not None and cell in _SET_GATE_BIAS:
                _SET_GATE_BIAS[cell](model.recurrent, gate_bias)
            recorder = StepHistory()
            started = time.perf_counter()
            model.fit(train.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[recorder])
            seconds = time.perf_counter() - started
            scores = model.evaluate(validation, verbose=0, return_dict=True)
            inputs, targets = next(iter(validation))
            norms = model_state_gradient_norms(model, inputs, targets, encoder=_as_float32)
            record = {
                "cell": cell,
                "lag": lag,
                "accuracy": float(scores["accuracy"]),
                "train_accuracy": float(np.mean(recorder.history["accuracy"][-max(steps // 10, 1):])),
                "loss": float(scores["loss"]),
                "ratio_h": float(norms["h"][0] / norms["h"][-1]),
                "ratio_c": float(norms["c"][0] / norms["c"][-1]) if "c" in norms else None,
                "chance": 1.0 / num_symbols,
                # Trainable weights only: the clipping threshold is a variable too.
                "parameters": int(sum(np.prod(weight.shape) for weight in model.trainable_weights)),
                "gate_bias": None if gate_bias is None or cell == "rnn" else float(gate_bias),
                "seed": seed,
                "steps": steps,
                "seconds": seconds,
            }
            table.append(record)
            if verbose:
                print(RecordTable([record], table.columns).__str__().splitlines()[-1], flush=True)
    return table


def _as_float32(inputs):
    return tf.cast(inputs, tf.float32)


def _check_cell(cell):
    if not isinstance(cell, str) or cell.lower() not in CELL_TYPES:
        raise ValueError(f"Each cell must be one of {CELL_TYPES}; received {cell!r}.")
    return cell.lower()
