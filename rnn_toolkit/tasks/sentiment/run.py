"""Training runs of the sentiment classifier, with its bag-of-words baseline on the same split.

`train_sentiment_run` is the story `rnn-toolkit train sentiment` tells: load labelled
texts, hold out a seeded stratified share, carve a validation share out of the rest for
early stopping, build the word vocabulary on the training texts only, train the recurrent
classifier on length-bucketed batches, then train the bag-of-words logistic regression on
exactly the same shares and print both held-out accuracies side by side.

Pretraining by distant supervision (`pretrain`): with no pretrained word vectors to be had
offline, both models first learn from extra, noisily labelled text — by default the
~49,000 sentences of the 1,500 Pang & Lee reviews, each labelled with its review's
polarity (`rnn_toolkit.data.document_sentences`) — and are then trained on the task's own
training share as usual. It never sees held-out text. Measured on the default split it
lifts the recurrent model and not the bag-of-words model (see the README).

Besides the files of every run folder (see `rnn_toolkit.runs.folder`) it writes
`best.weights.h5` (+ `.json`): the best epoch so far, so that early stopping survives a
killed run. A run killed during pretraining starts over; after it, the backup holds the
pretrained state.

`cross_validate` runs the same comparison over k stratified folds.
"""

import dataclasses
import re
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from rnn_toolkit.data import (
    BINARY_CLASS_NAMES,
    WordVocabulary,
    document_sentences,
    encode_texts,
    holdout_split,
    load_reviews,
    padding_share,
    stratified_folds,
    text_classification_batches,
)
from rnn_toolkit.tasks.sentiment.model import build_bag_of_words_classifier, build_sentiment_classifier
from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, format_table, train_run
from rnn_toolkit.training import KeepBestWeights

TASK = "sentiment"
BEST_WEIGHTS_FILE = "best.weights.h5"

# A resumed run must rebuild the same data split, vocabulary and model.
_RESUME_SETTINGS = (
    "data", "heldout_fraction", "validation_fraction", "split_seed", "head", "cell", "units",
    "num_layers", "bidirectional", "embedding_dim", "dropout", "word_dropout", "pooling", "max_words",
    "min_count", "max_length", "truncation", "batch_size", "bucketing", "pretrain",
    "pretrain_epochs", "pretrain_batch_size",
    "learning_rate", "clip_norm", "precision", "seed",
)


@dataclasses.dataclass
class SentimentRunConfig(TrainingConfig):
    """Everything that defines a sentiment training run (stored in `run.json`)."""

    epochs: int = 10  # at most; early stopping usually ends sooner
    batch_size: int = 32  # texts per step
    data: str = "rotten_tomatoes"  # "rotten_tomatoes", "pang_lee", "tfds:NAME[:SPLIT]", CSV/TSV, folder
    heldout_fraction: float = 0.1  # share held out for the final accuracy (stratified)
    validation_fraction: float = 0.1  # share of the rest used for early stopping
    split_seed: int = 0  # fixes the held-out and validation shares
    head: str = "classes"  # "classes" or "regression" (on the data's scores)
    cell: str = "gru"  # "rnn", "lstm" or "gru"
    units: int = 128  # hidden units per layer and direction
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = True  # read each text both ways
    embedding_dim: int = 128  # word embedding size (trained from scratch)
    dropout: float = 0.5  # on embeddings, between layers and before the head
    word_dropout: float = 0.2  # share of training words replaced by the unknown word (measured: +0.9 points)
    pooling: str = "final"  # "final" hidden state, "mean", "max" or "attention"
    max_words: int = 30_000  # vocabulary size cap (most frequent words of the training texts)
    min_count: int = 1  # words seen fewer times in training are unknown
    max_length: int = 400  # tokens kept per text (longer texts are truncated)
    truncation: str = "head"  # keep the first ("head") or last ("tail") tokens
    pretrain: str = "auto"  # "auto" (Pang & Lee sentences for negative/positive data), "none", or a load_reviews source
    pretrain_epochs: int = 1  # passes over the pretraining texts
    pretrain_batch_size: int = 64  # texts per pretraining step
    bucketing: bool = True  # batch texts of similar length together
    patience: int = 2  # epochs without validation improvement before stopping
    baseline: bool = True  # also train the bag-of-words baseline on the same split
    baseline_l2: float = 1e-4  # its L2 penalty

    @property
    def monitor(self):
        """The validation metric early stopping watches."""
        return "val_sign_accuracy" if self.head == "regression" else "val_accuracy"


