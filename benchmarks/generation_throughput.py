"""Measures character generation throughput: the in-graph loop against Python loops.

A GRU 512 character language model (embedding 64, `rnn_toolkit.build_char_lm`, briefly
trained on Shakespeare; speed does not depend on the weights) generates text four ways,
all with the same weights and temperature-1 sampling with padding and unknown ids
forbidden:

* `in_graph`: `model.generate(...)`, the toolkit's single `tf.while_loop`
  (`rnn_toolkit.decoding.decode`), string in, string out.
* `saved_model`: the same loop from the exported SavedModel
  (`tf.saved_model.load(path).signatures["generate"]`).
* `in_graph_uncompiled`, `saved_model_uncompiled`: the same two with the loop not
  XLA-compiled (`rnn_toolkit.decoding.jit_decoding(False)`, `export_char_lm(...,
  jit_compile=False)`): what the compilation gains. Every compiled way must return the
  very texts of its uncompiled twin (same seed), or the script fails.
* `one_step`: the TensorFlow text-generation tutorial's way
  (https://www.tensorflow.org/text/tutorials/text_generation): a `tf.function`
  `generate_one_step` (strings -> ids, the model on a `[batch, 1]` sequence with the
  previous state, logits / temperature + mask, `tf.random.categorical`, ids -> strings)
  called once per character from a Python loop. It reuses the model's own embedding,
  Keras GRU layer (called on a length-1 sequence with `initial_state`) and output layer.
* `predict`: the keras-io char-LSTM example's way: a Python loop calling
  `model.predict` on the whole growing sequence for every character and sampling in
  NumPy. The functional model is built from the same layers. Its cost per character
  grows with the text, so it generates fewer characters (`--predict-chars`); that
  flatters it, if anything.

Every timed call is one whole generation (prompt -> text) after an untimed warm-up call
per way and batch size, so tracing and first-call costs are excluded. The ways run
interleaved in a shuffled order every round, so a change in machine load affects them
alike; the summary is the median over rounds of characters per second (generated
characters in all rows / wall time).

Usage (from the repository root):

    .venv/bin/python benchmarks/generation_throughput.py           # the real numbers
    .venv/bin/python benchmarks/generation_throughput.py --quick   # smoke test

The numbers are written as JSON to `benchmarks/results/`.
"""

import argparse
import os
import pathlib
import statistics
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.decoding import jit_decoding

WAYS = ("in_graph", "saved_model", "in_graph_uncompiled", "saved_model_uncompiled", "one_step", "predict")
PROMPT = "ROMEO:"
TEMPERATURE = 1.0


# --- (a) The TensorFlow tutorial's one-step model, on the toolkit model's layers ------


class OneStep(tf.Module):
    """The tutorial's `OneStep`: one character per `tf.function` call.

    As in the tutorial, strings go in and out of every call, the model runs on the
    `[batch, time]` ids of its input (the whole prompt the first time, one character
    after that) from the previous state, and the next id is drawn with
    `tf.random.categorical` from the last logits divided by the temperature, after a
    mask that forbids the padding and unknown ids.
    """

    def __init__(self, model, temperature=TEMPERATURE):
        super().__init__(name="one_step")
        self.vocabulary = model.vocabulary
        self.embedding = model.embedding
        self.gru = model.recurrent.recurrent_layers[0]
        self.dense = model.head
        self.temperature = temperature
        forbidden = [model.vocabulary.PADDING_ID, model.vocabulary.UNKNOWN_ID]
        self.prediction_mask = tf.constant(
            [-float("inf") if i in forbidden else 0.0 for i in range(model.vocabulary.size)]
        )

    def run_model(self, input_ids, states=None):
        x = self.embedding(input_ids)
        # The Keras GRU layer zero-fills a missing initial state, as the tutorial's
        # `self.gru.get_initial_state(x)` does.
        x, states = self.gru(x, initial_state=states, training=False)
        return self.dense(x), states

    @tf.function
    def generate_one_step(self, inputs, states=None):
        input_ids = self.vocabulary.encode(inputs).to_tensor()
        predicted_logits, states = self.run_model(input_ids, states)
        predicted_logits = predicted_logits[:, -1, :]
        predicted_logits = predicted_logits / self.temperature
        predicted_logits = predicted_logits + self.prediction_mask
        predicted_ids = tf.random.categorical(predicted_logits, num_samples=1)
        predicted_chars = self.vocabulary.decode(predicted_ids)
        return predicted_chars, states


def one_step_generate(one_step, prompts, num_chars):
    """The tutorial's driver loop: one `generate_one_step` call per character."""
    states = None
    next_char = tf.constant(prompts)
    result = [next_char]
    for _ in range(num_chars):
        next_char, states = one_step.generate_one_step(next_char, states=states)
        result.append(next_char)
    return [t.decode("utf-8") for t in tf.strings.join(result).numpy().tolist()]


# --- (b) The keras-io example's way: predict() on the whole text per character -------


