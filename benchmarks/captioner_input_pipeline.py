"""Is the captioner's tf.data pipeline fast enough? Images/s it delivers against images/s
the training step consumes, for the three ways a captioner trains.

The data is the real default training split (`load_data` / `split_data` of
`CaptionerRunConfig()`: 3,444 Tux Paint stamps and Noto emoji of "clipart", split seed 0)
and its word vocabulary. Pipelines, each `rnn_toolkit.data.caption_batches` at the
settings `train_captioner_run` trains with (batch 64, seed 0, shuffled, one reference
caption drawn per image):

* `features`: the frozen encoder's cached 7x7x1280 grids (float16 in memory, the run's
  feature cache; computed once if missing): the default run's pipeline;
* `pixels224_augment`: PNG files read, decoded, composited and resized to 224 px in a
  parallel `map`, then augmented: the pipeline of `--fine-tune-encoder` (augmentation is
  on by default whenever the encoder trains);
* `pixels128_augment`: the same at 128 px: the from-scratch `small_cnn` pipeline;
* `pixels224`: 224 px without augmentation (for contrast: what augmentation costs).

A pipeline is timed alone: per round a fresh iterator, one untimed batch (start-up), then
`--pipeline-batches` batches pulled as fast as possible (the features pipeline: the rest of
the epoch); images/s counts the images delivered.

Training steps (`model.train_on_batch` on batches of the same shapes held in memory, so
that no pipeline is timed; the models of `run.build_model` with the default settings,
mixed_bfloat16 by "auto"):

* `frozen_soft`: the default captioner (soft attention, LSTM 512) on cached features;
* `finetune_224`: the same with `fine_tune_encoder=True`: EfficientNet-Lite0 trains
  jointly, on 224 px pixels;
* `scratch_128`: `image_encoder="small_cnn"`, `image_size=128`, trained from scratch.

The ratio pipeline / consumption (images/s of the matching pipeline over images/s of the
step) must exceed 1 for the pipeline not to be the bottleneck. A pipeline timed alone has
both cores to itself, while in training its decoding threads share them with the step, so
the script also measures each step FED by its live pipeline (`fed_*`: per round a fresh
iterator, one untimed step, then `--steps` steps each pulling its batch from the iterator,
as `fit` does): fed / in-memory near 1 means the pipeline costs the training nothing.

Every variant runs once per round, in a new shuffled order each round (see
`benchmark_support`); warm-up steps on every held batch come first (tracing excluded).
Reported: median images/s (min-max) and the ratios of medians.

Usage (from the repository root; ~10 minutes on 2 cores):

    .venv/bin/python benchmarks/captioner_input_pipeline.py
    .venv/bin/python benchmarks/captioner_input_pipeline.py --quick   # smoke test

The numbers are written as JSON to `benchmarks/results/` (for `--quick`, to the temporary
folder).
"""

import argparse
import dataclasses
import itertools
import os
import pathlib
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras

from rnn_toolkit.data.caption_batches import DECODE_PARALLEL_CALLS, caption_batches
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, build_model, cached_features, load_data, split_data

PIPELINES = ("features", "pixels224_augment", "pixels128_augment", "pixels224")
STEPS = ("frozen_soft", "finetune_224", "scratch_128")
PAIRS = {"frozen_soft": "features", "finetune_224": "pixels224_augment", "scratch_128": "pixels128_augment"}
STEP_SETTINGS = {
    "frozen_soft": {},
    "finetune_224": {"fine_tune_encoder": True},
    "scratch_128": {"image_encoder": "small_cnn", "image_size": 128},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 rounds of 2 steps: checks that the script works")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the run's, 64)")
    parser.add_argument("--pipeline-batches", type=int, default=16, help="timed batches per pixel pipeline and round")
    parser.add_argument(
        "--steps", default="frozen_soft=12,finetune_224=3,scratch_128=6",
        help="timed training steps per round, per model (in memory and fed alike)",
    )
    parser.add_argument("--held-batches", type=int, default=4, help="batches held in memory per model (cycled)")
    parser.add_argument("--no-fed", action="store_true", help="skip the fed_* variants (steps fed by their pipeline)")
    parser.add_argument("--seed", type=int, default=0, help="order of the variants in the rounds")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    try:
        args.step_counts = {
            name.strip(): int(count) for name, count in (item.split("=") for item in args.steps.split(","))
        }
    except ValueError:
        parser.error("--steps must be NAME=COUNT,... (e.g. frozen_soft=12,finetune_224=3,scratch_128=6)")
    if sorted(args.step_counts) != sorted(STEPS):
        parser.error(f"--steps must give a count for each of {STEPS}")
    if args.quick:
        args.rounds, args.batch_size, args.pipeline_batches, args.held_batches = 2, 16, 4, 2
        args.step_counts = {name: 2 for name in STEPS}
    if min(args.rounds, args.pipeline_batches, args.held_batches, *args.step_counts.values()) < 1:
        parser.error("counts must be positive")
    return args


