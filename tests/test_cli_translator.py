"""Tests for the translator task of the `rnn-toolkit` command line (rnn_toolkit.cli).

Parsing, help and option errors run in this process and take milliseconds. Everything
that trains or exports is marked slow; those tests share one tiny run (a bidirectional
LSTM of 16 units on 600 word-for-word "English-Spanish" pairs written here) so the whole
file stays near a minute or two.
"""

import dataclasses
import json

import pytest

from rnn_toolkit.tasks.translator.run import TranslatorRunConfig

from tiny_data import write_pairs
from cli_helpers import assert_usage_error, parse, run_cli, task_config

TINY_MODEL = [
    "--units", "16", "--embedding-dim", "16", "--batch-size", "32", "--learning-rate", "0.01",
    "--min-count", "1", "--precision", "float32",
]


def score_row(out, decoding):
    """The (BLEU, chrF) strings of `decoding`'s row in a printed score table."""
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == [decoding])
    return row[1], row[2]


# --- Help and defaults --------------------------------------------------------------------


def test_top_level_help_lists_translate_and_the_translator():
    status, out, _ = run_cli(["--help"])
    assert status == 0
    assert "translate" in out and "translator" in out


def test_train_help_shows_the_translators_options_and_defaults():
    _, out, _ = run_cli(["train", "translator", "--help"])
    flat = " ".join(out.split())
    # A shared option shows the translator's own default.
    assert "hidden units per recurrent layer (and encoder direction) (default: 256)" in flat
    assert "(default: bible)" in flat  # --data
    assert "--attention {none,additive,multiplicative}" in flat
    assert "runs/translator" in flat
    for option in ("--max-pairs", "--max-source-length", "--max-target-length", "--lowercase",
                   "--no-lowercase", "--encoder-layers", "--decoder-layers", "--bridge",
                   "--label-smoothing", "--beam-width", "--length-penalty", "--ood-data",
                   "--ood-sentences"):
        assert option in out, option


@pytest.mark.parametrize("command", ["translate", "evaluate", "export"])
def test_command_help_mentions_the_translator(command):
    status, out, _ = run_cli([command, "--help"])
    assert status == 0 and "translat" in out and "--beam-width" in out


def test_defaults_come_from_the_config():
    assert task_config(parse(["train", "translator"])) == TranslatorRunConfig()


def test_translator_options_set_the_config():
    args = parse([
        "train", "translator", "--data", "bible:es-en", "--max-pairs", "600", "--units", "16",
        "--no-lowercase", "--no-bidirectional", "--no-bucketing", "--attention", "none",
        "--encoder-layers", "2", "--decoder-layers", "3", "--cell", "gru", "--beam-width", "8",
        "--length-penalty", "0", "--ood-data", "none", "--sample-every", "0", "--split-seed", "3",
        "--heldout-fraction", "0.2", "--label-smoothing", "0", "--max-source-length", "12",
    ])
    assert task_config(args) == dataclasses.replace(
        TranslatorRunConfig(), data="bible:es-en", max_pairs=600, units=16, lowercase=False,
        bidirectional=False, bucketing=False, attention="none", encoder_layers=2,
        decoder_layers=3, cell="gru", beam_width=8, length_penalty=0.0, ood_data="none",
        sample_every=0, split_seed=3, heldout_fraction=0.2, label_smoothing=0.0,
        max_source_length=12,
    )


# --- Command-line mistakes: one line, naming the option, exit status 2 -------------------


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "translator", "--attention", "bogus"], "--attention"),
        (["train", "translator", "--max-source-length", "0"], "--max-source-length"),
        (["train", "translator", "--bridge", "none"], "--bridge"),
        (["train", "translator", "--beam-width", "0"], "--beam-width"),
        (["train", "translator", "--beam-width", "33"], "--beam-width"),
        (["train", "translator", "--label-smoothing", "1"], "--label-smoothing"),
        (["train", "translator", "--max-pairs", "-1"], "--max-pairs"),
        (["train", "translator", "--bridge", "zeros", "--attention", "none"], "--bridge"),
        # Options of other tasks.
        (["train", "translator", "--layers", "2"], "--layers"),
        (["train", "translator", "--pooling", "mean"], "--pooling"),
        (["train", "translator", "--tbptt"], "--tbptt"),
        (["train", "translator", "--max-length", "40"], "--max-length"),
        (["train", "sentiment", "--attention", "none"], "--attention"),
        (["train", "--max-pairs", "600"], "--max-pairs"),
        (["train", "sentiment", "--sample-every", "2"], "--sample-every"),
        # translate
        (["translate"], "MODEL"),
        (["translate", "no/such/run", "a sentence"], "MODEL"),
        (["translate", ".", "-", "-"], "SENTENCE"),
        (["translate", ".", "a", "--beam-width", "0"], "--beam-width"),
        (["translate", ".", "a", "--sampler", "bogus"], "--sampler"),
        (["translate", ".", "a", "--temperature", "0.5"], "--temperature"),
        (["translate", ".", "a", "--sampler", "temperature", "--top-k", "5"], "--top-k"),
        (["translate", ".", "a", "--sampler", "greedy", "--beam-width", "2"], "--beam-width"),
        (["evaluate", "--max-sentences", "0"], "--max-sentences"),
        (["evaluate", "no/such/model"], "MODEL"),
    ],
)
def test_bad_options_exit_2_naming_the_option(argv, option):
    assert_usage_error(run_cli(argv), option)


