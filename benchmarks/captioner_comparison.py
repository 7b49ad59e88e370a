"""Held-out BLEU-1..4 and CIDEr-D of the image captioner: soft attention or none, on each
clip-art data set, against the nearest-neighbour retrieval baseline.

Each variant is a full `rnn-toolkit train captioner` run (`train_captioner_run`) with the
default settings (`CaptionerRunConfig()`: EfficientNet-Lite0 pretrained on ImageNet,
frozen, its 7x7x1280 features cached; LSTM 512 decoder; at most 30 epochs, early stopping
as the run defines it (when written: on the greedy validation CIDEr-D, patience 5); beam 3;
split seed 0) and only what the variant names changed:

    clipart-soft            the default run ("clipart" = Tux Paint stamps + Noto emoji)
    clipart-none            attention="none" (Show and Tell)
    tuxpaint-soft / -none   data="tuxpaint"
    emoji-soft / -none      data="emoji"
    clipart-soft-scratch    image_encoder="small_cnn", image_size=128: a small CNN
                            trained from scratch, jointly with the decoder, on augmented
                            pixels (its CNN trains on every image every epoch: slow)
    scenes-soft / -none     data="emoji-scenes": two emoji per image, captioned with where
                            each one is ("cat face left of rocket"); held-out scenes are
                            new pairs (`rnn_toolkit.data.scenes`)
    <data>-soft-placed      grid_positions="sinusoidal": soft attention over a grid whose
                            cells carry a fixed code of their row and column
    scenes-soft-learned     grid_positions="learned": the code trained with the model,
                            starting from the fixed sines

The split is by near-duplicate group and by source (`split_captioned_images`), so the
Tux Paint test images of `tuxpaint-*` are the Tux Paint test images of `clipart-*` (and
likewise for emoji): the `test_by_source` scores of the clipart runs compare with the
single-source runs on the same images (with a different vocabulary and training set).

Every run writes its own run folder (`<runs>/captioner-<variant>`), so an interrupted
benchmark resumes where it stopped (an interrupted run resumes from its last backup) and
a finished variant is reused (delete its folder to retrain it). A reused run's settings
are compared with the variant's; any difference is printed and recorded.

Reported per variant, from the run's `run.json`: the held-out (`test`) BLEU-1..4 and
CIDEr-D of greedy search, beam search (width 3) and the `retrieval` baseline (the first
reference caption of the training image nearest in mean-pooled encoder features), the
scores by source, `cross_style` (the OpenMoji drawings of the held-out emoji, captioned
greedily and with beam 3), and the training seconds and epochs. Then, per data set,
whether the targets hold: soft attention beats no attention, both beat retrieval, beam
beats greedy (each on BLEU-4 and on CIDEr-D).

The training times of the full runs depend on what else the machine was doing (they
are not interleaved: each is one long run); compare scores, not seconds.

Usage (from the repository root; ~5-15 minutes per frozen-encoder variant on 2 cores,
the from-scratch one longer):

    .venv/bin/python benchmarks/captioner_comparison.py
    .venv/bin/python benchmarks/captioner_comparison.py --variants clipart-soft,clipart-none
    .venv/bin/python benchmarks/captioner_comparison.py --scratch-epochs 12   # cap the slow run
    .venv/bin/python benchmarks/captioner_comparison.py --variants clipart-soft,clipart-none --seeds 0,1,2

`--seeds` trains every variant once per seed (seed 0's run folder is the single-seed
one, `captioner-<variant>-seed<N>` the others'; the split stays the same) and prints the
mean and standard deviation over the seeds: the differences between variants are worth
reading only next to the spread between seeds. The target checks then use the means.
    .venv/bin/python benchmarks/captioner_comparison.py --quick   # smoke test, ~3 minutes

`--quick` trains every variant for 1 epoch on a seeded sample of 300 images with a tiny
decoder, in run folders under the temporary folder (not `runs/`), and writes its JSON
there too.
"""

