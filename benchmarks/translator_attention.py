"""Held-out BLEU and chrF of the translator without attention, with additive and with
multiplicative attention, each decoded greedily and with beam search.

Each variant is a full `rnn-toolkit train translator` run (`train_translator_run`) with
the default settings (Bible verses en->es, seeded 5 % held-out share of all 31,084 pairs,
training pairs of at most 30 tokens per side, bidirectional LSTM 256 encoder, LSTM 256
decoder, early stopping on validation loss) and only `attention` changed, so all three
see the same split, vocabularies and batches. Every run writes its own run folder
(`<runs>/translator-<attention>`), so an interrupted benchmark resumes where it stopped
and a finished variant is reused (delete its folder to retrain it).

Reported per variant: training seconds and epochs, held-out BLEU / chrF (case-insensitive
sacreBLEU) for greedy and beam 4, BLEU by source length, the gcc out-of-domain scores and
the decoding speed of the evaluation (sentences/s, batches of 64, in process).

The training times of full runs depend on what else the machine was doing. `--speed`
measures the training speed of the three models fairly instead: on the same default
split and batches, each variant (built from the same seed) trains `--speed-steps` steps
after an untimed warm-up, in `--rounds` interleaved rounds (a new order each round), and
the medians give seconds per epoch (252 steps) and the ratios between variants.

Usage (from the repository root; about 25 minutes per variant on 2 cores):

    .venv/bin/python benchmarks/translator_attention.py
    .venv/bin/python benchmarks/translator_attention.py --speed   # ~5 minutes
    .venv/bin/python benchmarks/translator_attention.py --quick   # smoke test, 1 epoch on 2,000 pairs
"""

import argparse
import dataclasses
import os
import time
from pathlib import Path

import benchmark_support as support
import keras

from rnn_toolkit.runs.folder import RunFolder
from rnn_toolkit.tasks.translator.run import (
    TranslatorRunConfig,
    build_model,
    format_results,
    load_data,
    split_data,
    train_translator_run,
    training_batches,
)

VARIANTS = ("none", "additive", "multiplicative")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/benchmarks", help="folder of the run folders")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated attention types")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2,000 pairs, 1 epoch")
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/translator_attention.json)")
    parser.add_argument("--speed", action="store_true", help="measure training speed only (interleaved rounds)")
    parser.add_argument("--speed-steps", type=int, default=60, help="timed training steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --speed")
    args = parser.parse_args()
    variants = support.chosen_subset(args.variants, VARIANTS, "attention")
    load_before = os.getloadavg()
    started = time.perf_counter()
    config = TranslatorRunConfig()
    if args.speed:
        measure_speed(config, variants, args, load_before, started)
        return
    if args.quick:
        config = dataclasses.replace(config, max_pairs=2000, epochs=1, units=32, embedding_dim=32, ood_sentences=50)
    results = {}
    for attention in variants:
        run_dir = f"{args.runs}/translator-{attention}{'-quick' if args.quick else ''}"
        folder = RunFolder(run_dir)
        if folder.state == "finished":
            print(f"== {attention}: reusing the finished run in {run_dir}")
            info = folder.read_run_info()
        else:
            print(f"== {attention}: training in {run_dir}", flush=True)
            _, info = train_translator_run(
                dataclasses.replace(config, attention=attention), run_dir, verbose=2
            )
        print(format_results(info), flush=True)
        results[attention] = {
            key: info.get(key)
            for key in (
                "train_seconds", "epochs_completed", "best_epoch", "best_val_loss", "parameters",
                "dtype_policy", "split", "vocabulary_sizes", "heldout", "out_of_domain", "settings",
            )
        }
        results[attention]["run_dir"] = run_dir

    rows = []
    for attention, result in results.items():
        for decoding, scores in result["heldout"].items():
            rows.append(
                f"{attention:<15} {decoding:<8} {scores['bleu']:>6.2f} {scores['chrf']:>6.2f} "
                f"{result['train_seconds']:>8.0f} {result['epochs_completed']:>6}"
            )
    support.print_table(
        "held-out (case-insensitive sacreBLEU)",
        f"{'attention':<15} {'decoding':<8} {'BLEU':>6} {'chrF':>6} {'train s':>8} {'epochs':>6}",
        rows,
    )
    record = support.run_metadata("translator_attention", args, load_before, started=started)
    record["results"] = results
    output = Path(args.output) if args.output else support.results_path("translator_attention", args.quick)
    support.write_results(record, output)
    print(f"wrote {output}")


def measure_speed(config, variants, args, load_before, started):
    """Seconds per training epoch of each variant, interleaved, on the default batches."""
    data = load_data(config)
    split = split_data(data, config)
    train, _ = training_batches(split, config)
    steps_per_epoch = int(train.cardinality())
    batches = list(train.take(args.speed_steps + 5))  # in memory: the pipeline is not timed
    models = {}
    for attention in variants:
        keras.utils.set_random_seed(config.seed)
        models[attention] = build_model(split, dataclasses.replace(config, attention=attention))
        for inputs, targets in batches[args.speed_steps :]:  # warm-up: tracing excluded
            models[attention].train_on_batch(inputs, targets)
    seconds = {attention: [] for attention in variants}
    for _, order in support.interleaved_rounds(variants, args.rounds, config.seed):
        for attention in order:
            start = time.perf_counter()
            for inputs, targets in batches[: args.speed_steps]:
                models[attention].train_on_batch(inputs, targets)
            seconds[attention].append((time.perf_counter() - start) / args.speed_steps * steps_per_epoch)
    summary = {attention: support.median_min_max(values, "seconds_per_epoch") for attention, values in seconds.items()}
    rows = [
        f"{attention:<15} {result['median_seconds_per_epoch']:>8.1f} "
        f"({result['min_seconds_per_epoch']:.1f}-{result['max_seconds_per_epoch']:.1f})"
        for attention, result in summary.items()
    ]
    support.print_table(
        f"training speed ({steps_per_epoch} steps of {config.batch_size} pairs = one epoch; "
        f"{args.rounds} interleaved rounds of {args.speed_steps} steps)",
        f"{'attention':<15} {'s/epoch':>8} (min-max)",
        rows,
    )
    reference = variants[0]
    for attention in variants[1:]:
        ratio = support.median_ratio(summary[attention], summary[reference], "seconds_per_epoch")
        print(f"{attention} / {reference}: {ratio:.2f}x")
    record = support.run_metadata("translator_attention_speed", args, load_before, started=started)
    record.update(steps_per_epoch=steps_per_epoch, results=summary, rounds=seconds)
    output = Path(args.output) if args.output else support.results_path("translator_attention_speed", False)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