@dataclasses.dataclass
class SplitData:
    """The three shares of one split, their vocabulary and word ids."""

    train: object
    validation: object
    heldout: object
    vocabulary: WordVocabulary
    pretraining: object = None  # LabelledTexts for the pretraining phase, or None

    _ids: dict = dataclasses.field(default_factory=dict, repr=False)

    def ids(self, part):
        """Word ids of `part` ("train", "validation", "heldout" or "pretraining"), tokenized
        once: the recurrent model, its baseline and the reports all use them."""
        if part not in self._ids:
            self._ids[part] = encode_texts(getattr(self, part).texts, self.vocabulary)
        return self._ids[part]


def load_data(config):
    """Loads `config.data` as `LabelledTexts`, raising `RunSetupError` on bad input."""
    try:
        data = load_reviews(config.data)
    except (FileNotFoundError, ValueError) as error:
        raise RunSetupError("data", str(error)) from error
    if config.head == "regression" and data.scores is None:
        raise RunSetupError(
            "head",
            f"head 'regression' needs a score per text, and {config.data!r} has class labels "
            "only (rotten_tomatoes has crowd scores; a CSV/TSV with a numeric score column "
            "works too)",
        )
    if config.head == "regression" and data.num_classes != 2:
        raise RunSetupError("head", "head 'regression' needs exactly two classes (score sign)")
    if len(data) < 20:
        raise RunSetupError("data", f"{config.data!r} has only {len(data)} labelled texts; need at least 20")
    return data


def pretraining_data(config, data):
    """The labelled texts of the pretraining phase for `data`, or None.

    `"auto"` means the sentences of the Pang & Lee reviews when `data` is binary with
    classes ("negative", "positive") and is not the Pang & Lee reviews themselves;
    otherwise no pretraining. Any other source must have the same class names as `data`.
    """
    source = config.pretrain
    if source in (None, "", "none"):
        return None
    if source == "auto":
        if (
            config.head != "classes"
            or tuple(data.class_names) != BINARY_CLASS_NAMES
            or data.source.startswith("pang_lee")
        ):
            return None
        source = "pang_lee"
    if config.head != "classes":
        raise RunSetupError(
            "pretrain", "pretraining uses class labels; it needs head 'classes' (or pass 'none')"
        )
    if _same_source(source, config.data) or source == "pang_lee" and data.source.startswith("pang_lee"):
        raise RunSetupError(
            "pretrain",
            f"pretraining on the task's own data ({source!r}) would show the model its held-out "
            "texts; choose other data or 'none'",
        )
    try:
        extra = load_reviews(source)
    except (FileNotFoundError, ValueError) as error:
        raise RunSetupError("pretrain", str(error)) from error
    if tuple(extra.class_names) != tuple(data.class_names):
        raise RunSetupError(
            "pretrain",
            f"the pretraining data's classes {list(extra.class_names)} differ from the task's "
            f"{list(data.class_names)}; use data with the same classes, or 'none'",
        )
    # Long documents become sentences labelled with their document's class.
    median_words = np.median([len(text.split()) for text in extra.texts[:500]])
    return document_sentences(extra) if median_words > 60 else extra


def _same_source(first, second):
    first_path, second_path = Path(first).expanduser(), Path(second).expanduser()
    if first_path.exists() and second_path.exists():
        return first_path.resolve() == second_path.resolve()
    return first == second


