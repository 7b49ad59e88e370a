"""The one training driver: every task's `train` runs through `train_run`.

The driver owns what every run does the same way — the run folder (refuse, clear or
resume), seeding, building the model inside a distribution strategy's scope, the
callbacks every run has (clock, backup, history, TensorBoard), `fit`, the history, the
atomic save of `model.keras`, and `run.json` from "training" to "finished". A task
supplies what differs by subclassing `TaskRun`: its data, its model, its own callbacks,
its scoring and its report.

    prepare  -> run folder -> seed -> datasets -> build (in strategy scope) -> run.json
    -> before_fit -> fit -> history -> save model.keras -> score -> run.json -> report

The model is saved before scoring: scoring can take minutes (a translator decodes its
held-out share twice) and a crash there must not cost the training. While it scores,
run.json says `"status": "scoring"`.
"""

import dataclasses
import shutil
import sys
import tempfile

import keras
import tensorflow as tf

from rnn_toolkit.runs.distributed import (
    fit_on_workers,
    is_chief,
    is_multi_worker,
    release_workers,
    wait_for_chief,
    worker_description,
)
from rnn_toolkit.runs.folder import (
    RunFolder,
    now,
    prepare_run_folder,
    run_callbacks,
    save_model_atomically,
    versions,
)
from rnn_toolkit.training import KeepBestWeights, SampleText, ScoreGenerations

# Callbacks whose effects are the chief's alone (printing, scoring generations, the
# best-epoch record, whose stop decision is broadcast): the other workers skip them.
_CHIEF_ONLY_CALLBACKS = (SampleText, ScoreGenerations, KeepBestWeights)


@dataclasses.dataclass
class FitData:
    """What `fit` reads: the training and validation pipelines and their step counts."""

    train: object
    validation: object = None
    steps_per_epoch: int | None = None  # None: one pass over `train`
    validation_steps: int | None = None  # None: one pass over `validation`


@dataclasses.dataclass
class Run:
    """One training run, as the driver hands it to a task's hooks.

    A task keeps what its later hooks need in `data` (its loaded data, split and
    vocabularies) and `state` (e.g. its early-stopping callback).
    """

    task: "TaskRun"
    config: object
    folder: RunFolder
    print_fn: object = print
    verbose: int = 1
    data: object = None
    model: keras.Model | None = None
    info: dict = dataclasses.field(default_factory=dict)
    previous_info: dict = dataclasses.field(default_factory=dict)  # run.json of an interrupted run
    fresh_start: bool = True
    resumed_from: int | None = None
    history: dict = dataclasses.field(default_factory=dict)
    train_seconds: float = 0.0
    state: dict = dataclasses.field(default_factory=dict)


class TaskRun:
    """What a task supplies to the training driver: override the hooks that differ.

    Attributes:
        name: the task's name, recorded as run.json's `"task"`.
        resume_settings: config fields that must not change across a resume (a resumed
            run must rebuild the same data and model, or the backup would not fit).
        extra_files: names of files the task adds to its run folders; a fresh start
            deletes them with the shared ones.
    """

    name = None
    resume_settings = ()
    extra_files = ()

    def prepare(self, run):
        """Loads and splits the data into `run.data`; prints what was loaded.

        Raises `rnn_toolkit.runs.RunSetupError` for bad data or settings.
        """
        raise NotImplementedError

    def datasets(self, run):
        """Returns the `FitData`. Called after seeding, before the model is built."""
        raise NotImplementedError

    def build_model(self, run):
        """Returns the compiled model (called inside the strategy's scope)."""
        raise NotImplementedError

    def describe(self, run):
        """The task's entries of run.json (data, split, vocabulary sizes ...)."""
        return {}

    def before_fit(self, run):
        """Runs after run.json is first written, before `fit` (prints, extra files)."""

    def callbacks(self, run):
        """The task's callbacks; they run after the backup and before the history row."""
        return []

    def score(self, run):
        """Scores the trained `run.model`; returns the results to add to run.json."""
        return {}

    def report(self, run):
        """The closing text printed after scoring."""
        return ""


