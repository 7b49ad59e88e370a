"""Tests for the `rnn-toolkit` command line (rnn_toolkit.cli) and the run folders it writes.

Parsing, help and input errors run in this process and take milliseconds. Everything that
trains, exports or starts Python processes is marked slow; those tests share one tiny run
(a 16-unit LSTM on a few thousand characters) so the whole file stays near a minute.
"""

import dataclasses
import json
import math
import subprocess
import sys
import time

import pytest

from rnn_toolkit import cli
from rnn_toolkit.cli.options import prompt_text
from rnn_toolkit.runs import folder as run_folder
from rnn_toolkit.tasks.char_lm import cli as char_lm_cli
from rnn_toolkit.tasks.char_lm import run as char_lm_run
from rnn_toolkit.data import split_text

from tiny_data import write_tiny_corpus

TINY_MODEL = [
    "--units", "16", "--embedding-dim", "8", "--sequence-length", "20", "--batch-size", "8",
    "--precision", "float32",
]

def run_main(argv, capture):
    """Runs cli.main in this process; returns (exit status, stdout, stderr).

    `capture` is pytest's capsys (or capfd, to include child processes' output).
    """
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse: --help and parse errors
        status = exit_.code
    captured = capture.readouterr()
    return status, captured.out, captured.err


def run_process(*args, cwd, timeout=180, stdin=None):
    """Runs `python -m rnn_toolkit ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "rnn_toolkit", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def assert_ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def reported_loss(output):
    """The nats/char figure of a 'held-out loss X nats/char' line."""
    line = next(ln for ln in output.splitlines() if ln.startswith("held-out loss"))
    return float(line.split()[2])


def dataclass_settings(**overrides):
    return dataclasses.asdict(char_lm_run.CharLMRunConfig(**overrides))


@pytest.fixture
def tiny_corpus(tmp_path):
    return write_tiny_corpus(tmp_path / "tiny.txt")


# --- Help ---------------------------------------------------------------------------------

COMMAND_OPTIONS = {
    "train": ["TASK", "char_lm", "sentiment", "translator"],
    "train char_lm": [
        "--corpus", "--run-dir", "--cell", "--units", "--layers", "--embedding-dim",
        "--dropout", "--sequence-length", "--batch-size", "--epochs", "--steps-per-epoch",
        "--learning-rate", "--clip-norm", "--precision", "--tbptt", "--sample-every",
        "--prompt", "--sample-length", "--temperature", "--seed", "--max-chars",
        "--overwrite", "--backup-every", "--validation-steps",
    ],
    "sample": [
        "--run-dir", "--saved-model", "--prompt", "--max-length", "--sampler",
        "--temperature", "--top-k", "--top-p", "--seed",
    ],
    "export": ["--run-dir", "--base-dir", "--name", "--version", "--overwrite"],
    "evaluate": ["--run-dir", "--saved-model", "--corpus", "--max-chars", "--split"],
    "demo": ["--run-dir", "--base-dir", "--epochs", "--steps-per-epoch", "--overwrite"],
}


def test_top_level_help_lists_every_command(capsys):
    status, out, _ = run_main(["--help"], capsys)
    assert status == 0
    for command in COMMAND_OPTIONS:
        assert command.split()[0] in out


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_command_help_explains_every_option(command, capsys):
    status, out, _ = run_main([*command.split(), "--help"], capsys)
    assert status == 0
    for option in COMMAND_OPTIONS[command]:
        assert option in out, f"{command} --help does not mention {option}"
    assert "default" in out


def test_train_help_shows_defaults(capsys):
    _, out, _ = run_main(["train", "char_lm", "--help"], capsys)
    flat = " ".join(out.split())
    assert "(default: 100)" in flat  # --sequence-length
    assert "sequences per training step (default: 64)" in flat  # --batch-size
    assert "(default: shakespeare)" in flat  # --corpus
    assert "runs/char_lm" in flat
    _, out, _ = run_main(["train", "--help"], capsys)
    flat = " ".join(out.split())
    assert "Without TASK, 'train' trains char_lm" in flat


def test_demo_help_says_how_reruns_behave(capsys):
    _, out, _ = run_main(["demo", "--help"], capsys)
    flat = " ".join(out.split())
    assert f"(default: {char_lm_cli.DEMO_EPOCHS})" in flat
    assert "DIR-2" in flat


# --- Command-line mistakes: one line, naming the option, exit status 2 -------------------


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--units", "0"], "--units"),
        (["train", "--epochs", "-1"], "--epochs"),
        (["train", "--dropout", "1.5"], "--dropout"),
        (["train", "--learning-rate", "abc"], "--learning-rate"),
        (["train", "--clip-norm", "nan"], "--clip-norm"),
        (["train", "--cell", "transformer"], "--cell"),
        (["train", "bogus"], "task"),
        (["sample", "--top-p", "1.5"], "--top-p"),
        (["sample", "--max-length", "-3"], "--max-length"),
        (["export", "--version", "0"], "--version"),
    ],
)
def test_bad_numbers_and_choices_exit_2_naming_the_option(argv, option, capsys):
    status, out, err = run_main(argv, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], err


def test_missing_corpus_path(tmp_path, capsys):
    status, _, err = run_main(
        ["train", "--corpus", str(tmp_path / "nope.txt"), "--run-dir", str(tmp_path / "run")], capsys
    )
    assert status == 2
    assert "--corpus" in err and "nope.txt" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_empty_corpus(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    status, _, err = run_main(["train", "--corpus", str(empty), "--run-dir", str(tmp_path / "r")], capsys)
    assert status == 2 and "--corpus" in err and "empty" in err


def test_corpus_too_short_for_one_batch(tiny_corpus, tmp_path, capsys):
    status, _, err = run_main(
        ["train", "--corpus", str(tiny_corpus), "--max-chars", "500", "--run-dir", str(tmp_path / "r")],
        capsys,
    )
    assert status == 2 and "--batch-size" in err and "too short" in err


@pytest.mark.parametrize("command", ["sample", "export", "evaluate"])
def test_missing_run_dir(command, tmp_path, capsys):
    status, _, err = run_main([command, "--run-dir", str(tmp_path / "nowhere")], capsys)
    assert status == 2 and "--run-dir" in err and "nowhere" in err


def test_missing_saved_model(tmp_path, capsys):
    status, _, err = run_main(["evaluate", "--saved-model", str(tmp_path / "nowhere")], capsys)
    assert status == 2 and "--saved-model" in err


def test_top_k_needs_the_top_k_sampler(capsys):
    status, _, err = run_main(["sample", "--top-k", "3"], capsys)
    assert status == 2 and "--top-k" in err


def test_train_refuses_to_replace_a_finished_run(tiny_corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"finished")
    status, _, err = run_main(["train", "--corpus", str(tiny_corpus), "--run-dir", str(run_dir)], capsys)
    assert status == 2
    assert "--run-dir" in err and "--overwrite" in err
    assert (run_dir / "model.keras").read_bytes() == b"finished"


def test_resuming_with_other_settings_is_refused(tiny_corpus, tmp_path, capsys):
    folder = run_folder.RunFolder(tmp_path / "run")
    folder.backup.mkdir(parents=True)
    settings = dataclass_settings(corpus=str(tiny_corpus), units=32)
    folder.write_run_info({"settings": settings})
    status, _, err = run_main(
        ["train", "--corpus", str(tiny_corpus), "--units", "16", "--run-dir", str(folder.path)], capsys
    )
    assert status == 2
    assert "units: 32 -> 16" in err and "--overwrite" in err
    assert folder.backup.is_dir()


# --- Small pieces -------------------------------------------------------------------------


def test_prompt_escapes():
    assert prompt_text(r"Romeo.\n") == "Romeo.\n"
    assert prompt_text(r"a\tb\\n") == "a\tb\\n"


def test_next_free_run_dir_skips_finished_runs_only(tmp_path):
    base = tmp_path / "char_lm"
    assert run_folder.next_free_run_dir(base) == base
    base.mkdir()
    (base / "model.keras").write_bytes(b"x")
    assert run_folder.next_free_run_dir(base) == tmp_path / "char_lm-2"
    interrupted = tmp_path / "char_lm-2"
    (interrupted / "backup").mkdir(parents=True)
    (interrupted / "model.keras").write_bytes(b"x")
    assert run_folder.next_free_run_dir(base) == interrupted


def test_history_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,loss,val_loss\n0,3.0,NA\n1,2.5,NA\n1,2.4,NA\n2,2.0,NA\n")
    assert run_folder.read_history(csv_path) == {"epoch": [0, 1, 2], "loss": [3.0, 2.4, 2.0]}


# --- Real runs (slow) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny training run through `python -m rnn_toolkit train`, shared by the tests below."""
    root = tmp_path_factory.mktemp("cli_run")
    corpus = write_tiny_corpus(root / "tiny.txt")
    result = run_process(
        "train", "--corpus", corpus, "--max-chars", "6000", *TINY_MODEL, "--epochs", "2",
        "--steps-per-epoch", "3", "--sample-length", "30", "--prompt", r"the \n",
        "--run-dir", root / "run",
        cwd=root,
    )
    assert_ok(result)
    return root, root / "run", result


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(trained_run):
    root, run_dir, result = trained_run
    out = result.stdout
    assert "--- sample after epoch 1, prompt 'the \\n' ---" in out
    assert "--- sample after epoch 2" in out
    assert "Traceback" not in result.stderr

    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["settings"]["units"] == 16 and info["settings"]["max_chars"] == 6000
    assert info["corpus"]["source"] == str(root / "tiny.txt")
    assert info["split"] == {
        "validation_fraction": 0.1, "num_chunks": 10, "train_characters": 5400,
        "validation_characters": 600, "validation_pieces": 10,
    }
    assert info["vocabulary_size"] > 10
    assert info["epochs_completed"] == 2 and info["tokens_per_second"] > 0
    heldout = info["heldout"]
    assert heldout["loss_nats_per_char"] == pytest.approx(reported_loss(out), abs=1e-4)
    assert heldout["perplexity"] == pytest.approx(math.exp(heldout["loss_nats_per_char"]))
    assert heldout["bits_per_char"] == pytest.approx(heldout["loss_nats_per_char"] / math.log(2))

    history = json.loads((run_dir / "history.json").read_text())
    assert history["epoch"] == [0, 1] and len(history["loss"]) == 2 and "val_loss" in history
    text = (root / "tiny.txt").read_text()[:6000]
    _, validation = split_text(text)
    assert (run_dir / "heldout.txt").read_text() == "\n".join(validation)
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()


