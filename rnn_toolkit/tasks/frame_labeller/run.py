"""Training runs of the frame labeller, with its frame-only baseline on the same split.

`train_frame_labeller_run` is what `rnn-toolkit train frame_labeller` runs: build the
clips (by default moving digits made from real MNIST digits, training / validation /
held-out clips from disjoint digit images), train the recurrent labeller with early
stopping on the validation loss (the best epoch's weights kept on disk), then train the
frame-only baseline (the same CNN and head, no recurrence) with the same settings, and
score both on the held-out clips: per label kind, the per-frame accuracy and macro-F1,
the accuracy on each named frame subset (the frames where the digit is hidden), and the
accuracy at each frame index (how the recurrent model locks on as frames arrive); per
clip label kind (`clip_labels`: a label kind that stays the same within every clip, also
predicted once per clip), the accuracy and macro-F1 over the clips.

Besides the files of every run folder it writes `best.weights.h5` (+ `.json`) and
`baseline.weights.h5` (the frame-only model's best weights).
"""

import dataclasses
import time

import keras
import numpy as np

from rnn_toolkit.data.clip_batches import clip_batches
from rnn_toolkit.data.flare import flare
from rnn_toolkit.data.labelled_clips import read_labelled_frames
from rnn_toolkit.data.moving_digits import moving_digits
from rnn_toolkit.data.pingus import pingus
from rnn_toolkit.data.tfds_clips import TFDS_PREFIX, tfds_clip_splits, tfds_video_splits
from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, format_table, train_run
from rnn_toolkit.tasks.frame_labeller.model import CLIP_PREFIX, DIRECTIONS, build_frame_labeller
from rnn_toolkit.training import KeepBestWeights

TASK = "frame_labeller"
BEST_WEIGHTS_FILE = "best.weights.h5"
BASELINE_WEIGHTS_FILE = "baseline.weights.h5"
DATA_NAMES = ("moving_digits", "pingus", "flare")

# A resumed run must rebuild the same clips and model.
_RESUME_SETTINGS = (
    "data", "train_clips", "validation_clips", "test_clips", "frames", "min_frames", "frame_size",
    "occluder", "data_seed", "split_seed", "validation_fraction", "heldout_fraction", "video_feature",
    "label_features", "frame_encoder", "cell", "units", "num_layers", "direction",
    "dropout", "batch_size", "learning_rate", "clip_norm", "precision", "seed", "clip_labels",
)


@dataclasses.dataclass
class FrameLabellerRunConfig(TrainingConfig):
    """Everything that defines a frame-labeller training run (stored in `run.json`)."""

    epochs: int = 20  # at most; early stopping usually ends sooner
    batch_size: int = 32  # clips per step
    learning_rate: float = 1e-3  # Adam
    data: str = "moving_digits"  # "moving_digits" (real MNIST digits, synthetic motion), "pingus" or "flare" (real sprite clips, chained)
    train_clips: int = 2000  # training clips (Pingus, Flare: chained sequences)
    validation_clips: int = 300  # clips for early stopping
    test_clips: int = 300  # held-out clips
    frames: int = 20  # frames per clip (the most)
    min_frames: int = 12  # clip lengths are drawn from [min_frames, frames]
    frame_size: int = 64  # the side of the square frames the model reads
    occluder: bool = True  # moving digits pass behind an opaque bar
    data_seed: int = 0  # fixes the clips' motion (Pingus, Flare: which clips are chained)
    split_seed: int = 0  # fixes which digit images (Flare: characters; a label table: videos) train, validate and test
    validation_fraction: float = 0.15  # a label table: share of its videos used for early stopping
    heldout_fraction: float = 0.15  # a label table: share of its videos held out for the scores
    video_feature: str = ""  # a tfds: dataset's video feature ("": its one video)
    label_features: str = ""  # a tfds: dataset's label features, comma-separated ("": its per-frame ClassLabels)
    frame_encoder: str = "small_cnn"  # the per-frame CNN, trained from scratch
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    units: int = 128  # recurrent units per layer and direction
    num_layers: int = 1  # stacked recurrent layers
    direction: str = "causal"  # "causal" (can stream), "bidirectional" (offline), "none" (frame-only)
    clip_labels: str = ""  # label kinds to also predict once per clip, comma-separated ("digit"); each the same on every frame of a clip
    dropout: float = 0.2  # on frame features, between layers and before the heads
    patience: int = 4  # epochs without a lower validation loss before stopping
    baseline: bool = True  # also train the frame-only model (no recurrence) on the same split


