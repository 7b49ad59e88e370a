"""Checks, on a trained translator's held-out sentences, that the faster beam search is exact.

Since issue 14 a beam search stops a row as soon as none of its live hypotheses can beat
its best finished one (`BeamSearch._settled_rows`, an exact bound), and the compiled loop
moves the rows still going into smaller batches. Neither may change a result. This
script translates every held-out source sentence of a run (`--run-dir`, default
`runs/benchmarks/translator-additive`) four ways, in batches of `--batch-size`, with the
run's beam width and length penalty:

* `default`: `model.translate`, compiled loop (early stop and shrinking batches);
* `uncompiled`: the same under `jit_decoding(False)` (early stop, one batch);
* `full_search`: every beam runs to its end (`return_all_beams=True`, which does not stop
  early), the best beam taken, compiled;
* `full_search_uncompiled`: the same, uncompiled: the search as it was before issue 14.

It reports how many translations of each way equal `full_search_uncompiled`'s, the time
of each way, and exits 1 if any differs.

Usage (from the repository root):

    .venv/bin/python benchmarks/beam_search_exactness.py
    .venv/bin/python benchmarks/beam_search_exactness.py --quick   # 64 sentences
"""

import argparse
import os
import pathlib
import sys
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import tensorflow as tf

from rnn_toolkit.decoding import BeamSearch, decode_with_strategy, jit_decoding, pad_axis_to_bucket
from rnn_toolkit.tasks.translator.model import MAX_TRANSLATION_LENGTH, SOURCE_BUCKETS
from translator_serving_latency import DEFAULT_RUN_DIR, load_benchmark_run


def full_search_function(model, beam_width, length_penalty, jit_compile):
    """Beam search with every beam run to its end (no early stop), best beam's text."""
    vocabulary = model.target_vocabulary

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def translate(texts):
        # As `Translator.translate_tensors`, with `return_all_beams=True`.
        source_ids = pad_axis_to_bucket(model.encode_sources(texts), 1, SOURCE_BUCKETS)
        limits = tf.minimum(model.default_max_lengths(source_ids), MAX_TRANSLATION_LENGTH)
        first_logits, state = model.start_decoding(source_ids, limits)
        tokens, lengths, _ = decode_with_strategy(
            BeamSearch(
                beam_width, vocabulary.end_id, padding_id=vocabulary.PADDING_ID,
                length_penalty=length_penalty, return_all_beams=True,
            ),
            model.step, first_logits, state,
            max_length=tf.reduce_max(tf.concat([limits, [0]], 0)), seed=0,
            forbidden_ids=[vocabulary.PADDING_ID, vocabulary.UNKNOWN_ID, vocabulary.start_id],
            jit_compile=jit_compile,
        )
        return vocabulary.decode(tokens[:, 0], lengths[:, 0])

    return translate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=pathlib.Path, default=pathlib.Path(DEFAULT_RUN_DIR))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="the first 64 sentences only")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    run = load_benchmark_run(args.run_dir)
    texts = run.heldout_sources[:64] if args.quick else run.heldout_sources
    beam_width, length_penalty = run.config.beam_width, run.config.length_penalty
    print(f"model: {args.run_dir}: {run.describe()}; {len(texts):,} held-out sentences, beam {beam_width}")

    def translate_default(batch):
        return run.model.translate(batch, beam_width=beam_width, length_penalty=length_penalty,
                                   batch_size=args.batch_size)

    def translate_uncompiled(batch):
        with jit_decoding(False):
            return translate_default(batch)

    full = {jit: full_search_function(run.model, beam_width, length_penalty, jit) for jit in (True, False)}

    def full_search(jit):
        def translate(batch):
            return [t.decode("utf-8") for t in full[jit](tf.constant(batch)).numpy().tolist()]
        return translate

    ways = {
        "default": translate_default,
        "uncompiled": translate_uncompiled,
        "full_search": full_search(True),
        "full_search_uncompiled": full_search(False),
    }
    translations, seconds = {}, {}
    for name, translate in ways.items():
        translate(texts[: args.batch_size])  # tracing and compilation, untimed
        start = time.perf_counter()
        translations[name] = [
            t for i in range(0, len(texts), args.batch_size) for t in translate(texts[i : i + args.batch_size])
        ]
        seconds[name] = time.perf_counter() - start
    reference = translations["full_search_uncompiled"]
    identical = {name: sum(a == b for a, b in zip(found, reference)) for name, found in translations.items()}
    support.print_table(
        f"{len(texts):,} sentences in batches of {args.batch_size}, one pass each (not interleaved)",
        f"{'way':<24} {'identical to full_search_uncompiled':>36} {'seconds':>8}",
        [f"{name:<24} {identical[name]:>30,} / {len(texts):,} {seconds[name]:>8.1f}" for name in ways],
    )
    record = {
        **support.run_metadata("beam_search_exactness", args, load_before, started=started),
        "model": run.model_record(args.run_dir),
        "sentences": len(texts),
        "identical_to_full_search_uncompiled": identical,
        "seconds": seconds,
    }
    support.write_results(record, args.output or support.results_path("beam_search_exactness", args.quick))
    if any(count != len(texts) for count in identical.values()):
        sys.exit("some translations differ from the full search")


if __name__ == "__main__":
    main()
