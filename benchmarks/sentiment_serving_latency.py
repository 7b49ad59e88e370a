"""Measures serving latency and throughput of an exported sentiment classifier.

The SavedModel is loaded with plain `tf.saved_model.load` and called through its
`classify` signature, as a Python serving process would: a list of strings goes in
(`tf.constant`), NumPy arrays come out (`.numpy()` of every output), and each timed call
includes both conversions. The requests are the real held-out Rotten Tomatoes sentences
of the default sentiment run (`split_data(load_data(SentimentRunConfig()), ...)`, 1,057
texts), in order, cycling.

* Latency: one caller, one call at a time; per-call wall time at batch 1 and batch 32,
  reported as p50 and p99 over all calls.
* Throughput: the same fixed list of calls (per caller: batch-1 calls, batch-32 calls,
  or both mixed) issued by `--threads` concurrent caller threads, and by one caller for
  comparison, in the same run; texts/s and calls/s, and the ratio concurrent / single.
  Every concurrent call's outputs are compared with the single caller's outputs for the
  same inputs (they must be identical), and any exception in a call fails the run.

The phases run interleaved in a shuffled order every round (see `benchmark_support`), and
warm-up calls at both batch sizes come first (tracing and first-call costs excluded).
TensorFlow runs each call's ops on its inter-op and intra-op thread pools (by default as
many threads as cores, shared by all caller threads); `--intra-op-threads` and
`--inter-op-threads` change them.

The model: `--saved-model PATH` (a version folder or a model folder, whose highest
version is taken); by default the highest version under `saved_models/sentiment`. If
there is none, a quick model is trained with `train_sentiment_run` (small settings) into
a temporary run folder and exported, and the output says so.

Usage (from the repository root):

    .venv/bin/python benchmarks/sentiment_serving_latency.py --saved-model saved_models/sentiment
    .venv/bin/python benchmarks/sentiment_serving_latency.py --quick   # smoke test

The numbers are written as JSON to `benchmarks/results/`.
"""

import argparse
import json
import os
import pathlib
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.tasks.sentiment.run import SentimentRunConfig, load_data, split_data, train_sentiment_run

