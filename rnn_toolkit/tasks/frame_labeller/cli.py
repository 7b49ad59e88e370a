"""The frame labeller's registration with the command line: `train frame_labeller`,
`label`, and its parts of `export` and `evaluate`.

Imports from rnn_toolkit: cli.options, cli.loading, cli.registration, runs, and this
task's own modules (never another task's).
"""

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from rnn_toolkit.cli import loading
from rnn_toolkit.cli.options import UsageError, absolute_data, int_in_range, option, positive_int, print_line
from rnn_toolkit.cli.registration import TaskCommands, Verb, VerbOption
from rnn_toolkit.runs import config_from_settings
from rnn_toolkit.tasks.frame_labeller.model import CLIP_PREFIX, DIRECTIONS
from rnn_toolkit.tasks.frame_labeller.run import (
    DATA_NAMES,
    FrameLabellerRunConfig,
    data_source_error,
    train_frame_labeller_run,
)

NAME = "frame_labeller"
ENCODERS = ("small_cnn", "efficientnet_lite0")

TRAIN_OPTIONS = (
    option("--train-clips", type=positive_int, metavar="N", help="moving digits: training clips (tfds: the most read)"),
    option("--validation-clips", type=positive_int, metavar="N",
           help="moving digits: clips for early stopping (tfds: the most read)"),
    option("--test-clips", type=positive_int, metavar="N", help="moving digits: held-out clips (tfds: the most read)"),
    option("--frames", type=positive_int, metavar="N", help="frames per clip (the most)"),
    option("--min-frames", type=positive_int, metavar="N",
           help="clip lengths are drawn from [N, --frames] (shorter clips are padded and masked)"),
    option("--frame-size", type=int_in_range(16, 512), metavar="PX", help="side of the square frames the CNN reads"),
    option("--occluder", action=argparse.BooleanOptionalAction,
           help="moving digits pass behind an opaque bar; the digit label stays (the model must remember it)"),
    option("--data-seed", type=int, metavar="N", help="fixes the clips' motion"),
    option("--video-feature", metavar="NAME",
           help="a tfds: dataset's video feature, '/' inside nested features (default: its one video)"),
    option("--label-features", metavar="NAME[,NAME...]",
           help="a tfds: dataset's label features, one label kind each (default: its per-frame ClassLabels, "
           "else its integer [time] tensors, else its clip-level ClassLabels repeated for every frame)"),
    option("--frame-encoder", choices=ENCODERS,
           help="the per-frame CNN: a small CNN trained from scratch, or EfficientNet-Lite0 pretrained on ImageNet"),
    option("--direction", choices=DIRECTIONS,
           help="causal: a forward recurrent stack (can label a live stream); bidirectional: forward and "
           "backward (offline only); none: no recurrence (the frame-only model)"),
    option("--clip-labels", metavar="KIND[,KIND...]",
           help="label kinds to also predict once per clip (many-to-one from the same parts), e.g. digit; "
           "each must stay the same within every clip (not direction: it changes when a digit bounces)"),
    option("--no-baseline", field="baseline", action="store_false", default_help="",
           help="do not train the frame-only baseline on the same split (trained by default, for the table)"),
)

OPTION_HELP = {
    "epochs": "epochs to train; the run stops early when the validation loss stops improving (--patience)",
    "batch_size": "clips per training step",
    "units": "recurrent units per layer and direction",
    "dropout": "dropout on the frame features, between recurrent layers and before the heads",
    "data": "labelled clips: 'moving_digits' (the 5,000 real MNIST digits of a 1.4 MB PyPI wheel, "
    "moving and bouncing, passing behind an occluder; labels: the digit and its direction of motion), "
    "or 'pingus' (the 43 real sprite clips of 23 actions of Debian's pingus-data, 11 MB, chained into "
    "sequences; label: the action; held-out sequences use unseen left-facing clips only), or 'flare' "
    "(the enemies of Debian's flare-game, 123 MB: 2,384 real pre-rendered clips of 36 characters in 8 "
    "directions, chained into sequences of one character and direction; label: the action, 9 of them; "
    "held-out sequences show characters no training sequence shows), or a .csv "
    "table video,frame,label[,label...]: video is a folder of frame images or a video file (.mp4, .avi, "
    ".mkv, .webm, .mov..., decoded with OpenCV up to its last labelled frame) beside the table, frame "
    "its 0-based index, every further column a label kind (split by video: "
    "--validation-fraction, --heldout-fraction), or 'tfds:NAME[/CONFIG]' (a TensorFlow Datasets video "
    "dataset prepared in $TFDS_DATA_DIR or ~/tensorflow_datasets, with per-frame labels: its own "
    "train/validation/test splits, at most --train-clips/--validation-clips/--test-clips each)",
    "patience": "stop after N epochs without a lower validation loss; the best epoch's weights are kept",
    "split_seed": "fixes which digit images (flare: which characters) train, validate and test "
    "(evaluate recomputes them)",
}