import argparse
import csv
import dataclasses
import datetime
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import rnn_toolkit
from rnn_toolkit.data.scenes import scene_caption_scores
from rnn_toolkit.metrics import caption_scores
from rnn_toolkit.runs.folder import RunFolder, load_run_model
from rnn_toolkit.tasks.captioner.run import (
    CaptionerRunConfig,
    cached_features,
    format_results,
    load_data,
    split_data,
    train_captioner_run,
)

VARIANTS = {
    "clipart-soft": {},
    "clipart-none": {"attention": "none"},
    "tuxpaint-soft": {"data": "tuxpaint"},
    "tuxpaint-none": {"data": "tuxpaint", "attention": "none"},
    "emoji-soft": {"data": "emoji"},
    "emoji-none": {"data": "emoji", "attention": "none"},
    "clipart-soft-scratch": {"image_encoder": "small_cnn", "image_size": 128},
    "scenes-soft": {"data": "emoji-scenes"},
    "scenes-none": {"data": "emoji-scenes", "attention": "none"},
    # Soft attention over a grid that carries a code of each cell's row and column.
    "clipart-soft-placed": {"grid_positions": "sinusoidal"},
    "tuxpaint-soft-placed": {"data": "tuxpaint", "grid_positions": "sinusoidal"},
    "emoji-soft-placed": {"data": "emoji", "grid_positions": "sinusoidal"},
    "scenes-soft-placed": {"data": "emoji-scenes", "grid_positions": "sinusoidal"},
    "scenes-soft-learned": {"data": "emoji-scenes", "grid_positions": "learned"},
}
SCRATCH = "clipart-soft-scratch"
QUICK_SETTINGS = dict(max_images=300, epochs=1, units=32, embedding_dim=16, sample_every=0)
# Settings that may differ between a reused run and the variant without changing what it
# measures (how often the run folder was backed up).
IGNORED_SETTINGS = ("backup_every", "sample_every")
# Settings added after a run was recorded, with the value every run had before they existed.
EARLIER_DEFAULTS = {"feature_views": 1, "grid_positions": "none"}
MORE_BEAMS_FILE = "more_beams.json"
KEPT_INFO = (
    "status", "train_seconds", "epochs_completed", "resumed_from_epoch", "best_epoch",
    "best_val_cider_d", "best_val_loss", "parameters", "dtype_policy", "data", "split",
    "vocabulary_size", "grid_shape", "test", "test_by_source", "cross_style", "settings",
    "started_at", "finished_at",
)


# The code a fresh run trains with: the captioner is young and changes, so a result file
# says which version of these files its fresh runs used (the package is not versioned per
# commit while they are new).
CODE_FILES = (
    "tasks/captioner/run.py", "tasks/captioner/model.py", "data/caption_batches.py",
    "data/captioned_images.py", "data/clip_art.py", "layers/attention_decoder.py",
    "layers/image_encoders.py", "layers/grid_positions.py", "metrics/captioning.py", "training/callbacks.py",
    "data/word_vocabulary.py", "decoding/loop.py", "runs/driver.py",
)


def code_digest():
    """`{file: sha256[:12]}` of `CODE_FILES` (call it at the start: files may change later)."""
    root = os.path.dirname(rnn_toolkit.__file__)
    digests = {}
    for name in CODE_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                digests[name] = hashlib.sha256(handle.read()).hexdigest()[:12]
    return digests


