"""Measures what length bucketing buys when training the many-to-one sentiment classifier.

A batch of texts is padded to its longest text, and the recurrent layer (with a mask, on
the CPU) runs every padded step as if it were real. `text_classification_batches(...,
bucketing=True)` sorts pools of 50 batches by length before cutting them into batches, so
that a batch holds texts of similar length. This script measures, on real data:

* the share of padded positions in the training batches with and without bucketing
  (`rnn_toolkit.data.padding_share`), averaged over `--padding-epochs` epochs, since the
  pipelines reshuffle every epoch;
* the training throughput of the default model of `rnn-toolkit train sentiment`
  (`rnn_toolkit.tasks.sentiment.run.build_model`: bidirectional GRU 128, embedding 128, the
  final hidden state, Adam with gradient clipping, precision "auto", i.e. mixed_bfloat16
  on a CPU with AVX512-BF16) on bucketed and on unbucketed batches: texts/s and real
  (non-padding) tokens/s.

Data sets (`--data`): `rotten_tomatoes` (10,568 review sentences) and `pang_lee` (1,500
full reviews), each loaded and split as a training run does (`load_data`, `split_data`:
10 % held out, 10 % of the rest for validation); only the training share is used. Texts
are cut at the config's `max_length` (400 tokens), which truncates most Pang & Lee
reviews; for a data set where that cut bites, the padding shares are also given for the
longer cuts of `--padding-max-lengths` (not timed: an untruncated epoch takes minutes).

Method. Per data set, two models are built from the same seed and given the very same
initial weights. Each runs `--warmup` untimed steps on batches of another shuffle
(tracing, including the retrace for a new batch shape, is excluded), then gets its
initial weights and optimizer state back. Then `--rounds` rounds; in every round, in a
new shuffled order, each variant trains (`train_on_batch`, one call per batch) on the
full batches of one epoch of its own pipeline (the last, partial batch is dropped, so
both variants train on exactly the same number of texts per round, and with the default
`--steps` every training text but a few appears once). The batches are taken from the
pipelines beforehand and held in memory, so the input pipeline is not timed. The summary
is the median over rounds, the ratio of the two medians, and the median of the per-round
ratios (each a pair of blocks timed back to back).

The models are not trained to convergence and no accuracy is measured: the weights
only change the arithmetic's values, not its amount.

Usage (from the repository root):

    .venv/bin/python benchmarks/sentiment_bucketing.py                        # both data sets
    .venv/bin/python benchmarks/sentiment_bucketing.py --data rotten_tomatoes
    .venv/bin/python benchmarks/sentiment_bucketing.py --quick                # smoke test

The numbers are written as JSON to `benchmarks/results/sentiment_bucketing.json`.
"""

import argparse
import dataclasses
import os
import pathlib
import statistics
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit import data
from rnn_toolkit.tasks.sentiment.run import SentimentRunConfig, build_model, load_data, split_data

DATA_SETS = ("rotten_tomatoes", "pang_lee")
VARIANTS = ("bucketed", "unbucketed")
# `WordVocabulary` needs a positive cap; this one truncates no review.
NO_TRUNCATION = 1_000_000


def pipeline(ids, labels, variant, args, seed):
    return data.text_classification_batches(
        ids, labels, batch_size=args.batch_size, bucketing=variant == "bucketed", seed=seed
    )


def epoch_padding_shares(ids, labels, variant, args):
    """The padding share of each of `--padding-epochs` epochs (one reshuffling pipeline)."""
    batches = pipeline(ids, labels, variant, args, args.seed)
    return [data.padding_share(batches) for _ in range(args.padding_epochs)]


def full_batches(ids, labels, variant, args, seed, count):
    """The first `count` full batches of the pipeline's epochs, in memory.

    Partial batches (one per epoch) are skipped, so that every block of batches holds the
    same number of texts whatever its variant.
    """
    batches = pipeline(ids, labels, variant, args, seed)
    kept = []
    while len(kept) < count:
        before = len(kept)
        for token_ids, targets in batches:
            if int(token_ids.shape[0]) == args.batch_size:
                kept.append((token_ids, targets))
                if len(kept) == count:
                    break
        if len(kept) == before:
            raise SystemExit(f"fewer than {args.batch_size} training texts: no full batch")
    return kept


