"""Training runs of the character language model: one folder per run, resumable.

`train_char_lm_run` is the whole story the `rnn-toolkit train char_lm` command tells:
load a corpus, split it, build the vocabulary on the training pieces, train with samples
printed every epoch, then score the held-out pieces and save everything in one folder:

    <run_dir>/
        run.json        settings, corpus, split, vocabulary size, results, timings
        model.keras     the trained model (written when training has finished)
        heldout.txt     the validation pieces joined with "\\n" (for the plain-TF client)
        history.csv     one row per epoch (CSVLogger); history.json: the same as lists
        logs/           TensorBoard event files
        backup/         the BackupAndRestore checkpoint; present only while a run is
                        unfinished, so a killed run resumes from its last backup

A folder is *finished* when it holds `model.keras` and no `backup/`, *interrupted* when it
holds `backup/`, and *empty* otherwise.
"""

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.data import (
    CharVocabulary,
    char_windows,
    consecutive_char_batches,
    load_corpus,
    split_text,
)
from rnn_toolkit.data.cache import write_atomically
from rnn_toolkit.models import build_char_lm
from rnn_toolkit.training import ResetCarriedState, SampleText

CORPUS_NAMES = ("shakespeare", "python")
"""Corpora known by name; anything else given as a corpus is a path."""

DEFAULT_PROMPTS = {
    # This edition names speakers as "Romeo." on a line of their own.
    "shakespeare": ["Romeo.\n", "Juliet.\n"],
    "python": ["def "],
}
"""Sampling prompts that suit each named corpus; other corpora start after a newline."""

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
HELDOUT_FILE = "heldout.txt"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"

# A resumed run must rebuild the same model and data, or the backup's weights and
# optimizer state would not fit (or would silently mean something else).
_RESUME_SETTINGS = (
    "corpus", "max_chars", "validation_fraction", "num_chunks", "cell", "units",
    "num_layers", "embedding_dim", "dropout", "sequence_length", "batch_size",
    "learning_rate", "clip_norm", "precision", "tbptt", "seed", "validation_steps",
)


@dataclasses.dataclass
class CharLMRunConfig:
    """Everything that defines a char-LM training run (stored in `run.json`)."""

    corpus: str = "shakespeare"  # "shakespeare", "python", or a text file / folder path
    max_chars: int | None = None  # use only the first N characters (quick tests)
    validation_fraction: float = 0.1  # held-out share of each block (see split_text)
    num_chunks: int = 10  # blocks the held-out text is drawn from
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    units: int = 512  # hidden units per recurrent layer
    num_layers: int = 1  # stacked recurrent layers
    embedding_dim: int = 64  # character embedding size
    dropout: float = 0.0  # between layers and before the output layer
    sequence_length: int = 100  # characters per training window (BPTT length)
    batch_size: int = 64  # windows per step
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training windows
    validation_steps: int = 10  # held-out batches scored after each epoch (0: none)
    learning_rate: float = 2e-3  # Adam
    clip_norm: float = 1.0  # global gradient-norm clipping (0: off)
    precision: str = "auto"  # "auto", "float32", "mixed_bfloat16", "mixed_float16"
    tbptt: bool = False  # consecutive batches with the recurrent state carried over
    sample_every: int = 1  # print samples every N epochs (0: never)
    prompts: list[str] | None = None  # None: DEFAULT_PROMPTS for the corpus
    sample_length: int = 200  # characters generated per sample
    temperature: float = 0.8  # sampling temperature of the samples
    seed: int = 0  # seeds Python, NumPy, TensorFlow and the data pipeline
    backup_every: int = 100  # steps between backups (plus one at every epoch end)

    def resolved_prompts(self):
        """The prompts to sample from: the given ones, or the corpus' defaults."""
        if self.prompts:
            return list(self.prompts)
        return list(DEFAULT_PROMPTS.get(self.corpus, ["\n"]))


class RunSetupError(ValueError):
    """A run cannot start, resume or load as asked.

    Attributes:
        setting: the `CharLMRunConfig` field (or `"run_dir"`) at fault, so that a
            command line can name its option.
    """

    def __init__(self, setting, message):
        super().__init__(message)
        self.setting = setting