def make_pipelines(split, config, features, batch_size):
    """The pipelines of the three training paths (and pixels224 without augmentation)."""
    common = dict(batch_size=batch_size, seed=config.seed, max_caption_length=config.max_caption_length)
    train, vocabulary = split.train, split.vocabulary
    return {
        "features": lambda: caption_batches(
            train, vocabulary, image_size=config.image_size, features=features, **common
        ),
        "pixels224_augment": lambda: caption_batches(train, vocabulary, image_size=224, augment=True, **common),
        "pixels128_augment": lambda: caption_batches(train, vocabulary, image_size=128, augment=True, **common),
        "pixels224": lambda: caption_batches(train, vocabulary, image_size=224, augment=False, **common),
    }


def count_traces(model):
    """Makes `model.traces` count the tracings of its training step (its Python
    `train_step` runs only while TensorFlow traces it), so that a timed step that traced
    would show. Call it before the model's first training step."""
    train_step = model.train_step
    model.__dict__["traces"] = 0

    def counted(data):
        model.__dict__["traces"] += 1
        return train_step(data)

    model.__dict__["train_step"] = counted


def time_pipeline(make, batches):
    """Images/s of `batches` batches pulled from a fresh iterator after one untimed batch."""
    iterator = iter(make())
    next(iterator)  # start-up: the first map calls and the shuffle buffer
    images = 0
    start = time.perf_counter()
    for (pixels, _), _ in itertools.islice(iterator, batches):
        images += int(pixels.shape[0])
    seconds = time.perf_counter() - start
    del iterator  # stops its background work before the next variant
    return images / seconds


def time_steps(model, held, steps):
    """Images/s of `steps` train_on_batch calls on the held batches (cycled)."""
    images = 0
    start = time.perf_counter()
    for index in range(steps):
        inputs, targets = held[index % len(held)]
        model.train_on_batch(inputs, targets)
        images += int(inputs[0].shape[0])
    return images / (time.perf_counter() - start)


def time_fed_steps(model, make, steps):
    """Images/s of `steps` train_on_batch calls, each on the next batch of a live pipeline."""
    iterator = iter(make())
    inputs, targets = next(iterator)
    model.train_on_batch(inputs, targets)  # untimed: start-up; the prefetcher fills meanwhile
    images = 0
    start = time.perf_counter()
    for _ in range(steps):
        inputs, targets = next(iterator)
        model.train_on_batch(inputs, targets)
        images += int(inputs[0].shape[0])
    seconds = time.perf_counter() - start
    del iterator
    return images / seconds