def data_source_error(data):
    """Why `data` names no data source the frame labeller reads (None if it does)."""
    if data in DATA_NAMES or data.endswith(".csv") or data.startswith(TFDS_PREFIX):
        return None
    return f"must be one of {', '.join(DATA_NAMES)}, a video,frame,label .csv table or tfds:NAME[/CONFIG], got {data!r}"


def load_clips(config):
    """`{"train", "validation", "test"}: LabelledClips` for `config.data`."""
    error = data_source_error(config.data)
    if error:
        raise RunSetupError("data", error)
    if config.min_frames > config.frames:
        raise RunSetupError("min_frames", f"must be <= frames ({config.frames}), got {config.min_frames}")
    counts = (config.train_clips, config.validation_clips, config.test_clips)
    try:
        if config.data.endswith(".csv"):
            return split_clips(read_labelled_frames(config.data), config)
        if config.data.startswith(TFDS_PREFIX):
            return load_tfds_clips(config)
        if config.data == "pingus":
            return pingus(counts, min_frames=config.min_frames, max_frames=config.frames, seed=config.data_seed)
        if config.data == "flare":
            # Cut out at most 128 px (the pipeline resizes them anyway): the cache stays small.
            return flare(counts, min_frames=config.min_frames, max_frames=config.frames, seed=config.data_seed,
                         split_seed=config.split_seed, size=min(config.frame_size, 128))
        return moving_digits(
            clips=counts, frames=config.frames, min_frames=config.min_frames, size=max(config.frame_size, 32),
            occluder=config.occluder, seed=config.data_seed, split_seed=config.split_seed,
        )
    except (ValueError, RuntimeError, FileNotFoundError, ImportError) as error:
        raise RunSetupError("data", str(error)) from error


def split_clips(clips, config):
    """A label table's videos split at random (seeded) into training, validation and
    held-out shares; each share gets at least one video."""
    if len(clips) < 3:
        raise ValueError(f"at least 3 videos (training, validation, held-out) are needed; there are {len(clips)}")
    order = np.random.default_rng(config.split_seed).permutation(len(clips))
    test = max(1, int(round(config.heldout_fraction * len(clips))))
    validation = max(1, int(round(config.validation_fraction * len(clips))))
    if test + validation >= len(clips):
        raise ValueError(f"{len(clips)} videos leave none for training after {validation} validation and {test} held out")
    return {
        "train": clips.subset(order[test + validation:]),
        "validation": clips.subset(order[test:test + validation]),
        "test": clips.subset(order[:test]),
    }


VALIDATION_SPLITS = ("validation", "valid", "val", "dev")


def load_tfds_clips(config):
    """A `tfds:NAME[/CONFIG]` dataset's clips, at most the config's clip counts of each share.

    The dataset's own train, validation and test splits are used; a missing validation or
    held-out share is drawn at random (seeded by `split_seed`) from the training split:
    its clip count, or its fraction (`validation_fraction`, `heldout_fraction`) of a
    train split shorter than the counts ask for; a dataset without a train split
    (`moving_mnist` has only test) is pooled and split by `split_clips`."""
    name = config.data[len(TFDS_PREFIX):]
    if not name or ":" in name:
        raise ValueError(
            f"{config.data!r}: the frame labeller takes tfds:NAME or tfds:NAME/CONFIG (no split: it uses the "
            "dataset's train, validation and test splits)"
        )
    options = dict(
        video_feature=config.video_feature or None,
        label_features=[path.strip() for path in config.label_features.split(",") if path.strip()] or None,
    )
    wanted = {"train": config.train_clips, "validation": config.validation_clips, "test": config.test_clips}
    try:
        available = tfds_video_splits(name)
    except FileNotFoundError as error:  # the command line has no data_dir: TFDS reads it from the environment
        raise FileNotFoundError(f"{error} From the command line, set TFDS_DATA_DIR to the folder holding it.") from None
    if "train" not in available:
        return split_clips(tfds_clip_splits(name, {"all": sum(wanted.values())}, **options)["all"], config)
    own = {"validation": next((s for s in VALIDATION_SPLITS if s in available), None),
           "test": "test" if "test" in available else None}
    drawn = [part for part, split in own.items() if split is None]
    splits = {split: wanted[part] for part, split in own.items() if split is not None}
    splits["train"] = wanted["train"] + sum(wanted[part] for part in drawn)
    read = tfds_clip_splits(name, splits, **options)
    parts = {part: read[split] for part, split in own.items() if split is not None}
    train = read["train"]
    order = np.random.default_rng(config.split_seed).permutation(len(train))
    fractions = {"validation": config.validation_fraction, "test": config.heldout_fraction}
    start = 0
    for part in drawn:
        share = wanted[part] if len(train) >= splits["train"] else min(
            wanted[part], max(1, round(fractions[part] * len(train))))
        parts[part], start = train.subset(order[start:start + share]), start + share
    if start >= len(train):
        raise ValueError(f"the train split's {len(train)} clips leave none for training after the drawn "
                         f"{' and '.join(drawn)} clips")
    return {"train": train.subset(order[start:]), "validation": parts["validation"], "test": parts["test"]}


