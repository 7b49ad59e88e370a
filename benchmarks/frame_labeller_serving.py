"""Serving speed of an exported frame labeller: per-clip latency, frames/s, the streaming
step's latency per frame, and peak memory on a 10,000-frame clip against a 100-frame one.

The SavedModel is the trained causal model of `frame_labeller_comparison.py`'s run folder
(`--run-dir`, default `runs/benchmarks/frame_labeller-causal`), exported with
`rnn_toolkit.export.export_frame_labeller` to a temporary folder and loaded with plain
`tf.saved_model.load`. Every timed call goes through a signature as a serving process
would make it: a NumPy array in (`tf.constant`), NumPy arrays out (`.numpy()`), both
inside the timed call.

Requests: 32-frame moving-digit clips drawn from the run's held-out digit images (64 px,
with the occluder), made once before timing. Before timing, the served labels of these
clips are scored (digit and direction accuracy), which shows the export is the trained
model.

* `serving_default` at batch 1 and batch 8 clips of 32 frames: p50 / p99 latency per call
  and frames/s (one caller).
* `step` at batch 1: latency per frame of a stream, the state carried between calls.
* Peak memory: a fresh process (TensorFlow only) loads the SavedModel, labels one clip of
  100 frames or of 10,000 frames (batch 1), and reports its peak resident memory
  (`ru_maxrss`) and the call's seconds.

The latency phases run interleaved in a shuffled order every round, after warm-up calls.

Usage (from the repository root; ~3 minutes on 2 cores):

    .venv/bin/python benchmarks/frame_labeller_serving.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import tensorflow as tf

from rnn_toolkit.data.moving_digits import mnist_digits, moving_digit_clips, split_digit_images
from rnn_toolkit.export import export_frame_labeller
from rnn_toolkit.runs.folder import load_run_model

MEMORY_SCRIPT = """
import json, resource, sys, time
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
frames = int(sys.argv[2])
clip = np.random.default_rng(0).integers(0, 256, (1, frames, 64, 64, 1), dtype=np.uint8)
start = time.perf_counter()
out = loaded.signatures["serving_default"](frames=tf.constant(clip))
labels = out["labels"].numpy()
seconds = time.perf_counter() - start
print(json.dumps({"frames": frames, "labels": list(labels.shape), "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rnn_toolkit_imported": "rnn_toolkit" in sys.modules}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/benchmarks/frame_labeller-causal")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=8, help="calls per phase and round")
    parser.add_argument("--output", default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    model, info = load_run_model(args.run_dir)
    settings = info["settings"]
    images, labels = mnist_digits()
    test_images = split_digit_images(labels, seed=settings["split_seed"])[2]
    clips = moving_digit_clips(images[test_images], labels[test_images], 64, frames=32,
                               size=settings["frame_size"], seed=12345)
    frames = np.stack(clips.frames)  # [64, 32, 64, 64, 1]
    with tempfile.TemporaryDirectory() as scratch:
        path = export_frame_labeller(model, scratch)
        loaded = tf.saved_model.load(str(path))
        serve, step = loaded.signatures["serving_default"], loaded.signatures["step"]
        state_size = step.structured_input_signature[1]["state"].shape[1]

        served = serve(frames=tf.constant(frames))
        accuracy = {
            kind: float(np.mean(served[f"{kind}_labels"].numpy().astype(str)
                                == np.array(clips.class_names[kind])[np.stack(clips.labels[kind])]))
            for kind in clips.label_kinds
        }
        print(f"served labels of 64 held-out 32-frame clips: accuracy {accuracy}")

        def call_serve(batch):
            return lambda: serve(frames=tf.constant(frames[batch]))["labels"].numpy()

        def call_stream(clip_index):
            def run():
                state = tf.zeros([1, state_size])
                seconds = []
                for t in range(frames.shape[1]):
                    start = time.perf_counter()
                    out = step(frame=tf.constant(frames[clip_index:clip_index + 1, t]), state=state)
                    state = out["state"]
                    out["labels"].numpy()
                    seconds.append(time.perf_counter() - start)
                return seconds
            return run

        for batch in (1, 8):  # warm-up
            call_serve(slice(0, batch))()
        call_stream(0)()
        phases = {"serving_default batch 1": [], "serving_default batch 8": [], "step per frame": []}
        rng = np.random.default_rng(0)
        for _, order in support.interleaved_rounds(list(phases), args.rounds, seed=0):
            for phase in order:
                for _ in range(args.calls):
                    start = int(rng.integers(0, 64 - 8))
                    if phase == "step per frame":
                        phases[phase] += call_stream(start)()
                    else:
                        batch = 1 if phase.endswith(" 1") else 8
                        began = time.perf_counter()
                        call_serve(slice(start, start + batch))()
                        phases[phase].append(time.perf_counter() - began)
        results = {}
        for phase, seconds in phases.items():
            summary = support.latency_summary(seconds)
            if phase.startswith("serving"):
                batch = 1 if phase.endswith(" 1") else 8
                summary["frames_per_second"] = batch * 32 / (summary["mean_ms"] / 1000)
            else:
                summary["frames_per_second"] = 1000 / summary["mean_ms"]
            results[phase] = summary
            print(f"{phase:<24} p50 {summary['p50_ms']:8.1f} ms  p99 {summary['p99_ms']:8.1f} ms  "
                  f"{summary['frames_per_second']:8.0f} frames/s")

        memory = {}
        for length in (100, 10_000):
            result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path), str(length)],
                                    capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                raise SystemExit(result.stderr[-2000:])
            memory[length] = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{length:>6} frames: peak RSS {memory[length]['peak_rss_mb']:.0f} MB, {memory[length]['seconds']:.1f} s")

    record = support.run_metadata("frame_labeller_serving", args, load_before, started=started)
    record.update(run_dir=args.run_dir, served_accuracy=accuracy, latency=results, memory=memory)
    support.write_results(record, Path(args.output) if args.output else support.results_path("frame_labeller_serving", False))


if __name__ == "__main__":
    main()
