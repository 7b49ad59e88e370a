"""One test over every registered task: its registration, its options, and (slow) a tiny
train -> export -> evaluate -> fresh-process client round trip, and a resumed run.

A task added to the registry is tested here as soon as `TINY` says how to train it small.
"""

import ast
import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rnn_toolkit
from rnn_toolkit.cli.registration import TaskCommands
from rnn_toolkit.cli.tasks import DEFAULT_TASK, get_task, task_names
from rnn_toolkit.runs import TrainingConfig
from rnn_toolkit.runs import folder as run_folder

from cli_helpers import assert_usage_error, parse, run_cli, task_config
from tiny_data import write_caption_folder, write_frame_folder, write_pairs, write_reviews, write_tiny_corpus

TASKS = task_names()
TASK_FILES = ("model.py", "run.py", "export.py", "client.py", "cli.py")

# How to train each task in seconds: its data file, its options, and what its client reads.
TINY = {
    "char_lm": dict(
        data=lambda folder: ["--corpus", write_tiny_corpus(folder / "corpus.txt")],
        options=["--units", "8", "--embedding-dim", "4", "--sequence-length", "20",
                 "--batch-size", "8", "--steps-per-epoch", "3", "--validation-steps", "1",
                 "--sample-every", "0", "--precision", "float32"],
        client=["--prompt", "the ", "--max-length", "20"],
    ),
    "sentiment": dict(
        data=lambda folder: ["--data", write_reviews(folder / "reviews.csv", lines=80)],
        options=["--units", "4", "--embedding-dim", "4", "--batch-size", "8", "--precision",
                 "float32", "--pretrain", "none", "--no-baseline", "--patience", "9"],
        client=["a wonderful film", "a dull film"],
    ),
    "translator": dict(
        data=lambda folder: ["--data", write_pairs(folder / "pairs.tsv", count=200),
                             "--ood-data", "none"],
        options=["--units", "8", "--embedding-dim", "8", "--batch-size", "32", "--min-count",
                 "1", "--precision", "float32", "--sample-every", "0", "--patience", "9"],
        client=["the man sees a dog", "bread and water"],
    ),
    "captioner": dict(
        data=lambda folder: ["--data", write_caption_folder(folder / "images")],
        options=["--image-encoder", "small_cnn", "--image-size", "32", "--units", "8",
                 "--embedding-dim", "4", "--batch-size", "8", "--min-count", "1", "--precision",
                 "float32", "--sample-every", "0", "--patience", "9", "--cross-style", "none"],
        client=["images"],
    ),
    "frame_labeller": dict(
        # Moving digits need no file; the client labels a folder of frame images.
        data=lambda folder: ["--data", "moving_digits"] if write_frame_folder(folder / "frames") else [],
        options=["--train-clips", "16", "--validation-clips", "4", "--test-clips", "4", "--frames", "5",
                 "--min-frames", "3", "--frame-size", "32", "--units", "8", "--batch-size", "8",
                 "--precision", "float32", "--patience", "9", "--no-baseline", "--clip-labels", "digit"],
        client=["frames"],
    ),
}


def test_every_registered_task_has_tiny_settings_here():
    assert set(TINY) == set(TASKS), "add the new task's tiny training settings to TINY"


# --- The registration (fast) ----------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS)
def test_the_task_folder_and_its_registration(name):
    task = get_task(name)
    assert isinstance(task, TaskCommands) and task.name == name
    folder = Path(rnn_toolkit.__file__).parent / "tasks" / name
    for file in TASK_FILES:
        assert (folder / file).is_file(), f"tasks/{name}/{file} is missing"
    assert importlib.import_module(f"rnn_toolkit.tasks.{name}.cli").TASK is task
    for hook in (task.train, task.export, task.evaluate, task.recognizes):
        assert callable(hook)
    assert dataclasses.is_dataclass(task.config) and issubclass(task.config, TrainingConfig)
    assert task.summary and task.description and task.signatures


@pytest.mark.parametrize("name", TASKS)
def test_every_config_field_has_a_train_option(name):
    settings = parse(["train", name]).settings
    assert {s.name for s in settings} == {f.name for f in dataclasses.fields(get_task(name).config)}


@pytest.mark.parametrize("name", TASKS)
def test_the_parsed_defaults_are_the_configs(name):
    assert task_config(parse(["train", name])) == get_task(name).config()


@pytest.mark.parametrize("name", TASKS)
def test_train_help_shows_each_options_default(name):
    status, out, _ = run_cli(["train", name, "--help"])
    assert status == 0
    flat = " ".join(out.split())
    for field in dataclasses.fields(TrainingConfig):
        value = getattr(get_task(name).config(), field.name)
        assert f"(default: {value})" in flat, f"train {name} --help: {field.name} = {value}"


def test_train_without_a_task_is_the_default_task():
    assert parse(["train"]).task == DEFAULT_TASK
    assert parse(["train", "--epochs", "3"]).task == DEFAULT_TASK