def code_changed_since(started_at):
    """The `CODE_FILES` modified after a run started (`run.json`'s `started_at`): that run
    trained with another version of them than the one now on disk."""
    try:
        started = datetime.datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return ["(unknown start time)"]
    root = os.path.dirname(rnn_toolkit.__file__)
    return [
        name for name in CODE_FILES
        if os.path.isfile(os.path.join(root, name)) and os.path.getmtime(os.path.join(root, name)) > started
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/benchmarks", help="folder of the run folders")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS),
        help=f"comma-separated variants, trained in this order (default: all: {', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--scratch-epochs", type=int, default=0,
        help=f"cap the epochs of {SCRATCH} at N (0: the default {CaptionerRunConfig.epochs}, "
        "early stopping decides); the cap is recorded in its run.json settings",
    )
    parser.add_argument(
        "--seeds", default="0",
        help="comma-separated training seeds: every variant is trained once per seed (the split "
        "stays seed 0's), and the targets are checked on the means over the seeds",
    )
    parser.add_argument(
        "--beam-widths", default="",
        help="comma-separated beam widths to score as well, on every run's held-out images "
        "(with its model.keras and cached features; e.g. 4 besides the runs' own beam 3)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 300 images, 1 epoch, tiny decoder")
    parser.add_argument("--output", type=Path, default=None, help="result file (default benchmarks/results/captioner_comparison.json)")
    args = parser.parse_args(argv)
    if args.scratch_epochs < 0:
        parser.error("--scratch-epochs must be >= 0")
    try:
        args.seeds = sorted({int(seed) for seed in args.seeds.split(",")})
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if any(seed < 0 for seed in args.seeds):
        parser.error("--seeds must be >= 0")
    try:
        args.beam_widths = sorted({int(width) for width in args.beam_widths.split(",") if width.strip()})
    except ValueError:
        parser.error(f"--beam-widths must be comma-separated integers, got {args.beam_widths!r}")
    if any(width < 2 for width in args.beam_widths):
        parser.error("--beam-widths must be >= 2 (greedy is always scored)")
    return args


def variant_config(name, args, seed=0):
    """The run config of a variant: the defaults with the variant's changes, and `seed`."""
    config = dataclasses.replace(CaptionerRunConfig(), seed=seed, **VARIANTS[name])
    if name == SCRATCH and args.scratch_epochs:
        config = dataclasses.replace(config, epochs=args.scratch_epochs)
    if args.quick:
        config = dataclasses.replace(config, **QUICK_SETTINGS)
    return config


def runs_folder(args):
    if args.quick:  # smoke-test runs are not benchmark runs: keep them out of runs/
        return support.QUICK_RESULTS_DIR / "runs"
    return Path(args.runs)


def setting_differences(recorded, config):
    """`name: recorded -> wanted` for every setting a reused run has otherwise."""
    wanted = dataclasses.asdict(config)
    recorded = {**EARLIER_DEFAULTS, **recorded}
    if config.attention == "none":  # no attended grid: its position code means nothing
        wanted.pop("grid_positions")
    return [
        f"{name}: {recorded.get(name)!r} -> {value!r}"
        for name, value in wanted.items()
        if name not in IGNORED_SETTINGS and recorded.get(name) != value
    ]


def run_name(name, seed):
    """`variant` for seed 0 (the name of the single-seed benchmark), `variant@seedN` else."""
    return name if seed == 0 else f"{name}@seed{seed}"


def run_variant(name, args, code, seed=0):
    """Trains (or resumes, or reuses) one variant with one seed; returns its result record."""
    config = variant_config(name, args, seed)
    run_dir = runs_folder(args) / f"captioner-{name}{'' if seed == 0 else f'-seed{seed}'}"
    folder = RunFolder(run_dir)
    info = folder.read_run_info() if folder.state == "finished" else None
    record = {"run_dir": str(run_dir)}
    if info is not None and info.get("status") == "finished":
        print(f"== {run_name(name, seed)}: reusing the finished run in {run_dir}", flush=True)
        record["reused"] = True
        differences = setting_differences(info.get("settings", {}), config)
        if differences:
            print(f"   WARNING: its settings differ from the variant's: {'; '.join(differences)}")
        record["setting_differences"] = differences
        print(format_results(info), flush=True)
    elif info is not None:
        raise SystemExit(
            f"{run_dir} holds a trained model whose scoring did not finish (status "
            f"{info.get('status')!r}); score it with 'rnn-toolkit evaluate {run_dir}' or delete the folder"
        )
    else:
        state = "resuming" if folder.state == "interrupted" else "training"
        print(f"== {run_name(name, seed)}: {state} in {run_dir}", flush=True)
        started = time.perf_counter()
        _, info = train_captioner_run(config, run_dir, verbose=2)
        record["reused"] = False
        record["code"] = code
        record["wall_seconds"] = time.perf_counter() - started  # it printed its scores
    record.update({key: info.get(key) for key in KEPT_INFO if key in info})
    if config.data == "emoji-scenes":
        record["scene_scores"] = scene_scores(run_dir)
    missing = [width for width in args.beam_widths if f"beam{width}" not in record["test"]]
    if missing:
        record["test"] = {**record["test"], **score_more_beams(run_dir, config, missing)}
    record["code_changed_since_start"] = changed = code_changed_since(info.get("started_at"))
    if changed:
        print(f"   NOTE: changed since this run started: {', '.join(changed)}")
    return record