def clip_label_kinds(config):
    """The label kinds of `config.clip_labels` ("digit, action" -> ("digit", "action"))."""
    return tuple(dict.fromkeys(kind.strip() for kind in config.clip_labels.split(",") if kind.strip()))


def check_clip_labels(config, data):
    """Raises `RunSetupError("clip_labels", ...)` unless every kind of `config.clip_labels`
    is a label kind of the clips `data` (`{part: LabelledClips}`) that stays the same on
    every frame of each clip."""
    kinds = data["train"].label_kinds
    for kind in clip_label_kinds(config):
        if kind not in kinds:
            raise RunSetupError("clip_labels", f"names {kind!r}, which is no label kind of the clips ({', '.join(kinds)})")
        for part, clips in data.items():
            try:
                clips.clip_labels(kind)
            except ValueError as error:
                raise RunSetupError(
                    "clip_labels", f"takes label kinds that stay the same within every clip: {error} (in the {part} clips)"
                ) from None


def build_model(class_names, config, direction=None):
    clip_class_names = {kind: class_names[kind] for kind in clip_label_kinds(config)}
    return build_frame_labeller(
        class_names, frame_encoder=config.frame_encoder, frame_size=config.frame_size,
        cell=config.cell, units=config.units, num_layers=config.num_layers,
        direction=direction or config.direction, dropout=config.dropout,
        learning_rate=config.learning_rate, clip_norm=config.clip_norm or None,
        dtype_policy=config.precision, clip_class_names=clip_class_names or None,
    )


def predict_labels(model, clips, batch_size=32):
    """`{kind: per-clip int arrays [time]}`: the most likely class of every real frame; and
    for a model with clip heads, `{"clip_<kind>": int array [clips]}`: of every clip."""
    return labels_from_scores(
        lambda inputs: model(inputs, training=False), clips, frame_size=model.frame_size,
        clip_keys=[CLIP_PREFIX + kind for kind in model.clip_label_kinds], batch_size=batch_size,
    )


def labels_from_scores(scores, clips, *, frame_size, clip_keys=(), batch_size=32):
    """`predict_labels` for any scorer: `scores(inputs)` takes a batch of `clip_batches`
    inputs and returns `{kind: [batch, time, classes]}` for every label kind of `clips` and
    `{key: [batch, classes]}` for each of `clip_keys` (logits or probabilities: only their
    argmax counts). An exported model's `label_clips` signature is one (see `evaluate`)."""
    predicted = {kind: [] for kind in (*clips.label_kinds, *clip_keys)}
    for inputs, _ in clip_batches(clips, batch_size=batch_size, frame_size=frame_size, shuffle=False):
        outputs = scores(inputs)
        lengths = inputs["lengths"].numpy()
        for kind in clips.label_kinds:
            best = np.argmax(np.asarray(outputs[kind]), axis=-1)
            predicted[kind].extend(row[:length] for row, length in zip(best, lengths))
        for key in clip_keys:
            predicted[key].extend(np.argmax(np.asarray(outputs[key]), axis=-1))
    return {key: np.array(values, np.int64) if key in clip_keys else values for key, values in predicted.items()}