def _normalized(text):
    return " ".join(re.findall(r"\w+", text.lower()))


def _without_texts_of(pretraining, texts):
    """`pretraining` without the texts that also occur (up to case, spacing and
    punctuation) in `texts`: a short review sentence such as "Don't waste your money."
    can occur in both corpora, and the model must not be trained on what it is scored on."""
    excluded = {_normalized(text) for text in texts}
    keep = [i for i, text in enumerate(pretraining.texts) if _normalized(text) not in excluded]
    if len(keep) == len(pretraining):
        return pretraining
    return pretraining.subset(np.asarray(keep, dtype=np.int64))


def split_data(data, config, heldout_indices=None, pretraining=None):
    """The train / validation / held-out shares and the vocabulary built on training texts.

    Args:
        data: `LabelledTexts`.
        config: a `SentimentRunConfig` (its fractions and `split_seed`).
        heldout_indices: the held-out indices (a cross-validation fold); by default the
            seeded stratified `heldout_fraction`.
        pretraining: `LabelledTexts` of the pretraining phase (see `pretraining_data`):
            training texts too, so their words join the vocabulary. Texts that also occur
            in the held-out or validation share are dropped from it.
    """
    if heldout_indices is None:
        rest, heldout_indices = holdout_split(
            data.labels, fraction=config.heldout_fraction, seed=config.split_seed
        )
    else:
        rest = np.setdiff1d(np.arange(len(data)), heldout_indices)
    rest_data = data.subset(rest)
    train, validation = holdout_split(
        rest_data.labels, fraction=config.validation_fraction, seed=config.split_seed + 1
    )
    train, validation = rest_data.subset(train), rest_data.subset(validation)
    heldout = data.subset(heldout_indices)
    if pretraining is not None:
        pretraining = _without_texts_of(pretraining, heldout.texts + validation.texts)
    vocabulary = WordVocabulary.from_texts(
        train.texts + (pretraining.texts if pretraining is not None else []),
        max_words=config.max_words,
        min_count=config.min_count,
        max_length=config.max_length,
        truncation=config.truncation,
    )
    return SplitData(train, validation, heldout, vocabulary, pretraining)


def targets(part, config):
    return part.scores if config.head == "regression" else part.labels


def training_batches(split, config):
    """The bucketed (or plain) training pipeline and the validation pipeline."""
    train = text_classification_batches(
        split.ids("train"),
        targets(split.train, config),
        batch_size=config.batch_size,
        bucketing=config.bucketing,
        seed=config.seed,
    )
    validation = text_classification_batches(
        split.ids("validation"),
        targets(split.validation, config),
        batch_size=256,
        bucketing=config.bucketing,
        shuffle=False,
    )
    return train, validation


def build_model(split, config, class_names):
    return build_sentiment_classifier(
        split.vocabulary,
        class_names=class_names,
        head=config.head,
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        word_dropout=config.word_dropout,
        pooling=config.pooling,
        learning_rate=config.learning_rate,
        clip_norm=config.clip_norm,
        dtype_policy=config.precision,
    )


def heldout_results(classify, part):
    """Accuracy (and for scores, the regression error) of `classify` on `part`.

    Args:
        classify: a function from a list of strings to a dict with `class_id` (and
            optionally `score`), e.g. `model.classify`.
        part: `LabelledTexts`.

    Returns:
        A dict: `examples`, `accuracy`, `correct`, `confusion` (rows: true class,
        columns: predicted), and with scores `score_mae` / `score_rmse`.
    """
    outputs = classify(part.texts)
    predicted = np.asarray(outputs["class_id"])
    confusion = np.zeros((len(part.class_names),) * 2, dtype=np.int64)
    np.add.at(confusion, (part.labels, predicted), 1)
    results = {
        "examples": len(part),
        "correct": int((predicted == part.labels).sum()),
        "accuracy": float(np.mean(predicted == part.labels)),
        "confusion": confusion.tolist(),
    }
    if "score" in outputs and part.scores is not None:
        errors = np.asarray(outputs["score"]) - part.scores
        results.update(score_mae=float(np.abs(errors).mean()), score_rmse=float(np.sqrt((errors**2).mean())))
    return results