def scene_scores(run_dir):
    """`scene_caption_scores` of each decoding in the run's `captions.tsv` (both objects
    named, the layout, each object on its side)."""
    with open(Path(run_dir) / "captions.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    references = [row["references"].split(" | ") for row in rows]
    decodings = [name for name in rows[0] if name not in ("image", "references")]
    return {name: scene_caption_scores([row[name] for row in rows], references) for name in decodings}


def scene_rows(results):
    rows = []
    for name, result in results.items():
        for decoding, scores in (result.get("scene_scores") or {}).items():
            sides = scores["places_given_objects"]
            rows.append(
                f"{name:<21} {decoding:<9} {scores['exact']:>6.1%} {scores['both_objects']:>7.1%} "
                f"{scores['layout']:>7.1%} {'-' if sides is None else format(sides, '.1%'):>7}"
            )
    return rows


def score_more_beams(run_dir, config, widths):
    """`{"beam<w>": scores}` of the finished run's model on its held-out images, from the
    frozen encoder's cached features (the run's own split and references). Kept in the run
    folder (`MORE_BEAMS_FILE`, beside its model.keras), so a reused run is scored once."""
    path = Path(run_dir) / MORE_BEAMS_FILE
    model_file = Path(run_dir) / "model.keras"
    # Scores of an earlier model in the same folder (retrained since) do not count.
    current = path.is_file() and path.stat().st_mtime >= model_file.stat().st_mtime
    stored = json.loads(path.read_text()) if current else {}
    if all(f"beam{width}" in stored for width in widths):
        return {f"beam{width}": stored[f"beam{width}"] for width in widths}
    model, _ = load_run_model(run_dir)
    test = split_data(load_data(config), config).test
    features = cached_features(None, test, config)
    references = [list(c) for c in test.captions]
    results = {}
    for width in widths:
        started = time.perf_counter()
        captions = model.caption(features, beam_width=width)
        seconds = time.perf_counter() - started
        results[f"beam{width}"] = {
            **caption_scores(captions, references), "seconds": seconds,
            "images_per_second": len(captions) / max(seconds, 1e-9),
        }
        print(f"   beam {width}: BLEU-4 {results[f'beam{width}']['bleu_4']:.1f}, CIDEr-D "
              f"{results[f'beam{width}']['cider_d']:.1f}", flush=True)
    path.write_text(json.dumps({**stored, **results}, indent=1))
    return results


# --- Report -----------------------------------------------------------------------------


def beam_names(result):
    """The beam searches scored on the test share, narrowest first ("beam3", "beam4")."""
    return sorted((name for name in result["test"] if name.startswith("beam")), key=lambda name: int(name[4:]))


def beam_name(result):
    """The widest beam search scored on the test share: the one the tables show."""
    return widest_beam(result["test"])


def widest_beam(scores):
    """The widest "beam<w>" key of `scores` (None if there is none)."""
    beams = [name for name in scores if name.startswith("beam")]
    return max(beams, key=lambda name: int(name[4:]), default=None)


def score_rows(results):
    rows = []
    for name, result in results.items():
        test, beam = result["test"], beam_name(result)
        cross = result.get("cross_style") or {}
        cross_beam = widest_beam(cross)
        cross_text = (
            f"{cross[cross_beam]['bleu_4']:>6.1f} {cross[cross_beam]['cider_d']:>6.1f}"
            if cross_beam else f"{'-':>6} {'-':>6}"
        )
        rows.append(
            f"{name:<21} {test[beam]['images']:>5} "
            + " ".join(f"{test[d]['bleu_4']:>6.1f} {test[d]['cider_d']:>6.1f}" for d in ("greedy", beam, "retrieval"))
            + f" {cross_text} {result['train_seconds']:>7.0f} {result['epochs_completed']:>3}/{result['best_epoch']:<3}"
        )
    return rows


def bleu_rows(results):
    rows = []
    for name, result in results.items():
        for decoding, scores in result["test"].items():
            rows.append(
                f"{name:<21} {decoding:<9} "
                + " ".join(f"{scores[f'bleu_{n}']:>6.1f}" for n in range(1, 5))
                + f" {scores['cider_d']:>7.1f}"
            )
    return rows


def source_rows(results):
    rows = []
    for name, result in results.items():
        for source, by_decoding in (result.get("test_by_source") or {}).items():
            beam = widest_beam(by_decoding)
            rows.append(
                f"{name:<21} {source:<9} {by_decoding[beam]['images']:>5} "
                + " ".join(
                    f"{by_decoding[d]['bleu_4']:>6.1f} {by_decoding[d]['cider_d']:>6.1f}"
                    for d in ("greedy", beam, "retrieval")
                )
            )
    return rows


def seed_means(results):
    """Per variant, its held-out scores averaged over its seeds' runs: `{variant: {"seeds":
    [...], "test": {decoding: {metric: mean}}, "sd": {decoding: {metric: sd}}}}` (sd over
    the seeds, 0 for one seed; the retrieval baseline does not depend on the seed)."""
    grouped = {}
    for name, result in results.items():
        grouped.setdefault(name.split("@")[0], []).append(result)
    means = {}
    for variant, runs in grouped.items():
        test, sd = {}, {}
        for decoding in runs[0]["test"]:
            test[decoding], sd[decoding] = {}, {}
            for metric in ("bleu_4", "cider_d"):
                values = np.array([run["test"][decoding][metric] for run in runs])
                test[decoding][metric], sd[decoding][metric] = float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0.0)
        means[variant] = {"seeds": [run.get("seed", 0) for run in runs], "test": test, "sd": sd}
    return means