def another_shape(token_ids, targets):
    """The batch with one text fewer and one more padding column.

    Keras' `reduce_retracing` traces the training step again for the second input shape
    it sees, then with a shape that accepts any batch and length; warming up on this
    batch too keeps that second trace out of the timed steps.
    """
    token_ids = tf.pad(token_ids[:-1], [[0, 0], [0, 1]])
    return token_ids, targets[:-1]


def tracing_count(model):
    """How often Keras has traced `model`'s training step so far (None if not found).

    A check that warm-up covered every trace: it reads the `tf.function` out of the
    closures of Keras 3's TensorFlow trainer, an internal that may change.
    """
    try:
        function = model.train_function
        for _ in range(2):
            cells = dict(zip(function.__code__.co_freevars, function.__closure__))
            function = cells["one_step_on_data" if "one_step_on_data" in cells else "step_func"].cell_contents
        return int(function.experimental_get_tracing_count())
    except (AttributeError, KeyError, TypeError):
        return None


def real_tokens(batches):
    return sum(int(tf.math.count_nonzero(token_ids)) for token_ids, _ in batches)


def positions(batches):
    return sum(int(tf.size(token_ids)) for token_ids, _ in batches)


def length_summary(ids, max_length):
    lengths = ids.row_lengths().numpy()
    return {
        "mean": float(lengths.mean()),
        "median": float(np.median(lengths)),
        "max": int(lengths.max()),
        "truncated_texts": int((lengths >= max_length).sum()),
    }


def measure_padding(texts, split, config, args):
    """Padding shares at the config's `max_length` and, if it truncates, at longer cuts."""
    ids = split.ids("train")
    labels = split.train.labels
    lengths = length_summary(ids, config.max_length)
    results = {str(config.max_length): {"tokens_per_text": lengths, **padding_record(ids, labels, args)}}
    if lengths["truncated_texts"]:
        for max_length in args.padding_max_lengths:
            longer = split_data(texts, dataclasses.replace(config, max_length=max_length))
            longer_ids = longer.ids("train")
            name = "none" if max_length == NO_TRUNCATION else str(max_length)
            results[name] = {
                "tokens_per_text": length_summary(longer_ids, max_length),
                **padding_record(longer_ids, longer.train.labels, args),
            }
    return ids, labels, results


def padding_record(ids, labels, args):
    per_epoch = {v: epoch_padding_shares(ids, labels, v, args) for v in VARIANTS}
    return {
        "padding_share": {v: statistics.mean(shares) for v, shares in per_epoch.items()},
        "padding_share_per_epoch": per_epoch,
    }


def optimizer_state(model):
    return [variable.numpy() for variable in model.optimizer.variables]


def restore(model, weights, optimizer_values):
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, optimizer_values):
        variable.assign(value)