def pretrain(model, split, config, *, verbose=0):
    """The pretraining phase: `config.pretrain_epochs` passes over `split.pretraining`.

    Does nothing when the split has no pretraining data. Returns the seconds spent.
    """
    if split.pretraining is None:
        return 0.0
    start = time.perf_counter()
    batches = text_classification_batches(
        split.ids("pretraining"),
        split.pretraining.labels,
        batch_size=config.pretrain_batch_size,
        bucketing=config.bucketing,
        seed=config.seed,
    )
    model.fit(batches, epochs=config.pretrain_epochs, shuffle=False, verbose=verbose)
    return time.perf_counter() - start


def train_baseline(split, config, class_names, *, verbose=0):
    """Trains the bag-of-words baseline with early stopping on the validation share.

    It gets the same pretraining phase as the recurrent model, so that the comparison
    is about the models, not the data they saw.

    Returns:
        `(results_on_heldout, seconds)`.
    """
    keras.utils.set_random_seed(config.seed)
    start = time.perf_counter()
    model = build_bag_of_words_classifier(split.vocabulary, class_names=class_names, l2=config.baseline_l2)
    pretrain(model, split, config)
    # The recurrent model's own batches; the baseline learns class labels even when the
    # recurrent model regresses on scores.
    train, validation = training_batches(split, dataclasses.replace(config, head="classes"))
    model.fit(
        train,
        validation_data=validation,
        epochs=30,
        shuffle=False,  # the pipeline shuffles itself
        verbose=verbose,
        callbacks=[
            keras.callbacks.EarlyStopping(
                "val_accuracy", mode="max", patience=3, restore_best_weights=True
            )
        ],
    )
    seconds = time.perf_counter() - start
    heldout_ids = split.ids("heldout")

    def classify(_texts):
        # Direct calls in slices: `predict` would trace a new function for every new
        # model (one per fold in cross-validation) and warn about retracing.
        logits = [
            model(heldout_ids[start : start + 512].to_tensor(0), training=False)
            for start in range(0, int(heldout_ids.nrows()), 512)
        ]
        return {"class_id": np.argmax(np.concatenate(logits), axis=-1)}

    return heldout_results(classify, split.heldout), seconds


class SentimentRunData(NamedTuple):
    """What a sentiment run loads: all labelled texts, and their split."""

    data: object  # LabelledTexts
    split: SplitData