def macro_f1(truth, predicted, classes):
    """The mean over classes present in `truth` or `predicted` of each class' F1."""
    scores = []
    for label in range(classes):
        true_positive = np.sum((predicted == label) & (truth == label))
        support, claimed = np.sum(truth == label), np.sum(predicted == label)
        if support == 0 and claimed == 0:
            continue
        scores.append(2 * true_positive / (support + claimed))
    return float(np.mean(scores)) if scores else 0.0


def frame_scores(clips, predicted):
    """Per label kind: accuracy and macro-F1 over every real frame, accuracy on each subset
    of `clips.subsets`, and accuracy at each frame index (`by_frame`: a list, None where
    no clip is that long). Per clip label in `predicted` (`clip_<kind>`: one class per
    clip), the accuracy and macro-F1 over the clips, under that key."""
    scores = {}
    longest = int(clips.lengths.max())
    for kind, names in clips.class_names.items():
        truth = np.concatenate(clips.labels[kind])
        guess = np.concatenate(predicted[kind])
        entry = {"accuracy": float(np.mean(truth == guess)), "macro_f1": macro_f1(truth, guess, len(names)),
                 "frames": int(len(truth))}
        for subset, flags in clips.subsets.items():
            chosen = np.concatenate(flags)
            entry[f"{subset}_accuracy"] = float(np.mean(truth[chosen] == guess[chosen])) if chosen.any() else None
            entry[f"{subset}_frames"] = int(chosen.sum())
        by_frame = []
        for t in range(longest):
            right = [p[t] == y[t] for p, y in zip(predicted[kind], clips.labels[kind]) if len(y) > t]
            by_frame.append(float(np.mean(right)) if right else None)
        entry["by_frame"] = by_frame
        scores[kind] = entry
    for key, guess in predicted.items():
        if key in clips.class_names:
            continue
        kind = key[len(CLIP_PREFIX):]
        truth, guess = clips.clip_labels(kind), np.asarray(guess)
        scores[key] = {"accuracy": float(np.mean(truth == guess)),
                       "macro_f1": macro_f1(truth, guess, len(clips.class_names[kind])), "clips": int(len(truth))}
    return scores


class FrameLabellerRun(TaskRun):
    """The frame labeller's part of a training run (see `rnn_toolkit.runs.train_run`)."""

    name = TASK
    resume_settings = _RESUME_SETTINGS
    extra_files = (BEST_WEIGHTS_FILE, BEST_WEIGHTS_FILE + ".json", BASELINE_WEIGHTS_FILE, BASELINE_WEIGHTS_FILE + ".json")

    def prepare(self, run):
        config = run.config
        if config.direction not in DIRECTIONS:
            raise RunSetupError("direction", f"must be one of {', '.join(DIRECTIONS)}, got {config.direction!r}")
        if config.frame_encoder not in ("small_cnn", "efficientnet_lite0"):
            raise RunSetupError(
                "frame_encoder", f"must be 'small_cnn' or 'efficientnet_lite0', got {config.frame_encoder!r} "
                "(from Python, build_frame_labeller takes any Keras image model)",
            )
        run.print_fn(f"Loading {config.data!r} clips ...")
        run.data = load_clips(config)
        check_clip_labels(config, run.data)
        train = run.data["train"]
        hidden = (
            f"; {np.concatenate(train.subsets['hidden']).mean():.0%} of training frames hidden"
            if "hidden" in train.subsets else ""
        )
        run.print_fn(
            f"{len(train):,} training, {len(run.data['validation']):,} validation and "
            f"{len(run.data['test']):,} held-out clips of {train.lengths.min()}-{train.lengths.max()} frames "
            f"(labels: {', '.join(train.label_kinds)}{hidden})"
        )

    def datasets(self, run):
        config = run.config
        settings = dict(batch_size=config.batch_size, frame_size=config.frame_size, clip_kinds=clip_label_kinds(config))
        return FitData(
            clip_batches(run.data["train"], seed=config.seed, **settings),
            clip_batches(run.data["validation"], shuffle=False, **settings),
        )

    def build_model(self, run):
        return build_model(run.data["train"].class_names, run.config)

    def describe(self, run):
        return {
            "clips": {part: len(clips) for part, clips in run.data.items()},
            "class_names": {kind: list(names) for kind, names in run.data["train"].class_names.items()},
            "cudnn_eligible": bool(run.model.recurrent.cudnn_eligible) if run.model.recurrent is not None else None,
        }

    def before_fit(self, run):
        config = run.config
        run.print_fn(
            f"{config.frame_encoder} per frame -> {config.cell.upper()} {config.num_layers}x{config.units} "
            f"({config.direction}) -> a softmax per label kind"
            + "".join(f", one for {kind} per clip" for kind in clip_label_kinds(config))
            + f": {run.info['parameters']:,} parameters, {run.model.dtype_policy_name}"
        )

    def callbacks(self, run):
        run.state["best"] = KeepBestWeights(
            run.folder.path / BEST_WEIGHTS_FILE, monitor="val_loss", mode="min", patience=run.config.patience
        )
        return [run.state["best"]]

    def score(self, run):
        config, best = run.config, run.state["best"]
        test = run.data["test"]
        run.print_fn(f"Best epoch {best.best_epoch + 1}: validation loss {best.best:.4f}; labelling the "
                     f"{len(test):,} held-out clips ...")
        results = {config.direction: frame_scores(test, predict_labels(run.model, test))}
        seconds = {config.direction: run.train_seconds}
        if config.baseline and config.direction != "none":
            run.print_fn("Training the frame-only baseline (no recurrence) on the same split ...")
            baseline, seconds["none"] = train_baseline(run)
            results["none"] = frame_scores(test, predict_labels(baseline, test))
        return {"best_epoch": best.best_epoch + 1, "best_val_loss": float(best.best), "test": results,
                "train_seconds_by_model": seconds}

    def report(self, run):
        return format_results(run.info)