def measure_throughput(name, texts, split, config, ids, labels, args):
    steps = args.steps or len(split.train) // args.batch_size
    batches = {
        v: full_batches(ids, labels, v, args, args.seed, steps * args.rounds) for v in VARIANTS
    }
    # Another shuffle, so that the warm-up steps see none of the timed batches' order.
    warmup = {
        v: full_batches(ids, labels, v, args, args.seed + 1, max(args.warmup, 1)) for v in VARIANTS
    }

    models = {}
    for variant in VARIANTS:
        keras.utils.set_random_seed(args.seed)
        models[variant] = build_model(split, config, texts.class_names)
        # Built now, so that its initial state can be saved and restored after warm-up.
        models[variant].optimizer.build(models[variant].trainable_variables)
    initial_weights = models[VARIANTS[0]].get_weights()
    initial_optimizer = optimizer_state(models[VARIANTS[0]])
    policy = models[VARIANTS[0]].dtype_policy_name
    print(
        f"{name}: {policy}, {models[VARIANTS[0]].count_params():,} parameters; "
        f"{args.rounds} rounds x {steps} steps x {args.batch_size} texts per variant",
        flush=True,
    )

    for variant in VARIANTS:
        model = models[variant]
        restore(model, initial_weights, initial_optimizer)
        first = warmup[variant][0]
        for token_ids, targets in [first, another_shape(*first)] + warmup[variant][1 : args.warmup]:
            model.train_on_batch(token_ids, targets)
        restore(model, initial_weights, initial_optimizer)
    traces_after_warmup = {v: tracing_count(models[v]) for v in VARIANTS}

    load_before = os.getloadavg()
    texts_per_round = steps * args.batch_size
    texts_per_s = {v: [] for v in VARIANTS}
    tokens_per_s = {v: [] for v in VARIANTS}
    step_seconds = {v: [] for v in VARIANTS}
    mean_loss = {v: [] for v in VARIANTS}
    timed_padding = {v: [] for v in VARIANTS}
    for round_index, order in support.interleaved_rounds(VARIANTS, args.rounds, args.seed):
        for variant in order:
            block = batches[variant][round_index * steps : (round_index + 1) * steps]
            tokens = real_tokens(block)
            timed_padding[variant].append(1 - tokens / positions(block))
            model = models[variant]
            losses = []
            start = time.perf_counter()
            for token_ids, targets in block:
                step_start = time.perf_counter()
                # train_on_batch returns NumPy logs, so every step has finished here.
                losses.append(model.train_on_batch(token_ids, targets)[0])
                step_seconds[variant].append(time.perf_counter() - step_start)
            seconds = time.perf_counter() - start
            texts_per_s[variant].append(texts_per_round / seconds)
            tokens_per_s[variant].append(tokens / seconds)
            mean_loss[variant].append(float(np.mean(losses)))
        print(
            f"  round {round_index + 1}/{args.rounds}: "
            + "  ".join(f"{v} {texts_per_s[v][-1]:.0f} texts/s" for v in VARIANTS)
            + f"  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    summary = {
        v: {
            **support.median_min_max(texts_per_s[v], "texts_per_s"),
            **support.median_min_max(tokens_per_s[v], "real_tokens_per_s"),
            "median_step_s": statistics.median(step_seconds[v]),
            "slowest_step_s": max(step_seconds[v]),
            "padding_share_of_timed_batches": statistics.mean(timed_padding[v]),
        }
        for v in VARIANTS
    }
    retraces = {
        v: None if traces_after_warmup[v] is None else tracing_count(models[v]) - traces_after_warmup[v]
        for v in VARIANTS
    }
    if any(retraces.values()):
        print(f"  warning: the training step was traced again during the timed steps: {retraces}")
    round_ratios = [b / u for b, u in zip(texts_per_s["bucketed"], texts_per_s["unbucketed"])]
    return {
        "policy": policy,
        "parameters": int(models[VARIANTS[0]].count_params()),
        "steps_per_round": steps,
        "texts_per_round": texts_per_round,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": summary,
        "traces_during_timed_steps": retraces,
        "ratio_of_medians": support.median_ratio(summary["bucketed"], summary["unbucketed"], "texts_per_s"),
        "median_of_round_ratios": statistics.median(round_ratios),
        "round_ratios": round_ratios,
        "texts_per_s_per_round": texts_per_s,
        "real_tokens_per_s_per_round": tokens_per_s,
        "step_seconds": step_seconds,
        # Only to show that both variants trained (a NaN would show); not a result.
        "mean_train_loss_per_round": mean_loss,
    }


def print_padding(results):
    rows = []
    for name, record in results.items():
        for max_length, entry in record["padding"].items():
            lengths = entry["tokens_per_text"]
            timed = " (timed)" if max_length == str(record["max_length"]) and "throughput" in record else ""
            rows.append(
                f"{name:<16} {max_length + timed:<14} {lengths['mean']:>6.0f} {lengths['max']:>6} "
                f"{lengths['truncated_texts']:>6} {entry['padding_share']['unbucketed']:>11.1%} "
                f"{entry['padding_share']['bucketed']:>9.1%}"
            )
    support.print_table(
        "padded share of the training batches (batch 32), mean over epochs",
        f"{'data':<16} {'max_length':<14} {'mean':>6} {'max':>6} {'cut':>6} {'unbucketed':>11} {'bucketed':>9}",
        rows,
    )


