"""Measures translation throughput (sentences/s): greedy search against beam search, in process and from the SavedModel.

The trained translator of a run folder (`--run-dir`, `model.keras` + `run.json`)
translates real held-out source sentences: `load_data` / `split_data` with the run's
settings rebuild its seeded held-out share, of which `--sentences` (256) are drawn with
`--seed`; the batch-1 variants translate the first `--batch1-sentences` (32) of them.
Decodings:

* `greedy`: the greedy sampler (`sampler="greedy"`): the argmax word at every step,
  one hypothesis per sentence, no beam bookkeeping;
* `beam1`: beam search of width 1 (`beam_width=1`). It picks the same words as greedy
  search but runs the beam-search bookkeeping (scores, finished hypotheses, length
  penalty, reordering the state); beam1 / greedy is what that bookkeeping costs;
* `beam4` (`--beam-width`, the run's width by default): the beam search the run is
  evaluated and served with.

Two ways, with the same weights and the run's length penalty:

* `in_process`: `model.translate(texts, batch_size=...)`, strings in, strings out, one
  traced `tf.function` call per batch, its decoding loop XLA-compiled (the default);
* `in_process_uncompiled`: the same under `rnn_toolkit.decoding.jit_decoding(False)`;
  its translations must equal the compiled ones (reported as an agreement check);
* `saved_model`: `export_translator(model, ...)` to a temporary folder, loaded with plain
  `tf.saved_model.load` in a fresh Python process that imports TensorFlow and nothing of
  rnn_toolkit (`ServingProcess` of `translator_serving_latency.py`), called through its
  `translate` signature with `beam_width` 1 or 4. The SavedModel has no greedy sampler:
  there, greedy search IS `beam_width` 1, i.e. beam1 here. That process times its own
  calls (strings in with `tf.constant`, `.numpy()` out), so the pipe is not timed.

All decode to the default length (twice the batch's longest source plus 10 words) and
stop when every row of the batch has ended, so a batch costs as much as its longest
translation, and a decoding that writes longer translations is slower for that reason
alone: the mean translation length (tokens, as the word tokenizer counts them) and, per
batch, the mean length of its longest translation are reported with the speeds.

Every timed unit is one pass over the sentences (batches of `--batch-size`, or one
sentence per call), after an untimed warm-up pass per variant (tracing and first-call
costs excluded; its translations give the lengths and the agreement checks: in-process
beam1 vs greedy, SavedModel vs in process). The variants run interleaved in a shuffled
order every round (see `benchmark_support`); the summary is the median over rounds of
sentences/s, and the ratios are of medians from the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/translator_decoding_throughput.py --run-dir runs/benchmarks/translator-additive
    .venv/bin/python benchmarks/translator_decoding_throughput.py --run-dir RUN --quick   # smoke test

The numbers are written as JSON to `benchmarks/results/` (for `--quick`, to the
temporary folder).
"""

import argparse
import os
import pathlib
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.decoding import jit_decoding
from rnn_toolkit.tasks.translator.run import token_counts

# The serving process and the run loading are shared with the latency benchmark.
from translator_serving_latency import DEFAULT_RUN_DIR, ServingProcess, load_benchmark_run, mean_tokens

WAYS = ("in_process", "in_process_uncompiled", "saved_model")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=pathlib.Path, default=pathlib.Path(DEFAULT_RUN_DIR),
                        help=f"a finished translator run folder (model.keras, run.json); default {DEFAULT_RUN_DIR}")
    parser.add_argument("--quick", action="store_true", help="a few sentences, to check that the script works")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--sentences", type=int, default=256, help="held-out sentences per pass at --batch-size")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per call (the batched variants)")
    parser.add_argument("--batch1-sentences", type=int, default=32,
                        help="sentences per pass at batch 1 (the first of the drawn ones; 0: no batch-1 variants)")
    parser.add_argument("--beam-width", type=int, default=None, help="the wide beam (default: the run's, 4)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of {','.join(WAYS)}")
    parser.add_argument("--seed", type=int, default=0, help="which sentences, and the order of the variants")
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.sentences, args.batch_size, args.batch1_sentences = 2, 32, 16, 4
    if min(args.rounds, args.sentences, args.batch_size) < 1 or args.batch1_sentences < 0:
        parser.error("counts must be positive")
    if args.beam_width is not None and args.beam_width < 2:
        parser.error("--beam-width must be at least 2 (beam1 is always measured)")
    return args


