"""Measures serving latency and throughput of an exported image captioner.

The SavedModel is loaded with plain `tf.saved_model.load` in this process, and every timed
call goes through one of its signatures as a Python serving process would make it: a list
of encoded image bytes goes in (`tf.constant`), NumPy arrays come out (`.numpy()` of every
output), and both conversions are inside the timed call. No `rnn_toolkit` object takes
part in a timed call (the package is used before timing: to export the run's model, to
rebuild its split and to score the served captions).

The model: by default the trained captioner of a run folder (`--run-dir`, default
`runs/benchmarks/captioner-clipart-soft`, the default run of `captioner_comparison.py`),
exported with `rnn_toolkit.export.export_captioner` (the run's beam width) to a temporary
folder; or `--saved-model PATH` (a version folder, or a model folder whose highest
version is taken).

The requests are the run's real held-out test images (`load_data` / `split_data` with the
run's settings: 697 Tux Paint stamps and Noto emoji for the default run) as a server
receives them: the PNG bytes of their files, read once before timing, in a seeded
shuffled order, cycling. Before timing, `serving_default` captions all of them once:
the held-out BLEU-4 / CIDEr-D of the served captions and their agreement with the run's
own beam captions (`captions.tsv`) show it is the trained model and the run's split.

Calls, each at batch 1 and batch 32:

* `serving_default`: beam search of the export's width (3 for the default run);
* `caption` with `beam_width` 1 (greedy search through the beam bookkeeping; the
  SavedModel has no separate greedy sampler) and `max_length` 0 (the model's default).

* Latency: one caller, one call at a time; p50 / p90 / p99 / mean / max over all calls.
* Throughput: the same fixed list of calls issued by `--threads` concurrent caller
  threads and by one caller, in the same round; images/s and the ratio concurrent /
  single. Every concurrent call's outputs are compared with the single caller's for the
  same images (they must be identical), and any exception in a call fails the run.

All phases run interleaved in a shuffled order every round (see `benchmark_support`), after
untimed warm-up calls of each signature and batch size (and one concurrent warm-up).
TensorFlow runs each call's ops on its inter-op and intra-op pools (by default one thread
per core, shared by all caller threads); `--intra-op-threads` and `--inter-op-threads`
change them.

Usage (from the repository root; ~6 minutes on 2 cores):

    .venv/bin/python benchmarks/captioner_serving_latency.py
    .venv/bin/python benchmarks/captioner_serving_latency.py --saved-model saved_models/captioner
    .venv/bin/python benchmarks/captioner_serving_latency.py --quick   # smoke test

`--quick` makes a few calls; without the run folder it first trains a tiny captioner (300
images, 1 epoch) into a temporary folder and says so. The numbers are written as JSON to
`benchmarks/results/` (for `--quick`, to the temporary folder).
"""

import argparse
import csv
import os
import pathlib
import random
import statistics
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.metrics.captioning import caption_scores
from rnn_toolkit.runs import config_from_settings
from rnn_toolkit.runs.folder import RunFolder, load_run_model
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, load_data, split_data, train_captioner_run