@pytest.mark.slow
def test_sample_from_the_run_folder(trained_run, capsys):
    _, run_dir, _ = trained_run
    status, out, err = run_main(
        ["sample", "--run-dir", str(run_dir), "--prompt", "fox", "--prompt", "dog",
         "--max-length", "25", "--seed", "3"],
        capsys,
    )
    assert status == 0, err
    assert "--- prompt 'fox' ---\nfox" in out and "--- prompt 'dog' ---\ndog" in out
    # Same seed, same text.
    _, again, _ = run_main(
        ["sample", "--run-dir", str(run_dir), "--prompt", "fox", "--prompt", "dog",
         "--max-length", "25", "--seed", "3"],
        capsys,
    )
    assert again == out


@pytest.mark.slow
def test_sample_reads_a_prompt_from_stdin(trained_run, capsys, monkeypatch):
    import io

    _, run_dir, _ = trained_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("lazy dog\n"))
    status, out, _ = run_main(
        ["sample", "--run-dir", str(run_dir), "--prompt", "-", "--max-length", "5",
         "--sampler", "greedy"],
        capsys,
    )
    assert status == 0 and out.startswith("lazy dog\n")


@pytest.mark.slow
def test_export_then_evaluate_and_sample_the_saved_model(trained_run, capsys):
    root, run_dir, train_result = trained_run
    base = root / "saved_models"
    result = run_process("export", "--run-dir", run_dir, "--base-dir", base, cwd=root)
    assert_ok(result)
    version = base / "char_lm" / "1"
    assert f"Exported {version}" in result.stdout
    for signature in ("generate", "log_prob", "serving_default"):
        assert f"  {signature}\n" in result.stdout
    assert "input  prompt: string [?]" in result.stdout

    # The SavedModel, through its log_prob signature, scores the held-out windows exactly
    # as model.evaluate did at the end of training.
    result = run_process("evaluate", "--saved-model", base / "char_lm", "--run-dir", run_dir, cwd=root)
    assert_ok(result)
    assert "bits/char" in result.stdout and "perplexity" in result.stdout
    # The scoring progress bar shows on a terminal only: a pipe gets no carriage returns.
    assert "scoring held-out text" not in result.stderr and "\r" not in result.stdout
    trained_loss = reported_loss(train_result.stdout)
    assert reported_loss(result.stdout) == pytest.approx(trained_loss, abs=2e-3)

    status, out, _ = run_main(["evaluate", "--run-dir", str(run_dir)], capsys)
    assert status == 0
    assert reported_loss(out) == pytest.approx(trained_loss, abs=1e-4)

    status, out, _ = run_main(
        ["sample", "--saved-model", str(version), "--prompt", "fox", "--max-length", "12",
         "--sampler", "top_k", "--top-k", "3", "--seed", "1"],
        capsys,
    )
    assert status == 0 and out.startswith("fox") and len(out.rstrip("\n")) >= 3

    status, _, err = run_main(["export", "--run-dir", str(run_dir), "--base-dir", str(base), "--version", "1"], capsys)
    assert status == 2 and "--version" in err and "--overwrite" in err

    status, _, err = run_main(["sample", "--saved-model", str(version), "--sampler", "top_p"], capsys)
    assert status == 2 and "--sampler" in err


