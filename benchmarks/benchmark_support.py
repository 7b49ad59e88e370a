"""What the benchmark scripts in this folder share.

Import it before TensorFlow: importing it quiets TensorFlow's C++ logging and puts the
checkout on `sys.path`, so that `rnn_toolkit` is the working tree's, installed or not.

It holds the parts that make the scripts' numbers comparable with each other, so they
are written once:

* the data: `load_char_corpus` and `training_batches` (real Shakespeare windows, held in
  memory so that the input pipeline is not timed);
* the method: `interleaved_rounds` (every round in a new shuffled order, so a change in
  machine load hits all variants alike) and `median_min_max` / `median_ratio` (medians
  and ratios between variants of the same run);
* the serving benchmarks' harness: requests cut into batches (`request_batches`,
  `calls_in_round`), one caller timing each call (`time_calls`, `latency_summary`), the
  same calls from concurrent callers and from one (`throughput_run`, `throughput_summary`),
  whose outputs must be identical (`compare_outputs`), and the SavedModel version served
  (`latest_version`);
* the report: `print_table`, `print_ratios`, and the result file (`run_metadata`,
  `results_path`, `write_results`) with the versions, CPU count (and, where asked,
  `cpu_model` and `thread_pool_sizes`), command line and load averages that say under
  what conditions the numbers were taken.
"""

import collections
import json
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import threading
import time

# Must be set before TensorFlow is imported (below, or by the script): its C++ INFO and
# WARNING lines would otherwise bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Run from a checkout without installing the package.
REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rnn_toolkit import data  # noqa: E402

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
# Smoke-test (`--quick`) numbers are not results: they go to the temporary folder.
QUICK_RESULTS_DIR = pathlib.Path(tempfile.gettempdir()) / "rnn_toolkit_benchmarks"


# --- Command line ----------------------------------------------------------------------


def add_thread_options(parser):
    """Adds `--intra-op-threads` and `--inter-op-threads` (0: TensorFlow's default)."""
    parser.add_argument(
        "--intra-op-threads", type=int, default=0,
        help="tf.config.threading intra-op threads (0: TensorFlow's default, one per core)",
    )
    parser.add_argument(
        "--inter-op-threads", type=int, default=0,
        help="tf.config.threading inter-op threads (0: TensorFlow's default)",
    )


def set_thread_pools(args):
    """Applies the options of `add_thread_options`.

    Call it before the first TensorFlow op: the thread pools are created once per process.
    """
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)


def chosen_subset(text, choices, kind):
    """The names in the comma-separated `text`, each checked against `choices`.

    `kind` names them in the error message ("variants", "ways").
    """
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(choices))
    if unknown:
        raise SystemExit(f"unknown {kind} {unknown}; choose from {choices}")
    return chosen


# --- Data ------------------------------------------------------------------------------

CharCorpus = collections.namedtuple("CharCorpus", "vocabulary train_pieces validation_pieces")


def load_char_corpus(corpus="shakespeare", max_chars=None):
    """A corpus as its `CharVocabulary` and its training and validation pieces.

    `max_chars` keeps only the start of the text (the vocabulary too is of that part).
    """
    text = data.load_corpus(corpus)[:max_chars]
    vocabulary = data.CharVocabulary.from_text(text)
    train_pieces, validation_pieces = data.split_text(text)
    return CharCorpus(vocabulary, train_pieces, validation_pieces)


def training_batches(corpus, count, *, sequence_length, batch_size, seed):
    """The first `count` (inputs, targets) batches of `char_windows` on the training pieces.

    Held in memory, so that timing the training steps does not also time the input
    pipeline, and so that every variant trains on the very same batches.
    """
    windows = data.char_windows(
        corpus.train_pieces, corpus.vocabulary, sequence_length=sequence_length,
        batch_size=batch_size, seed=seed,
    )
    batches = list(windows.take(count))
    if len(batches) < count:
        raise SystemExit(f"the training text gives only {len(batches)} batches; {count} needed")
    return batches


