"""The shared training driver with a minimal task: the order of the hooks, the run folder,
the strategy scope, and where progress output goes."""

import dataclasses
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, progress_verbosity, train_run


@dataclasses.dataclass
class TinyConfig(TrainingConfig):
    epochs: int = 2
    units: int = 3


class TinyRegression(TaskRun):
    """y = x1 - x2 with a Dense layer: just enough task to drive."""

    name = "tiny"
    resume_settings = ("units",)
    extra_files = ("extra.txt",)

    def __init__(self):
        self.calls = []

    def prepare(self, run):
        self.calls.append("prepare")
        x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        run.data = (x, x[:, :1] - x[:, 1:])

    def datasets(self, run):
        self.calls.append("datasets")
        return FitData(tf.data.Dataset.from_tensor_slices(run.data).batch(8))

    def build_model(self, run):
        self.calls.append("build_model")
        self.state_strategy = tf.distribute.get_strategy()
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(run.config.units), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        return model

    def describe(self, run):
        self.calls.append("describe")
        return {"examples": len(run.data[0])}

    def before_fit(self, run):
        self.calls.append("before_fit")
        (run.folder.path / "extra.txt").write_text("task file")

    def callbacks(self, run):
        self.calls.append("callbacks")
        return []

    def score(self, run):
        self.calls.append("score")
        # The model is saved, and run.json says so, before scoring starts.
        assert run.folder.model.is_file()
        assert json.loads(run.folder.run_json.read_text())["status"] == "scoring"
        return {"heldout": {"mse": float(run.model.evaluate(*run.data, verbose=0))}}

    def report(self, run):
        return f"held-out mse {run.info['heldout']['mse']:.3f}"


def test_the_driver_runs_the_hooks_in_order_and_finishes_the_folder(tmp_path):
    task = TinyRegression()
    lines = []
    model, info = train_run(task, TinyConfig(), tmp_path / "run", verbose=0, print_fn=lines.append)
    assert task.calls == ["prepare", "datasets", "build_model", "describe", "before_fit", "callbacks", "score"]
    assert info["task"] == "tiny" and info["status"] == "finished" and info["examples"] == 32
    assert info["epochs_completed"] == 2 and info["settings"]["units"] == 3
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == info
    assert (tmp_path / "run" / "history.json").is_file() and not (tmp_path / "run" / "backup").exists()
    assert lines[-2].startswith("held-out mse") and lines[-1].startswith("Saved ")
    # A finished run is refused; --overwrite deletes the task's own files too.
    with pytest.raises(RunSetupError, match="finished run"):
        train_run(TinyRegression(), TinyConfig(), tmp_path / "run", verbose=0, print_fn=lines.append)


def test_a_run_whose_scoring_was_killed_says_so(tmp_path):
    class Killed(TinyRegression):
        def score(self, run):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(Killed(), TinyConfig(), tmp_path / "run", verbose=0, print_fn=lambda line: None)
    with pytest.raises(RunSetupError, match="scoring did not finish"):
        train_run(TinyRegression(), TinyConfig(), tmp_path / "run", verbose=0, print_fn=lambda line: None)


def test_the_model_is_built_in_the_strategys_scope(tmp_path):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    task = TinyRegression()
    _, info = train_run(task, TinyConfig(epochs=1), tmp_path / "run", verbose=0,
                        print_fn=lambda line: None, strategy=strategy)
    assert task.state_strategy is strategy and info["status"] == "finished"


def test_progress_bars_on_a_terminal_one_line_per_epoch_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_verbosity(Terminal()) == 1
    assert progress_verbosity(io.StringIO()) == 2
