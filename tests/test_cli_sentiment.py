"""Tests for the sentiment task of the `rnn-toolkit` command line (rnn_toolkit.cli).

Parsing, help and option errors run in this process and take milliseconds. Everything
that trains or exports is marked slow; those tests share one tiny run (a bidirectional
GRU of 4 units on 40 labelled lines written here) so the whole file stays near a minute
or two.
"""

import dataclasses
import json
import re

import numpy as np
import pytest

from rnn_toolkit.tasks.char_lm import cli as char_lm_cli
from rnn_toolkit.tasks.char_lm.run import CharLMRunConfig
from rnn_toolkit.tasks.sentiment.run import SentimentRunConfig

from tiny_data import write_reviews
from cli_helpers import assert_usage_error, parse, run_cli, task_config

TINY_MODEL = [
    "--units", "4", "--embedding-dim", "4", "--batch-size", "8", "--precision", "float32",
    "--pretrain", "none",  # 'auto' would pretrain on 49,055 Pang & Lee sentences
]

def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# --- Help and defaults --------------------------------------------------------------------


def test_top_level_help_lists_predict_and_both_tasks():
    status, out, _ = run_cli(["--help"])
    assert status == 0
    assert "predict" in out and "sentiment" in out and "char_lm" in out


def test_train_help_shows_the_sentiment_defaults():
    _, out, _ = run_cli(["train", "sentiment", "--help"])
    flat = " ".join(out.split())
    # Each task's help shows its own defaults of the shared options.
    assert "hidden units per recurrent layer and direction (default: 128)" in flat
    assert "texts per training step (default: 32)" in flat
    assert "(default: gru)" in flat and "(default: 0.5)" in flat
    assert "--learning-rate LR Adam learning rate (default: 0.002)" in flat
    assert "(default: rotten_tomatoes)" in flat and "runs/sentiment" in flat
    for option in ("--data", "--head", "--bidirectional", "--no-bidirectional", "--pooling",
                   "--max-words", "--min-count", "--max-length", "--truncation",
                   "--no-bucketing", "--patience", "--heldout-fraction",
                   "--validation-fraction", "--split-seed", "--no-baseline", "--baseline-l2"):
        assert option in out, option


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_command_help_mentions_sentiment(command):
    status, out, _ = run_cli([command, "--help"])
    assert status == 0 and "sentiment" in out


def test_defaults_come_from_each_tasks_config():
    assert task_config(parse(["train", "sentiment"])) == SentimentRunConfig()
    assert task_config(parse(["train"])) == CharLMRunConfig()
    assert task_config(parse(["demo"])) == CharLMRunConfig(
        epochs=char_lm_cli.DEMO_EPOCHS, steps_per_epoch=char_lm_cli.DEMO_STEPS_PER_EPOCH
    )


def test_sentiment_options_set_the_config():
    args = parse([
        "train", "sentiment", "--units", "8", "--layers", "2", "--no-bidirectional",
        "--no-bucketing", "--no-baseline", "--pooling", "attention", "--split-seed", "3",
        "--heldout-fraction", "0.2", "--head", "regression", "--truncation", "tail",
        "--epochs", "3", "--patience", "0",
    ])
    assert task_config(args) == dataclasses.replace(
        SentimentRunConfig(), units=8, num_layers=2, bidirectional=False, bucketing=False,
        baseline=False, pooling="attention", split_seed=3, heldout_fraction=0.2,
        head="regression", truncation="tail", epochs=3, patience=0,
    )