DEFAULT_RUN_DIR = "runs/benchmarks/captioner-clipart-soft"
SIGNATURES = ("serve", "greedy")  # serving_default (beam of the export), caption at beam 1
WORKLOADS = ("batch1", "batch32")
PHASES = tuple(f"latency_{s}_{w}" for s in SIGNATURES for w in WORKLOADS) + tuple(
    f"{mode}_{s}_{w}" for s in SIGNATURES for w in WORKLOADS for mode in ("single", "concurrent")
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls, to check that the script works")
    parser.add_argument("--run-dir", type=pathlib.Path, default=pathlib.Path(DEFAULT_RUN_DIR),
                        help="the captioner run whose model is exported and whose test images are the requests")
    parser.add_argument("--saved-model", type=pathlib.Path, default=None,
                        help="serve this captioner SavedModel (version folder, or model folder: its highest "
                        "version) instead of exporting the run's model; the run still gives the requests")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--latency-calls-batch1", type=int, default=200, help="batch-1 calls in all, per signature")
    parser.add_argument("--latency-calls-batch32", type=int, default=40, help="batch-32 calls in all, per signature")
    parser.add_argument("--threads", type=int, default=4, help="concurrent caller threads")
    parser.add_argument("--calls-per-thread-batch1", type=int, default=12,
                        help="batch-1 calls per caller thread and round in the batch1 workloads")
    parser.add_argument("--calls-per-thread-batch32", type=int, default=2,
                        help="batch-32 calls per caller thread and round in the batch32 workloads")
    parser.add_argument("--warmup-calls", type=int, default=3, help="untimed calls per signature and batch size")
    parser.add_argument("--seed", type=int, default=0, help="request order and phase order")
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.latency_calls_batch1, args.latency_calls_batch32 = 2, 8, 2
        args.calls_per_thread_batch1, args.calls_per_thread_batch32, args.warmup_calls = 2, 1, 1
    counts = (args.rounds, args.latency_calls_batch1, args.latency_calls_batch32, args.threads,
              args.calls_per_thread_batch1, args.calls_per_thread_batch32, args.warmup_calls)
    if min(counts) < 1:
        parser.error("counts must be positive")
    return args


# --- The model and the requests ------------------------------------------------------------


def find_run(args, scratch):
    """The run folder that gives the model and the requests (a quick one for `--quick`
    when `--run-dir` holds no finished run)."""
    if RunFolder(args.run_dir).state == "finished":
        return args.run_dir, None
    if not args.quick:
        raise SystemExit(
            f"{args.run_dir} holds no finished captioner run: train it with "
            "'.venv/bin/python benchmarks/captioner_comparison.py --variants clipart-soft', or pass --run-dir"
        )
    run_dir = pathlib.Path(scratch) / "run"
    print(f"No finished run in {args.run_dir}: training a QUICK captioner (300 images, 1 epoch, LSTM 32) "
          f"in {run_dir}. Its numbers are for that tiny model.")
    config = CaptionerRunConfig(max_images=300, epochs=1, units=32, embedding_dim=16, sample_every=0,
                                cross_style="none")
    train_captioner_run(config, run_dir, verbose=0)
    return run_dir, "quick model trained by this script"


def export_model(run_dir, info, scratch):
    """Exports the run's model to the temporary folder; returns the version folder."""
    model, _ = load_run_model(run_dir)
    beam_width = int(info["settings"].get("beam_width", 3))
    path = rnn_toolkit.export.export_captioner(model, pathlib.Path(scratch) / "saved_models", beam_width=beam_width)
    del model  # the timed calls use the SavedModel only
    return path


def run_captions(run_dir):
    """`{image path: the run's beam caption}` from the run's `captions.tsv` (empty if none)."""
    path = pathlib.Path(run_dir) / "captions.tsv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header = rows[0]
    beam = next((i for i, name in enumerate(header) if name.startswith("beam")), None)
    return {} if beam is None else {row[0]: row[beam] for row in rows[1:]}


# --- Calls ----------------------------------------------------------------------------------


def make_calls(loaded):
    """`{"serve": call, "greedy": call}`: encoded images in, NumPy outputs out."""
    serving_default = loaded.signatures["serving_default"]
    caption = loaded.signatures["caption"]

    def serve(images):
        outputs = serving_default(image=tf.constant(images, tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    def greedy(images):
        outputs = caption(
            image=tf.constant(images, tf.string), beam_width=tf.constant(1, tf.int32),
            max_length=tf.constant(0, tf.int32),
        )
        return {key: value.numpy() for key, value in outputs.items()}

    return {"serve": serve, "greedy": greedy}


def workload_batches(workload, images, args, round_index):
    """Each caller thread's list of batches for one round (different images per thread)."""
    batch_size = 1 if workload == "batch1" else 32
    calls = args.calls_per_thread_batch1 if workload == "batch1" else args.calls_per_thread_batch32
    return [
        support.request_batches(images, batch_size, calls, (round_index * args.threads + thread) * calls * batch_size)
        for thread in range(args.threads)
    ]


# --- Main -----------------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory()
    load_before = os.getloadavg()

    run_dir, trained_here = find_run(args, scratch.name)
    info = RunFolder(run_dir).read_run_info()
    config = config_from_settings(CaptionerRunConfig, info)
    test = split_data(load_data(config), config).test
    paths = list(test.images)
    references = {path: list(captions) for path, captions in zip(paths, test.captions)}
    encoded = {path: pathlib.Path(path).read_bytes() for path in paths}  # what a server receives
    print(
        f"requests: the {len(paths):,} held-out test images of {config.data!r} (split seed {config.split_seed}), "
        f"PNG bytes read from their files (mean {statistics.fmean(map(len, encoded.values())) / 1024:.1f} KiB)"
    )

    if args.saved_model is not None:
        path = support.latest_version(args.saved_model)
        if path is None:
            raise SystemExit(f"no SavedModel at {args.saved_model}")
        model_info = {"source": "--saved-model", "path": str(path)}
    else:
        export_start = time.perf_counter()
        path = export_model(run_dir, info, scratch.name)
        model_info = {"source": f"export_captioner of {run_dir}", "path": str(path),
                      "export_seconds": time.perf_counter() - export_start}
    if trained_here:
        model_info["trained"] = trained_here
    model_info.update(run_dir=str(run_dir), run_settings=info["settings"], run_test=info.get("test"))
    loaded = tf.saved_model.load(str(path))  # plain TensorFlow from here on
    calls = make_calls(loaded)

    # The served model on the whole test share (untimed), in the run's order.
    served = []
    for i in range(0, len(paths), 32):
        served += [c.decode("utf-8") for c in calls["serve"]([encoded[p] for p in paths[i : i + 32]])["caption"]]
    scores = caption_scores(served, [references[p] for p in paths])
    recorded = run_captions(run_dir)
    same = sum(recorded.get(p) == c for p, c in zip(paths, served))
    model_info.update(
        served_test_scores=scores,
        served_equal_to_run_captions=same if recorded else None,
        examples=[{"image": os.path.basename(p), "served": c, "run": recorded.get(p), "references": references[p]}
                  for p, c in list(zip(paths, served))[:: max(1, len(paths) // 8)]],
    )
    print(
        f"model: {path}; its serving_default captions of the {len(paths):,} test images: BLEU-4 "
        f"{scores['bleu_4']:.1f}, CIDEr-D {scores['cider_d']:.1f}"
        + (f"; identical to the run's beam captions for {same}/{len(paths)}" if recorded else "")
    )
    support.print_thread_pools()

    order = list(paths)
    random.Random(args.seed).shuffle(order)
    images = [encoded[p] for p in order]

    # Warm-up: first-call allocations at both batch sizes, and from several threads.
    for signature, call in calls.items():
        for batch_size in (1, 32):
            for batch in support.request_batches(images, batch_size, args.warmup_calls):
                call(batch)
    warmup_batches = support.request_batches(images, 1, args.threads, 100)
    support.run_concurrently(calls["serve"], [[batch] for batch in warmup_batches])

    latency = {f"{s}_{w}": [] for s in SIGNATURES for w in WORKLOADS}
    throughput = {phase: [] for phase in PHASES if not phase.startswith("latency")}
    errors, checks = [], {f"{s}_{w}": [0, 0] for s in SIGNATURES for w in WORKLOADS}
    in_all = {"batch1": args.latency_calls_batch1, "batch32": args.latency_calls_batch32}
    calls_done = {key: 0 for key in latency}
    for round_index, phase_order in support.interleaved_rounds(PHASES, args.rounds, args.seed):
        single_outputs = {}
        for phase in support.single_before_concurrent(phase_order):  # its outputs are the reference
            kind, signature, workload = phase.split("_")
            key = f"{signature}_{workload}"
            call = calls[signature]
            if kind == "latency":
                batch_size = 1 if workload == "batch1" else 32
                count = support.calls_in_round(in_all[workload], args.rounds, round_index)
                batches = support.request_batches(images, batch_size, count, calls_done[key] * batch_size)
                latency[key] += support.time_calls(call, batches)
                calls_done[key] += count
                continue
            per_thread = workload_batches(workload, images, args, round_index)
            run, outputs, call_errors = support.throughput_run(kind, call, per_thread, "images")
            errors.extend(call_errors)
            throughput[phase].append(run)
            if kind == "single":
                single_outputs[key] = outputs
            else:
                identical, differing = support.compare_outputs(single_outputs[key], outputs)
                checks[key][0] += identical
                checks[key][1] += differing
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary = {"latency": {}, "throughput": {}, "ratios": {}, "checks": {}}
    for key, values in latency.items():
        batch_size = 1 if key.endswith("batch1") else 32
        summary["latency"][key] = {
            **support.latency_summary(values, (50, 90, 99)),
            "images_per_s_at_mean": batch_size / statistics.fmean(values),
        }
    for phase, runs in throughput.items():
        summary["throughput"][phase] = support.throughput_summary(runs, "images")
    lat = summary["latency"]
    for workload in WORKLOADS:
        summary["ratios"][f"p50 beam/greedy, {workload}"] = lat[f"serve_{workload}"]["p50_ms"] / lat[f"greedy_{workload}"]["p50_ms"]
    for signature in SIGNATURES:
        summary["ratios"][f"images/s batch32/batch1, {signature} (latency phases)"] = (
            lat[f"{signature}_batch32"]["images_per_s_at_mean"] / lat[f"{signature}_batch1"]["images_per_s_at_mean"]
        )
        for workload in WORKLOADS:
            summary["ratios"][f"{signature} {workload}: concurrent/single"] = support.median_ratio(
                summary["throughput"][f"concurrent_{signature}_{workload}"],
                summary["throughput"][f"single_{signature}_{workload}"], "images_per_s",
            )
    for key, (identical, differing) in checks.items():
        summary["checks"][key] = {"calls_compared": identical + differing, "identical": identical, "differing": differing}
    summary["checks"]["errors"] = errors

    names = {"serve": "serving_default (beam)", "greedy": "caption, beam_width 1"}
    support.print_table(
        f"latency per call, one caller ({args.rounds} interleaved rounds)",
        f"{'signature':<23} {'batch':>5} {'calls':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'max ms':>8} {'images/s':>9}",
        [
            f"{names[key.split('_')[0]]:<23} {key.split('_')[1][5:]:>5} {s['calls']:>6} {s['p50_ms']:>8.1f} "
            f"{s['p90_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['mean_ms']:>8.1f} {s['max_ms']:>8.1f} "
            f"{s['images_per_s_at_mean']:>9.1f}"
            for key, s in lat.items()
        ],
    )
    support.print_table(
        f"throughput, {args.threads} concurrent callers vs 1 caller, same calls (median of {args.rounds} rounds; min-max)",
        f"{'signature':<23} {'batch':>5} {'callers':>7} {'calls/round':>11} {'images/s':>9} {'(min-max)':>15}",
        [
            f"{names[phase.split('_')[1]]:<23} {phase.split('_')[2][5:]:>5} "
            f"{args.threads if phase.startswith('concurrent') else 1:>7} {s['calls_per_round']:>11} "
            f"{s['median_images_per_s']:>9.1f} {s['min_images_per_s']:>7.1f}-{s['max_images_per_s']:<7.1f}"
            for phase, s in summary["throughput"].items()
        ],
    )
    support.print_ratios(summary["ratios"], name_width=52, value_format="6.2f")
    print()
    for key, check in summary["checks"].items():
        if key != "errors":
            print(f"{key}: {check['identical']}/{check['calls_compared']} concurrent calls identical to the single caller's")
    print(f"calls that raised: {len(errors)}")

    record = {
        **support.run_metadata(
            "captioner_serving_latency", args, load_before, started=started,
            cpu=support.cpu_model(), **support.thread_pool_sizes(),
        ),
        "model": model_info,
        "requests": {
            "images": len(paths), "source": f"test share of {run_dir}'s split",
            "mean_bytes": statistics.fmean(map(len, encoded.values())),
        },
        "summary": summary,
        "latency_seconds": latency,
        "throughput_runs": throughput,
    }
    output = args.output or support.results_path("captioner_serving_latency", args.quick)
    support.write_results(record, output)
    scratch.cleanup()
    failed = [key for key, (_, differing) in checks.items() if differing]
    if errors or failed:
        raise SystemExit(f"FAILED: {len(errors)} call(s) raised; differing results in {failed}")


if __name__ == "__main__":
    main()