def test_another_tasks_option_names_that_task():
    other = next(name for name in TASKS if name != DEFAULT_TASK and "data" in {
        f.name for f in dataclasses.fields(get_task(name).config)})
    result = run_cli(["train", "--data", "x"])
    assert_usage_error(result, "--data")
    assert f"is a {other}" in result[2] and f"'train {DEFAULT_TASK}' does not take it" in result[2]


def test_an_unknown_task_is_named():
    assert_usage_error(run_cli(["train", "bogus"]), "TASK")


# --- The clients: one file each, their shared helpers identical ---------------------------------


def _functions(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    return {
        node.name: ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }


def test_the_clients_shared_helpers_are_identical():
    # A deployer copies one client file, so each client carries its own copy of the
    # helpers; this keeps the copies from drifting apart.
    clients = {name: _functions(Path(rnn_toolkit.__file__).parent / "tasks" / name / "client.py") for name in TASKS}
    seen = {}
    for name, functions in clients.items():
        for function, source in functions.items():
            if function == "main":
                continue
            seen.setdefault(function, []).append((name, source))
    shared = {function: copies for function, copies in seen.items() if len(copies) > 1}
    assert shared, "the clients are expected to share helpers such as resolve_version"
    for function, copies in shared.items():
        first_task, first = copies[0]
        for task, source in copies[1:]:
            assert source == first, f"{function} differs between the {first_task} and {task} clients"


# --- Tiny real runs (slow) ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", TASKS)
def test_train_on_two_workers_export_evaluate_and_a_plain_tensorflow_client(name, tmp_path):
    # Trained by two worker processes (`launch`: MultiWorkerMirroredStrategy on 127.0.0.1);
    # the single-process training of every task is tested by the resume test below.
    spec = TINY[name]
    run_dir = tmp_path / "run"
    status, out, err = run_cli(["launch", "--workers", "2", "--max-restarts", "0", "--", "train", name,
                                *spec["data"](tmp_path), *spec["options"], "--run-dir", run_dir,
                                "--epochs", "2", "--cluster-timeout", "60"])
    assert status == 0, out[-3000:] + err
    info = json.loads((run_dir / "run.json").read_text())
    assert info["task"] == name and info["status"] == "finished" and info["epochs_completed"] == 2
    assert info["distribution"]["replicas"] == 2
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    # Output for a file or a pipe: one line per epoch, no progress-bar carriage returns.
    assert "\r" not in out and "Epoch 2/2" in out

    status, out, err = run_cli(["export", "--run-dir", run_dir, "--base-dir", tmp_path / "saved"])
    assert status == 0, err
    version = tmp_path / "saved" / name / "1"
    assert (version / "saved_model.pb").is_file() and f"Exported {version}" in out

    for source in (["evaluate", run_dir], ["evaluate", version, "--run-dir", run_dir]):
        status, out, err = run_cli(source)
        assert status == 0, err
        assert out.strip()

    client = Path(rnn_toolkit.__file__).parent / "tasks" / name / "client.py"
    result = subprocess.run(
        [sys.executable, str(client), str(version), *TINY[name]["client"]],
        capture_output=True, text=True, timeout=300,
        cwd=tmp_path,  # not the repository: rnn_toolkit must not be importable by accident
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= 1  # a tiny model may answer with empty text
    assert "rnn_toolkit was not imported" in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", TASKS)
def test_an_interrupted_run_resumes(name, tmp_path, monkeypatch):
    spec = TINY[name]
    run_dir = tmp_path / "run"
    argv = ["train", name, *spec["data"](tmp_path), *spec["options"], "--epochs", "4",
            "--backup-every", "3", "--run-dir", run_dir]

    class InterruptedClock(run_folder.TrainingClock):
        """Ctrl-C as the third epoch begins: two epochs are backed up and logged."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt
            super().on_epoch_begin(epoch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "TrainingClock", InterruptedClock)
        status, _, err = run_cli(argv)
    assert status == 130 and "rerun the same command to resume" in err
    assert (run_dir / "backup").is_dir() and not (run_dir / "model.keras").exists()

    # Other settings are refused: the backup would not fit them.
    units = spec["options"][spec["options"].index("--units") + 1]
    result = run_cli([*argv, "--units", str(int(units) + 1)])
    assert_usage_error(result, "--run-dir")
    assert f"units: {units} -> {int(units) + 1}" in result[2]

    status, out, err = run_cli(argv)
    assert status == 0, err
    assert "Resuming the interrupted run" in out and "at epoch 3" in out
    assert "Epoch 1/4" not in out and "Epoch 3/4" in out and "Epoch 4/4" in out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["resumed_from_epoch"] == 2
    assert info["epochs_completed"] == 4
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0, 1, 2, 3]
    assert not (run_dir / "backup").exists()