def test_missing_data_file(tmp_path):
    result = run_cli(["train", "translator", "--data", tmp_path / "missing.tsv",
                      "--run-dir", tmp_path / "run"])
    assert_usage_error(result, "--data")
    assert "missing.tsv" in result[2]
    assert not (tmp_path / "run").exists()


def test_missing_out_of_domain_file(tmp_path):
    data = write_pairs(tmp_path / "pairs.tsv", count=100)
    result = run_cli(["train", "translator", "--data", data, "--ood-data", tmp_path / "gone.tsv",
                      "--run-dir", tmp_path / "run"])
    assert_usage_error(result, "--ood-data")
    assert "gone.tsv" in result[2]
    assert not (tmp_path / "run").exists()


def test_translate_refuses_a_folder_without_a_model(tmp_path):
    result = run_cli(["translate", tmp_path, "a sentence"])
    assert_usage_error(result, "MODEL")
    assert "train a model there first" in result[2]


# --- Real runs (slow) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny `train translator` run on 600 of 700 pairs, shared by the tests below."""
    root = tmp_path_factory.mktemp("translator_cli")
    data = write_pairs(root / "pairs.tsv")
    ood = write_pairs(root / "ood.tsv", count=40, offset=1000)
    run_dir = root / "run"
    status, out, err = run_cli(
        ["train", "translator", "--data", data, "--max-pairs", "600", *TINY_MODEL, "--epochs", "2",
         "--ood-data", ood, "--ood-sentences", "5", "--run-dir", run_dir]
    )
    assert status == 0, err
    return root, run_dir, out


@pytest.mark.slow
def test_train_writes_a_translator_run_folder(trained_run):
    root, run_dir, out = trained_run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["task"] == "translator" and info["status"] == "finished"
    # Data files are recorded by their absolute paths, so evaluate finds them from anywhere.
    assert info["settings"]["data"] == str(root / "pairs.tsv")
    assert info["settings"]["ood_data"] == str(root / "ood.tsv")
    assert info["settings"]["units"] == 16 and info["settings"]["max_pairs"] == 600
    assert info["split"]["heldout"] == 30  # 5% of 600
    assert set(info["heldout"]) == {"greedy", "beam4"} and info["out_of_domain"]["pairs"] == 5
    assert "held-out: case-insensitive sacreBLEU" in out and "out-of-domain" in out
    assert "--- sample after epoch 1" in out
    assert (run_dir / "model.keras").is_file() and (run_dir / "translations.tsv").is_file()
    assert not (run_dir / "backup").exists()
    # A finished run is never replaced without --overwrite.
    result = run_cli(["train", "translator", "--data", root / "pairs.tsv", "--ood-data", "none",
                      "--run-dir", run_dir])
    assert_usage_error(result, "--run-dir")


@pytest.mark.slow
def test_evaluate_rescores_the_heldout_share_as_trained(trained_run):
    _, run_dir, _ = trained_run
    recorded = json.loads((run_dir / "run.json").read_text())["heldout"]
    status, out, err = run_cli(["evaluate", run_dir])
    assert status == 0, err
    assert "Translating 30 sentences (the held-out share of" in out
    for decoding in ("greedy", "beam4"):
        assert score_row(out, decoding) == (
            f"{recorded[decoding]['bleu']:.2f}", f"{recorded[decoding]['chrf']:.2f}"
        )
    assert "BLEU" in out and "chrF" in out and "BLEU by source words" in out

    # --run-dir works as well; a quick look at the first pairs with another beam.
    status, out, err = run_cli(
        ["evaluate", "--run-dir", run_dir, "--max-sentences", "5", "--beam-width", "2"]
    )
    assert status == 0, err
    assert "Translating 5 sentences" in out and "the first 5" in out
    assert score_row(out, "beam2") and "beam4" not in out


@pytest.mark.slow
def test_evaluate_refuses_other_tasks_options_on_a_translator_run(trained_run):
    _, run_dir, _ = trained_run
    assert_usage_error(run_cli(["evaluate", run_dir, "--corpus", "x.txt"]), "--corpus")
    assert_usage_error(run_cli(["evaluate", run_dir, "--folds", "2"]), "--folds")
    assert_usage_error(run_cli(["evaluate", run_dir, "--run-dir", run_dir]), "MODEL")
    assert_usage_error(run_cli(["predict", "--run-dir", run_dir, "text"]), "--run-dir")
    assert_usage_error(run_cli(["sample", "--run-dir", run_dir]), "--run-dir")