def progress_verbosity(stream=None):
    """Keras' `verbose` for where output goes: progress bars (1) on a terminal, one line
    per epoch (2) in a file or a pipe, where a bar's carriage returns pile up."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def train_run(task, config, run_dir, *, overwrite=False, verbose=None, print_fn=print, strategy=None):
    """Trains `task` with `config` in `run_dir`, resuming an interrupted run there.

    Args:
        task: a `TaskRun`.
        config: the task's run config (a `TrainingConfig` subclass).
        run_dir: the run folder (created if needed).
        overwrite: replace a finished or interrupted run instead of refusing or resuming.
        verbose: Keras' verbosity for `fit` and `evaluate`; None picks progress bars on
            a terminal and one line per epoch otherwise (`progress_verbosity`).
        print_fn: where status lines go.
        strategy: a `tf.distribute.Strategy` whose scope the model is built in (default:
            the current one). With a `MultiWorkerMirroredStrategy`
            (`rnn_toolkit.runs.distributed.multi_worker_strategy`), every worker calls
            this with the same arguments: they train one model together with
            `fit_on_workers`; worker 0 (the chief) does everything a single process does,
            the others train in a private temporary folder, print nothing, and return
            before saving and scoring.

    Returns:
        `(model, run_info)`: the trained model and the contents of run.json (on a worker
        other than the chief, a short record of its part).

    Raises:
        RunSetupError: if the folder holds a finished run (without `overwrite`), an
            interrupted run with other settings, or the data or settings are unusable.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not is_chief(strategy):
        return _train_as_worker(task, config, strategy)
    run = Run(task=task, config=config, folder=RunFolder(run_dir), print_fn=print_fn)
    run.verbose = progress_verbosity() if verbose is None else verbose
    task.prepare(run)
    run.fresh_start = overwrite or run.folder.state != "interrupted"
    run.previous_info = {} if run.fresh_start else run.folder.read_run_info() or {}
    run.resumed_from = prepare_run_folder(
        run.folder, config, overwrite, print_fn,
        resume_settings=task.resume_settings, task_files=task.extra_files,
    )

    fit_data = _seed_and_build(run, strategy)
    run.folder.path.mkdir(parents=True, exist_ok=True)
    run.folder.write_run_info(run.info)
    task.before_fit(run)

    callbacks = run_callbacks(
        run.folder, backup_every=config.backup_every, before_history=task.callbacks(run),
        print_fn=print_fn,
    )
    _fit(run, strategy, fit_data, callbacks)
    run.history = run.folder.save_history()
    run.train_seconds = float(sum(run.history.get("train_seconds", [])))

    save_model_atomically(run.model, run.folder.model)
    if is_multi_worker(strategy):
        # Scoring runs on the chief alone: a model of the multi-worker strategy would wait
        # for the other workers at its first collective (evaluate's metrics).
        run.model = keras.saving.load_model(run.folder.model)
    run.info.update(
        status="scoring",
        epochs_completed=len(run.history.get("epoch", [])),
        train_seconds=run.train_seconds,
    )
    run.folder.write_run_info(run.info)
    # Only now is the training safe: a kill before this line resumes from the backup.
    shutil.rmtree(run.folder.backup, ignore_errors=True)

    run.info.update(task.score(run))
    run.info.update(status="finished", finished_at=now())
    run.folder.write_run_info(run.info)
    report = task.report(run)
    if report:
        print_fn(report)
    print_fn(f"Saved {run.folder.model}")
    release_workers(strategy)
    return run.model, run.info


def _seed_and_build(run, strategy):
    """Seeds everything, makes the datasets, builds the model in `strategy`'s scope,
    and fills `run.info` (run.json's first contents); returns the `FitData`."""
    keras.utils.set_random_seed(run.config.seed)
    fit_data = run.task.datasets(run)
    with strategy.scope():
        run.model = run.task.build_model(run)
    run.info = {
        "task": run.task.name,
        "status": "training",
        "settings": dataclasses.asdict(run.config),
        **run.task.describe(run),
        "dtype_policy": getattr(run.model, "dtype_policy_name", run.model.dtype_policy.name),
        "parameters": int(run.model.count_params()),
        "resumed_from_epoch": run.resumed_from,
        **_distribution_info(strategy),
        "versions": versions(),
        "started_at": now(),
    }
    return fit_data


def _fit(run, strategy, fit_data, callbacks):
    config = run.config
    if is_multi_worker(strategy):
        fit_on_workers(
            run.model, strategy, fit_data, epochs=config.epochs, callbacks=callbacks, verbose=run.verbose
        )
        return
    run.model.fit(
        fit_data.train,
        epochs=config.epochs,
        steps_per_epoch=fit_data.steps_per_epoch,
        validation_data=fit_data.validation,
        validation_steps=fit_data.validation_steps,
        callbacks=callbacks,
        verbose=run.verbose,
    )


def _distribution_info(strategy):
    """run.json's record of how the run was distributed (nothing for one device)."""
    if is_multi_worker(strategy):
        resolver = strategy.cluster_resolver
        return {"distribution": {
            "strategy": type(strategy).__name__,
            "workers": resolver.cluster_spec().as_dict().get("worker", []),
            "replicas": strategy.num_replicas_in_sync,
        }}
    if strategy.num_replicas_in_sync > 1:
        return {"distribution": {
            "strategy": type(strategy).__name__,
            "devices": list(strategy.extended.worker_devices),
            "replicas": strategy.num_replicas_in_sync,
        }}
    return {}


def _train_as_worker(task, config, strategy):
    """A worker's part of a multi-worker run (any worker but the chief): the same data,
    model and training steps as the chief, in a private folder that is deleted after, with
    nothing printed and nothing saved; the chief's state is broadcast to it at the start."""
    scratch = tempfile.mkdtemp(prefix="rnn_toolkit-worker-")
    try:
        run = Run(task=task, config=config, folder=RunFolder(scratch), print_fn=_silent, verbose=0)
        task.prepare(run)
        fit_data = _seed_and_build(run, strategy)
        task.before_fit(run)
        callbacks = [
            callback
            for callback in run_callbacks(run.folder, backup_every=None, before_history=task.callbacks(run),
                                          print_fn=_silent, writes=False)
            if not isinstance(callback, _CHIEF_ONLY_CALLBACKS)
        ]
        history = fit_on_workers(run.model, strategy, fit_data, epochs=config.epochs, callbacks=callbacks, verbose=0)
        wait_for_chief(strategy)
        return run.model, {
            "task": task.name,
            "status": "finished",
            "worker": worker_description(strategy),
            "epochs_trained": len(history.epoch),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _silent(*args, **kwargs):
    pass