def _prepare_config(config):
    error = data_source_error(config.data)
    if error:
        raise UsageError("--data", error)
    if config.min_frames > config.frames:
        raise UsageError("--min-frames", f"must be <= --frames ({config.frames}), got {config.min_frames}")
    # run.json records a table by its absolute path (evaluate finds it from anywhere).
    return dataclasses.replace(config, data=absolute_data(config.data, DATA_NAMES))


# --- export --------------------------------------------------------------------------------


def _recognizes(loaded):
    return loading.signature_takes(loaded, "label_clips", "frames")


def _export(model, info, args):
    from rnn_toolkit.tasks.frame_labeller.export import export_frame_labeller

    return export_frame_labeller(model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite)


# --- Labelling through a run's model or a SavedModel -----------------------------------------


def _labeller(model, loaded):
    """`(kinds, clip_kinds, label)`: `label(frames uint8 [time, h, w, c]) -> {kind: list of
    labels, "clip_<kind>": the clip's label}`."""
    import tensorflow as tf

    if model is not None:
        from rnn_toolkit.data.clip_batches import resize_frames

        def label(frames):
            pixels = resize_frames(tf.constant(frames), model.frame_size)[tf.newaxis]
            logits = model(pixels, training=False)
            labels = {kind: [model.class_names[kind][i] for i in np.argmax(logits[kind][0].numpy(), axis=-1)]
                      for kind in model.label_kinds}
            for kind in model.clip_label_kinds:
                labels[CLIP_PREFIX + kind] = model.clip_class_names[kind][int(np.argmax(logits[CLIP_PREFIX + kind][0]))]
            return labels

        return list(model.label_kinds), list(model.clip_label_kinds), label
    signature = loaded.signatures["serving_default"]
    outputs = signature.structured_outputs
    try:  # the model's order of the label kinds, from assets/labels.json
        labels_file = Path(loaded.assets[0].asset_path.numpy().decode("utf-8"))
        assets = json.loads(labels_file.read_text(encoding="utf-8"))
        kinds, clip_kinds = list(assets["label_kinds"]), list(assets.get("clip_label_kinds", []))
    except (AttributeError, IndexError, OSError, ValueError, KeyError):
        kinds = sorted(key[: -len("_labels")] for key in outputs if key.endswith("_labels"))
        clip_kinds = sorted(key[len(CLIP_PREFIX):] for key in outputs
                            if key.startswith(CLIP_PREFIX) and f"{key}_probabilities" in outputs)

    def label(frames):
        outputs = signature(frames=tf.constant(frames[np.newaxis]))
        labels = {kind: [v.decode("utf-8") for v in outputs[f"{kind}_labels"].numpy()[0]] for kind in kinds}
        for kind in clip_kinds:
            labels[CLIP_PREFIX + kind] = outputs[CLIP_PREFIX + kind].numpy()[0].decode("utf-8")
        return labels

    return kinds, clip_kinds, label


def read_clip(path):
    """uint8 frames `[time, h, w, c]` of a video file (with OpenCV) or a folder of frame
    images (in name order): the readers of the label tables."""
    from rnn_toolkit.data.labelled_clips import VIDEO_SUFFIXES, read_frame_folder, read_video_file

    path = Path(path)
    if path.is_dir():
        reader = read_frame_folder
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        reader = read_video_file
    else:
        raise UsageError("VIDEO_OR_FOLDER", f"no such video file ({', '.join(VIDEO_SUFFIXES)}) or folder of "
                         f"frames: {str(path)!r}")
    try:
        return reader(path)
    except (ValueError, ImportError) as error:
        raise UsageError("VIDEO_OR_FOLDER", str(error).rstrip(".")) from None


def _add_label_arguments(parser):
    parser.add_argument(
        "model", metavar="MODEL",
        help="a frame_labeller run folder (e.g. runs/frame_labeller), or an exported SavedModel: a "
        "version folder or its model folder (the highest version)",
    )
    parser.add_argument(
        "clips", nargs="+", metavar="VIDEO_OR_FOLDER",
        help="video files (.mp4, .avi, .mkv, .webm, .mov..., decoded with OpenCV) or folders of frame images "
        "(one clip each, in name order)",
    )
    parser.add_argument("--csv", metavar="FILE",
                        help="also write video,frame,<kind>...[,clip_<kind>...] rows to FILE (a model with clip "
                        "labels repeats each clip's labels on its rows)")