# --- Timing ----------------------------------------------------------------------------


def interleaved_rounds(variants, rounds, seed):
    """Yields (round index, the variants in a new shuffled order) for each round.

    Every variant runs once per round, so a change in machine load during the run hits
    all variants alike instead of whichever happened to run then; the seeded order keeps
    a run repeatable.
    """
    order_rng = random.Random(seed)
    for round_index in range(rounds):
        order = list(variants)
        order_rng.shuffle(order)
        yield round_index, order


def median_min_max(values, unit):
    """`{"median_<unit>": ..., "min_<unit>": ..., "max_<unit>": ...}` of the rounds.

    The median is the number to compare; min and max show how noisy the rounds were.
    """
    return {
        f"median_{unit}": statistics.median(values),
        f"min_{unit}": min(values),
        f"max_{unit}": max(values),
    }


def median_ratio(numerator, denominator, unit):
    """The ratio of two `median_min_max` medians (variants timed in the same run)."""
    return numerator[f"median_{unit}"] / denominator[f"median_{unit}"]


# --- Serving: latency and concurrent throughput of a SavedModel --------------------------


def latest_version(folder):
    """`folder` if it is a SavedModel, else its highest numeric version (None if none)."""
    folder = pathlib.Path(folder)
    if (folder / "saved_model.pb").is_file():
        return folder
    versions = [p for p in folder.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name), default=None)


def request_batches(items, batch_size, count, start=0):
    """`count` batches of `batch_size` consecutive items, from item `start` on, cycling."""
    n = len(items)
    return [[items[(start + i * batch_size + j) % n] for j in range(batch_size)] for i in range(count)]


def calls_in_round(total, rounds, round_index):
    """Round `round_index`'s share of `total` calls spread over `rounds` rounds (the first
    rounds make one more when they do not divide evenly)."""
    return total // rounds + (round_index < total % rounds)


def time_calls(call, batches):
    """The wall seconds of each `call(batch)`, one call at a time from this thread."""
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        call(batch)
        seconds.append(time.perf_counter() - start)
    return seconds


def run_concurrently(call, per_thread_batches):
    """Issues each thread's batches from its own thread, started together.

    Returns (seconds, outputs per thread, errors).
    """
    outputs = [None] * len(per_thread_batches)
    errors = []
    barrier = threading.Barrier(len(per_thread_batches) + 1)

    def caller(index):
        barrier.wait()
        results = []
        for batch in per_thread_batches[index]:
            try:
                results.append(call(batch))
            except Exception as error:  # counted and reported: the run then fails
                errors.append(f"thread {index}: {type(error).__name__}: {error}")
                results.append(None)
        outputs[index] = results

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(per_thread_batches))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, outputs, errors


def run_single(call, per_thread_batches):
    """The same batches as `run_concurrently`, one after the other from this thread."""
    outputs, errors = [], []
    start = time.perf_counter()
    for batches in per_thread_batches:
        results = []
        for batch in batches:
            try:
                results.append(call(batch))
            except Exception as error:
                errors.append(f"single caller: {type(error).__name__}: {error}")
                results.append(None)
        outputs.append(results)
    return time.perf_counter() - start, outputs, errors


def throughput_run(mode, call, per_thread_batches, unit):
    """Makes the calls from concurrent callers (`mode` "concurrent") or from one ("single").

    Returns `({"seconds": ..., "calls": ..., unit: items in all}, outputs, errors)`, as
    `run_concurrently`; `unit` names the items ("texts", "images").
    """
    runner = run_concurrently if mode == "concurrent" else run_single
    seconds, outputs, errors = runner(call, per_thread_batches)
    calls = sum(len(batches) for batches in per_thread_batches)
    items = sum(len(batch) for batches in per_thread_batches for batch in batches)
    return {"seconds": seconds, "calls": calls, unit: items}, outputs, errors