class SentimentRun(TaskRun):
    """The sentiment classifier's part of a training run (see `rnn_toolkit.runs.train_run`)."""

    name = TASK
    resume_settings = _RESUME_SETTINGS
    extra_files = (BEST_WEIGHTS_FILE, BEST_WEIGHTS_FILE + ".json")

    def prepare(self, run):
        config = run.config
        run.print_fn(f"Loading {config.data!r} ...")
        data = load_data(config)
        split = split_data(data, config, pretraining=pretraining_data(config, data))
        run.data = SentimentRunData(data, split)
        run.print_fn(
            f"{len(data):,} labelled texts {data.class_counts()}: {len(split.train):,} train, "
            f"{len(split.validation):,} validation (early stopping), {len(split.heldout):,} held out "
            f"(seed {config.split_seed}); vocabulary of {split.vocabulary.size:,} ids from the "
            "training texts"
            + (f" and the {len(split.pretraining):,} pretraining texts" if split.pretraining else "")
        )

    def datasets(self, run):
        train, validation = training_batches(run.data.split, run.config)
        return FitData(train, validation)

    def build_model(self, run):
        data, split = run.data
        return build_model(split, run.config, data.class_names)

    def describe(self, run):
        config, (data, split) = run.config, run.data
        lengths = split.ids("train").row_lengths().numpy()
        pretraining = None
        if split.pretraining is not None:
            pretraining = {
                "source": split.pretraining.source,
                "texts": len(split.pretraining),
                "class_counts": split.pretraining.class_counts(),
                "epochs": config.pretrain_epochs,
            }
            # Done before the interruption of a resumed run.
            pretraining = run.previous_info.get("pretraining") or pretraining
        return {
            "data": {"source": data.source, "examples": len(data), "classes": list(data.class_names)},
            "split": {
                "train": len(split.train),
                "validation": len(split.validation),
                "heldout": len(split.heldout),
                "heldout_class_counts": split.heldout.class_counts(),
            },
            "vocabulary_size": split.vocabulary.size,
            "pretraining": pretraining,
            "train_tokens": {
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
                "truncated_texts": int((lengths >= config.max_length).sum()),
            },
            # Measured on a twin pipeline: a pass over the training pipeline itself would
            # use up its first shuffle, and training would not see the batches a fresh
            # pipeline does.
            "padding_share": padding_share(training_batches(split, config)[0]),
        }

    def before_fit(self, run):
        config, (_, split), info = run.config, run.data, run.info
        direction = "bidirectional " if config.bidirectional else ""
        run.print_fn(
            f"{direction}{config.cell.upper()} {config.num_layers}x{config.units}, decision from "
            f"{'the final hidden state' if config.pooling == 'final' else config.pooling + ' pooling'}, "
            f"{info['parameters']:,} parameters, {run.model.dtype_policy_name}; padded positions: "
            f"{info['padding_share']:.1%} ({'length-bucketed' if config.bucketing else 'unbucketed'} "
            f"batches of {config.batch_size})"
        )
        if split.pretraining is None or not run.fresh_start:
            # A resumed run's backup already holds the pretrained (and further trained) state.
            return
        run.print_fn(
            f"Pretraining on {len(split.pretraining):,} texts of {split.pretraining.source!r} "
            f"labelled by their document ({config.pretrain_epochs} epoch(s)) ..."
        )
        info["pretraining"]["seconds"] = pretrain(run.model, split, config, verbose=run.verbose)
        info["pretraining"]["heldout_accuracy_after"] = heldout_results(
            run.model.classify, split.heldout
        )["accuracy"]
        run.folder.write_run_info(info)
        run.print_fn(
            f"After pretraining alone: {info['pretraining']['heldout_accuracy_after']:.2%} on "
            "the held-out share; now training on the task's own training share."
        )

    def callbacks(self, run):
        run.state["best"] = KeepBestWeights(
            run.folder.path / BEST_WEIGHTS_FILE, monitor=run.config.monitor, mode="max",
            patience=run.config.patience,
        )
        return [run.state["best"]]

    def score(self, run):
        config, (data, split), best = run.config, run.data, run.state["best"]
        run.print_fn(
            f"Best epoch {best.best_epoch + 1}: {config.monitor} {best.best:.4f}; scoring the "
            f"{len(split.heldout):,} held-out texts ..."
        )
        results = {"recurrent": heldout_results(run.model.classify, split.heldout)}
        # Pretraining counts as training time, as it does in the baseline's time.
        pretrain_seconds = (run.info["pretraining"] or {}).get("seconds", 0.0)
        results["recurrent"]["train_seconds"] = run.train_seconds + pretrain_seconds
        if config.baseline:
            run.print_fn("Training the bag-of-words baseline on the same split ...")
            results["bag_of_words"], seconds = train_baseline(split, config, data.class_names)
            results["bag_of_words"]["train_seconds"] = seconds
        return {"best_epoch": best.best_epoch + 1, "heldout": results}

    def report(self, run):
        return format_results_table(run.info["heldout"], run.config, pretraining=run.data.split.pretraining)