def _label(args):
    folder = loading.existing_folder(args.model, "MODEL")
    if loading.holds_saved_model(folder):
        path, loaded, _ = loading.load_saved_model(args.model, task=NAME, command="label", option="MODEL")
        model, source = None, f"the SavedModel {path}"
    else:
        model, _ = loading.load_run(args.model, task=NAME, command="label", option="MODEL")
        loaded, source = None, args.model
    kinds, clip_kinds, label = _labeller(model, loaded)
    clip_keys = [CLIP_PREFIX + kind for kind in clip_kinds]
    rows = []
    for clip in args.clips:
        frames = read_clip(clip)
        print(f"Labelling {len(frames):,} frames of {clip} with {source} ...", file=sys.stderr, flush=True)
        labels = label(frames)
        clip_labels = [labels[key] for key in clip_keys]
        for index in range(len(frames)):
            row = [str(clip), str(index)] + [labels[kind][index] for kind in kinds]
            rows.append(row + clip_labels)
            print_line("\t".join(row))
        if clip_keys:  # the whole clip's labels: one line, "clip" in the frame column
            print_line("\t".join([str(clip), "clip", *clip_labels]))
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "frame", *kinds, *clip_keys])
            writer.writerows(rows)
        print(f"Wrote {len(rows):,} rows to {args.csv}", file=sys.stderr)


# --- evaluate ------------------------------------------------------------------------------

EVALUATE_OPTIONS = (
    VerbOption(("--split-seed",), "the split seed of the held-out clips (default: the run's, else 0)",
               {"type": int, "metavar": "N"}),
)

EVALUATE_HELP = (
    "Per-frame accuracy and macro-F1 of every label kind on the held-out clips, rebuilt from\n"
    "  the run's settings (the train defaults for a SavedModel without --run-dir), with the\n"
    "  accuracy on the frames where the digit is hidden; and the accuracy and macro-F1 of\n"
    "  each clip label (--clip-labels) over the clips.\n\n"
    "  rnn-toolkit evaluate runs/frame_labeller\n"
    "  rnn-toolkit evaluate saved_models/frame_labeller --run-dir runs/frame_labeller"
)


def _evaluate(args, source):
    from rnn_toolkit.tasks.frame_labeller.run import (
        format_results,
        frame_scores,
        labels_from_scores,
        load_clips,
        predict_labels,
    )

    config = config_from_settings(FrameLabellerRunConfig, source.info)
    if args.split_seed is not None:
        config = dataclasses.replace(config, split_seed=args.split_seed)
    test = load_clips(config)["test"]
    if source.model is not None:
        scored, predicted = "the run's model", predict_labels(source.model, test)
    else:
        scored = f"the SavedModel {source.saved_path}"
        signature = source.loaded.signatures["label_clips"]
        clip_keys = [CLIP_PREFIX + kind for kind in test.label_kinds
                     if CLIP_PREFIX + kind in signature.structured_outputs]

        def scores(inputs):
            outputs = signature(frames=inputs["frames"], lengths=inputs["lengths"])
            return {key: outputs[f"{key}_probabilities"] for key in (*test.label_kinds, *clip_keys)}

        predicted = labels_from_scores(scores, test, frame_size=config.frame_size, clip_keys=clip_keys,
                                       batch_size=args.batch_size or 32)
    print_line(f"Labelling {len(test):,} held-out clips (split seed {config.split_seed}) with {scored} ...")
    name = source.model.direction if source.model is not None else config.direction
    print_line(format_results({"test": {name: frame_scores(test, predicted)}}))


TASK = TaskCommands(
    name=NAME,
    summary="a frame labeller (a CNN per frame, an RNN across frames, a label per frame)",
    description="Trains a frame labeller on moving digits (real MNIST digits, synthetic motion): a label for\n"
    "every frame (the digit, also while it is hidden; its direction of motion), early-stopping on\n"
    "the validation loss, then trains the frame-only baseline (no recurrence) on the same split and\n"
    "prints both models' per-frame accuracy and macro-F1 on the held-out clips. Besides the shared\n"
    "run files it writes best.weights.h5 and baseline.weights.h5.",
    config=FrameLabellerRunConfig,
    train=train_frame_labeller_run,
    train_options=TRAIN_OPTIONS,
    option_help=OPTION_HELP,
    prepare_config=_prepare_config,
    recognizes=_recognizes,
    signatures="'label_clips'",
    export=_export,
    export_help="serving_default (frames -> labels, probabilities), label_clips (frames, lengths),\n"
    "             video (encoded_frames -> ..., error) and step (frame, state -> labels, state);\n"
    "             with clip labels each also returns clip_<kind> and clip_<kind>_probabilities",
    evaluate=_evaluate,
    evaluate_options=EVALUATE_OPTIONS,
    evaluate_help=EVALUATE_HELP,
    verbs=(
        Verb("label", "label every frame of videos with a trained frame labeller",
             "Labels every frame of video files or folders of frame images with a frame_labeller run\n"
             "folder's model.keras or an exported SavedModel (TensorFlow alone): one line per frame on\n"
             "stdout, VIDEO<TAB>FRAME<TAB>label per kind, and for a model with clip labels a line\n"
             "VIDEO<TAB>clip<TAB>label per clip kind after each clip; --csv also writes them as a table.\n\n"
             "  rnn-toolkit label runs/frame_labeller frames/\n"
             "  rnn-toolkit label saved_models/frame_labeller clip.mp4 --csv labels.csv",
             _add_label_arguments, _label),
    ),
)