# --- Command-line mistakes: one line, naming the option, exit status 2 -------------------


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "sentiment", "--dropout", "1.5"], "--dropout"),
        (["train", "sentiment", "--pooling", "bogus"], "--pooling"),
        (["train", "sentiment", "--head", "ordinal"], "--head"),
        (["train", "sentiment", "--heldout-fraction", "1"], "--heldout-fraction"),
        (["train", "sentiment", "--max-words", "0"], "--max-words"),
        # Options of the other task.
        (["train", "sentiment", "--corpus", "x.txt"], "--corpus"),
        (["train", "sentiment", "--tbptt"], "--tbptt"),
        (["train", "sentiment", "--sequence-length", "50"], "--sequence-length"),
        (["train", "sentiment", "--steps-per-epoch", "5"], "--steps-per-epoch"),
        (["train", "char_lm", "--pooling", "mean"], "--pooling"),
        (["train", "--data", "reviews.csv"], "--data"),
        (["train", "--no-bidirectional"], "--bidirectional"),
        (["train", "--no-baseline"], "--no-baseline"),
        (["evaluate", "--folds", "1"], "--folds"),
        (["evaluate", "--folds", "2", "--saved-model", "anywhere"], "--saved-model"),
        (["predict", "--batch-size", "0"], "--batch-size"),
        (["predict", "--run-dir", "a", "--saved-model", "b", "text"], "--saved-model"),
        (["predict", "-", "-"], "TEXT"),
    ],
)
def test_bad_options_exit_2_naming_the_option(argv, option):
    assert_usage_error(run_cli(argv), option)


def test_missing_data_file(tmp_path):
    result = run_cli(["train", "sentiment", "--data", tmp_path / "missing-file.csv",
                      "--run-dir", tmp_path / "run"])
    assert_usage_error(result, "--data")
    assert "missing-file.csv" in result[2]
    assert not (tmp_path / "run").exists()