def train_sentiment_run(config, run_dir, **options):
    """Trains a sentiment classifier (and its bag-of-words baseline) in `run_dir`, resuming an interrupted run there.

    `train_run(SentimentRun(), config, run_dir, **options)`: see `rnn_toolkit.runs.train_run` for
    the options (`overwrite`, `verbose`, `print_fn`, `strategy`), what it returns and raises.
    """
    return train_run(SentimentRun(), config, run_dir, **options)


def describe_model(config):
    direction = "bi" if config.bidirectional else ""
    pooling = "final state" if config.pooling == "final" else f"{config.pooling} pooling"
    head = ", score regression" if config.head == "regression" else ""
    return f"{direction}{config.cell.upper()} {config.num_layers}x{config.units}, {pooling}{head}"


def format_results_table(results, config, pretraining=None):
    """The held-out comparison as a small text table."""
    rows = [("model", "held-out accuracy", "correct", "train time")]
    names = {"recurrent": describe_model(config), "bag_of_words": "bag-of-words logistic regression"}
    for key, result in results.items():
        rows.append(
            (
                names.get(key, key),
                f"{result['accuracy']:.2%}",
                f"{result['correct']}/{result['examples']}",
                f"{result['train_seconds']:.0f} s" if "train_seconds" in result else "-",
            )
        )
    lines = [format_table(rows)]
    if pretraining is not None:
        lines.append(
            f"(both models first trained on the {len(pretraining):,} texts of "
            f"{pretraining.source!r}, labelled by their document)"
        )
    extra = results.get("recurrent", {})
    if "score_mae" in extra:
        lines.append(f"crowd-score error of the regression head: MAE {extra['score_mae']:.3f}, RMSE {extra['score_rmse']:.3f}")
    return "\n".join(lines)


def cross_validate(config, folds=10, *, verbose=0, print_fn=print):
    """k-fold cross-validation of the recurrent model and the baseline on the same folds.

    Every fold holds out one k-th of the data (stratified, fixed by `config.split_seed`),
    builds its vocabulary on its own training texts (and the pretraining texts), runs the
    pretraining phase if any, early-stops on a validation share of the rest, and scores
    both models on the fold.

    Returns:
        A dict: per-fold accuracies and their mean and standard deviation per model.
    """
    data = load_data(config)
    pretraining = pretraining_data(config, data)
    per_fold = {"recurrent": [], "bag_of_words": []}
    seconds = {"recurrent": 0.0, "bag_of_words": 0.0}
    for index, (_, heldout) in enumerate(stratified_folds(data.labels, k=folds, seed=config.split_seed)):
        split = split_data(data, config, heldout_indices=heldout, pretraining=pretraining)
        keras.utils.set_random_seed(config.seed)
        train_data, validation_data = training_batches(split, config)
        model = build_model(split, config, data.class_names)
        start = time.perf_counter()
        pretrain(model, split, config)
        model.fit(
            train_data,
            epochs=config.epochs,
            validation_data=validation_data,
            verbose=verbose,
            callbacks=[
                keras.callbacks.EarlyStopping(
                    config.monitor, mode="max", patience=config.patience, restore_best_weights=True
                )
            ],
        )
        seconds["recurrent"] += time.perf_counter() - start
        per_fold["recurrent"].append(heldout_results(model.classify, split.heldout)["accuracy"])
        if config.baseline:
            result, baseline_seconds = train_baseline(split, config, data.class_names)
            per_fold["bag_of_words"].append(result["accuracy"])
            seconds["bag_of_words"] += baseline_seconds
        print_fn(
            f"fold {index + 1}/{folds}: recurrent {per_fold['recurrent'][-1]:.2%}"
            + (f", bag-of-words {per_fold['bag_of_words'][-1]:.2%}" if config.baseline else "")
        )
    summary = {"folds": folds, "pretraining": None if pretraining is None else pretraining.source}
    for key, values in per_fold.items():
        if values:
            summary[key] = {
                "accuracies": values,
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "train_seconds": seconds[key],
            }
    return summary