@pytest.mark.slow
def test_train_with_truncated_bptt(tiny_corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    status, out, err = run_main(
        ["train", "--tbptt", "--corpus", str(tiny_corpus), "--max-chars", "6000", *TINY_MODEL,
         "--epochs", "2", "--steps-per-epoch", "3", "--sample-every", "0", "--run-dir", str(run_dir)],
        capsys,
    )
    assert status == 0, err
    assert "truncated BPTT with carried state" in out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["settings"]["tbptt"] is True and info["epochs_completed"] == 2
    assert math.isfinite(info["heldout"]["loss_nats_per_char"])


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_backup(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "tiny.txt")
    run_dir = tmp_path / "run"
    argv = [
        sys.executable, "-m", "rnn_toolkit", "train", "--corpus", str(corpus), "--max-chars", "6000",
        *TINY_MODEL, "--epochs", "4", "--steps-per-epoch", "40", "--sample-every", "0",
        "--validation-steps", "0", "--backup-every", "5", "--run-dir", str(run_dir),
    ]
    first = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history.csv"
    deadline = time.monotonic() + 120
    # A history row is written after the epoch's backup (see char_lm_run): epoch 1 is safe.
    while first.poll() is None and time.monotonic() < deadline:
        if history.is_file() and "\n0," in history.read_text():
            break
        time.sleep(0.02)
    first.kill()  # SIGKILL: no clean-up of any kind
    first.wait()
    assert first.returncode == -9, "the first run ended before it could be killed"
    assert (run_dir / "backup").is_dir() and not (run_dir / "model.keras").exists()

    second = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert_ok(second)
    assert "Resuming the interrupted run" in second.stdout
    assert "Epoch 1/4" not in second.stdout and "Epoch 4/4" in second.stdout

    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["resumed_from_epoch"] >= 1
    assert info["epochs_completed"] == 4
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0, 1, 2, 3]
    assert not (run_dir / "backup").exists()


