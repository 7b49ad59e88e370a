"""Held-out BLEU / chrF of a mixed-precision translator decoded with a float32 step and with its own policy.

Since issue 14 the translator's and captioner's decoding steps run in float32 whatever the
training precision (`AttentionDecoder.step`), so that an XLA-compiled loop and an
uncompiled one pick the same words. This script measures what that does to quality: the
trained translator of `--run-dir` (mixed_bfloat16 for the default run) translates its
held-out verses with greedy and beam search (the run's width and length penalty), the
loop uncompiled both times:

* `float32_step`: the step as it is now;
* `policy_step`: the step in the layers' own compute dtype (bfloat16 for a mixed run), as
  it was before issue 14: the float32 switch (`_in_variable_dtype`) is replaced by a
  no-op and the recurrent step reads its weights through Keras' autocast.

Scores are case-insensitive sacreBLEU BLEU and chrF (`rnn_toolkit.metrics.corpus_scores`),
with the count of translations that differ between the two steps.

Usage (from the repository root):

    .venv/bin/python benchmarks/decoding_step_precision.py [--quick] [--run-dir runs/benchmarks/translator-additive]
"""

import argparse
import contextlib
import os
import pathlib
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import rnn_toolkit
from keras import ops
from rnn_toolkit.decoding import jit_decoding
from rnn_toolkit.layers import attention_decoder
from translator_serving_latency import DEFAULT_RUN_DIR, load_benchmark_run


@contextlib.contextmanager
def policy_step(model):
    """The decoding step in the layers' own compute dtype, as before issue 14."""
    decoder = model._attention_decoder
    recurrent_step = decoder.recurrent.step

    def step_in_policy(inputs, states, full_precision=False):
        return recurrent_step(
            ops.cast(inputs, decoder.compute_dtype), states
        )

    switch = attention_decoder._in_variable_dtype
    attention_decoder._in_variable_dtype = lambda layer: contextlib.nullcontext()
    decoder.recurrent.step = step_in_policy
    try:
        yield
    finally:
        attention_decoder._in_variable_dtype = switch
        del decoder.recurrent.step


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=pathlib.Path, default=pathlib.Path(DEFAULT_RUN_DIR))
    parser.add_argument("--quick", action="store_true", help="the first 64 held-out verses only")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    run = load_benchmark_run(args.run_dir)
    count = 64 if args.quick else len(run.heldout_sources)
    sources, references = run.heldout_sources[:count], run.heldout_targets[:count]
    print(f"model: {args.run_dir}: {run.describe()}; {count:,} held-out verses")
    decodings = {"greedy": {"sampler": "greedy"}, f"beam{run.config.beam_width}": {"beam_width": run.config.beam_width}}
    translations, scores = {}, {}
    for step_name in ("float32_step", "policy_step"):
        # A fresh traced function per step: the model's cache is keyed by the settings only.
        run.model.__dict__.pop("_translate_cache", None)
        context = policy_step(run.model) if step_name == "policy_step" else contextlib.nullcontext()
        with context, jit_decoding(False):
            for decoding, options in decodings.items():
                found = run.model.translate(
                    sources, length_penalty=run.config.length_penalty, batch_size=64, **options
                )
                translations[(step_name, decoding)] = found
                scores[f"{step_name}:{decoding}"] = rnn_toolkit.metrics.corpus_scores(found, references)
        run.model.__dict__.pop("_translate_cache", None)
    differ = {
        decoding: sum(a != b for a, b in zip(translations[("float32_step", decoding)],
                                             translations[("policy_step", decoding)]))
        for decoding in decodings
    }
    support.print_table(
        f"held-out BLEU / chrF, {count:,} verses, {run.model.dtype_policy_name} model",
        f"{'step':<14} {'decoding':<8} {'BLEU':>7} {'chrF':>7}",
        [
            f"{name.split(':')[0]:<14} {name.split(':')[1]:<8} {s['bleu']:>7.2f} {s['chrf']:>7.2f}"
            for name, s in scores.items()
        ],
    )
    for decoding, n in differ.items():
        print(f"{decoding}: {n:,} of {count:,} translations differ between the two steps")
    record = {
        **support.run_metadata("decoding_step_precision", args, load_before, started=started),
        "model": run.model_record(args.run_dir),
        "verses": count,
        "scores": scores,
        "translations_that_differ": differ,
    }
    support.write_results(record, args.output or support.results_path("decoding_step_precision", args.quick))


if __name__ == "__main__":
    main()
