"""Measures the pause between the last training step and the return of `fit`.

On TensorFlow 2.21 / Keras 3 some `model.fit(dataset)` calls paused for
seconds after their final step, while tf.data's autotuning was torn down.
This script runs many short `fit` calls on rnn_toolkit's character-window
pipelines and times, for each, the gap from the end of the final training
step (a callback's `on_train_batch_end`) to the moment `fit` returns.

Variants (interleaved in a shuffled order every round, so drift in machine
load affects all of them alike):

* `autotune`: tf.data's usual defaults: `map(num_parallel_calls=AUTOTUNE)`,
  `prefetch(AUTOTUNE)`, autotuning on.
* `fixed`: rnn_toolkit's pipeline: `prefetch(PREFETCH_BUFFER_SIZE)`,
  sequential map, `rnn_toolkit.data.pipeline_options()` (autotuning off).
* `autotune_off`: the `autotune` pipeline with only
  `options.autotune.enabled = False` added (diagnostic).
* `fixed_autotune_on`: the `fixed` buffer sizes with autotuning left on
  (diagnostic).

Usage (from the repository root):

    .venv/bin/python benchmarks/fit_end_stall.py --runs 40

It takes about 12 minutes with all four variants on a 2-core machine
(`--variants autotune,fixed,autotune_off,fixed_autotune_on`). The per-run
numbers are written as JSON (see `--output`); the table of a run on
TensorFlow 2.21.0 / Keras 3.15.1 is in `rnn_toolkit/data/dataset_options.py`.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import tensorflow as tf

import rnn_toolkit.data as data
from rnn_toolkit.data import dataset_options

VARIANTS = ("autotune", "fixed", "autotune_off", "fixed_autotune_on")


class FinalStepClock(keras.callbacks.Callback):
    """Records the time at which the last training step of `fit` ended."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self.last_step_end = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.steps - 1:
            self.last_step_end = time.perf_counter()


def build_dataset(variant, texts, vocabulary, args):
    """Returns the training dataset for one variant."""
    autotune = variant in ("autotune", "autotune_off")
    dataset = data.char_windows(
        texts,
        vocabulary,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        seed=args.seed,
        autotune=autotune,
    )
    if variant == "autotune_off":
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.with_options(options)
    elif variant == "fixed_autotune_on":
        options = tf.data.Options()
        options.autotune.enabled = True
        dataset = dataset.with_options(options)
    return dataset


def build_model(vocabulary_size, units):
    """A small character LSTM, enough to make each step cost something."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocabulary_size, 32),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.Dense(vocabulary_size),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def summarize(gaps):
    gaps = sorted(gaps)
    p90 = gaps[min(len(gaps) - 1, int(round(0.9 * (len(gaps) - 1))))]
    return {
        "count": len(gaps),
        "median_s": statistics.median(gaps),
        "p90_s": p90,
        "max_s": gaps[-1],
        "over_1s": sum(g > 1.0 for g in gaps),
        "over_0_1s": sum(g > 0.1 for g in gaps),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="timed fits per variant")
    parser.add_argument(
        "--variants", default="autotune,fixed",
        help=f"comma-separated subset of {','.join(VARIANTS)}",
    )
    parser.add_argument("--corpus", default="shakespeare", help="load_corpus source")
    parser.add_argument(
        "--chars", type=int, default=400_000,
        help="use this many characters of the corpus (keeps each fit short)",
    )
    parser.add_argument("--sequence-length", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=pathlib.Path, default=None,
        help="JSON file for the numbers (default: <cache>/benchmarks/fit_end_stall.json)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    variants = support.chosen_subset(args.variants, VARIANTS, "variants")

    corpus = support.load_char_corpus(args.corpus, max_chars=args.chars)
    datasets = {v: build_dataset(v, corpus.train_pieces, corpus.vocabulary, args) for v in variants}
    steps = {v: int(ds.cardinality()) for v, ds in datasets.items()}
    model = build_model(corpus.vocabulary.size, args.units)

    # One untimed fit per variant absorbs tracing and first-call costs.
    for variant in variants:
        model.fit(datasets[variant], epochs=1, verbose=0, shuffle=False)

    gaps = {v: [] for v in variants}
    fit_times = {v: [] for v in variants}
    for run, round_order in support.interleaved_rounds(variants, args.runs, args.seed):
        for variant in round_order:
            clock = FinalStepClock(steps[variant])
            start = time.perf_counter()
            model.fit(
                datasets[variant], epochs=args.epochs, verbose=0, shuffle=False, callbacks=[clock]
            )
            end = time.perf_counter()
            if clock.last_step_end is None:
                raise RuntimeError(f"{variant}: the final step ({steps[variant]}) never ran")
            gaps[variant].append(end - clock.last_step_end)
            fit_times[variant].append(end - start)
        print(
            f"round {run + 1}/{args.runs}: "
            + "  ".join(f"{v}={gaps[v][-1]:.3f}s" for v in variants),
            flush=True,
        )

    summary = {v: summarize(gaps[v]) for v in variants}
    support.print_table(
        f"gap from the last step's end to fit() returning; {args.runs} runs per variant, "
        f"{steps[variants[0]]} steps per fit",
        f"{'variant':<18} {'median':>8} {'p90':>8} {'max':>8} {'>0.1s':>6} {'>1s':>5} {'fit median':>11}",
        [
            f"{v:<18} {s['median_s']:>7.3f}s {s['p90_s']:>7.3f}s {s['max_s']:>7.3f}s "
            f"{s['over_0_1s']:>6} {s['over_1s']:>5} {statistics.median(fit_times[v]):>10.2f}s"
            for v, s in summary.items()
        ],
    )

    # The shared pieces, not `support.run_metadata`: this record keeps its own keys (no
    # benchmark name or load averages) and names the interpreter it ran with.
    record = {
        "command": support.command_line(os.path.basename(sys.executable)),
        **support.environment(),
        "arguments": support.argument_values(args),
        "prefetch_buffer_size": dataset_options.PREFETCH_BUFFER_SIZE,
        "steps_per_fit": steps,
        "summary": summary,
        "gaps_s": gaps,
        "fit_s": fit_times,
    }
    output = args.output or data.cache_dir() / "benchmarks" / "fit_end_stall.json"
    support.write_results(record, output)


if __name__ == "__main__":
    main()