DEFAULT_MODEL_FOLDER = support.REPOSITORY_ROOT / "saved_models" / "sentiment"
WORKLOADS = ("batch1", "batch32", "mixed")
PHASES = ("latency_batch1", "latency_batch32") + tuple(
    f"{mode}_{workload}" for workload in WORKLOADS for mode in ("single", "concurrent")
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls, to check that the script works")
    parser.add_argument(
        "--saved-model", type=pathlib.Path, default=None,
        help="a sentiment SavedModel version folder, or a model folder (its highest version); "
        "default: the highest version under saved_models/sentiment, else a quickly trained model",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--latency-calls-batch1", type=int, default=1000, help="batch-1 calls in all, one caller")
    parser.add_argument("--latency-calls-batch32", type=int, default=300, help="batch-32 calls in all, one caller")
    parser.add_argument("--threads", type=int, default=4, help="concurrent caller threads")
    parser.add_argument(
        "--calls-per-thread", type=int, default=60,
        help="batch-1 calls per caller and round in the batch1 workload; batch32 makes a quarter "
        "as many batch-32 calls, mixed both halves",
    )
    parser.add_argument("--warmup-calls", type=int, default=20, help="untimed calls per batch size")
    parser.add_argument("--seed", type=int, default=0)
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.latency_calls_batch1, args.latency_calls_batch32 = 2, 40, 10
        args.calls_per_thread, args.warmup_calls = 8, 2
    if min(args.rounds, args.latency_calls_batch1, args.latency_calls_batch32, args.threads,
           args.calls_per_thread) < 1:
        parser.error("counts must be positive")
    return args


# --- The model --------------------------------------------------------------------------


def train_quick_model(scratch):
    """Trains a small model on the default split and exports it; returns (path, settings)."""
    config = SentimentRunConfig(units=32, embedding_dim=32, epochs=2, baseline=False)
    model, info = train_sentiment_run(config, pathlib.Path(scratch) / "run", verbose=0)
    path = rnn_toolkit.export.export_sentiment(model, pathlib.Path(scratch) / "saved_models")
    return path, {
        "settings": {k: info["settings"][k] for k in ("cell", "units", "bidirectional", "embedding_dim", "epochs")},
        "heldout_accuracy_in_training": info["heldout"]["recurrent"]["accuracy"],
    }


def find_model(args, scratch):
    """The version folder to serve and a description of where it came from."""
    if args.saved_model is not None:
        path = support.latest_version(args.saved_model)
        if path is None:
            raise SystemExit(f"no sentiment SavedModel at {args.saved_model}")
        return path, {"source": "--saved-model"}
    path = support.latest_version(DEFAULT_MODEL_FOLDER)
    if path is not None:
        return path, {"source": f"highest version under {DEFAULT_MODEL_FOLDER}"}
    print(
        f"No SavedModel under {DEFAULT_MODEL_FOLDER}: training a QUICK model (bidirectional GRU 32, "
        "2 epochs, default split) with train_sentiment_run in a temporary run folder and "
        "exporting it. Its numbers are for that small model."
    )
    path, trained = train_quick_model(scratch)
    print(f"quick model exported to {path} (temporary)")
    return path, {"source": "quick model trained by this script", **trained}


# --- Calls ------------------------------------------------------------------------------


def make_call(signature):
    """One request: strings in, NumPy outputs out (both conversions included)."""

    def call(texts):
        outputs = signature(text=tf.constant(texts, tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return call


def max_probability_difference(single, concurrent):
    """The largest |probability difference| between two runs of the same calls."""
    difference = 0.0
    for single_results, concurrent_results in zip(single, concurrent):
        for a, b in zip(single_results, concurrent_results):
            if a is not None and b is not None:
                difference = max(
                    difference, float(np.max(np.abs(a["probabilities"] - b["probabilities"]), initial=0.0))
                )
    return difference


def workload_batches(workload, texts, threads, calls_per_thread, round_index):
    """Each caller thread's list of batches for one round (different texts per thread)."""
    per_thread = []
    for thread in range(threads):
        start = (round_index * threads + thread) * calls_per_thread * 8
        if workload == "batch1":
            batches = support.request_batches(texts, 1, calls_per_thread, start)
        elif workload == "batch32":
            batches = support.request_batches(texts, 32, max(calls_per_thread // 4, 1), start)
        else:  # half the batch-1 calls and half the batch-32 calls, interleaved
            ones = support.request_batches(texts, 1, max(calls_per_thread // 2, 1), start)
            thirty_twos = support.request_batches(texts, 32, max(calls_per_thread // 8, 1), start + 1000)
            batches = []
            for i, batch in enumerate(ones):
                batches.append(batch)
                if i % 4 == 3 and thirty_twos:
                    batches.append(thirty_twos.pop(0))
            batches.extend(thirty_twos)
        per_thread.append(batches)
    return per_thread


# --- Main -------------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory()
    load_before = os.getloadavg()

    config = SentimentRunConfig()
    split = split_data(load_data(config), config)
    texts = list(split.heldout.texts)
    print(f"requests: the {len(texts):,} held-out sentences of {config.data!r} (split seed {config.split_seed})")

    path, model_info = find_model(args, scratch.name)
    loaded = tf.saved_model.load(str(path))  # plain TensorFlow from here on
    signature = loaded.signatures["classify"]
    labels = json.loads((path / "assets" / "labels.json").read_text(encoding="utf-8"))
    # The vocabulary asset in either form: "tokens" (every id) now, "words" (+ padding and
    # unknown) in exports written before the one vocabulary JSON form.
    asset = json.loads((path / "assets" / "vocabulary.json").read_text(encoding="utf-8"))
    vocabulary_size = len(asset["tokens"]) if "tokens" in asset else len(asset["words"]) + 2
    call = make_call(signature)

    # The served model on the whole held-out share: shows it is a trained model and
    # that the split is the run's (the accuracy equals the run's held-out accuracy).
    predicted = np.concatenate([call(texts[i : i + 256])["class_id"] for i in range(0, len(texts), 256)])
    heldout_accuracy = float(np.mean(predicted == split.heldout.labels))
    model_info.update(
        path=str(path), head=labels["head"], class_names=labels["class_names"],
        vocabulary_size=vocabulary_size, heldout_accuracy=heldout_accuracy,
    )
    print(
        f"model: {path} ({labels['head']} head, classes {labels['class_names']}, vocabulary "
        f"{vocabulary_size:,}); held-out accuracy {heldout_accuracy:.2%}"
    )
    support.print_thread_pools()

    # Warm-up: tracing, first-call allocations, at both batch sizes and from several threads.
    for batch_size in (1, 32):
        for batch in support.request_batches(texts, batch_size, args.warmup_calls):
            call(batch)
    support.run_concurrently(call, workload_batches("mixed", texts, args.threads, 8, round_index=0))

    latency = {1: [], 32: []}
    throughput = {phase: [] for phase in PHASES if not phase.startswith("latency")}
    errors, checks = [], {workload: [0, 0, 0.0] for workload in WORKLOADS}
    per_round = {1: args.latency_calls_batch1, 32: args.latency_calls_batch32}
    calls_done = {1: 0, 32: 0}
    for round_index, order in support.interleaved_rounds(PHASES, args.rounds, args.seed):
        single_outputs = {}
        for phase in support.single_before_concurrent(order):  # its outputs are the reference
            if phase.startswith("latency"):
                batch_size = 1 if phase.endswith("batch1") else 32
                count = support.calls_in_round(per_round[batch_size], args.rounds, round_index)
                batches = support.request_batches(texts, batch_size, count, calls_done[batch_size] * batch_size)
                latency[batch_size] += support.time_calls(call, batches)
                calls_done[batch_size] += count
                continue
            mode, workload = phase.split("_", 1)
            per_thread = workload_batches(workload, texts, args.threads, args.calls_per_thread, round_index)
            run, outputs, call_errors = support.throughput_run(mode, call, per_thread, "texts")
            errors.extend(call_errors)
            throughput[phase].append(run)
            if mode == "single":
                single_outputs[workload] = outputs
            else:
                identical, differing = support.compare_outputs(single_outputs[workload], outputs)
                checks[workload][0] += identical
                checks[workload][1] += differing
                checks[workload][2] = max(
                    checks[workload][2], max_probability_difference(single_outputs[workload], outputs)
                )
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary = {"latency": {}, "throughput": {}, "ratios": {}, "checks": {}}
    for batch_size, values in latency.items():
        summary["latency"][f"batch{batch_size}"] = {
            **support.latency_summary(values, (50, 99)),
            "texts_per_s_at_p50": batch_size / support.percentile(values, 50),
        }
    for phase, runs in throughput.items():
        summary["throughput"][phase] = {
            **support.throughput_summary(runs, "texts"),
            **support.median_min_max([r["calls"] / r["seconds"] for r in runs], "calls_per_s"),
        }
    for workload in WORKLOADS:
        summary["ratios"][f"{workload}:concurrent/single"] = support.median_ratio(
            summary["throughput"][f"concurrent_{workload}"], summary["throughput"][f"single_{workload}"],
            "texts_per_s",
        )
        identical, differing, difference = checks[workload]
        summary["checks"][workload] = {
            "calls_compared": identical + differing,
            "identical": identical,
            "differing": differing,
            "max_abs_probability_difference": difference,
        }
    summary["checks"]["errors"] = errors

    support.print_table(
        f"latency per call, one caller ({args.rounds} interleaved rounds)",
        f"{'batch':>5} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8} {'texts/s at p50':>15}",
        [
            f"{b[5:]:>5} {s['calls']:>6} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f} "
            f"{s['max_ms']:>8.2f} {s['texts_per_s_at_p50']:>15.0f}"
            for b, s in summary["latency"].items()
        ],
    )
    support.print_table(
        f"throughput, {args.threads} concurrent callers vs 1 caller, same calls "
        f"(median of {args.rounds} rounds; min-max)",
        f"{'workload':<9} {'callers':>7} {'calls/round':>11} {'texts/s':>9} {'(min-max)':>15} {'calls/s':>9}",
        [
            f"{phase.split('_', 1)[1]:<9} {args.threads if phase.startswith('concurrent') else 1:>7} "
            f"{s['calls_per_round']:>11} {s['median_texts_per_s']:>9.0f} "
            f"{s['min_texts_per_s']:>7.0f}-{s['max_texts_per_s']:<7.0f} {s['median_calls_per_s']:>9.0f}"
            for phase, s in summary["throughput"].items()
        ],
    )
    support.print_ratios(summary["ratios"], name_width=28, value_format="6.2f")
    print()
    for workload in WORKLOADS:
        c = summary["checks"][workload]
        print(
            f"{workload}: {c['identical']}/{c['calls_compared']} concurrent calls identical to the "
            f"single caller's (max |probability difference| {c['max_abs_probability_difference']:.2g})"
        )
    print(f"calls that raised: {len(errors)}")

    record = {
        **support.run_metadata(
            "sentiment_serving_latency", args, load_before, started=started,
            cpu=support.cpu_model(), **support.thread_pool_sizes(),
        ),
        "model": model_info,
        "requests": {"texts": len(texts), "source": "held-out share of SentimentRunConfig()'s split"},
        "summary": summary,
        "latency_seconds": {str(b): v for b, v in latency.items()},
        "throughput_runs": throughput,
    }
    output = args.output or support.results_path("sentiment_serving_latency", args.quick)
    support.write_results(record, output)
    scratch.cleanup()
    failed = [w for w in WORKLOADS if summary["checks"][w]["differing"]]
    if errors or failed:
        raise SystemExit(f"FAILED: {len(errors)} call(s) raised; differing results in {failed}")


if __name__ == "__main__":
    main()
