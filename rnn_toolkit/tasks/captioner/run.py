"""Training runs of the image captioner, scored with BLEU-1..4 and CIDEr-D on held-out images.

`train_captioner_run` is the story `rnn-toolkit train captioner` tells: load captioned
images (by default the Tux Paint stamps and the Noto emoji), split them by near-duplicate
group (an emoji and its skin-tone variants, a stamp and its mirrored copy, stamps sharing a
caption all land on one side), build the word vocabulary on the training captions, then
train on one reference caption per image and epoch (a new one drawn each epoch) while
`SampleText` prints the captions of fixed held-out images. A frozen encoder's features
are computed once and cached (keyed by encoder, image size and the image files), so every
epoch, and every later run on the same images, costs only the decoder; augmentation then
comes from `feature_views - 1` augmented copies of each training image, also encoded
once, of which every epoch draws one per image.

Scoring captions the held-out images greedily and with beam search and compares both with
the nearest-neighbour retrieval baseline (the caption of the most similar training image
by encoder features) on the same split, using ALL references per image. When the held-out
share has emoji, their OpenMoji drawings (the same concepts by other artists) are scored
too: a model that learned concepts rather than one artist's style keeps its score there.

Besides the files of every run folder (see `rnn_toolkit.runs.folder`) it writes
`best.weights.h5` (+ `.json`, the best epoch by validation loss) and `captions.tsv` (each
held-out image with its references and every decoding's caption).
"""

import csv
import dataclasses
import functools
import hashlib
import importlib
import inspect
import io
import time
from typing import NamedTuple

import numpy as np

from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.data.cache import cached_path, write_atomically
from rnn_toolkit.data.caption_batches import caption_batches, image_batches
from rnn_toolkit.data.captioned_images import load_captioned_images, split_captioned_images
from rnn_toolkit.data.clip_art import openmoji_drawings
from rnn_toolkit.layers.grid_positions import GRID_POSITION_CODES
from rnn_toolkit.metrics.captioning import caption_scores
from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, format_table, train_run
from rnn_toolkit.tasks.captioner.model import build_captioner
from rnn_toolkit.training import KeepBestWeights, SampleText, ScoreGenerations

TASK = "captioner"
BEST_WEIGHTS_FILE = "best.weights.h5"
CAPTIONS_FILE = "captions.tsv"
EARLY_STOPPING_METRIC = "val_cider_d"

# A resumed run must rebuild the same data split, vocabulary and model.
_RESUME_SETTINGS = (
    "data", "max_images", "validation_fraction", "heldout_fraction", "split_seed", "max_words",
    "min_count", "max_caption_length", "image_encoder", "image_size", "fine_tune_encoder",
    "attention", "grid_positions", "attention_penalty", "cell", "units", "embedding_dim", "num_layers", "dropout",
    "batch_size", "learning_rate", "clip_norm", "label_smoothing", "augment", "feature_views",
    "precision", "seed",
)


@dataclasses.dataclass
class CaptionerRunConfig(TrainingConfig):
    """Everything that defines a captioner training run (stored in `run.json`)."""

    epochs: int = 30  # at most; early stopping usually ends sooner
    batch_size: int = 64  # images per step (one reference caption each)
    learning_rate: float = 1e-3  # Adam
    clip_norm: float = 5.0  # global-norm gradient clipping (0: off)
    data: str = "clipart"  # "tuxpaint", "emoji", "clipart" (both), a folder, a token file, a COCO json, "tfds:NAME"
    max_images: int = 0  # use a seeded sample of this many images (0: all; for quick trials)
    validation_fraction: float = 0.1  # share of the groups used for early stopping
    heldout_fraction: float = 0.15  # share of the groups held out for BLEU / CIDEr-D
    split_seed: int = 0  # fixes the split
    max_words: int = 5_000  # vocabulary size cap
    min_count: int = 2  # rarer caption words are unknown
    max_caption_length: int = 20  # training captions are cut to this many words
    image_encoder: str = "efficientnet_lite0"  # "efficientnet_lite0" (ImageNet-pretrained) or "small_cnn" (from scratch)
    image_size: int = 224  # side of the square images the encoder reads
    fine_tune_encoder: bool = False  # train a pretrained encoder jointly (small_cnn always trains)
    attention: str = "soft"  # "soft" (Show, Attend and Tell) or "none" (Show and Tell)
    grid_positions: str = "none"  # soft attention: code of each cell's row and column added to the attended grid ("none", "sinusoidal", "learned"; for captions that say where)
    attention_penalty: float = 0.0  # weight of the doubly stochastic attention penalty
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    units: int = 512  # decoder hidden units per layer
    embedding_dim: int = 256  # word embedding size (trained from scratch)
    num_layers: int = 1  # stacked decoder layers
    dropout: float = 0.3  # on image features, embeddings and before the output
    label_smoothing: float = 0.0  # share of each target's probability spread over the vocabulary
    augment: bool = True  # random zoom/shift/flip/colour of training images (a frozen encoder: only with feature_views > 1)
    feature_views: int = 1  # frozen encoder: cached feature grids per training image (1: as is; more: augmented copies, one drawn per epoch)
    patience: int = 5  # epochs without a better validation CIDEr-D before stopping
    beam_width: int = 3  # beam search width of the held-out evaluation (and serving default)
    sample_every: int = 1  # epochs between printed captions of fixed held-out images (0: never)
    cross_style: str = "auto"  # "auto" (OpenMoji drawings of held-out emoji), or "none"