def variant_name(variant):
    way, decoding, batch_size = variant
    return f"batch{batch_size}:{way}:{decoding}"


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    ways = support.chosen_subset(args.ways, WAYS, "ways")
    started = time.perf_counter()
    load_before = os.getloadavg()

    run = load_benchmark_run(args.run_dir)
    beam_width = args.beam_width or run.config.beam_width
    wide = f"beam{beam_width}"
    length_penalty = run.config.length_penalty
    count = min(args.sentences, len(run.heldout_sources))
    chosen = np.random.default_rng(args.seed).choice(len(run.heldout_sources), count, replace=False)
    texts = {args.batch_size: [run.heldout_sources[i] for i in chosen]}
    if args.batch1_sentences and args.batch_size != 1:
        texts[1] = texts[args.batch_size][: args.batch1_sentences]
    lowercase = run.config.lowercase
    print(f"model: {args.run_dir}: {run.describe()}")
    print(
        f"sentences: {count} of the {len(run.heldout_sources):,} held-out sentences of {run.config.data!r} "
        f"(split seed {run.config.split_seed}, drawn with seed {args.seed}), "
        f"{mean_tokens(texts[args.batch_size], lowercase):.1f} source tokens on average; "
        + (f"batch 1: the first {len(texts[1])}" if 1 in texts else "no batch-1 variants")
    )

    decodings = {
        "in_process": {"greedy": {"sampler": "greedy"}, "beam1": {"beam_width": 1}, wide: {"beam_width": beam_width}},
        "in_process_uncompiled": {
            "greedy": {"sampler": "greedy"}, "beam1": {"beam_width": 1}, wide: {"beam_width": beam_width}
        },
        "saved_model": {"beam1": 1, wide: beam_width},  # the `translate` signature's beam_width
    }
    variants = [
        (way, decoding, batch_size)
        for batch_size in texts for way in ways for decoding in decodings[way]
    ]

    scratch = tempfile.TemporaryDirectory()
    server = None
    if "saved_model" in ways:
        path = rnn_toolkit.export.export_translator(
            run.model, scratch.name, beam_width=beam_width, length_penalty=length_penalty
        )
        server = ServingProcess(path, args.intra_op_threads, args.inter_op_threads)
        print(
            f"serving process: plain TensorFlow {server.info['tensorflow']} (rnn_toolkit imported: "
            f"{server.info['rnn_toolkit_imported']}); SavedModel loaded in {server.info['load_seconds']:.1f} s"
        )

    def translate(variant):
        """(seconds, translations) of one pass of `variant` over its sentences."""
        way, decoding, batch_size = variant
        if way.startswith("in_process"):
            with jit_decoding(way == "in_process"):
                start = time.perf_counter()
                translations = run.model.translate(
                    texts[batch_size], batch_size=batch_size, length_penalty=length_penalty,
                    **decodings[way][decoding],
                )
                return time.perf_counter() - start, translations
        batches = [texts[batch_size][i : i + batch_size] for i in range(0, len(texts[batch_size]), batch_size)]
        result = server.calls("translate", batches, beam_width=decodings[way][decoding])
        return result["wall_seconds"], result["translations"]

    # Untimed warm-up pass per variant: tracing and first calls; its translations are
    # the ones every timed pass repeats (decoding here is deterministic).
    warmup_seconds, translations = {}, {}
    for variant in variants:
        warmup_seconds[variant], translations[variant] = translate(variant)
        print(f"  warm-up {variant_name(variant):<32} {warmup_seconds[variant]:7.2f} s", flush=True)

    seconds = {variant: [] for variant in variants}
    changed = {variant: 0 for variant in variants}  # timed passes not translating as the warm-up did
    try:
        for round_index, order in support.interleaved_rounds(variants, args.rounds, args.seed):
            for variant in order:
                elapsed, result = translate(variant)
                seconds[variant].append(elapsed)
                changed[variant] += result != translations[variant]
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    finally:
        if server is not None:
            server.close()

    summary = {}
    for variant in variants:
        way, decoding, batch_size = variant
        lengths = token_counts(translations[variant], lowercase)
        n = len(texts[batch_size])
        rates = [n / s for s in seconds[variant]]
        summary[variant_name(variant)] = {
            "way": way,
            "decoding": decoding,
            "batch_size": batch_size,
            "sentences": n,
            **support.median_min_max(rates, "sentences_per_s"),
            "median_ms_per_sentence": 1000 / float(np.median(rates)),
            "mean_translation_tokens": float(np.mean(lengths)),
            "mean_longest_translation_per_batch": float(
                np.mean([np.max(lengths[i : i + batch_size]) for i in range(0, n, batch_size)])
            ),
            "median_translation_tokens_per_s": float(np.median(rates)) * float(np.mean(lengths)),
            "passes_translating_unlike_warmup": changed[variant],
        }

    def ratio(slow, fast):
        """How many times longer `slow` takes than `fast` (ratio of median sentences/s)."""
        return support.median_ratio(summary[variant_name(fast)], summary[variant_name(slow)], "sentences_per_s")

    ratios, agreement = {}, {}
    for batch_size in texts:
        for way in ways:
            pairs = [(wide, "beam1")]
            if way == "in_process":
                pairs = [(wide, "greedy"), ("beam1", "greedy")] + pairs
            for slow, fast in pairs:
                ratios[f"batch{batch_size}:{way}:{slow}/{fast} (time)"] = ratio(
                    (way, slow, batch_size), (way, fast, batch_size)
                )
        if "in_process" in ways:
            agreement[f"batch{batch_size}:in_process beam1 = greedy"] = _identical(
                translations[("in_process", "beam1", batch_size)], translations[("in_process", "greedy", batch_size)]
            )
        # Each other way against the compiled in-process one: its time and its translations.
        for other, label in (("in_process_uncompiled", "uncompiled/compiled"), ("saved_model", "saved_model/in_process")):
            if "in_process" not in ways or other not in ways:
                continue
            for decoding in decodings[other]:
                ratios[f"batch{batch_size}:{decoding}:{label} (time)"] = ratio(
                    (other, decoding, batch_size), ("in_process", decoding, batch_size)
                )
                agreement[f"batch{batch_size}:{decoding} {other} = in_process"] = _identical(
                    translations[(other, decoding, batch_size)],
                    translations[("in_process", decoding, batch_size)],
                )

    support.print_table(
        f"sentences/s, median of {args.rounds} interleaved rounds (min-max); one pass = "
        f"{count} sentences at batch {args.batch_size}"
        + (f", {len(texts[1])} at batch 1" if 1 in texts else ""),
        f"{'batch':>5} {'way':<12} {'decoding':<8} {'sent/s':>8} {'(min-max)':>15} {'ms/sent':>8} "
        f"{'out tok':>7} {'longest':>7} {'tok/s':>7}",
        [
            f"{s['batch_size']:>5} {s['way']:<12} {s['decoding']:<8} {s['median_sentences_per_s']:>8.1f} "
            f"{s['min_sentences_per_s']:>7.1f}-{s['max_sentences_per_s']:<7.1f} {s['median_ms_per_sentence']:>8.1f} "
            f"{s['mean_translation_tokens']:>7.1f} {s['mean_longest_translation_per_batch']:>7.1f} "
            f"{s['median_translation_tokens_per_s']:>7.0f}"
            for s in summary.values()
        ],
    )
    print("(out tok: mean tokens per translation; longest: mean per batch of its longest translation)")
    support.print_ratios(ratios, name_width=44, value_format="6.2f")
    print()
    for name, (same, total) in agreement.items():
        print(f"{name:<44} {same}/{total} translations identical")
    unlike = {variant_name(v): n for v, n in changed.items() if n}
    print(f"timed passes translating unlike their warm-up pass: {unlike or 'none'}")

    record = {
        **support.run_metadata(
            "translator_decoding_throughput", args, load_before, started=started,
            intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
            inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        ),
        "model": run.model_record(args.run_dir),
        "serving_process": server.info if server else None,
        "sentences": {
            "batched": count,
            "batch1": len(texts.get(1, [])),
            "source": "held-out share of the run's split (load_data / split_data with run.json's settings), "
                      f"drawn with seed {args.seed}",
            "mean_source_tokens": mean_tokens(texts[args.batch_size], lowercase),
        },
        "beam_width": beam_width,
        "length_penalty": length_penalty,
        "summary": summary,
        "ratios": ratios,
        "agreement": {name: {"identical": same, "sentences": total} for name, (same, total) in agreement.items()},
        "seconds": {variant_name(v): s for v, s in seconds.items()},
        "warmup_seconds": {variant_name(v): s for v, s in warmup_seconds.items()},
        "sample_translations": {
            variant_name(v): [{"source": s, "translation": t} for s, t in zip(texts[v[2]][:3], translations[v][:3])]
            for v in variants if v[2] == args.batch_size
        },
    }
    output = args.output or support.results_path("translator_decoding_throughput", args.quick)
    support.write_results(record, output)
    scratch.cleanup()


def _identical(first, second):
    """(how many translations are the same in both lists, how many there are)."""
    return sum(a == b for a, b in zip(first, second)), len(first)


if __name__ == "__main__":
    main()