def main(argv=None):
    args = parse_args(argv)
    load_before = os.getloadavg()
    started = time.perf_counter()
    config = CaptionerRunConfig()
    batch_size = args.batch_size or config.batch_size
    split = split_data(load_data(config), config)
    print(
        f"training split of {config.data!r}: {len(split.train):,} images, vocabulary {split.vocabulary.size:,}; "
        f"batch {batch_size}; the decoding map runs {DECODE_PARALLEL_CALLS} calls in parallel; {os.cpu_count()} CPUs"
    )

    models = {}
    for name in STEPS:
        keras.utils.set_random_seed(config.seed)
        models[name] = build_model(split, dataclasses.replace(config, **STEP_SETTINGS[name]))
        count_traces(models[name])
    features = cached_features(models["frozen_soft"], split.train, config)  # the run's cache
    pipelines = make_pipelines(split, config, features, batch_size)
    steps_per_epoch = -(-len(split.train) // batch_size)

    # Batches of each model's shapes, held in memory; warm-up: a step on each (tracing).
    held = {}
    for name in STEPS:
        held[name] = list(pipelines[PAIRS[name]]().take(args.held_batches))
        for inputs, targets in held[name]:
            models[name].train_on_batch(inputs, targets)
        print(f"{name}: {models[name].count_params():,} parameters ({models[name].dtype_policy_name}), "
              f"input {tuple(held[name][0][0][0].shape)}; warmed up", flush=True)

    traces_after_warmup = {name: models[name].traces for name in STEPS}
    variants = list(PIPELINES) + [f"step_{name}" for name in STEPS]
    if not args.no_fed:
        variants += [f"fed_{name}" for name in STEPS]
    rates = {variant: [] for variant in variants}
    for round_index, order in support.interleaved_rounds(variants, args.rounds, args.seed):
        for variant in order:
            if variant in PIPELINES:
                batches = steps_per_epoch - 1 if variant == "features" else args.pipeline_batches
                rates[variant].append(time_pipeline(pipelines[variant], batches))
            elif variant.startswith("step_"):
                name = variant[len("step_"):]
                rates[variant].append(time_steps(models[name], held[name], args.step_counts[name]))
            else:
                name = variant[len("fed_"):]
                rates[variant].append(time_fed_steps(models[name], pipelines[PAIRS[name]], args.step_counts[name]))
        print(f"round {round_index + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})", flush=True)

    summary = {variant: support.median_min_max(values, "images_per_s") for variant, values in rates.items()}
    ratios = {}
    for name, pipeline in PAIRS.items():
        ratios[f"{pipeline} / step_{name}"] = support.median_ratio(summary[pipeline], summary[f"step_{name}"], "images_per_s")
    for name in STEPS if not args.no_fed else ():
        ratios[f"fed_{name} / step_{name}"] = support.median_ratio(summary[f"fed_{name}"], summary[f"step_{name}"], "images_per_s")
    ratios["pixels224_augment / pixels224"] = support.median_ratio(
        summary["pixels224_augment"], summary["pixels224"], "images_per_s"
    )

    traces = {name: {"warm_up": traces_after_warmup[name], "timed": models[name].traces - traces_after_warmup[name]}
              for name in STEPS}
    print("\ntracings of the training step, warm-up / timed: "
          + ", ".join(f"{name} {t['warm_up']} / {t['timed']}" for name, t in traces.items()))
    support.print_table(
        f"images/s, median of {args.rounds} interleaved rounds (min-max); batch {batch_size}",
        f"{'variant':<22} {'images/s':>9} {'(min-max)':>17}",
        [
            f"{variant:<22} {s['median_images_per_s']:>9.1f} {s['min_images_per_s']:>8.1f}-{s['max_images_per_s']:<8.1f}"
            for variant, s in summary.items()
        ],
    )
    support.print_ratios(ratios, name_width=36, value_format="7.2f")
    bottlenecks = [pair for pair in PAIRS.values() if ratios[f"{pair} / step_{_step_of(pair)}"] <= 1.0]
    print("\npipeline / consumption > 1 for every training path" if not bottlenecks
          else f"\nTHE PIPELINE IS THE BOTTLENECK for {bottlenecks}")

    record = support.run_metadata(
        "captioner_input_pipeline", args, load_before, started=started,
        decode_parallel_calls=DECODE_PARALLEL_CALLS,
    )
    record["arguments"]["step_counts"] = str(args.step_counts)
    record.update(
        data={"source": config.data, "train_images": len(split.train), "vocabulary_size": split.vocabulary.size,
              "batch_size": batch_size, "steps_per_epoch": steps_per_epoch},
        models={name: {"settings": STEP_SETTINGS[name], "parameters": int(models[name].count_params()),
                       "dtype_policy": models[name].dtype_policy_name} for name in STEPS},
        pairs=PAIRS, traces=traces, results=summary, ratios=ratios, rounds=rates,
        pipeline_not_bottleneck=not bottlenecks,
    )
    output = args.output or support.results_path("captioner_input_pipeline", args.quick)
    support.write_results(record, output)


def _step_of(pipeline):
    return next(name for name, paired in PAIRS.items() if paired == pipeline)


if __name__ == "__main__":
    main()
