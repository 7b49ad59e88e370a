"""Breaks down the cost of one step of the in-graph decoding loop (diagnostic).

`generation_throughput.py` compares whole generations; this script asks where the time
of one generated character goes, for the same GRU 512 character model, by timing
variants of the loop that each remove one cost (milliseconds per generated character,
median of interleaved rounds).

This script found that, under mixed_bfloat16, Keras re-cast every weight at every
generated character; since then `model.step` runs in float32 for every policy, so the
`*_bf16` and `*_f32` loop variants below time the same step (the numbers from before the
fix are kept in benchmarks/README.md):

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
import os
import pathlib
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

import rnn_toolkit
from generation_throughput import OneStep, one_step_generate
from rnn_toolkit.decoding import decode, sample_logits

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
        h = tf.cast(states[0][0], dtype)
        x_z, x_r, x_h = tf.split(tf.matmul(tf.gather(embeddings, ids), kernel) + input_bias, 3, -1)
        h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent_kernel) + recurrent_bias, 3, -1)
        z = tf.sigmoid(x_z + h_z)
        r = tf.sigmoid(x_r + h_r)
        h = z * h + (1 - z) * tf.tanh(x_h + r * h_h)
        return tf.matmul(tf.cast(h, tf.float32), head_kernel) + head_bias, [[h]]

    return step


def prompt_pass(model, prompts, state_dtype=tf.float32):
    """The prompt part of `generate_tensors`: last logits and state after the prompt.

    The state is cast to the dtype the loop's step function keeps it in (`model.step`
    keeps it in float32).
    """
    ids, lengths = model.encode_prompts(prompts)
    mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
    logits, states = model(ids, mask=mask, training=False, return_state=True)
    states = tf.nest.map_structure(lambda s: tf.cast(s, state_dtype), states)
    return tf.gather(logits, lengths - 1, axis=1, batch_dims=1), states


def hoisted_generate(model, dtype):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32)])
    def generate(prompts, max_length, temperature, seed):
        last_logits, states = prompt_pass(model, prompts, state_dtype=dtype)

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

        states = tf.nest.map_structure(
            lambda s: tf.cast(s, tf.float32), model.recurrent.get_initial_state(batch_size)
        )
        start = (0, tf.fill([batch_size], 5), states)
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
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.chars, args.one_step_chars, args.units = 2, 30, 10, 64
    return args


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    load_before = os.getloadavg()
    vocabulary = support.load_char_corpus("shakespeare").vocabulary
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
    for round_index, order in support.interleaved_rounds(seconds, args.rounds, args.seed):
        for batch_size, variant in order:
            start = time.perf_counter()
            variants[variant](batch_size, args.seed + round_index)
            seconds[(batch_size, variant)].append(time.perf_counter() - start)
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary = {}
    rows = []
    for (batch_size, variant), times in seconds.items():
        s = {
            **support.median_min_max([1000 * t / steps[variant] for t in times], "ms_per_step"),
            "chars_per_row": steps[variant],
        }
        summary.setdefault(str(batch_size), {})[variant] = s
        rows.append(
            f"{batch_size:>5} {variant:<18} {s['median_ms_per_step']:>8.3f} "
            f"{s['min_ms_per_step']:>8.3f} {s['max_ms_per_step']:>8.3f}"
        )
    support.print_table(
        f"ms per generated character (per step), median of {args.rounds} interleaved rounds, "
        f"GRU {args.units}",
        f"{'batch':>5} {'variant':<18} {'median':>8} {'min':>8} {'max':>8}",
        rows,
    )

    record = {
        **support.run_metadata(
            "generation_step_profile", args, load_before, more_versions={"numpy": np.__version__}
        ),
        "hoisted_step_max_logit_difference": differences,
        "summary": summary,
        "seconds": {f"{b}:{v}": t for (b, v), t in seconds.items()},
    }
    output = args.output or support.results_path("generation_step_profile", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