def train_baseline(run):
    """Trains the frame-only model with the run's settings; returns `(model, seconds)`."""
    config = run.config
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    model = build_model(run.data["train"].class_names, config, direction="none")
    fit_data = FrameLabellerRun().datasets(run)  # the recurrent model's own batches
    keep = KeepBestWeights(run.folder.path / BASELINE_WEIGHTS_FILE, monitor="val_loss", mode="min",
                           patience=config.patience)
    model.fit(fit_data.train, validation_data=fit_data.validation, epochs=config.epochs,
              callbacks=[keep], verbose=0)
    return model, time.perf_counter() - started


MODEL_NAMES = {"causal": "causal recurrent", "bidirectional": "bidirectional recurrent", "none": "frame-only"}


def format_results(info):
    """The held-out table of a finished run's `run.json`."""
    rows = [("model", "label", "accuracy", "macro-F1", "hidden frames", "train s")]
    clip_rows = [("model", "label", "accuracy", "macro-F1")]
    for model_name, scores in info["test"].items():
        for kind, entry in scores.items():
            if "clips" in entry:  # a clip label (`clip_<kind>`)
                clip_rows.append((MODEL_NAMES.get(model_name, model_name), kind[len(CLIP_PREFIX):],
                                  f"{entry['accuracy']:.1%}", f"{entry['macro_f1']:.3f}"))
                continue
            hidden = entry.get("hidden_accuracy")
            rows.append((
                MODEL_NAMES.get(model_name, model_name), kind, f"{entry['accuracy']:.1%}", f"{entry['macro_f1']:.3f}",
                "-" if hidden is None else f"{hidden:.1%}",
                _seconds(info.get("train_seconds_by_model", {}).get(model_name)),
            ))
    table = "held-out clips, per real frame:\n" + format_table(rows)
    if len(clip_rows) > 1:
        table += "\n\nheld-out clips, one label per clip:\n" + format_table(clip_rows)
    return table


def _seconds(value):
    return "-" if value is None else f"{value:.0f}"


def train_frame_labeller_run(config, run_dir, **options):
    """Trains a frame labeller (and its frame-only baseline) in `run_dir`, resuming an
    interrupted run there: `train_run(FrameLabellerRun(), config, run_dir, **options)`."""
    return train_run(FrameLabellerRun(), config, run_dir, **options)