class CaptionerRunData(NamedTuple):
    """What a captioner run loads: all images, the split and the vocabulary."""

    data: object  # CaptionedImages
    train: object
    validation: object
    test: object
    vocabulary: WordVocabulary


def encoder_trains(config):
    """Whether the encoder's weights change in training (then the input is pixels)."""
    return config.fine_tune_encoder or config.image_encoder == "small_cnn"


def load_data(config):
    """Loads `config.data` as `CaptionedImages`, raising `RunSetupError` on bad input."""
    try:
        data = load_captioned_images(config.data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise RunSetupError("data", str(error)) from error
    if config.max_images and config.max_images < len(data):
        keep = np.random.default_rng(config.split_seed).permutation(len(data))[: config.max_images]
        data = data.subset(np.sort(keep))
    if len(data) < 10:
        raise RunSetupError("data", f"{config.data!r} has only {len(data)} captioned images; need at least 10")
    return data


def split_data(data, config):
    """Train / validation / test shares by near-duplicate group, and the vocabulary."""
    try:
        train, validation, test = split_captioned_images(
            data, validation_fraction=config.validation_fraction,
            test_fraction=config.heldout_fraction, seed=config.split_seed,
        )
    except ValueError as error:
        raise RunSetupError("heldout_fraction", str(error)) from error
    if len(train) < 2 or len(validation) < 1 or len(test) < 1:
        raise RunSetupError(
            "data", f"the split left {len(train)} training, {len(validation)} validation and "
            f"{len(test)} test images; use more data or other fractions",
        )
    vocabulary = WordVocabulary.from_texts(
        [caption for captions in train.captions for caption in captions],
        max_words=config.max_words,
        min_count=config.min_count,
        max_length=config.max_caption_length,
        sequence_markers=True,
    )
    return CaptionerRunData(data, train, validation, test, vocabulary)


@functools.cache
def _augmentation_digest():
    """What an augmented view depends on besides the images: the augmentation's code and
    settings (a change to them makes new views instead of reusing stale ones)."""
    # The module itself: `rnn_toolkit.data.caption_batches` the attribute is its function.
    module = importlib.import_module("rnn_toolkit.data.caption_batches")
    parts = [inspect.getsource(getattr(module, name)) for name in ("augment_image", "mirror_safe", "lightness_safe", "_words")]
    parts += [repr(sorted(module.MIRROR_SENSITIVE_WORDS)), repr(sorted(module.LIGHTNESS_WORDS))]
    parts += [repr(getattr(module, name)) for name in ("ZOOM_RANGE", "BRIGHTNESS_DELTA", "CONTRAST_RANGE", "DEFAULT_BACKGROUND")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def feature_cache_key(images, config, view=0):
    """A cache file name for the frozen encoder's features of `images` (their paths or
    bytes, the encoder and the image size); `view` 0 is the images as they are, view v > 0
    the augmented copy `image_batches(..., augment_seed=v)`."""
    augmented = f"|augmented-{_augmentation_digest()}-{view}" if view else ""
    digest = hashlib.sha256(f"{config.image_encoder}|{config.image_size}{augmented}".encode())
    for image in images.images:
        digest.update(image if isinstance(image, bytes) else str(image).encode())
        digest.update(b"\0")
    suffix = f"-view{view}" if view else ""
    return f"captioner_features/{config.image_encoder}-{config.image_size}-{digest.hexdigest()[:20]}{suffix}.npy"


def training_views(config):
    """The feature views of the training images: augmented copies only when augmenting."""
    return range(config.feature_views if config.augment else 1)


def cached_features(model, images, config, print_fn=print, view=0):
    """The frozen encoder's grids of `images` (of their augmented view `view` > 0),
    computed once and kept in the cache folder."""
    path = cached_path(feature_cache_key(images, config, view))
    if path.is_file():
        features = np.load(path)
        if len(features) == len(images):
            return features
    if model is None:
        raise ValueError(f"{path} holds features of another image list; delete it and rerun.")
    start = time.perf_counter()
    features = model.encode_images(
        image_batches(images, image_size=config.image_size, batch_size=32, augment_seed=view or None)
    ).astype(np.float16)  # half the disk and memory; the grid values are ReLU6 outputs
    seconds = time.perf_counter() - start
    which = f"augmented view {view} of " if view else ""
    print_fn(
        f"Encoded {which}{len(images):,} images in {seconds:.0f} s ({len(images) / max(seconds, 1e-9):.1f} "
        f"images/s); cached in {path}"
    )
    buffer = io.BytesIO()
    np.save(buffer, features)
    write_atomically(path, buffer.getvalue())
    return features


def build_model(run_data, config, pretrained=True):
    return build_captioner(
        run_data.vocabulary,
        image_encoder=config.image_encoder,
        image_size=config.image_size,
        fine_tune_encoder=encoder_trains(config),
        attention=config.attention,
        grid_positions=config.grid_positions,
        cell=config.cell,
        units=config.units,
        embedding_dim=config.embedding_dim,
        num_layers=config.num_layers,
        dropout=config.dropout,
        attention_penalty=config.attention_penalty,
        max_output_length=max(config.max_caption_length, 30),
        pretrained=pretrained,
        learning_rate=config.learning_rate,
        clip_norm=config.clip_norm,
        label_smoothing=config.label_smoothing,
        dtype_policy=config.precision,
    )


def decoding_settings(config):
    """The decodings every evaluation reports: greedy search and beam search."""
    return {"greedy": dict(beam_width=1), f"beam{config.beam_width}": dict(beam_width=config.beam_width)}


def retrieval_captions(train_features, train, query_features):
    """The nearest-neighbour baseline: for each query, the first reference caption of the
    training image whose mean-pooled encoder features are most similar (cosine)."""

    def pooled(features):
        features = np.asarray(features, np.float32)
        vectors = features.reshape(len(features), -1, features.shape[-1]).mean(axis=1)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)

    if not len(query_features):
        return []
    keys, queries = pooled(train_features), pooled(query_features)
    # In blocks: a similarity matrix of every query with every training image at once
    # would grow with the product of the two shares.
    nearest = np.concatenate(
        [np.argmax(queries[i : i + 512] @ keys.T, axis=1) for i in range(0, len(queries), 512)]
    )
    return [train.captions[i][0] for i in nearest]


def score_captions(caption_fn, inputs, references, decodings):
    """Captions `inputs` with each decoding and scores it against all references.

    Returns `(results, captions)`: per decoding the scores (`bleu_1`..`bleu_4`, `cider_d`) with
    `seconds` and `images_per_second`, and per decoding the captions.
    """
    results, captions = {}, {}
    for name, settings in decodings.items():
        start = time.perf_counter()
        hypotheses = caption_fn(inputs, **settings)
        seconds = time.perf_counter() - start
        scores = caption_scores(hypotheses, references)
        scores.update(seconds=seconds, images_per_second=len(hypotheses) / max(seconds, 1e-9))
        results[name], captions[name] = scores, hypotheses
    return results, captions


class CaptionerRun(TaskRun):
    """The captioner's part of a training run (see `rnn_toolkit.runs.train_run`)."""

    name = TASK
    resume_settings = _RESUME_SETTINGS
    extra_files = (BEST_WEIGHTS_FILE, BEST_WEIGHTS_FILE + ".json", CAPTIONS_FILE)

    def prepare(self, run):
        config = run.config
        if config.attention_penalty and config.attention == "none":
            raise RunSetupError("attention_penalty", "needs attention 'soft'")
        if config.grid_positions not in GRID_POSITION_CODES:
            raise RunSetupError(
                "grid_positions", f"must be one of {', '.join(GRID_POSITION_CODES)}, got {config.grid_positions!r}"
            )
        if config.feature_views < 1:
            raise RunSetupError("feature_views", f"must be at least 1, got {config.feature_views}")
        if config.image_encoder not in ("efficientnet_lite0", "small_cnn"):
            raise RunSetupError(
                "image_encoder", f"must be 'efficientnet_lite0' or 'small_cnn', got {config.image_encoder!r} "
                "(from Python, build_captioner takes any Keras image model)",
            )
        run.print_fn(f"Loading {config.data!r} ...")
        data = load_data(config)
        run.data = split_data(data, config)
        train, validation, test, vocabulary = run.data[1:]
        run.print_fn(
            f"{len(data):,} captioned images ({_sources(data)}): {len(train):,} train, "
            f"{len(validation):,} validation, {len(test):,} test, split by near-duplicate group "
            f"(seed {config.split_seed}); {vocabulary.size:,} word ids from the training captions"
        )

    def datasets(self, run):
        config, data = run.config, run.data
        settings = dict(
            image_size=config.image_size, max_caption_length=config.max_caption_length,
        )
        if encoder_trains(config):
            train = caption_batches(
                data.train, data.vocabulary, batch_size=config.batch_size, seed=config.seed,
                augment=config.augment, **settings,
            )
            validation = caption_batches(
                data.validation, data.vocabulary, batch_size=config.batch_size, shuffle=False,
                seed=0, **settings,
            )
            return FitData(train, validation)
        # A frozen encoder: its features once, then every epoch trains the decoder alone.
        # A model is built here only when some features are not on disk yet.
        # Training takes a random one of the augmented views per image and epoch.
        wanted = [("train", view) for view in training_views(config)] + [("validation", 0), ("test", 0)]
        cached = all(
            cached_path(feature_cache_key(getattr(data, part), config, view)).is_file() for part, view in wanted
        )
        encoder_model = None if cached else build_model(data, config)
        grids = {
            (part, view): cached_features(encoder_model, getattr(data, part), config, run.print_fn, view)
            for part, view in wanted
        }
        run.state["features"] = features = {part: grids[part, 0] for part in ("train", "validation", "test")}
        train = caption_batches(
            data.train, data.vocabulary, batch_size=config.batch_size, seed=config.seed,
            features=[grids["train", view] for view in training_views(config)], **settings,
        )
        validation = caption_batches(
            data.validation, data.vocabulary, batch_size=config.batch_size, shuffle=False,
            seed=0, features=features["validation"], **settings,
        )
        return FitData(train, validation)

    def build_model(self, run):
        return build_model(run.data, run.config)

    def describe(self, run):
        data = run.data
        return {
            "data": {"source": run.config.data, "images": len(data.data), "sources": _source_counts(data.data)},
            "split": {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
            "vocabulary_size": data.vocabulary.size,
            "grid_shape": list(run.model.grid_shape),
            "cudnn_eligible": bool(run.model.decoder.recurrent.cudnn_eligible),
        }

    def before_fit(self, run):
        config, info = run.config, run.info
        trains = "trained" if encoder_trains(config) else "frozen, features cached"
        run.print_fn(
            f"{config.image_encoder} encoder ({trains}, grid {'x'.join(map(str, info['grid_shape']))}) -> "
            f"{config.cell.upper()} {config.num_layers}x{config.units} decoder, "
            f"{'soft attention' if config.attention == 'soft' else 'no attention'}: "
            f"{info['parameters']:,} parameters, {run.model.dtype_policy_name}"
        )

    def callbacks(self, run):
        config = run.config
        # Early stopping on what matters, the validation captions' CIDEr-D (greedy, all
        # references): the validation loss of held-out concepts rises within a few epochs
        # while the captions still get better (see `ScoreGenerations`).
        validation = run.data.validation
        features = run.state.get("features")
        inputs = features["validation"] if features is not None else list(validation.images)
        scores = ScoreGenerations(inputs, [list(c) for c in validation.captions], caption_scores)
        run.state["best"] = KeepBestWeights(
            run.folder.path / BEST_WEIGHTS_FILE, monitor=EARLY_STOPPING_METRIC, mode="max",
            patience=config.patience,
        )
        callbacks = [scores, run.state["best"]]
        if config.sample_every:
            callbacks.append(
                SampleText(
                    sample_images(run.data.test), every=config.sample_every, max_length=None,
                    sampler="greedy", print_fn=run.print_fn, input_name="image",
                )
            )
        return callbacks

    def score(self, run):
        config, data, best = run.config, run.data, run.state["best"]
        model = run.model
        run.print_fn(
            f"Best epoch {best.best_epoch + 1}: validation CIDEr-D {best.best:.1f}; captioning the "
            f"{len(data.test):,} test images (greedy and beam {config.beam_width}) ..."
        )
        features = run.state.get("features")
        if features is None:
            features = {
                part: model.encode_images(image_batches(getattr(data, part), image_size=config.image_size, batch_size=32))
                for part in ("train", "test")
            }
        references = [list(c) for c in data.test.captions]
        results, captions = score_captions(
            lambda inputs, **settings: model.caption(inputs, **settings),
            features["test"], references, decoding_settings(config),
        )
        retrieved = retrieval_captions(features["train"], data.train, features["test"])
        results["retrieval"] = caption_scores(retrieved, references)
        captions["retrieval"] = retrieved
        write_atomically(run.folder.path / CAPTIONS_FILE, _captions_table(data.test, captions))
        scores = {"best_epoch": best.best_epoch + 1, "best_val_cider_d": float(best.best), "test": results}
        scores["test_by_source"] = _scores_by_source(data.test, captions)
        cross = self._cross_style(run) if config.cross_style != "none" else None
        if cross is not None:
            scores["cross_style"] = cross
        return scores

    def _cross_style(self, run):
        """Scores on the OpenMoji drawings of the held-out emoji (None without emoji)."""
        test = run.data.test
        emoji = [i for i, source in enumerate(test.source) if source == "emoji"]
        if not emoji:
            return None
        drawings = openmoji_drawings([test.captions[i][0] for i in emoji])
        if not len(drawings):
            return None
        run.print_fn(f"Captioning {len(drawings):,} OpenMoji drawings of held-out emoji ...")
        references = [list(c) for c in drawings.captions]
        results, _ = score_captions(
            lambda inputs, **settings: run.model.caption(inputs, **settings),
            list(drawings.images), references, decoding_settings(run.config),
        )
        return {"images": len(drawings), **results}

    def report(self, run):
        return format_results(run.info)


def train_captioner_run(config, run_dir, **options):
    """Trains a captioner and scores it in `run_dir`, resuming an interrupted run there.

    `train_run(CaptionerRun(), config, run_dir, **options)`: see `rnn_toolkit.runs.train_run`
    for the options (`overwrite`, `verbose`, `print_fn`, `strategy`), what it returns and raises.
    """
    return train_run(CaptionerRun(), config, run_dir, **options)


def sample_images(images, count=3):
    """`count` fixed test images for the samples printed during training, spread over the
    share (and so over its sources: Tux Paint stamps come before emoji)."""
    if not len(images):
        return []
    indices = sorted(set(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)))
    return [images.images[i] for i in indices]


def _source_counts(data):
    counts = {}
    for source in data.source:
        counts[source] = counts.get(source, 0) + 1
    return counts


def _sources(data):
    return ", ".join(f"{count:,} {name}" for name, count in _source_counts(data).items())


def _scores_by_source(test, captions):
    """Scores per data source (e.g. Tux Paint vs emoji) when the test share mixes them."""
    counts = _source_counts(test)
    if len(counts) < 2:
        return {}
    results = {}
    for source in counts:
        rows = [i for i, s in enumerate(test.source) if s == source]
        references = [list(test.captions[i]) for i in rows]
        results[source] = {
            name: caption_scores([hypotheses[i] for i in rows], references)
            for name, hypotheses in captions.items()
        }
    return results


def _captions_table(test, captions):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    names = list(captions)
    writer.writerow(["image", "references", *names])
    for index, (image, references) in enumerate(zip(test.images, test.captions)):
        label = image if isinstance(image, str) else f"<{len(image)} bytes>"
        writer.writerow([label, " | ".join(references), *(captions[name][index] for name in names)])
    return buffer.getvalue()


def format_results(info):
    """The held-out scores of a finished run as a text table."""
    lines = []
    for title, results in (("test", info.get("test")), ("OpenMoji drawings of test emoji", info.get("cross_style"))):
        if not results:
            continue
        names = [name for name in results if isinstance(results[name], dict) and "bleu_4" in results[name]]
        count = results[names[0]]["images"] if names else 0
        lines.append(f"{title} ({count:,} images): BLEU with all references and CIDEr-D, x100")
        rows = [("captions", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "images/s")]
        for name in names:
            scores = results[name]
            speed = f"{scores['images_per_second']:.1f}" if "images_per_second" in scores else "-"
            rows.append((name, *(f"{scores[f'bleu_{n}']:.1f}" for n in range(1, 5)), f"{scores['cider_d']:.1f}", speed))
        lines.append(format_table(rows))
    for source, results in (info.get("test_by_source") or {}).items():
        count = next(iter(results.values()))["images"]
        rows = [(f"test, {source} only ({count:,})", "BLEU-4", "CIDEr-D")]
        rows += [(name, f"{s['bleu_4']:.1f}", f"{s['cider_d']:.1f}") for name, s in results.items()]
        lines.append(format_table(rows))
    if "train_seconds" in info:
        lines.append(
            f"training: {info['train_seconds']:.0f} s, {info.get('epochs_completed', '?')} epochs "
            f"(best {info.get('best_epoch', '?')})"
        )
    return "\n".join(lines)
