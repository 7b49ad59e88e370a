"""Held-out per-frame accuracy and macro-F1 of the frame labeller: causal recurrent,
bidirectional recurrent and frame-only, on the same moving-digit split.

Each variant is a full `train_frame_labeller_run` with the default settings
(`FrameLabellerRunConfig()`: 2,000 / 300 / 300 clips of 12-20 frames from disjoint MNIST
digit images, 64 px frames, an occluder, a small CNN per frame trained from scratch, LSTM
128, at most 20 epochs, early stopping on the validation loss) and only the direction
changed. The causal run also trains the frame-only baseline (the same CNN and heads, no
recurrence) on the same split, as every run does by default; the bidirectional run skips
it (it would be the same model again). `pingus-causal` trains on the Pingus sequences (600 /
100 / 200 sequences of 12-24 frames at 48 px; held-out sequences chain only clips no training
sequence shows), with its frame-only baseline. `flare-causal` trains on the Flare enemies'
sequences (1,200 / 150 / 300 sequences of 12-20 frames at 64 px, one character seen from one
direction each; held-out sequences show characters no training sequence shows), with its
frame-only baseline. `pingus-bidirectional` and `flare-bidirectional` are the same runs with a
bidirectional stack and no second baseline.

Reported per model and label kind (digit, direction): accuracy and macro-F1 over every real
held-out frame, the digit's accuracy on the frames where it is hidden behind the occluder,
the accuracy at each frame index, and the training time. Finished run folders
(`<runs>/frame_labeller-<variant>`) are reused; delete one to retrain it.

Usage (from the repository root; ~10-25 minutes per variant on 2 cores):

    .venv/bin/python benchmarks/frame_labeller_comparison.py
    .venv/bin/python benchmarks/frame_labeller_comparison.py --variants causal --quick
"""

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

from rnn_toolkit.runs.folder import RunFolder
from rnn_toolkit.tasks.frame_labeller.run import FrameLabellerRunConfig, format_results, train_frame_labeller_run

PINGUS = dict(data="pingus", train_clips=600, validation_clips=100, test_clips=200, frames=24, min_frames=12,
              frame_size=48)
# ~38 steps an epoch: about 10 minutes for each of the two models on 2 cores.
FLARE = dict(data="flare", train_clips=1200, validation_clips=150, test_clips=300, frames=20, min_frames=12,
             frame_size=64)
VARIANTS = {
    "causal": {"direction": "causal"},
    "bidirectional": {"direction": "bidirectional", "baseline": False},
    # The Pingus penguin's real sprite clips, chained; held-out sequences use unseen clips.
    "pingus-causal": {"direction": "causal", **PINGUS},
    # The Flare enemies' real pre-rendered clips, chained; held-out sequences show unseen characters.
    "flare-causal": {"direction": "causal", **FLARE},
    "pingus-bidirectional": {"direction": "bidirectional", "baseline": False, **PINGUS},
    "flare-bidirectional": {"direction": "bidirectional", "baseline": False, **FLARE},
}
QUICK_SETTINGS = dict(train_clips=48, validation_clips=8, test_clips=8, frames=6, min_frames=4, frame_size=32,
                      units=8, epochs=1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/benchmarks", help="folder of the run folders")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny clips and model, 1 epoch")
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/frame_labeller_comparison.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    runs = support.QUICK_RESULTS_DIR / "runs" if args.quick else Path(args.runs)
    results = {}
    for name in support.chosen_subset(args.variants, list(VARIANTS), "variants"):
        config = dataclasses.replace(FrameLabellerRunConfig(), **VARIANTS[name])
        if args.quick:
            config = dataclasses.replace(config, **QUICK_SETTINGS)
        run_dir = runs / f"frame_labeller-{name}"
        if RunFolder(run_dir).state == "finished":
            info = json.loads((run_dir / "run.json").read_text())
            print(f"== {name}: reusing the finished run in {run_dir}")
            print(format_results(info))
        else:
            print(f"== {name}: training in {run_dir}", flush=True)
            _, info = train_frame_labeller_run(config, run_dir, verbose=2)  # prints the table
        results[name] = {key: info.get(key) for key in (
            "settings", "clips", "parameters", "dtype_policy", "epochs_completed", "best_epoch", "best_val_loss",
            "train_seconds", "train_seconds_by_model", "test", "started_at", "finished_at",
        )}
    record = support.run_metadata("frame_labeller_comparison", args, load_before, started=started)
    record["results"] = results
    output = Path(args.output) if args.output else support.results_path("frame_labeller_comparison", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