def print_throughput(results):
    rows = []
    for name, record in results.items():
        throughput = record.get("throughput")
        if not throughput:
            continue
        for variant, s in throughput["summary"].items():
            rows.append(
                f"{name:<16} {variant:<11} {s['median_texts_per_s']:>8.0f} {s['min_texts_per_s']:>7.0f} "
                f"{s['max_texts_per_s']:>7.0f} {s['median_real_tokens_per_s']:>9.0f} "
                f"{s['median_step_s']:>7.3f} {s['slowest_step_s']:>8.3f} "
                f"{s['padding_share_of_timed_batches']:>7.1%}"
            )
    support.print_table(
        "training texts/s, median of interleaved rounds",
        f"{'data':<16} {'variant':<11} {'texts/s':>8} {'min':>7} {'max':>7} {'tokens/s':>9} "
        f"{'step s':>7} {'slowest':>8} {'padded':>7}",
        rows,
    )
    print()
    for name, record in results.items():
        throughput = record.get("throughput")
        if throughput:
            print(
                f"{name:<16} bucketed / unbucketed: {throughput['ratio_of_medians']:.2f}x "
                f"(ratio of medians), {throughput['median_of_round_ratios']:.2f}x (median of "
                f"{len(throughput['round_ratios'])} per-round ratios; rounds of "
                f"{throughput['steps_per_round']} steps; load "
                f"{throughput['load_average_before'][0]:.1f} -> {throughput['load_average_after'][0]:.1f})"
            )
    print("(accuracy is not measured: the models train for a few epochs only, to time them)")


def parse_max_lengths(text):
    lengths = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            lengths.append(NO_TRUNCATION if part == "none" else int(part))
    return lengths


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a minute or so, for smoke testing")
    parser.add_argument(
        "--data", default=",".join(DATA_SETS), help=f"comma-separated subset of {','.join(DATA_SETS)}"
    )
    parser.add_argument("--rounds", type=int, default=4, help="timed blocks per variant and data set")
    parser.add_argument(
        "--steps", type=int, default=0,
        help="training steps per timed block (0: the full batches of one epoch)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (at least 2 are run)")
    parser.add_argument("--padding-epochs", type=int, default=5, help="epochs the padding shares average")
    parser.add_argument(
        "--padding-max-lengths", default="800,none",
        help="longer cuts whose padding shares are also given where max_length truncates ('none': no cut)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="auto", help="the model's dtype policy")
    parser.add_argument("--units", type=int, default=SentimentRunConfig.units)
    parser.add_argument("--embedding-dim", type=int, default=SentimentRunConfig.embedding_dim)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    support.add_thread_options(parser)
    args = parser.parse_args(argv)
    args.data_sets = support.chosen_subset(args.data, DATA_SETS, "data sets")
    args.padding_max_lengths = parse_max_lengths(args.padding_max_lengths)
    if args.quick:
        args.rounds, args.steps, args.warmup, args.padding_epochs = 2, 3, 2, 2
        args.units, args.embedding_dim = 16, 16
    return args


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {}
    for name in args.data_sets:
        config = SentimentRunConfig(
            data=name, batch_size=args.batch_size, units=args.units, embedding_dim=args.embedding_dim,
            precision=args.precision, seed=args.seed,
        )
        texts = load_data(config)
        split = split_data(texts, config)
        ids, labels, padding = measure_padding(texts, split, config, args)
        print(
            f"{name}: {len(split.train):,} training texts; padded share unbucketed "
            f"{padding[str(config.max_length)]['padding_share']['unbucketed']:.1%}, bucketed "
            f"{padding[str(config.max_length)]['padding_share']['bucketed']:.1%}",
            flush=True,
        )
        results[name] = {
            "train_texts": len(split.train),
            "max_length": config.max_length,
            "padding": padding,
            "throughput": measure_throughput(name, texts, split, config, ids, labels, args),
        }

    print_padding(results)
    print_throughput(results)
    record = {
        **support.run_metadata(
            "sentiment_bucketing", args, load_before, started=started,
            bfloat16_cpu=rnn_toolkit.precision.cpu_supports_bfloat16(),
        ),
        "data_sets": results,
    }
    support.write_results(record, args.output or support.results_path("sentiment_bucketing", args.quick))


if __name__ == "__main__":
    main()
