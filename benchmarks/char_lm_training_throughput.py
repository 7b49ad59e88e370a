"""Measures the training throughput of `build_char_lm` against a plain Keras model.

The toolkit's character LSTM (`rnn_toolkit.build_char_lm`: embedding 64, LSTM 512,
a float32 output layer, Adam, a training step that also measures the pre-clip global
gradient norm and clips by it) is compared with the same architecture written by hand:

    keras.Sequential([Embedding(V, 64), LSTM(512, return_sequences=True), Dense(V)])
    compiled with Adam + SparseCategoricalCrossentropy(from_logits=True)

in two precisions each. Variants:

* `toolkit_auto`: `build_char_lm(vocabulary)`; "auto" is `mixed_bfloat16` on a CPU with
  AVX512-BF16 or AMX, `mixed_float16` on a GPU, else float32.
* `toolkit_float32`: `build_char_lm(vocabulary, dtype_policy="float32")`.
* `plain_float32`: the hand-written model.
* `plain_mixed_bfloat16`: the hand-written model with `dtype="mixed_bfloat16"` on the
  embedding and LSTM and a float32 output layer (as the toolkit does).

All variants train on the same batches of real Shakespeare windows (batch 64, window 100,
from `rnn_toolkit.data.char_windows`, held in memory so that the input pipeline is not
measured), one `train_on_batch` call per step. Throughput is tokens/s =
batch * window * steps / wall time, over blocks of `--steps` steps after `--warmup`
untimed steps per variant (tracing and first-call costs excluded). The variants run
interleaved, in a shuffled order every round, so a change in machine load affects them
alike; the summary is the median over rounds.

With `--loss-check`, the script instead trains `build_char_lm` in float32 and in
mixed_bfloat16 from the same initial weights on the same batches (interleaved chunks)
and reports the held-out loss of each on `char_windows(validation_pieces,
shuffle=False)`, plus the bfloat16-trained weights evaluated in float32.

Usage (from the repository root):

    .venv/bin/python benchmarks/char_lm_training_throughput.py               # throughput
    .venv/bin/python benchmarks/char_lm_training_throughput.py --loss-check  # bf16 loss
    .venv/bin/python benchmarks/char_lm_training_throughput.py --quick       # smoke test

The numbers are written as JSON to `benchmarks/results/`.
"""

import argparse
import os
import pathlib
import statistics
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras

import rnn_toolkit
from rnn_toolkit import data

VARIANTS = ("toolkit_auto", "toolkit_float32", "plain_float32", "plain_mixed_bfloat16")