def compare_outputs(single, concurrent):
    """(identical calls, differing calls) of two runs of the same calls; a call that
    raised (None) differs."""
    identical = differing = 0
    for single_results, concurrent_results in zip(single, concurrent):
        for a, b in zip(single_results, concurrent_results):
            same = (
                a is not None and b is not None and sorted(a) == sorted(b)
                and all(np.array_equal(a[key], b[key]) for key in a)
            )
            identical += same
            differing += not same
    return identical, differing


def single_before_concurrent(order):
    """`order` with each workload's single-caller phase moved before its concurrent one
    (its outputs are the reference)."""
    result = []
    for phase in order:
        if phase.startswith("concurrent"):
            single = "single" + phase[len("concurrent"):]
            if single not in result:
                result.append(single)
        if phase not in result:
            result.append(phase)
    return result


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def latency_summary(seconds, percentiles=(50, 99)):
    """`{"calls", "p<q>_ms" for each q, "mean_ms", "max_ms"}` of per-call wall seconds."""
    return {
        "calls": len(seconds),
        **{f"p{q}_ms": 1000 * percentile(seconds, q) for q in percentiles},
        "mean_ms": 1000 * statistics.fmean(seconds),
        "max_ms": 1000 * max(seconds),
    }


def throughput_summary(runs, unit):
    """Calls and items per round, and `median_min_max` of items/s, of `throughput_run`s."""
    return {
        "calls_per_round": runs[0]["calls"],
        f"{unit}_per_round": runs[0][unit],
        **median_min_max([r[unit] / r["seconds"] for r in runs], f"{unit}_per_s"),
    }


def thread_pool_sizes():
    """TensorFlow's intra-op and inter-op thread pool sizes (0: its default)."""
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def print_thread_pools():
    """Prints TensorFlow's thread pool sizes and the CPU count."""
    pools = thread_pool_sizes()
    print(
        f"TensorFlow thread pools: intra-op {pools['intra_op_threads'] or 'default'}, "
        f"inter-op {pools['inter_op_threads'] or 'default'}; {os.cpu_count()} CPUs"
    )


# --- Report ----------------------------------------------------------------------------


def print_table(title, header, rows):
    """Prints a blank line, the title, the header underlined with dashes, and the rows."""
    print()
    print(title)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)


def print_ratios(ratios, name_width, value_format):
    """Prints a blank line, then one `name  value x` line per ratio."""
    print()
    for name, value in ratios.items():
        print(f"{name:<{name_width}} {value:{value_format}}x")


def command_line(interpreter=".venv/bin/python"):
    """The command that ran this script, to repeat it from the repository root."""
    return " ".join([interpreter] + sys.argv)


def environment(**more_versions):
    """The software versions and the CPU count: what the numbers depend on besides the code."""
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        **more_versions,
        "cpus": os.cpu_count(),
    }


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def run_metadata(benchmark, args, load_average_before, *, started=None, more_versions=None, **machine):
    """The head of a result file: what ran, on what, and how busy the machine was.

    `load_average_before` is `os.getloadavg()` from before the measurements (the one
    after is taken now): a high load means noisy numbers. `started`, a
    `time.perf_counter()` reading, adds the run's wall time; `more_versions` adds package
    versions after Python's, and `machine` further facts after the CPU count.
    """
    record = {
        "benchmark": benchmark,
        "command": command_line(),
        **environment(**(more_versions or {})),
        **machine,
        "load_average_before": load_average_before,
        "load_average_after": os.getloadavg(),
    }
    if started is not None:
        record["wall_seconds"] = time.perf_counter() - started
    record["arguments"] = argument_values(args)
    return record


def argument_values(args):
    """The parsed command-line options as strings (paths and all), for the result file."""
    return {name: str(value) for name, value in vars(args).items()}


def results_path(name, quick):
    """The default result file `<name>.json`: in `results/`, or for `--quick` in the temporary folder."""
    return (QUICK_RESULTS_DIR if quick else RESULTS_DIR) / f"{name}.json"


def write_results(record, output):
    """Writes `record` as indented JSON to `output` (creating its folder) and says where."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2))
    print(f"\nnumbers written to {output}")