def build_predict_model(model):
    """A plain functional model (ids -> logits) made of the toolkit model's layers."""
    inputs = keras.Input((None,), dtype="int32")
    x = model.embedding(inputs)
    x = model.recurrent.recurrent_layers[0](x)[0]
    logits = model.head(x)
    return keras.Model(inputs, logits, name="predict_model")


def sample(logits, temperature, rng):
    """keras-io's `sample`: softmax at a temperature, one multinomial draw (NumPy)."""
    logits = np.asarray(logits).astype("float64") / temperature
    probabilities = np.exp(logits - np.max(logits))
    probabilities /= np.sum(probabilities)
    return int(np.argmax(rng.multinomial(1, probabilities, 1)))


def predict_generate(predict_model, vocabulary, prompts, num_chars, rng):
    ids = np.stack([vocabulary.encode(p).numpy() for p in prompts])
    forbidden = [vocabulary.PADDING_ID, vocabulary.UNKNOWN_ID]
    for _ in range(num_chars):
        logits = predict_model.predict(ids, verbose=0)[:, -1, :]
        logits[:, forbidden] = -np.inf
        next_ids = [sample(row, TEMPERATURE, rng) for row in logits]
        ids = np.concatenate([ids, np.asarray(next_ids, ids.dtype)[:, None]], axis=1)
    texts = vocabulary.decode(ids).numpy().tolist()
    return [t.decode("utf-8") for t in texts]


# --- The toolkit's in-graph loop, in process and from the SavedModel -----------------


def in_graph_generate(model, prompts, num_chars, seed):
    return model.generate(
        prompts, max_length=num_chars, sampler="temperature", temperature=TEMPERATURE, seed=seed
    )


def saved_model_generate(signature, prompts, num_chars, seed):
    outputs = signature(
        prompt=tf.constant(prompts),
        max_length=tf.constant(num_chars, tf.int32),
        temperature=tf.constant(TEMPERATURE, tf.float32),
        top_k=tf.constant(0, tf.int32),
        seed=tf.constant(seed, tf.int32),
    )
    return [t.decode("utf-8") for t in outputs["text"].numpy().tolist()]


# --- Setup ---------------------------------------------------------------------------


def build_model(args):
    """A GRU 512 char LM, trained for `--train-steps` steps on Shakespeare windows."""
    keras.utils.set_random_seed(args.seed)
    corpus = support.load_char_corpus("shakespeare")
    model = rnn_toolkit.build_char_lm(
        corpus.vocabulary, cell="gru", units=args.units, embedding_dim=64, dtype_policy=args.dtype_policy
    )
    if args.train_steps:
        batches = support.training_batches(
            corpus, args.train_steps, sequence_length=100, batch_size=64, seed=args.seed
        )
        for inputs, targets in batches:
            loss = model.train_on_batch(inputs, targets, return_dict=True)["loss"]
        print(f"trained {args.train_steps} steps, last training loss {loss:.3f}", flush=True)
    return model