@pytest.mark.slow
def test_demo_reruns_in_a_new_folder_and_reloads_with_plain_tensorflow(tmp_path, capfd):
    corpus = write_tiny_corpus(tmp_path / "tiny.txt")
    runs = tmp_path / "runs"
    # A previous demo's finished run: the demo must leave it alone and train next to it.
    (runs / "char_lm").mkdir(parents=True)
    (runs / "char_lm" / "model.keras").write_bytes(b"previous")
    # capfd, not capsys: the plain-TF client is a child process writing to the real fds.
    status, out, err = run_main(
        ["demo", "--corpus", str(corpus), "--max-chars", "6000", *TINY_MODEL, "--epochs", "1",
         "--steps-per-epoch", "2", "--sample-length", "20", "--run-dir", str(runs / "char_lm"),
         "--base-dir", str(tmp_path / "saved_models")],
        capfd,
    )
    assert status == 0, err
    assert (runs / "char_lm" / "model.keras").read_bytes() == b"previous"
    assert (runs / "char_lm-2" / "model.keras").is_file()
    assert (tmp_path / "saved_models" / "char_lm" / "1" / "saved_model.pb").is_file()
    assert "=== 3/3" in out
    client_part = out.split("=== 3/3", 1)[1]
    assert "--- generated" in client_part
    assert "nats/char, perplexity" in client_part
    assert "(rnn_toolkit was not imported in this process)" in client_part
    # TensorFlow's start-up lines from the client are not passed on.
    assert "oneDNN custom operations" not in err
