"""Breaks down the cost of one step of the in-graph decoding loop (diagnostic).

`generation_throughput.py` compares whole generations; this script asks where the time
of one generated character goes, for the same GRU 512 character model, by timing
variants of the loop that each remove one cost (milliseconds per generated character,
median of interleaved rounds):

* `generate_<policy>`: `model.generate(...)` as shipped (temperature sampling), for a
  mixed_bfloat16 and a float32 model holding the same weights.
* `bare_loop_<policy>`: a `tf.while_loop` around `model.step` and an argmax only: no
  sampler, no token buffer, no prompt or strings. `generate - bare_loop` is the
  loop's bookkeeping and sampling.
* `cast_only`: a loop that does nothing but cast the GRU kernels from float32 to
  bfloat16, which is what Keras' autocasting does on every step under mixed_bfloat16
  (variables are read, and cast, inside the loop body).
* `hoisted_bfloat16`: the toolkit's `decode` loop with a step function whose weights
  are cast to bfloat16 once, before the loop (the same GRU arithmetic as Keras'
  `GRUCell` with `reset_after=True`; checked against `model.step` below).
* `xla_<policy>`: the toolkit's `decode` loop around `model.step` inside a
  `tf.function(jit_compile=True)` (temperature 1 as a Python number; the prompt and
  strings stay outside XLA).
* `one_step_<policy>`: the TensorFlow tutorial's per-character `tf.function`
  (`generation_throughput.OneStep`), for reference.

Usage (from the repository root):

    .venv/bin/python benchmarks/generation_step_profile.py
    .venv/bin/python benchmarks/generation_step_profile.py --quick

The numbers are written as JSON to `benchmarks/results/`.
"""

import argparse
import json
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Run from a checkout without installing the package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rnn_toolkit  # noqa: E402
from generation_throughput import OneStep, one_step_generate  # noqa: E402
from rnn_toolkit import data  # noqa: E402
from rnn_toolkit.decoding import decode, sample_logits  # noqa: E402

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
QUICK_RESULTS_DIR = pathlib.Path(tempfile.gettempdir()) / "rnn_toolkit_benchmarks"
PROMPT = "ROMEO:"
FORBIDDEN_IDS = [0, 1]  # padding and unknown, as `CharLanguageModel.generate_tensors`


def hoisted_gru_step(model, dtype):
    """A `model.step` twin whose weights are cast to `dtype` once, where it is built.

    Built inside a `tf.function` before the loop, the casts run once per generation
    instead of once per character.
    """
    cell = model.recurrent.recurrent_layers[0].cell
    embeddings = tf.cast(model.embedding.embeddings.value, dtype)
    kernel = tf.cast(cell.kernel.value, dtype)
    recurrent_kernel = tf.cast(cell.recurrent_kernel.value, dtype)
    input_bias, recurrent_bias = tf.unstack(tf.cast(cell.bias.value, dtype))
    head_kernel, head_bias = model.head.kernel.value, model.head.bias.value

    def step(ids, states):
        h = states[0][0]
        x_z, x_r, x_h = tf.split(tf.matmul(tf.gather(embeddings, ids), kernel) + input_bias, 3, -1)
        h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent_kernel) + recurrent_bias, 3, -1)
        z = tf.sigmoid(x_z + h_z)
        r = tf.sigmoid(x_r + h_r)
        h = z * h + (1 - z) * tf.tanh(x_h + r * h_h)
        return tf.matmul(tf.cast(h, tf.float32), head_kernel) + head_bias, [[h]]

    return step


def prompt_pass(model, prompts):
    """The prompt part of `generate_tensors`: last logits and state after the prompt."""
    ids, lengths = model.encode_prompts(prompts)
    mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
    logits, states = model(ids, mask=mask, training=False, return_state=True)
    return tf.gather(logits, lengths - 1, axis=1, batch_dims=1), states


def hoisted_generate(model, dtype):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32)])
    def generate(prompts, max_length, temperature, seed):
        last_logits, states = prompt_pass(model, prompts)

        def sampler(logits, step_seed):
            # Tensor parameters, as `generate()` passes them.
            return sample_logits(logits, step_seed, temperature=temperature,
                                 top_k=tf.constant(0), top_p=tf.constant(1.0))

        tokens, _ = decode(hoisted_gru_step(model, dtype), last_logits, states,
                           max_length=max_length, sampler=sampler, seed=tf.stack([seed, 0]),
                           forbidden_ids=FORBIDDEN_IDS, padding_id=0)
        return model.vocabulary.decode(tokens)

    return generate


def xla_generate(model):
    @tf.function(jit_compile=True)
    def loop(last_logits, states, max_length, seed):
        # Python-number temperature: XLA compiles both branches of a tensor `tf.cond`,
        # and the top-k branch with k = 0 does not compile.
        tokens, _ = decode(model.step, last_logits, states, max_length=max_length,
                           sampler=lambda logits, s: sample_logits(logits, s, temperature=1.0),
                           seed=tf.stack([seed, 0]), forbidden_ids=FORBIDDEN_IDS, padding_id=0)
        return tokens

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32)])
    def generate(prompts, max_length, temperature, seed):
        last_logits, states = prompt_pass(model, prompts)
        return model.vocabulary.decode(loop(last_logits, states, max_length, seed))

    return generate


def bare_loop(model):
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def run(batch_size, num_steps):
        def body(i, ids, states):
            logits, states = model.step(ids, states)
            return i + 1, tf.argmax(logits, -1, output_type=tf.int32), states

        start = (0, tf.fill([batch_size], 5), model.recurrent.get_initial_state(batch_size))
        return tf.while_loop(lambda i, *_: i < num_steps, body, start)[1]

    return run