def test_regression_head_needs_scores(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    result = run_cli(["train", "sentiment", "--data", data, "--head", "regression",
                      "--run-dir", tmp_path / "run"])
    assert_usage_error(result, "--head")


def test_predict_missing_run_dir(tmp_path):
    result = run_cli(["predict", "--run-dir", tmp_path / "nowhere", "good"])
    assert_usage_error(result, "--run-dir")


# --- Real runs (slow) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny `train sentiment` run on a 40-line CSV, shared by the tests below."""
    root = tmp_path_factory.mktemp("sentiment_cli")
    data = write_reviews(root / "reviews.csv")
    run_dir = root / "run"
    status, out, err = run_cli(
        ["train", "sentiment", "--data", data, *TINY_MODEL, "--epochs", "2", "--run-dir", run_dir]
    )
    assert status == 0, err
    return root, run_dir, out


@pytest.mark.slow
def test_train_writes_a_sentiment_run_folder(trained_run):
    root, run_dir, out = trained_run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["task"] == "sentiment" and info["status"] == "finished"
    # A data file is recorded by its absolute path, so evaluate finds it from anywhere.
    assert info["settings"]["data"] == str(root / "reviews.csv")
    assert info["settings"]["units"] == 4 and info["settings"]["cell"] == "gru"
    assert info["split"]["heldout"] == 4 and info["split"]["train"] + info["split"]["validation"] == 36
    assert set(info["heldout"]) == {"recurrent", "bag_of_words"}
    # The comparison table, with both models.
    assert "held-out accuracy" in out
    assert "biGRU 1x4, final state" in out and "bag-of-words logistic regression" in out
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()


@pytest.mark.slow
def test_evaluate_rescores_the_heldout_split_as_trained(trained_run):
    _, run_dir, _ = trained_run
    recorded = json.loads((run_dir / "run.json").read_text())["heldout"]["recurrent"]
    status, out, err = run_cli(["evaluate", "--run-dir", run_dir])
    assert status == 0, err
    assert "held-out split" in out
    assert (
        f"accuracy {recorded['accuracy']:.2%} ({recorded['correct']}/{recorded['examples']} correct)"
        in out
    )
    rows = out.split("columns: predicted class):\n", 1)[1].splitlines()
    assert rows[0].split() == ["negative", "positive"]
    counts = [[int(n) for n in row.split()[1:]] for row in rows[1:3]]
    assert [row.split()[0] for row in rows[1:3]] == ["negative", "positive"]
    assert counts == recorded["confusion"]
    assert "bag-of-words" not in out


@pytest.mark.slow
def test_evaluate_with_the_baseline_prints_the_comparison(trained_run):
    _, run_dir, _ = trained_run
    status, out, err = run_cli(["evaluate", "--run-dir", run_dir, "--baseline"])
    assert status == 0, err
    table = out.split("train time\n", 1)[1]
    assert "biGRU 1x4, final state" in table and "bag-of-words logistic regression" in table
    # The baseline sees the training share of the same split: the same 4 held-out texts.
    assert table.count("/4 ") == 2


@pytest.mark.slow
def test_evaluate_refuses_char_lm_options_on_a_sentiment_run(trained_run):
    _, run_dir, _ = trained_run
    assert_usage_error(run_cli(["evaluate", "--run-dir", run_dir, "--corpus", "x.txt"]), "--corpus")
    assert_usage_error(
        run_cli(["evaluate", "--run-dir", run_dir, "--split", "all", "--baseline"]), "--baseline"
    )
    assert_usage_error(run_cli(["sample", "--run-dir", run_dir]), "--run-dir")


@pytest.mark.slow
def test_cross_validation_on_the_runs_settings(trained_run):
    _, run_dir, _ = trained_run
    status, out, err = run_cli(["evaluate", "--run-dir", run_dir, "--folds", "2"])
    assert status == 0, err
    for fold in (1, 2):
        assert re.search(rf"^fold {fold}/2: recurrent [\d.]+%, bag-of-words [\d.]+%$", out, re.MULTILINE)
    table = out.split("mean accuracy", 1)[1]
    assert "biGRU 1x4, final state" in table and "bag-of-words logistic regression" in table
    assert table.count("± ") == 2


@pytest.mark.slow
def test_predict_from_arguments_stdin_and_as_json(trained_run):
    _, run_dir, _ = trained_run
    texts = ["a wonderful, moving film", "dull and tedious " * 10]
    status, out, err = run_cli(["predict", "--run-dir", run_dir, *texts])
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, texts):
        label, *columns = line.split()
        assert label in ("negative", "positive")
        assert columns[0] == "negative" and columns[2] == "positive"
        assert float(columns[1]) + float(columns[3]) == pytest.approx(1, abs=2e-3)
    assert lines[0].endswith(texts[0])
    assert lines[1].endswith("...") and len(lines[1]) < 140  # shortened to one line

    # Stdin, one text per line; an empty line is a text too.
    status, out, err = run_cli(["predict", "--run-dir", run_dir, "--json"],
                               stdin="great film\n\nawful plot\n")
    assert status == 0, err
    records = json_lines(out)
    assert [r["text"] for r in records] == ["great film", "", "awful plot"]
    for record in records:
        assert set(record) == {"label", "class_id", "probabilities", "text"}
        assert record["label"] == ["negative", "positive"][record["class_id"]]
        assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-5)

    # '-' among arguments reads stdin in its place.
    status, out, _ = run_cli(["predict", "--run-dir", run_dir, "--json", "first", "-", "last"],
                             stdin="middle\n")
    assert [r["text"] for r in json_lines(out)] == ["first", "middle", "last"]

    assert_usage_error(run_cli(["predict", "--run-dir", run_dir], stdin=""), "TEXT")


@pytest.mark.slow
def test_export_then_predict_and_evaluate_the_saved_model(trained_run):
    root, run_dir, _ = trained_run
    base = root / "saved_models"
    status, out, err = run_cli(["export", "--run-dir", run_dir, "--base-dir", base])
    assert status == 0, err
    version = base / "sentiment" / "1"  # the default name follows the run's task
    assert f"Exported {version}" in out
    assert "  classify\n" in out and "  serving_default\n" in out
    assert "input  text: string [?]" in out and "output probabilities: float32 [?, 2]" in out

    texts = ["great film", "", "awful plot"]
    _, from_run, _ = run_cli(["predict", "--run-dir", run_dir, "--json", *texts])
    # The model folder: its highest version, announced on stderr so stdout stays JSON.
    status, from_export, err = run_cli(["predict", "--saved-model", base / "sentiment", "--json", *texts])
    assert status == 0, err
    assert "Using the highest version" in err
    run_records, export_records = json_lines(from_run), json_lines(from_export)
    assert len(export_records) == len(from_export.splitlines()) == 3
    for a, b in zip(run_records, export_records):
        assert a["label"] == b["label"] and a["text"] == b["text"]
        assert np.allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-5)

    _, run_out, _ = run_cli(["evaluate", "--run-dir", run_dir])
    status, saved_out, err = run_cli(["evaluate", "--saved-model", version, "--run-dir", run_dir])
    assert status == 0, err
    accuracy = next(line for line in run_out.splitlines() if line.startswith("accuracy"))
    assert accuracy in saved_out.splitlines()

    # Without its run, a SavedModel needs the data named, and scores all of it.
    assert_usage_error(run_cli(["evaluate", "--saved-model", version]), "--data")
    status, out, err = run_cli(["evaluate", "--saved-model", version, "--data", root / "reviews.csv"])
    assert status == 0, err
    assert "(all of" in out and "/40 correct)" in out

    assert_usage_error(run_cli(["sample", "--saved-model", version]), "--saved-model")
    assert_usage_error(
        run_cli(["export", "--run-dir", run_dir, "--base-dir", base, "--version", "1"]), "--version"
    )


