"""Probe: does soft attention learn which object is on which side once the grid says where?

On the two-object scenes (`--data emoji-scenes`) the soft-attention captioner names both
objects more often than the no-attention one, yet puts them on their sides no better than
chance (see `captioner_comparison.py`'s "scene captions" table). The frozen encoder's 7 x 7
grid carries no position of its own: a content-based attention cannot ask for "the left
half". This probe adds a fixed 2-D sinusoidal position code (half the channels encode the
row, half the column; amplitude 1, the grid's values are ReLU6 outputs) to every cached grid,
training and test alike, and trains the default soft-attention scenes run on it.

It is a probe, not a library feature: it wraps `rnn_toolkit.tasks.captioner.run.cached_features`
so that the run, its split, its early stopping and its scoring are exactly the benchmark's.
A served model would need the code inside the model (the next step, with a learned or fixed
position embedding on the attended grid).

Usage (from the repository root; ~10 minutes on 2 cores once the scenes' features are cached):

    .venv/bin/python benchmarks/captioner_position_probe.py
"""

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

from rnn_toolkit.data.scenes import scene_caption_scores
from rnn_toolkit.tasks.captioner import run as captioner_run
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, train_captioner_run


def position_code(height, width, channels, amplitude=1.0):
    """float16 `[height, width, channels]`: sines and cosines of the row in the first half of
    the channels, of the column in the second (wavelengths from 2 pi to 200 pi cells)."""
    half = channels // 2
    frequencies = 1.0 / (100.0 ** (np.arange(half // 2) / (half // 2)))

    def axis(count):
        angles = np.arange(count)[:, None] * frequencies[None, :]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # [count, half]

    rows = np.repeat(axis(height)[:, None, :], width, axis=1)
    columns = np.repeat(axis(width)[None, :, :], height, axis=0)
    code = np.concatenate([rows, columns], axis=-1)
    return (amplitude * code[..., :channels]).astype(np.float16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/benchmarks/captioner-scenes-soft-positions")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--output", type=Path, default=None, help="result file (default benchmarks/results/captioner_position_probe.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    load_before, started = os.getloadavg(), time.perf_counter()
    plain = captioner_run.cached_features

    def with_positions(model, images, config, print_fn=print, view=0):
        grids = plain(model, images, config, print_fn, view)
        return grids + position_code(*grids.shape[1:])[None]

    captioner_run.cached_features = with_positions
    config = CaptionerRunConfig(data="emoji-scenes", sample_every=0, seed=args.seed)
    _, info = train_captioner_run(config, args.run_dir, verbose=2)
    with open(Path(args.run_dir) / "captions.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    references = [row["references"].split(" | ") for row in rows]
    results = {}
    for decoding in ("greedy", f"beam{config.beam_width}"):
        results[decoding] = {
            "bleu_4": info["test"][decoding]["bleu_4"], "cider_d": info["test"][decoding]["cider_d"],
            **scene_caption_scores([row[decoding] for row in rows], references),
        }
        scores = results[decoding]
        print(
            f"{decoding:<7} BLEU-4 {scores['bleu_4']:.1f}  CIDEr-D {scores['cider_d']:.1f}  exact "
            f"{scores['exact']:.1%}  both objects {scores['both_objects']:.1%}  layout {scores['layout']:.1%}  "
            f"sides {scores['places_given_objects']:.1%}"
        )
    record = support.run_metadata("captioner_position_probe", args, load_before, started=started)
    record.update(run_dir=args.run_dir, train_seconds=info.get("train_seconds"),
                  epochs_completed=info.get("epochs_completed"), best_epoch=info.get("best_epoch"),
                  results=results)
    support.write_results(record, args.output or support.results_path("captioner_position_probe", False))


if __name__ == "__main__":
    main()