class RunFolder:
    """The files of one run folder (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        self.model = self.path / MODEL_FILE
        self.run_json = self.path / RUN_FILE
        self.heldout = self.path / HELDOUT_FILE
        self.history_csv = self.path / HISTORY_CSV
        self.history_json = self.path / HISTORY_JSON
        self.logs = self.path / LOGS_DIR
        self.backup = self.path / BACKUP_DIR

    @property
    def state(self):
        """`"finished"`, `"interrupted"` or `"empty"`."""
        if self.backup.exists():
            return "interrupted"
        if self.model.exists():
            return "finished"
        return "empty"

    def read_run_info(self):
        """The parsed `run.json`, or None if there is none."""
        if not self.run_json.is_file():
            return None
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_run_info(self, info):
        write_atomically(self.run_json, json.dumps(info, indent=2, ensure_ascii=False) + "\n")

    def backup_epoch(self):
        """The epoch an interrupted run resumes at (0-based), or None if unknown."""
        # BackupAndRestore's own bookkeeping file: {"epoch": ..., "batch": ...}.
        metadata = self.backup / "training_metadata.json"
        try:
            return int(json.loads(metadata.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear(self):
        """Deletes the files a run writes (and nothing else the folder may hold)."""
        for file in (self.model, self.run_json, self.heldout, self.history_csv, self.history_json):
            file.unlink(missing_ok=True)
        for folder in (self.logs, self.backup):
            shutil.rmtree(folder, ignore_errors=True)


def next_free_run_dir(run_dir):
    """The first of `run_dir`, `run_dir-2`, `run_dir-3`, ... not holding a finished run.

    An interrupted run is not skipped: training there resumes it.
    """
    run_dir = Path(run_dir)
    candidate, number = run_dir, 1
    while RunFolder(candidate).state == "finished":
        number += 1
        candidate = run_dir.with_name(f"{run_dir.name}-{number}")
    return candidate


def corpus_source(corpus):
    """How `run.json` records a corpus: its name, or the absolute path of a file."""
    if corpus in CORPUS_NAMES or corpus.startswith("tfds:"):
        return corpus
    return str(Path(corpus).expanduser().resolve())


def load_split(corpus, *, max_chars=None, validation_fraction=0.1, num_chunks=10):
    """Loads a corpus (optionally its first `max_chars` characters) and splits it.

    Returns:
        `(text, train_pieces, validation_pieces)`.

    Raises:
        RunSetupError: for a missing or empty corpus, or one too short to split
            (`setting` is `"corpus"` or `"max_chars"`).
    """
    try:
        text = load_corpus(corpus)
    except FileNotFoundError as error:
        raise RunSetupError("corpus", f"no such file or folder: {str(corpus)!r}") from error
    except (ValueError, RuntimeError) as error:
        # ValueError: an empty corpus; RuntimeError: the Shakespeare download failed.
        raise RunSetupError("corpus", str(error)) from error
    if max_chars is not None:
        text = text[:max_chars]
    if len(text) < 2 * num_chunks:
        raise RunSetupError(
            "max_chars" if max_chars is not None else "corpus",
            f"the text has {len(text)} characters; at least {2 * num_chunks} are needed "
            "to hold some of it out",
        )
    train_pieces, validation_pieces = split_text(
        text, validation_fraction=validation_fraction, num_chunks=num_chunks
    )
    return text, train_pieces, validation_pieces


def heldout_windows(validation_pieces, vocabulary, *, sequence_length, batch_size):
    """The held-out pieces as un-shuffled windows, the last batch kept even if short.

    Raises:
        RunSetupError: if no piece holds one window of `sequence_length + 1` characters.
    """
    try:
        return char_windows(
            validation_pieces,
            vocabulary,
            sequence_length=sequence_length,
            batch_size=batch_size,
            shuffle=False,
            drop_remainder=False,
        )
    except ValueError as error:
        longest = max((len(piece) for piece in validation_pieces), default=0)
        raise RunSetupError(
            "sequence_length",
            f"the held-out pieces (longest: {longest} characters) are shorter than one "
            f"window of sequence length + 1 = {sequence_length + 1} characters; use a "
            "shorter sequence length or more text",
        ) from error


def heldout_loss(model, validation_pieces, *, sequence_length, batch_size, verbose=1):
    """Mean next-character loss (nats/char) of `model` on the held-out windows.

    Returns:
        `(loss, characters_scored)`.
    """
    dataset = heldout_windows(
        validation_pieces, model.vocabulary, sequence_length=sequence_length, batch_size=batch_size
    )
    results = model.evaluate(dataset, verbose=verbose, return_dict=True)
    windows = sum(len(piece) // (sequence_length + 1) for piece in validation_pieces)
    return float(results["loss"]), windows * sequence_length


def saved_model_heldout_loss(log_prob, validation_pieces, *, sequence_length, batch_size, progress=True):
    """The same held-out loss as `heldout_loss`, through a SavedModel's `log_prob` signature.

    The text is cut into the same windows of `sequence_length + 1` characters; the
    signature scores every character of a window but its first, as training does.

    Args:
        log_prob: the `log_prob` signature of an exported char LM.
        validation_pieces: the held-out pieces.
        sequence_length, batch_size: the windowing of the run that made the model.
        progress: show a tqdm progress bar over the batches.

    Returns:
        `(loss, characters_scored)`.
    """
    from tqdm.auto import tqdm

    window = sequence_length + 1
    windows = [
        piece[start : start + window]
        for piece in validation_pieces
        for start in range(0, len(piece) - window + 1, window)
    ]
    if not windows:
        raise RunSetupError(
            "sequence_length",
            f"the held-out text has no window of {window} characters; use a shorter "
            "sequence length or more text",
        )
    total_log_prob, scored = 0.0, 0
    batches = range(0, len(windows), batch_size)
    for start in tqdm(batches, desc="scoring held-out text", unit="batch", disable=not progress):
        result = log_prob(text=tf.constant(windows[start : start + batch_size]))
        total_log_prob += float(tf.reduce_sum(tf.cast(result["log_prob"], tf.float64)))
        scored += int(tf.reduce_sum(tf.maximum(result["num_chars"] - 1, 0)))
    return -total_log_prob / scored, scored


def loss_summary(loss, characters):
    """A dict of a held-out loss in nats/char, bits/char and as a perplexity."""
    return {
        "loss_nats_per_char": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "characters_scored": characters,
    }


def format_loss(summary):
    """One line for a `loss_summary`."""
    return (
        f"held-out loss {summary['loss_nats_per_char']:.4f} nats/char "
        f"({summary['bits_per_char']:.4f} bits/char), perplexity {summary['perplexity']:.3f} "
        f"over {summary['characters_scored']:,} characters"
    )


def load_run_model(run_dir):
    """Loads `<run_dir>/model.keras` and `run.json`.

    Returns:
        `(model, run_info)`; `run_info` is None if the folder has no `run.json`.

    Raises:
        RunSetupError: if the folder holds no trained model (`setting="run_dir"`).
    """
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise RunSetupError("run_dir", f"no such folder: {str(folder.path)!r}; train a model first")
    if folder.state != "finished":
        hint = (
            "its training was interrupted; rerun the same train command to finish it"
            if folder.state == "interrupted"
            else "train a model there first"
        )
        raise RunSetupError("run_dir", f"{str(folder.path)!r} holds no trained {MODEL_FILE}: {hint}")
    return keras.saving.load_model(folder.model), folder.read_run_info()


def train_char_lm_run(config, run_dir, *, overwrite=False, verbose=1, print_fn=print):
    """Trains a char LM in `run_dir`, resuming an interrupted run there.

    Args:
        config: a `CharLMRunConfig`.
        run_dir: the run folder (created if needed).
        overwrite: replace a finished or interrupted run instead of refusing or resuming.
        verbose: Keras' verbosity for `fit` and `evaluate`.
        print_fn: where status lines and samples go.

    Returns:
        `(model, run_info)`: the trained model and the `run.json` contents.

    Raises:
        RunSetupError: if the folder holds a finished run (without `overwrite`), an
            interrupted run with other settings, or the data is too small.
    """
    folder = RunFolder(run_dir)
    print_fn(f"Loading corpus {config.corpus!r} ...")
    text, train_pieces, validation_pieces = load_split(
        config.corpus,
        max_chars=config.max_chars,
        validation_fraction=config.validation_fraction,
        num_chunks=config.num_chunks,
    )
    vocabulary = CharVocabulary.from_text(train_pieces)
    train_chars = sum(map(len, train_pieces))
    validation_chars = sum(map(len, validation_pieces))
    print_fn(
        f"{len(text):,} characters: {train_chars:,} for training, {validation_chars:,} held out "
        f"({len(validation_pieces)} pieces); vocabulary of {vocabulary.size} ids"
    )
    resumed_from = _prepare_folder(folder, config, overwrite, print_fn)

    keras.utils.set_random_seed(config.seed)
    train_data, batches_per_pass = _training_data(train_pieces, vocabulary, config)
    steps_per_epoch = min(config.steps_per_epoch or batches_per_pass, batches_per_pass)
    validation_data, validation_steps = _validation_data(validation_pieces, vocabulary, config)

    model = build_char_lm(
        vocabulary,
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        dropout=config.dropout,
        learning_rate=config.learning_rate,
        clip_norm=config.clip_norm,
        dtype_policy=config.precision,
    )
    if config.tbptt:
        model.enable_state_carry(config.batch_size)

    info = {
        "task": "char_lm",
        "status": "training",
        "settings": dataclasses.asdict(config),
        "corpus": {"source": corpus_source(config.corpus), "characters": len(text)},
        "split": {
            "validation_fraction": config.validation_fraction,
            "num_chunks": config.num_chunks,
            "train_characters": train_chars,
            "validation_characters": validation_chars,
            "validation_pieces": len(validation_pieces),
        },
        "vocabulary_size": vocabulary.size,
        "dtype_policy": model.dtype_policy_name,
        "parameters": int(model.count_params()),
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_epoch": resumed_from,
        "versions": _versions(),
        "started_at": _now(),
    }
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_run_info(info)
    write_atomically(folder.heldout, "\n".join(validation_pieces))
    print_fn(
        f"{config.cell.upper()} {config.num_layers}x{config.units}, {info['parameters']:,} "
        f"parameters, {model.dtype_policy_name}; {config.epochs} epochs of {steps_per_epoch} steps "
        f"({batches_per_pass} per pass over the training text)"
        + (", truncated BPTT with carried state" if config.tbptt else "")
    )

    clock = _TrainingClock()
    callbacks = [
        clock,
        # Before CSVLogger: a history row then always has its backup on disk.
        _EpochBackupAndRestore(folder.backup, save_freq=config.backup_every),
        keras.callbacks.CSVLogger(folder.history_csv, append=True),
    ]
    if _tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(folder.logs))
    else:
        print_fn("(No TensorBoard logs: the tensorboard package is not installed.)")
    if config.tbptt:
        callbacks.append(ResetCarriedState())
    if config.sample_every:
        callbacks.append(
            SampleText(
                config.resolved_prompts(),
                every=config.sample_every,
                max_length=config.sample_length,
                sampler="temperature",
                seed=config.seed,
                temperature=config.temperature,
                print_fn=print_fn,
            )
        )
    model.fit(
        train_data,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        validation_steps=validation_steps,
        callbacks=callbacks,
        verbose=verbose,
    )

    history = _read_history(folder.history_csv)
    folder.history_json.write_text(json.dumps(history, indent=1) + "\n")
    train_seconds = float(sum(history.get("train_seconds", [])))
    epochs_done = len(history.get("epoch", []))
    tokens = epochs_done * steps_per_epoch * config.batch_size * config.sequence_length

    print_fn("Scoring the held-out text ...")
    loss, scored = heldout_loss(
        model,
        validation_pieces,
        sequence_length=config.sequence_length,
        batch_size=config.batch_size,
        verbose=verbose,
    )
    summary = loss_summary(loss, scored)
    _save_model_atomically(model, folder.model)
    info.update(
        status="finished",
        epochs_completed=epochs_done,
        heldout=summary,
        train_seconds=train_seconds,
        tokens_trained=tokens,
        tokens_per_second=tokens / train_seconds if train_seconds else None,
        finished_at=_now(),
    )
    folder.write_run_info(info)
    # Only now is the run safe to call finished: a kill before this line resumes.
    shutil.rmtree(folder.backup, ignore_errors=True)
    print_fn(format_loss(summary))
    print_fn(
        f"Trained {epochs_done} epochs in {train_seconds:.0f} s "
        f"({info['tokens_per_second'] or 0:,.0f} characters/s); saved {folder.model}"
    )
    return model, info


def _prepare_folder(folder, config, overwrite, print_fn):
    """Refuses, clears or resumes according to what `folder` holds.

    Returns:
        The epoch (0-based) an interrupted run resumes at, or None for a fresh start.
    """
    state = folder.state
    if overwrite:
        folder.clear()
        return None
    if state == "finished":
        raise RunSetupError(
            "run_dir",
            f"{str(folder.path)!r} already holds a finished run ({MODEL_FILE}); pass "
            "--overwrite to replace it, or choose another run folder",
        )
    if state == "empty":
        # Left-overs of a run killed before its first backup: nothing to resume.
        folder.clear()
        return None
    previous = (folder.read_run_info() or {}).get("settings", {})
    current = dataclasses.asdict(config)
    changed = [
        f"{name}: {previous[name]!r} -> {current[name]!r}"
        for name in _RESUME_SETTINGS
        if name in previous and previous[name] != current[name]
    ]
    if changed:
        raise RunSetupError(
            "run_dir",
            f"{str(folder.path)!r} holds an interrupted run with other settings "
            f"({'; '.join(changed)}); rerun it with the same options to resume it, or pass "
            "--overwrite to start over",
        )
    epoch = folder.backup_epoch()
    print_fn(
        f"Resuming the interrupted run in {str(folder.path)!r}"
        + (f" at epoch {epoch + 1}" if epoch is not None else "")
        + " from its last backup."
    )
    return epoch


def _training_data(train_pieces, vocabulary, config):
    """The repeated training pipeline and its number of batches per pass."""
    try:
        if config.tbptt:
            dataset = consecutive_char_batches(
                train_pieces,
                vocabulary,
                sequence_length=config.sequence_length,
                batch_size=config.batch_size,
            )
        else:
            dataset = char_windows(
                train_pieces,
                vocabulary,
                sequence_length=config.sequence_length,
                batch_size=config.batch_size,
                seed=config.seed,
            )
    except ValueError as error:
        raise RunSetupError(
            "batch_size",
            f"the training text ({sum(map(len, train_pieces)):,} characters in "
            f"{len(train_pieces)} pieces) is too short for one batch of {config.batch_size} "
            f"windows of sequence length + 1 = {config.sequence_length + 1} characters; use a "
            "smaller batch size or sequence length, or more text",
        ) from error
    batches = int(dataset.cardinality())
    # Repeating lets `steps_per_epoch` cut passes anywhere without Keras' "ran out of
    # data" stop; with shuffling on, each pass is reshuffled.
    return dataset.repeat(), batches


def _validation_data(validation_pieces, vocabulary, config):
    """The per-epoch validation pipeline and its step count, or `(None, None)`."""
    if not config.validation_steps:
        return None, None
    dataset = heldout_windows(
        validation_pieces,
        vocabulary,
        sequence_length=config.sequence_length,
        batch_size=config.batch_size,
    )
    batches = int(dataset.cardinality())
    if config.validation_steps >= batches:
        return dataset, None
    # A repeated set lets every epoch score the next slice without a "ran out" warning.
    return dataset.repeat(), config.validation_steps


class _EpochBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that backs up every `save_freq` steps AND at every epoch end.

    Keras 3.15's callback with an integer `save_freq` saves only between batches, so a
    run killed just after an epoch ended would redo part of it. And after a resume its
    epoch counter restarts at 0 until an epoch ends, so a mid-epoch backup written in
    between would send a second resume back to epoch 1; `on_epoch_begin` fixes that.
    """

    def __init__(self, backup_dir, save_freq):
        # The backup is removed by train_char_lm_run once model.keras is safely written.
        super().__init__(
            str(backup_dir), save_freq=save_freq, double_checkpoint=True, delete_checkpoint=False
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save_model()
        self._batches_seen_since_last_saving = 0


class _TrainingClock(keras.callbacks.Callback):
    """Adds `train_seconds` to each epoch's logs: the time spent in training steps,
    without the validation, the samples or the backups after them."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._seconds is None:
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        if self._seconds is None:
            self._seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["train_seconds"] = self._seconds


def _read_history(csv_path):
    """history.csv as `{column: [values]}`, one entry per epoch.

    An epoch repeated after a resume appears twice in the CSV; its last row wins.
    CSVLogger writes "NA" for a missing value (it adds `val_*` columns even when there is
    no validation); those become None, and columns with no value at all are dropped.
    """
    import csv

    if not csv_path.is_file():
        return {}
    with open(csv_path, newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    history = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key == "epoch":
                value = int(value)
            else:
                value = None if value in ("NA", "", None) else float(value)
            history.setdefault(key, []).append(value)
    return {key: values for key, values in history.items() if any(v is not None for v in values)}


def _tensorboard_installed():
    # tensorflow-cpu 2.21 no longer depends on tensorboard, and tf.summary needs it.
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _save_model_atomically(model, path):
    # A killed save must never leave a truncated model.keras that looks finished.
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)


def _versions():
    import rnn_toolkit

    return {"rnn_toolkit": rnn_toolkit.__version__, "keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