@pytest.mark.slow
def test_regression_head_reports_scores(tmp_path):
    data = write_reviews(tmp_path / "scored.csv", scores=True)
    run_dir = tmp_path / "run"
    status, out, err = run_cli(
        ["train", "sentiment", "--data", data, "--head", "regression", *TINY_MODEL,
         "--epochs", "1", "--no-baseline", "--run-dir", run_dir]
    )
    assert status == 0, err
    assert "crowd-score error of the regression head: MAE" in out
    assert "bag-of-words" not in out

    status, out, err = run_cli(["predict", "--run-dir", run_dir, "--json", "great film"])
    assert status == 0, err
    (record,) = json_lines(out)
    assert record["label"] == ("positive" if record["score"] > 0 else "negative")

    status, out, err = run_cli(["evaluate", "--run-dir", run_dir])
    assert status == 0, err
    assert "score error: MAE" in out and "RMSE" in out


@pytest.mark.slow
def test_overwrite_forgets_the_previous_runs_best_epoch(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    run_dir = tmp_path / "run"
    # What a previous run leaves: its best epoch (unbeatable) and weights of another shape.
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"previous")
    (run_dir / "best.weights.h5").write_bytes(b"not the weights of this model")
    (run_dir / "best.weights.h5.json").write_text('{"best": 1.0, "epoch": 7}')
    status, out, err = run_cli(
        ["train", "sentiment", "--data", data, *TINY_MODEL, "--epochs", "1", "--no-baseline",
         "--run-dir", run_dir, "--overwrite"]
    )
    assert status == 0, err
    assert json.loads((run_dir / "best.weights.h5.json").read_text())["epoch"] == 0
    assert "Best epoch 1:" in out
    assert (run_dir / "model.keras").read_bytes() != b"previous"


@pytest.mark.slow
def test_pretraining_on_other_labelled_data(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    # Other sentences than the task's (shared ones would be dropped from pretraining).
    extra = tmp_path / "extra.csv"
    extra.write_text(
        "text,label\n"
        + "".join(f"pretraining sentence {i} is {'great' if i % 2 else 'awful'},"
                  f"{'positive' if i % 2 else 'negative'}\n" for i in range(40)),
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    argv = ["train", "sentiment", "--data", data, *TINY_MODEL, "--epochs", "1",
            "--run-dir", run_dir, "--pretrain", extra, "--pretrain-epochs", "2"]
    status, out, err = run_cli(argv)
    assert status == 0, err
    assert "Pretraining on 40 texts" in out
    assert "both models first trained on the 40 texts" in out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["pretraining"]["texts"] == 40 and info["pretraining"]["epochs"] == 2
    assert info["pretraining"]["seconds"] > 0
    assert info["heldout"]["recurrent"]["train_seconds"] >= info["pretraining"]["seconds"]


def test_pretraining_on_the_task_data_itself_is_refused(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    result = run_cli(["train", "sentiment", "--data", data, *TINY_MODEL[:-2], "--pretrain",
                      str(data), "--run-dir", tmp_path / "run"])
    assert_usage_error(result, "--pretrain")
