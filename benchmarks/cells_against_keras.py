"""How exactly the cells written from their equations (`rnn_toolkit.cells`) reproduce the
Keras layers, and how exactly the NumPy min-char-rnn's hand-written gradients match
centered differences.

For each cell (`keras.layers.SimpleRNN`, `LSTM`, `GRU(reset_after=True)`,
`GRU(reset_after=False)`) and dtype (float32, float64): a Keras layer with its default
initial weights and random biases (N(0, 0.1), so that every bias matters), its weights
copied with `from_keras`, the same random inputs through both, and the gradients of one
scalar loss (every output and final state times a fixed random tensor) with respect to
the inputs and every weight (the equations' per-gate gradients fused back into Keras'
layout). Reported: the largest absolute difference in outputs, final states, input
gradients and weight gradients, and each divided by the largest absolute Keras value
(a relative error).

For the min-char-rnn (`MinCharRNN`, hidden 50, windows of 25 characters of a short
passage): `gradient_check` over every entry of every parameter, at the gist's initial
weights and after 300 training steps; both measures, the default one (difference
relative to the parameter's gradient scale) and the per-entry one (each entry relative
to itself, which the centered differences' ~1e-10 rounding noise dominates for entries
of ~1e-5).

No timing: the numbers do not depend on the machine's load. ~30 s on 2 cores.

Usage (from the repository root):

    .venv/bin/python benchmarks/cells_against_keras.py [--quick]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from rnn_toolkit.cells import GRU, LSTM, MinCharRNN, MinCharVocabulary, VanillaRNN, gradient_check  # noqa: E402

# (name, Keras layer class, options, equations class)
CELLS = [
    ("simple_rnn", keras.layers.SimpleRNN, {}, VanillaRNN),
    ("lstm", keras.layers.LSTM, {}, LSTM),
    ("gru_reset_after", keras.layers.GRU, {"reset_after": True}, GRU),
    ("gru_reset_before", keras.layers.GRU, {"reset_after": False}, GRU),
]
SIZES = dict(batch=8, time=50, features=32, units=64)
QUICK_SIZES = dict(batch=2, time=5, features=4, units=3)
MIN_CHAR = dict(hidden_size=50, seq_length=25, train_steps=300)
QUICK_MIN_CHAR = dict(hidden_size=6, seq_length=8, train_steps=20)
# The opening of Hamlet's soliloquy: a few hundred characters of ordinary English.
PASSAGE = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die - to sleep,\n"
    "No more; and by a sleep to say we end\n"
    "The heart-ache and the thousand natural shocks\n"
    "That flesh is heir to: 'tis a consummation\n"
    "Devoutly to be wish'd.\n"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, biases, inputs and loss weights")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/cells_against_keras.json)")
    return parser.parse_args(argv)


def _max_abs(tensors):
    return max(float(np.abs(np.asarray(t)).max()) for t in tensors)


def _differences(got, want):
    """Largest |got - want| over matching tensors, and that divided by the largest |want|."""
    largest = max(_max_abs([g - w]) for g, w in zip(got, want, strict=True))
    return {"max_abs": largest, "relative": largest / _max_abs(want)}


def compare_cell(layer_class, options, equations_class, dtype, sizes, seed):
    """The differences between a Keras layer and its equations: outputs, states, gradients."""
    batch, steps, features, units = (sizes[k] for k in ("batch", "time", "features", "units"))
    keras.utils.set_random_seed(seed)
    layer = layer_class(units, return_sequences=True, return_state=True, dtype=dtype, **options)
    layer.build((batch, steps, features))
    rng = np.random.default_rng(seed)
    layer.cell.bias.assign(rng.normal(scale=0.1, size=layer.cell.bias.shape))
    cell = equations_class.from_keras(layer)

    inputs = tf.constant(rng.normal(size=(batch, steps, features)), dtype)
    output_weights = tf.constant(rng.normal(size=(batch, steps, units)), dtype)
    state_weights = tf.constant(rng.normal(size=(batch, units)), dtype)

    def run_and_differentiate(run, weights):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs, states = run()
            loss = tf.reduce_sum(outputs * output_weights) + sum(tf.reduce_sum(s * state_weights) for s in states)
        input_gradient, weight_gradients = tape.gradient(loss, (inputs, weights))
        return outputs, states, input_gradient, weight_gradients

    def keras_run():
        outputs, *states = layer(inputs)
        return outputs, states

    def equations_run():
        outputs, final_state = cell.run(inputs)
        return outputs, tf.nest.flatten(final_state)

    want = run_and_differentiate(keras_run, [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias])
    got = run_and_differentiate(equations_run, cell.weights)
    return {
        "outputs": _differences([got[0]], [want[0]]),
        "final_states": _differences(got[1], want[1]),
        "input_gradient": _differences([got[2]], [want[2]]),
        "weight_gradients": _differences(cell.to_keras_weights(got[3]), want[3]),
    }


def min_char_gradient_checks(settings, seed):
    """`gradient_check` at the initial weights and after training, both measures."""
    vocabulary = MinCharVocabulary.from_text(PASSAGE)
    model = MinCharRNN(vocabulary, hidden_size=settings["hidden_size"], seed=seed)
    ids = vocabulary.encode(PASSAGE)
    length = settings["seq_length"]
    inputs, targets = ids[:length], ids[1 : length + 1]
    results = {}
    for when in ("initial", "trained"):
        if when == "trained":
            history = model.train(PASSAGE, steps=settings["train_steps"], seq_length=length)
            results["smoothed_loss_after_training"] = float(history[-1])
        results[when] = {
            "relative_to_parameter_scale": gradient_check(model, inputs, targets),
            "per_entry": gradient_check(model, inputs, targets, per_entry=True),
        }
    results["vocab_size"] = vocabulary.size
    return results


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    sizes = QUICK_SIZES if args.quick else SIZES
    min_char = QUICK_MIN_CHAR if args.quick else MIN_CHAR

    cells = {}
    for name, layer_class, options, equations_class in CELLS:
        for dtype in ("float32", "float64"):
            cells[f"{name}/{dtype}"] = compare_cell(layer_class, options, equations_class, dtype, sizes, args.seed)
    columns = ("outputs", "final_states", "input_gradient", "weight_gradients")
    support.print_table(
        f"From-scratch cells against Keras: largest |difference| (relative) at {sizes}",
        f"{'cell / dtype':<26}" + "".join(f"{c:>22}" for c in columns),
        [
            f"{name:<26}"
            + "".join(f"{r[c]['max_abs']:.1e} ({r[c]['relative']:.0e})".rjust(22) for c in columns)
            for name, r in cells.items()
        ],
    )

    checks = min_char_gradient_checks(min_char, args.seed)
    names = MinCharRNN.PARAMETER_NAMES
    support.print_table(
        f"min-char-rnn gradient check, every entry (hidden {min_char['hidden_size']}, "
        f"window {min_char['seq_length']}, vocabulary {checks['vocab_size']})",
        f"{'weights / measure':<36}" + "".join(f"{n:>10}" for n in names),
        [
            f"{when + ' / ' + measure:<36}" + "".join(f"{checks[when][measure][n]:>10.1e}" for n in names)
            for when in ("initial", "trained")
            for measure in ("relative_to_parameter_scale", "per_entry")
        ],
    )

    record = support.run_metadata("cells_against_keras", args, load_before, started=started)
    record["sizes"] = sizes
    record["min_char_rnn"] = min_char
    record["results"] = {"cells": cells, "min_char_rnn": checks}
    output = Path(args.output) if args.output else support.results_path("cells_against_keras", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
