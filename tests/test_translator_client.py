"""Tests for rnn_toolkit/tasks/translator/client.py, the TensorFlow-only translator client.

One tiny untrained translator (4 units, vocabularies of 8 words) is exported once per
module; its translations are nonsense but deterministic, which is all the client has to
reproduce. The tests that start Python processes are marked slow.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.export import export_translator

CLIENT = Path(rnn_toolkit.__file__).parent / "tasks" / "translator" / "client.py"
SENTENCES = ["the man sees a dog", "bread and water", "unknown words only"]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    source = WordVocabulary("the man sees a dog bread and water".split())
    target = WordVocabulary("el hombre ve un perro pan y agua".split(), sequence_markers=True)
    return rnn_toolkit.build_translator(source, target, units=4, embedding_dim=4)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """The model folder, holding versions 1 and 2 (2 serves beam width 1)."""
    base = tmp_path_factory.mktemp("saved_models")
    export_translator(model, base, version=1)
    return export_translator(model, base, version=2, beam_width=1).parent


@pytest.fixture(scope="module")
def client():
    """The client module, loaded from its file (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("translator_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_client_picks_the_highest_numeric_version(client, tmp_path):
    for version in ("2", "10", "9", "latest"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").touch()
    assert client.resolve_version(tmp_path).name == "10"  # numeric, not lexical order
    assert client.resolve_version(tmp_path / "9").name == "9"


def test_client_translations_match_the_model(client, model, exported):
    _loaded, signature = client.load_translator(client.resolve_version(exported))
    sentences = [s.encode("utf-8") for s in SENTENCES]
    for beam_width in (1, 3):
        expected = model.translate(SENTENCES, beam_width=beam_width)
        assert client.translate(signature, sentences, beam_width, 0) == expected
    # A blank sentence is not translated: its line stays blank.
    mixed = [b"bread and water", b"", b"  ", b"the man sees a dog"]
    got = client.translate(signature, mixed, 4, 0)
    assert got[1:3] == ["", ""]
    assert [got[0], got[3]] == model.translate(["bread and water", "the man sees a dog"])
    assert client.translate(signature, [b"  "], 4, 0) == [""]
    # max_length caps the words of each translation.
    assert all(len(t.split()) <= 2 for t in client.translate(signature, sentences, 4, 2))


class Other(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return {"translation": text}


@pytest.mark.parametrize("problem", ["missing", "empty", "no_translate", "wrong_translate"])
def test_client_errors_are_one_line_and_exit_2(client, tmp_path, capsys, problem):
    path = tmp_path / "model"
    if problem != "missing":
        path.mkdir()
    if problem in ("no_translate", "wrong_translate"):
        module = Other()
        name = "serving_default" if problem == "no_translate" else "translate"
        tf.saved_model.save(module, str(path / "1"), signatures={name: module.serve})
    with pytest.raises(SystemExit) as exit_info:
        client.main([str(path), "a sentence"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "error:" in error
    expected = {
        "missing": "no such folder",
        "empty": "neither a SavedModel",
        "no_translate": "no 'translate' signature",
        "wrong_translate": "expected ['beam_width', 'max_length', 'text']",
    }[problem]
    assert expected in error


@pytest.mark.parametrize("option", [["--beam-width", "0"], ["--beam-width", "33"], ["--max-length", "-1"]])
def test_client_refuses_bad_numbers(client, exported, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        client.main([str(exported), "a sentence", *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err


# Runs the client script as `python PATH ARGS` would, then reports what was imported.
RUN_CLIENT = textwrap.dedent(
    """
    import runpy, sys
    client, *arguments = sys.argv[1:]
    sys.argv = [client, *arguments]
    runpy.run_path(client, run_name="__main__")
    print("RNN_TOOLKIT_IMPORTED", "rnn_toolkit" in sys.modules, file=sys.stderr)
    """
)


@pytest.mark.slow
def test_plain_tensorflow_client_script(model, exported, tmp_path):
    # Sentences from the command line, on the model folder (its highest version, 2).
    result = subprocess.run(
        [sys.executable, "-c", RUN_CLIENT, str(CLIENT), str(exported), *SENTENCES, "--beam-width", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == model.translate(SENTENCES, beam_width=3)
    assert f"Loaded {exported / '2'}" in result.stderr
    assert "RNN_TOOLKIT_IMPORTED False" in result.stderr

    # One sentence per line from stdin, blank lines and bytes that are not UTF-8 included.
    stdin = b"bread and water\n\n\xff\xfe the dog\r\nthe man sees a dog\n"
    result = subprocess.run(
        # A fixed --max-length: the default depends on the longest sentence of each batch.
        [sys.executable, str(CLIENT), str(exported / "1"), "--json", "--batch-size", "2",
         "--max-length", "12"],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    texts = ["bread and water", "", "\ufffd\ufffd the dog", "the man sees a dog"]
    assert [r["text"] for r in records] == texts
    assert records[1]["translation"] == ""
    nonblank = [texts[i] for i in (0, 2, 3)]
    assert [records[i]["translation"] for i in (0, 2, 3)] == model.translate(nonblank, max_length=12)
    assert b"4 sentence(s) translated" in result.stderr
    assert b"rnn_toolkit was not imported" in result.stderr