def check_output(way, texts, batch_size, num_chars):
    """Every way must return batch_size texts of prompt + num_chars characters."""
    lengths = {len(t) for t in texts}
    if len(texts) != batch_size or lengths != {len(PROMPT) + num_chars}:
        raise RuntimeError(
            f"{way}: expected {batch_size} texts of {len(PROMPT) + num_chars} characters, "
            f"got {len(texts)} of lengths {sorted(lengths)}"
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke testing")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per way and batch size")
    parser.add_argument("--batch-sizes", default="1,32", help="comma-separated")
    parser.add_argument("--chars", type=int, default=500, help="characters per row: in_graph, saved_model")
    parser.add_argument("--one-step-chars", type=int, default=200, help="characters per row: one_step")
    parser.add_argument("--predict-chars", type=int, default=50, help="characters per row: predict")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of {','.join(WAYS)}")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument(
        "--dtype-policy", default="auto",
        help="build_char_lm dtype_policy ('auto' is mixed_bfloat16 on a CPU with AVX512-BF16)",
    )
    parser.add_argument("--train-steps", type=int, default=20, help="brief training (0: random weights)")
    parser.add_argument("--seed", type=int, default=0)
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.chars, args.one_step_chars, args.predict_chars = 2, 50, 20, 5
        args.units, args.train_steps = 64, 0
    return args


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    ways = support.chosen_subset(args.ways, WAYS, "ways")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    num_chars = {
        "in_graph": args.chars,
        "saved_model": args.chars,
        "in_graph_uncompiled": args.chars,
        "saved_model_uncompiled": args.chars,
        "one_step": args.one_step_chars,
        "predict": args.predict_chars,
    }

    load_before = os.getloadavg()
    model = build_model(args)
    print(f"model: GRU {args.units}, policy {model.dtype_policy_name}, vocabulary {model.vocabulary.size}")
    one_step = OneStep(model)
    predict_model = build_predict_model(model)
    numpy_rng = np.random.default_rng(args.seed)
    scratch = tempfile.TemporaryDirectory()
    signatures = {}
    for jit_compile in (True, False):
        if ("saved_model" if jit_compile else "saved_model_uncompiled") in ways:
            path = rnn_toolkit.export.export_char_lm(
                model, scratch.name, version=1 if jit_compile else 2, jit_compile=jit_compile
            )
            signatures[jit_compile] = tf.saved_model.load(str(path)).signatures["generate"]

    def run(way, batch_size, seed):
        prompts = [PROMPT] * batch_size
        n = num_chars[way]
        if way == "in_graph":
            return in_graph_generate(model, prompts, n, seed)
        if way == "in_graph_uncompiled":
            with jit_decoding(False):
                return in_graph_generate(model, prompts, n, seed)
        if way == "saved_model":
            return saved_model_generate(signatures[True], prompts, n, seed)
        if way == "saved_model_uncompiled":
            return saved_model_generate(signatures[False], prompts, n, seed)
        if way == "one_step":
            return one_step_generate(one_step, prompts, n)
        return predict_generate(predict_model, model.vocabulary, prompts, n, numpy_rng)

    # Untimed warm-up: tracing, graph optimisation, first-call allocations.
    samples = {}
    for batch_size in batch_sizes:
        for way in ways:
            texts = run(way, batch_size, seed=args.seed)
            check_output(way, texts, batch_size, num_chars[way])
            samples.setdefault(way, texts[0])
    for way in ways:
        print(f"  {way:<22} {samples[way]!r}")
    # The switch must not change what is generated.
    for batch_size in batch_sizes:
        for way in ("in_graph", "saved_model"):
            if way in ways and f"{way}_uncompiled" in ways:
                compiled = run(way, batch_size, seed=args.seed)
                if compiled != run(f"{way}_uncompiled", batch_size, seed=args.seed):
                    raise RuntimeError(f"{way}: compiled and uncompiled texts differ at batch {batch_size}")

    seconds = {b: {w: [] for w in ways} for b in batch_sizes}
    pairs = [(b, w) for b in batch_sizes for w in ways]
    for round_index, order in support.interleaved_rounds(pairs, args.rounds, args.seed):
        for batch_size, way in order:
            start = time.perf_counter()
            texts = run(way, batch_size, seed=args.seed + 1 + round_index)
            seconds[batch_size][way].append(time.perf_counter() - start)
            check_output(way, texts, batch_size, num_chars[way])
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary = {}
    for batch_size in batch_sizes:
        summary[batch_size] = {}
        for way in ways:
            rates = [batch_size * num_chars[way] / s for s in seconds[batch_size][way]]
            summary[batch_size][way] = {
                "chars_per_row": num_chars[way],
                **support.median_min_max(rates, "chars_per_s"),
                "median_ms_per_step": 1000 * statistics.median(seconds[batch_size][way]) / num_chars[way],
            }
    ratios = {}
    for batch_size in batch_sizes:
        for fast in ("in_graph", "saved_model", "in_graph_uncompiled", "saved_model_uncompiled"):
            for slow in ("one_step", "predict"):
                if fast in ways and slow in ways:
                    ratios[f"batch{batch_size}:{fast}/{slow}"] = support.median_ratio(
                        summary[batch_size][fast], summary[batch_size][slow], "chars_per_s"
                    )
        for way in ("in_graph", "saved_model"):
            if way in ways and f"{way}_uncompiled" in ways:
                ratios[f"batch{batch_size}:{way}/{way}_uncompiled"] = support.median_ratio(
                    summary[batch_size][way], summary[batch_size][f"{way}_uncompiled"], "chars_per_s"
                )
        if "in_graph" in ways and "saved_model" in ways:
            ratios[f"batch{batch_size}:saved_model/in_graph"] = support.median_ratio(
                summary[batch_size]["saved_model"], summary[batch_size]["in_graph"], "chars_per_s"
            )

    support.print_table(
        f"characters/s (all rows), median of {args.rounds} interleaved rounds; "
        f"GRU {args.units}, {model.dtype_policy_name}",
        f"{'batch':>5} {'way':<22} {'chars/row':>9} {'median':>10} {'min':>10} {'max':>10} {'ms/char-step':>13}",
        [
            f"{batch_size:>5} {way:<22} {s['chars_per_row']:>9} {s['median_chars_per_s']:>10.0f} "
            f"{s['min_chars_per_s']:>10.0f} {s['max_chars_per_s']:>10.0f} {s['median_ms_per_step']:>13.3f}"
            for batch_size in batch_sizes
            for way, s in summary[batch_size].items()
        ],
    )
    support.print_ratios(ratios, name_width=48, value_format="8.1f")

    record = {
        **support.run_metadata("generation_throughput", args, load_before),
        "dtype_policy": model.dtype_policy_name,
        "summary": {str(b): s for b, s in summary.items()},
        "ratios": ratios,
        "seconds": {str(b): s for b, s in seconds.items()},
        "samples": samples,
    }
    output = args.output or support.results_path("generation_throughput", args.quick)
    support.write_results(record, output)
    scratch.cleanup()


if __name__ == "__main__":
    main()