def mean_rows(means):
    rows = []
    for variant, result in means.items():
        beam = beam_name(result)
        rows.append(
            f"{variant:<21} {len(result['seeds']):>5} "
            + " ".join(
                f"{result['test'][d][m]:>5.1f}±{result['sd'][d][m]:<4.1f}"
                for d in ("greedy", beam) for m in ("bleu_4", "cider_d")
            )
            + f" {result['test']['retrieval']['bleu_4']:>5.1f} {result['test']['retrieval']['cider_d']:>6.1f}"
        )
    return rows


def target_checks(results):
    """Per data set (and encoder): does soft beat none, both beat retrieval, beam beat greedy?

    Each comparison on BLEU-4 and on CIDEr-D of the held-out share; models are compared
    at their beam-search scores (the decoding a served model uses). `results` holds one
    record per variant (with several seeds: their means, `seed_means`).
    """
    checks = {}
    for name, result in results.items():
        test = result["test"]
        for beam in beam_names(result):
            for metric in ("bleu_4", "cider_d"):
                checks[f"{name}: {beam} > greedy ({metric})"] = _check(test[beam][metric], test["greedy"][metric])
                checks[f"{name}: {beam} > retrieval ({metric})"] = _check(test[beam][metric], test["retrieval"][metric])
    for data_name in ("clipart", "tuxpaint", "emoji", "scenes"):
        soft = results.get(f"{data_name}-soft")
        # The targets (soft > none), and what the grid's position code adds (not a target).
        comparisons = (
            ("soft > none", soft, results.get(f"{data_name}-none")),
            ("position code > no code", results.get(f"{data_name}-soft-placed"), soft),
        )
        for label, better, worse in comparisons:
            if better is None or worse is None:
                continue
            for decoding in ["greedy", *(b for b in beam_names(better) if b in worse["test"])]:
                for metric in ("bleu_4", "cider_d"):
                    checks[f"{data_name}: {label} ({decoding}, {metric})"] = _check(
                        better["test"][decoding][metric], worse["test"][decoding][metric]
                    )
    return checks


