"""Run folders: what every training command writes, and how a killed run resumes.

    <run_dir>/
        run.json        settings, data, split, results, timings (and "task")
        model.keras     the trained model (written when training has finished)
        history.csv     one row per epoch (CSVLogger); history.json: the same as lists
        logs/           TensorBoard event files
        backup/         the BackupAndRestore checkpoint; present only while a run is
                        unfinished, so a killed run resumes from its last backup

A folder is *finished* when it holds `model.keras` and no `backup/`, *interrupted* when it
holds `backup/`, and *empty* otherwise. Each task's run (`rnn_toolkit.tasks.<task>.run`)
may add files of its own (`TaskRun.extra_files`).
"""

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.data.cache import write_atomically

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
HELDOUT_FILE = "heldout.txt"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"


class RunSetupError(ValueError):
    """A run cannot start, resume or load as asked.

    Attributes:
        setting: the run-config field (or `"run_dir"`) at fault, so that a command
            line can name its option.
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

    def save_history(self):
        """Reads `history.csv` (see `read_history`), writes it as `history.json`, returns it."""
        history = read_history(self.history_csv)
        self.history_json.write_text(json.dumps(history, indent=1) + "\n")
        return history

    def clear(self, task_files=()):
        """Deletes the files a run writes, plus `task_files` (names in the folder), and
        nothing else the folder may hold."""
        files = (self.model, self.run_json, self.heldout, self.history_csv, self.history_json)
        for file in files + tuple(self.path / name for name in task_files):
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


def prepare_run_folder(folder, config, overwrite, print_fn, *, resume_settings, task_files=()):
    """Refuses, clears or resumes according to what `folder` holds.

    Args:
        folder: a `RunFolder`.
        config: the run's settings (a dataclass); an interrupted run resumes only if its
            recorded `resume_settings` equal these.
        overwrite: clear the folder whatever it holds.
        print_fn: where the resume message goes.
        resume_settings: the setting names that must not change across a resume.
        task_files: names of files a task module adds to its run folders (a best-epoch
            checkpoint, say); a fresh start deletes them with the common ones, so a
            previous run's best epoch cannot pass for this one's.

    Returns:
        The epoch (0-based) an interrupted run resumes at, or None for a fresh start.
    """
    state = folder.state
    if overwrite:
        folder.clear(task_files)
        return None
    if state == "finished":
        status = (folder.read_run_info() or {}).get("status", "finished")
        what = (
            "a trained model whose scoring did not finish (score it with 'rnn-toolkit "
            f"evaluate {folder.path}')"
            if status == "scoring"
            else f"a finished run ({MODEL_FILE})"
        )
        raise RunSetupError(
            "run_dir",
            f"{str(folder.path)!r} already holds {what}; pass --overwrite to replace it, "
            "or choose another run folder",
        )
    if state == "empty":
        # Left-overs of a run killed before its first backup: nothing to resume.
        folder.clear(task_files)
        return None
    previous = (folder.read_run_info() or {}).get("settings", {})
    current = dataclasses.asdict(config)
    changed = [
        f"{name}: {previous[name]!r} -> {current[name]!r}"
        for name in resume_settings
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


class EpochBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that backs up every `save_freq` steps AND at every epoch end.

    Keras 3.15's callback with an integer `save_freq` saves only between batches, so a
    run killed just after an epoch ended would redo part of it. And after a resume its
    epoch counter restarts at 0 until an epoch ends, so a mid-epoch backup written in
    between would send a second resume back to epoch 1; `on_epoch_begin` fixes that.
    """

    def __init__(self, backup_dir, save_freq):
        # The backup is removed by the trainer once model.keras is safely written.
        super().__init__(
            str(backup_dir), save_freq=save_freq, double_checkpoint=True, delete_checkpoint=False
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save_model()
        self._batches_seen_since_last_saving = 0


class TrainingClock(keras.callbacks.Callback):
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


def read_history(csv_path):
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


def tensorboard_installed():
    # tensorflow-cpu 2.21 no longer depends on tensorboard, and tf.summary needs it.
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def save_model_atomically(model, path):
    # A killed save must never leave a truncated model.keras that looks finished.
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)


def versions():
    from rnn_toolkit.version import __version__

    return {"rnn_toolkit": __version__, "keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_callbacks(folder, *, backup_every, before_history=(), print_fn=print, writes=True):
    """The callbacks every training run uses, in the order that keeps them consistent.

    `TrainingClock` (adds `train_seconds`), the backup (every `backup_every` steps and at
    epoch ends), then `before_history` (callbacks whose state must be saved before an
    epoch is recorded, e.g. `KeepBestWeights`), `CSVLogger` (after the backup: a history
    row always has its backup on disk) and TensorBoard if it is installed. With
    `writes=False` (a worker other than the chief of a multi-worker run), only the clock
    and `before_history`: no backup, history or logs.
    """
    if not writes:
        return [TrainingClock(), *before_history]
    callbacks = [
        TrainingClock(),
        EpochBackupAndRestore(folder.backup, save_freq=backup_every),
        *before_history,
        keras.callbacks.CSVLogger(folder.history_csv, append=True),
    ]
    if tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(folder.logs))
    else:
        print_fn("(No TensorBoard logs: the tensorboard package is not installed.)")
    return callbacks