def cast_only_loop(model):
    cell = model.recurrent.recurrent_layers[0].cell

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def run(num_steps):
        def body(i, total):
            # One element of each cast kept, so the casts cannot be pruned.
            kernel = tf.cast(cell.kernel.value, tf.bfloat16)
            recurrent_kernel = tf.cast(cell.recurrent_kernel.value, tf.bfloat16)
            return i + 1, total + kernel[0, 0] + recurrent_kernel[0, 0]

        return tf.while_loop(lambda i, t: i < num_steps, body, (0, tf.constant(0.0, tf.bfloat16)))[1]

    return run


def check_hoisted_step(model):
    """The hand-written step must match `model.step` (same weights, same precision)."""
    states = model.recurrent.get_initial_state(2)
    ids = tf.constant([5, 9])
    for _ in range(3):
        expected, expected_states = model.step(ids, states)
        got, _ = hoisted_gru_step(model, model.recurrent.compute_dtype)(ids, states)
        states = expected_states
    difference = float(tf.reduce_max(tf.abs(expected - got)))
    if difference > 0.05:
        raise RuntimeError(f"hoisted step differs from model.step by {difference}")
    return difference


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke testing")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--chars", type=int, default=500, help="characters per row (loop variants)")
    parser.add_argument("--one-step-chars", type=int, default=200)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--intra-op-threads", type=int, default=0,
        help="tf.config.threading intra-op threads (0: TensorFlow's default, one per core)",
    )
    parser.add_argument(
        "--inter-op-threads", type=int, default=0,
        help="tf.config.threading inter-op threads (0: TensorFlow's default)",
    )
    parser.add_argument("--output", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.chars, args.one_step_chars, args.units = 2, 30, 10, 64
    return args


def main(argv=None):
    args = parse_args(argv)
    # Before the first TensorFlow op: the thread pools are created once per process.
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    load_before = os.getloadavg()
    text = data.load_corpus("shakespeare")
    vocabulary = data.CharVocabulary.from_text(text)
    keras.utils.set_random_seed(args.seed)
    models = {
        policy: rnn_toolkit.build_char_lm(vocabulary, cell="gru", units=args.units, dtype_policy=policy)
        for policy in ("mixed_bfloat16", "float32")
    }
    models["float32"].set_weights(models["mixed_bfloat16"].get_weights())
    short = {"mixed_bfloat16": "bf16", "float32": "f32"}
    differences = {short[p]: check_hoisted_step(m) for p, m in models.items()}
    print(f"hoisted step vs model.step, max |logit difference|: {differences}")

    def as_strings(batch_size):
        return tf.constant([PROMPT] * batch_size)

    variants = {}
    for policy, model in models.items():
        name = short[policy]
        variants[f"generate_{name}"] = (lambda m: lambda b, s: m.generate(
            [PROMPT] * b, max_length=args.chars, temperature=1.0, seed=s))(model)
        function = bare_loop(model)
        variants[f"bare_loop_{name}"] = (lambda f: lambda b, s: f(b, args.chars).numpy())(function)
        function = xla_generate(model)
        variants[f"xla_{name}"] = (lambda f: lambda b, s: f(
            as_strings(b), args.chars, 1.0, s).numpy())(function)
        one_step = OneStep(model)
        variants[f"one_step_{name}"] = (lambda o: lambda b, s: one_step_generate(
            o, [PROMPT] * b, args.one_step_chars))(one_step)
    function = hoisted_generate(models["mixed_bfloat16"], tf.bfloat16)
    variants["hoisted_bf16"] = lambda b, s: function(as_strings(b), args.chars, 1.0, s).numpy()
    cast_only = cast_only_loop(models["mixed_bfloat16"])
    variants["cast_only"] = lambda b, s: cast_only(args.chars).numpy()
    steps = {v: args.one_step_chars if v.startswith("one_step") else args.chars for v in variants}

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    for batch_size in batch_sizes:
        for run in variants.values():
            run(batch_size, args.seed)  # tracing, XLA compilation, first call
    seconds = {(b, v): [] for b in batch_sizes for v in variants}
    order_rng = random.Random(args.seed)
    for round_index in range(args.rounds):
        order = list(seconds)
        order_rng.shuffle(order)
        for batch_size, variant in order:
            start = time.perf_counter()
            variants[variant](batch_size, args.seed + round_index)
            seconds[(batch_size, variant)].append(time.perf_counter() - start)
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary = {}
    print(f"\nms per generated character (per step), median of {args.rounds} interleaved rounds, "
          f"GRU {args.units}")
    header = f"{'batch':>5} {'variant':<18} {'median':>8} {'min':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    for (batch_size, variant), times in seconds.items():
        ms = [1000 * t / steps[variant] for t in times]
        summary.setdefault(str(batch_size), {})[variant] = {
            "median_ms_per_step": statistics.median(ms), "min_ms_per_step": min(ms),
            "max_ms_per_step": max(ms), "chars_per_row": steps[variant],
        }
        print(f"{batch_size:>5} {variant:<18} {statistics.median(ms):>8.3f} {min(ms):>8.3f} {max(ms):>8.3f}")

    # Smoke-test numbers are not results: they go to the temporary folder.
    output = args.output or (QUICK_RESULTS_DIR if args.quick else RESULTS_DIR) / "generation_step_profile.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "generation_step_profile",
        "command": " ".join([".venv/bin/python"] + sys.argv),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "hoisted_step_max_logit_difference": differences,
        "summary": summary,
        "seconds": {f"{b}:{v}": t for (b, v), t in seconds.items()},
    }
    output.write_text(json.dumps(record, indent=2))
    print(f"\nnumbers written to {output}")


if __name__ == "__main__":
    main()