def _check(better, worse):
    """`{"holds": better > worse, "values": [better, worse]}` (scores x100)."""
    return {"holds": bool(better > worse), "values": [better, worse]}


def main(argv=None):
    code = code_digest()  # the files as this process imported them, before any run
    args = parse_args(argv)
    variants = support.chosen_subset(args.variants, list(VARIANTS), "variants")
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {}
    for name in variants:
        for seed in args.seeds:
            key = run_name(name, seed)
            results[key] = run_variant(name, args, code, seed)
            results[key]["seed"] = seed
            results[key]["load_average_after_run"] = os.getloadavg()

    support.print_table(
        "held-out (test) scores x100: BLEU-4 and CIDEr-D (all references per image); beam = the "
        "widest beam scored; cross-style = OpenMoji drawings of held-out emoji, the run's beam",
        f"{'variant':<21} {'imgs':>5} {'greedy':>13} {'beam':>13} {'retrieval':>13} {'cross':>13} "
        f"{'train s':>7} {'ep/best'}",
        [f"{'':<27}" + " ".join(f"{'B4':>6} {'CIDEr':>6}" for _ in range(4))] + score_rows(results),
    )
    support.print_table(
        "held-out BLEU-1..4 and CIDEr-D (x100)",
        f"{'variant':<21} {'decoding':<9} {'BLEU-1':>6} {'BLEU-2':>6} {'BLEU-3':>6} {'BLEU-4':>6} {'CIDEr-D':>7}",
        bleu_rows(results),
    )
    rows = source_rows(results)
    if rows:
        support.print_table(
            "held-out scores by source (BLEU-4, CIDEr-D; the same test images as the single-source runs)",
            f"{'variant':<21} {'source':<9} {'imgs':>5} {'greedy':>13} {'beam':>13} {'retrieval':>13}",
            rows,
        )
    rows = scene_rows(results)
    if rows:
        support.print_table(
            "scene captions: exactly a reference, both objects named, layout right (side by side "
            "or stacked), and of the captions naming both, each object on its side (50 % = chance)",
            f"{'variant':<21} {'decoding':<9} {'exact':>6} {'objects':>7} {'layout':>7} {'sides':>7}",
            rows,
        )
    means = seed_means(results)
    if len(args.seeds) > 1:
        support.print_table(
            f"held-out scores x100, mean ± sd over the seeds {args.seeds}",
            f"{'variant':<21} {'seeds':>5} {'greedy B4':>10} {'greedy CIDEr':>12} {'beam B4':>10} "
            f"{'beam CIDEr':>10} {'retrieval B4, CIDEr'}",
            mean_rows(means),
        )
    checks = target_checks(means)
    print()
    for check, result in checks.items():
        better, worse = result["values"]
        print(f"{'holds' if result['holds'] else 'FAILS'}  {check:<48} {better:6.2f} vs {worse:6.2f}")

    record = support.run_metadata("captioner_comparison", args, load_before, started=started, cpu=support.cpu_model())
    record["code"] = code
    record["variants"] = {name: VARIANTS[name] for name in variants}
    record["results"] = results
    record["seed_means"] = means
    record["target_checks"] = checks
    output = args.output or support.results_path("captioner_comparison", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