@pytest.mark.slow
def test_translate_from_arguments_and_stdin(trained_run):
    _, run_dir, _ = trained_run
    sentences = ["The man sees the dog.", "Bread and water."]
    status, out, err = run_cli(["translate", run_dir, *sentences])
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(lines)
    assert "Translating 2 sentence(s)" in err and "beam search of width 4" in err

    # Stdin, one sentence per line; a blank line stays a blank line.
    status, out, err = run_cli(["translate", run_dir], stdin="The man sees the dog.\n\nBread and water.\n")
    assert status == 0, err
    assert out.splitlines() == [lines[0], "", lines[1]]

    # '-' among arguments reads stdin in its place.
    status, out, _ = run_cli(["translate", run_dir, sentences[0], "-"], stdin=sentences[1] + "\n")
    assert out.splitlines() == lines

    assert_usage_error(run_cli(["translate", run_dir], stdin=""), "SENTENCE")


@pytest.mark.slow
def test_translate_survives_bytes_that_are_not_utf8(trained_run):
    _, run_dir, _ = trained_run
    status, out, err = run_cli(["translate", run_dir], stdin=b"The \xff\xfe man sees.\r\n\xc3\n")
    assert status == 0, err
    lines = out.split("\n")
    assert len(lines) == 3 and lines[0] and lines[1] and lines[2] == ""


@pytest.mark.slow
def test_translate_decodings(trained_run):
    _, run_dir, _ = trained_run
    sentence = "The big red dog eats bread and the woman loves water."
    greedy = run_cli(["translate", run_dir, sentence, "--sampler", "greedy"])[1]
    assert greedy == run_cli(["translate", run_dir, sentence, "--beam-width", "1"])[1]
    short = run_cli(["translate", run_dir, sentence, "--max-length", "2"])[1]
    assert len(short.split()) <= 2
    argv = ["translate", run_dir, sentence, "--sampler", "top_k", "--top-k", "3", "--seed", "7"]
    status, drawn, err = run_cli(argv)
    assert status == 0, err and "top_k sampling (seed 7)" in err
    assert run_cli(argv)[1] == drawn  # the same seed, the same words


@pytest.mark.slow
def test_export_then_translate_and_evaluate_the_saved_model(trained_run):
    root, run_dir, _ = trained_run
    base = root / "saved_models"
    status, out, err = run_cli(["export", "--run-dir", run_dir, "--base-dir", base])
    assert status == 0, err
    version = base / "translator" / "1"  # the default name follows the run's task
    assert f"Exported {version}" in out
    assert "  translate\n" in out and "  serving_default\n" in out
    assert "input  beam_width: int32 []" in out and "output translation: string [?]" in out

    # The model folder (its highest version, announced on stderr) gives the run's translations.
    sentences = "The man sees the dog.\n\nBread and water.\nThe small cat.\n"
    _, from_run, _ = run_cli(["translate", run_dir], stdin=sentences)
    status, from_export, err = run_cli(["translate", base / "translator"], stdin=sentences)
    assert status == 0, err
    assert "Using the highest version" in err and "Using" not in from_export
    assert from_export == from_run and len(from_export.splitlines()) == 4
    assert_usage_error(
        run_cli(["translate", version, "a", "--sampler", "temperature"]), "--sampler"
    )

    # With its run, the SavedModel scores the run's held-out share as the run did.
    _, run_out, _ = run_cli(["evaluate", run_dir])
    status, saved_out, err = run_cli(["evaluate", version, "--run-dir", run_dir])
    assert status == 0, err
    assert "the SavedModel" in saved_out
    assert score_row(saved_out, "beam4") == score_row(run_out, "beam4")

    # Without its run it needs --data, and scores that data's default held-out share.
    assert_usage_error(run_cli(["evaluate", version]), "--data")
    status, out, err = run_cli(
        ["evaluate", base / "translator", "--data", root / "pairs.tsv", "--max-sentences", "8"]
    )
    assert status == 0, err
    assert "held-out share" in out and "of 700 pairs, split seed 0; the first 8" in out
    assert score_row(out, "greedy") and score_row(out, "beam4")

    assert_usage_error(run_cli(["sample", "--saved-model", version]), "--saved-model")
    assert_usage_error(run_cli(["predict", "--saved-model", version, "a"]), "--saved-model")
    assert_usage_error(
        run_cli(["export", "--run-dir", run_dir, "--base-dir", base, "--version", "1"]), "--version"
    )

    # --beam-width sets serving_default's beam.
    status, out, err = run_cli(["export", "--run-dir", run_dir, "--base-dir", base, "--beam-width", "1"])
    assert status == 0, err
    import tensorflow as tf

    loaded = tf.saved_model.load(str(base / "translator" / "2"))
    served = loaded.signatures["serving_default"](text=tf.constant(["The small cat."]))
    greedy = run_cli(["translate", run_dir, "The small cat.", "--beam-width", "1"])[1]
    assert served["translation"].numpy()[0].decode("utf-8") == greedy.strip()
