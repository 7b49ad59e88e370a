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

Usage (from the repository root; about 25 minutes per variant on 2 cores):

    .venv/bin/python benchmarks/translator_attention.py
    .venv/bin/python benchmarks/translator_attention.py --quick   # smoke test, 1 epoch on 2,000 pairs
"""

import argparse
import dataclasses
import os
import time
from pathlib import Path

import benchmark_support as support

from rnn_toolkit.run_folder import RunFolder
from rnn_toolkit.translator_run import TranslatorRunConfig, format_results, train_translator_run

VARIANTS = ("none", "additive", "multiplicative")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/benchmarks", help="folder of the run folders")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated attention types")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2,000 pairs, 1 epoch")
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/translator_attention.json)")
    args = parser.parse_args()
    variants = support.chosen_subset(args.variants, VARIANTS, "attention")
    load_before = os.getloadavg()
    started = time.perf_counter()
    config = TranslatorRunConfig()
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


if __name__ == "__main__":
    main()