def build_plain_model(vocabulary_size, policy, embedding_dim, units, learning_rate):
    """The hand-written baseline; `policy` goes to every layer but the output layer."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocabulary_size, embedding_dim, dtype=policy),
            keras.layers.LSTM(units, return_sequences=True, dtype=policy),
            keras.layers.Dense(vocabulary_size, dtype="float32"),
        ],
        name=f"plain_{policy}",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def build_variant(variant, vocabulary, args):
    if variant == "toolkit_auto":
        return rnn_toolkit.build_char_lm(vocabulary, embedding_dim=args.embedding_dim, units=args.units)
    if variant == "toolkit_float32":
        return rnn_toolkit.build_char_lm(
            vocabulary, embedding_dim=args.embedding_dim, units=args.units, dtype_policy="float32"
        )
    policy = "float32" if variant == "plain_float32" else "mixed_bfloat16"
    # The toolkit's default learning rate, so the optimizers do the same work.
    return build_plain_model(vocabulary.size, policy, args.embedding_dim, args.units, 2e-3)


def policy_of(model):
    """The compute policy of the recurrent layer (what sets the speed)."""
    if hasattr(model, "dtype_policy_name"):
        return model.dtype_policy_name
    return model.layers[1].dtype_policy.name


def load_batches(args, count):
    """The Shakespeare corpus and its first `count` training batches, in memory."""
    corpus = support.load_char_corpus("shakespeare")
    batches = support.training_batches(
        corpus, count, sequence_length=args.window, batch_size=args.batch_size, seed=args.seed
    )
    return corpus, batches


def measure_throughput(args):
    variants = support.chosen_subset(args.variants, VARIANTS, "variants")
    corpus, batches = load_batches(args, args.warmup + args.steps)
    vocabulary = corpus.vocabulary
    models = {}
    for variant in variants:
        keras.utils.set_random_seed(args.seed)
        models[variant] = build_variant(variant, vocabulary, args)
        print(f"{variant:<22} policy {policy_of(models[variant])}, "
              f"{models[variant].count_params():,} parameters", flush=True)

    # Untimed warm-up steps: tracing and first-call allocations.
    for variant in variants:
        for inputs, targets in batches[: args.warmup]:
            models[variant].train_on_batch(inputs, targets)

    tokens_per_step = args.batch_size * args.window
    timed = batches[args.warmup :]
    rates = {v: [] for v in variants}
    step_seconds = {v: [] for v in variants}
    for round_index, order in support.interleaved_rounds(variants, args.rounds, args.seed):
        for variant in order:
            model = models[variant]
            start = time.perf_counter()
            for inputs, targets in timed:
                step_start = time.perf_counter()
                # train_on_batch returns NumPy logs, so every step has finished here.
                model.train_on_batch(inputs, targets)
                step_seconds[variant].append(time.perf_counter() - step_start)
            rates[variant].append(tokens_per_step * len(timed) / (time.perf_counter() - start))
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + "  ".join(f"{v}={rates[v][-1]:.0f}" for v in variants),
            flush=True,
        )

    summary = {
        v: {
            "policy": policy_of(models[v]),
            **support.median_min_max(rates[v], "tokens_per_s"),
            "median_step_s": statistics.median(step_seconds[v]),
        }
        for v in variants
    }
    ratios = {}

    def ratio(name, numerator, denominator):
        if numerator in summary and denominator in summary:
            ratios[name] = support.median_ratio(summary[numerator], summary[denominator], "tokens_per_s")

    auto_policy = summary.get("toolkit_auto", {}).get("policy")
    plain_same_as_auto = "plain_mixed_bfloat16" if auto_policy == "mixed_bfloat16" else "plain_float32"
    ratio(f"toolkit_auto / {plain_same_as_auto}", "toolkit_auto", plain_same_as_auto)
    ratio("toolkit_float32 / plain_float32", "toolkit_float32", "plain_float32")
    ratio("toolkit_auto / plain_float32", "toolkit_auto", "plain_float32")
    ratio("toolkit_auto / toolkit_float32", "toolkit_auto", "toolkit_float32")
    ratio("plain_mixed_bfloat16 / plain_float32", "plain_mixed_bfloat16", "plain_float32")

    support.print_table(
        f"training tokens/s (batch {args.batch_size} x window {args.window}), median of "
        f"{args.rounds} interleaved rounds of {args.steps} steps",
        f"{'variant':<22} {'policy':<15} {'median':>9} {'min':>9} {'max':>9} {'step s':>8}",
        [
            f"{v:<22} {s['policy']:<15} {s['median_tokens_per_s']:>9.0f} {s['min_tokens_per_s']:>9.0f} "
            f"{s['max_tokens_per_s']:>9.0f} {s['median_step_s']:>8.3f}"
            for v, s in summary.items()
        ],
    )
    support.print_ratios(ratios, name_width=40, value_format="6.2f")
    return {
        "summary": summary,
        "ratios": ratios,
        "tokens_per_s_per_round": rates,
        "step_seconds": step_seconds,
    }


def check_loss(args):
    """Trains float32 and mixed_bfloat16 toolkit models alike; compares held-out loss."""
    corpus, batches = load_batches(args, args.loss_steps)
    vocabulary = corpus.vocabulary
    validation = data.char_windows(
        corpus.validation_pieces, vocabulary, sequence_length=args.window, batch_size=args.batch_size,
        shuffle=False,
    )
    if args.validation_batches:
        validation = validation.take(args.validation_batches)
    policies = ("float32", "mixed_bfloat16")
    models = {}
    for policy in policies:
        keras.utils.set_random_seed(args.seed)
        models[policy] = rnn_toolkit.build_char_lm(
            vocabulary, embedding_dim=args.embedding_dim, units=args.units, dtype_policy=policy
        )
    # Same starting point: variables are float32 under both policies.
    models["mixed_bfloat16"].set_weights(models["float32"].get_weights())
    initial_loss = models["float32"].evaluate(validation, verbose=0, return_dict=True)["loss"]
    print(f"held-out loss before training: {initial_loss:.4f}", flush=True)

    # Interleaved chunks keep the two runs under the same machine load, which makes
    # their time a second (rougher) throughput comparison.
    train_losses = {p: [] for p in policies}
    seconds = {p: 0.0 for p in policies}
    chunk = max(1, args.loss_chunk)
    for first in range(0, len(batches), chunk):
        for policy in policies:
            start = time.perf_counter()
            for inputs, targets in batches[first : first + chunk]:
                logs = models[policy].train_on_batch(inputs, targets, return_dict=True)
                train_losses[policy].append(float(logs["loss"]))
            seconds[policy] += time.perf_counter() - start
        print(
            f"step {min(first + chunk, len(batches))}/{len(batches)}: "
            + "  ".join(f"{p} train loss {train_losses[p][-1]:.3f}" for p in policies),
            flush=True,
        )

    results = {"initial_validation_loss": initial_loss, "steps": len(batches)}
    for policy in policies:
        loss = models[policy].evaluate(validation, verbose=0, return_dict=True)["loss"]
        results[policy] = {
            "validation_loss": loss,
            "final_train_loss_mean_last_20": statistics.mean(train_losses[policy][-20:]),
            "train_seconds": seconds[policy],
            "train_tokens_per_s": len(batches) * args.batch_size * args.window / seconds[policy],
        }
    # Are the bf16-trained weights as good, whatever the inference precision?
    as_float32 = rnn_toolkit.build_char_lm(
        vocabulary, embedding_dim=args.embedding_dim, units=args.units, dtype_policy="float32"
    )
    as_float32.set_weights(models["mixed_bfloat16"].get_weights())
    results["mixed_bfloat16_weights_evaluated_in_float32"] = as_float32.evaluate(
        validation, verbose=0, return_dict=True
    )["loss"]
    results["validation_loss_difference_bf16_minus_f32"] = (
        results["mixed_bfloat16"]["validation_loss"] - results["float32"]["validation_loss"]
    )
    results["validation_batches"] = int(validation.cardinality())
    results["train_losses"] = train_losses

    support.print_table(
        f"held-out loss (nats/char) after {len(batches)} steps, batch {args.batch_size} x "
        f"window {args.window}, same initial weights and batches "
        f"({results['validation_batches']} validation batches)",
        f"{'training precision':<20} {'held-out loss':>14} {'train loss (last 20)':>21} {'tokens/s':>9}",
        [
            f"{p:<20} {results[p]['validation_loss']:>14.4f} "
            f"{results[p]['final_train_loss_mean_last_20']:>21.4f} {results[p]['train_tokens_per_s']:>9.0f}"
            for p in policies
        ],
    )
    print(f"mixed_bfloat16 weights evaluated in float32: "
          f"{results['mixed_bfloat16_weights_evaluated_in_float32']:.4f}")
    print(f"difference (bf16 - f32): {results['validation_loss_difference_bf16_minus_f32']:+.4f}")
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke testing")
    parser.add_argument(
        "--loss-check", action="store_true",
        help="compare the held-out loss of float32 and mixed_bfloat16 training instead",
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed blocks per variant")
    parser.add_argument("--steps", type=int, default=16, help="training steps per timed block")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}"
    )
    parser.add_argument("--loss-steps", type=int, default=300, help="training steps per precision")
    parser.add_argument("--loss-chunk", type=int, default=25, help="steps per interleaved chunk")
    parser.add_argument(
        "--validation-batches", type=int, default=0, help="evaluate on this many (0: all)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--window", type=int, default=100, help="characters per training window")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup, args.loss_steps, args.loss_chunk = 2, 3, 1, 6, 3
        args.units, args.batch_size, args.window, args.validation_batches = 64, 16, 50, 5
    return args


def main(argv=None):
    args = parse_args(argv)
    load_before = os.getloadavg()
    started = time.perf_counter()
    if args.loss_check:
        name = "char_lm_bf16_loss_check"
        results = check_loss(args)
    else:
        name = "char_lm_training_throughput"
        results = measure_throughput(args)

    record = {
        **support.run_metadata(
            name, args, load_before, started=started,
            bfloat16_cpu=rnn_toolkit.precision.cpu_supports_bfloat16(),
        ),
        **results,
    }
    support.write_results(record, args.output or support.results_path(name, args.quick))


if __name__ == "__main__":
    main()
