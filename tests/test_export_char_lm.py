import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import CharVocabulary, char_windows
from rnn_toolkit.export import export_char_lm, version_dir

TEXT = "to be or not to be, that is the question.\n" * 30
CLIENT = Path(rnn_toolkit.__file__).parent / "tasks" / "char_lm" / "client.py"


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    vocabulary = CharVocabulary.from_text(TEXT)
    model = rnn_toolkit.build_char_lm(vocabulary, units=16, embedding_dim=8, learning_rate=1e-2)
    model.fit(char_windows(TEXT, vocabulary, sequence_length=20, batch_size=8, seed=0), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_char_lm(model, tmp_path_factory.mktemp("saved_models"))


def test_layout_versions_and_assets(model, exported):
    assert exported.name == "1" and exported.parent.name == "char_lm"
    assert (exported / "saved_model.pb").exists() and (exported / "variables").is_dir()
    vocabulary = json.loads((exported / "assets" / "vocabulary.json").read_text("utf-8"))
    assert vocabulary == model.vocabulary.to_json()
    assert vocabulary["tokens"][2:] == model.vocabulary.characters
    assert not list(exported.parent.glob(".*"))  # no staging folder left behind
    assert version_dir(exported.parent.parent, "char_lm").name == "2"


def test_existing_version_is_never_overwritten_silently(model, tmp_path):
    first = export_char_lm(model, tmp_path, version=3)
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite"):
        export_char_lm(model, tmp_path, version=3)
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp
    assert export_char_lm(model, tmp_path, version=3, overwrite=True) == first
    assert sorted(p.name for p in first.parent.iterdir()) == ["3"]
    assert export_char_lm(model, tmp_path).name == "4"


def test_failed_export_leaves_nothing(model, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        export_char_lm(model, tmp_path, version=1)
    assert list((tmp_path / "char_lm").iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, error, name",
    [({"version": 0}, ValueError, "version"), ({"name": "../x"}, ValueError, "name")],
)
def test_bad_export_arguments(model, tmp_path, kwargs, error, name):
    with pytest.raises(error, match=name):
        export_char_lm(model, tmp_path, **kwargs)


def test_export_rejects_other_models(tmp_path):
    with pytest.raises(TypeError, match="CharLanguageModel"):
        export_char_lm(keras.Sequential([keras.layers.Dense(1)]), tmp_path)


FRESH_PROCESS_CHECKS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    sig = loaded.signatures
    out = {"signatures": sorted(sig)}
    def gen(prompts, max_length=20, temperature=0.0, top_k=0, seed=0):
        return [t.decode("utf-8", "replace") for t in sig["generate"](
            prompt=tf.constant(prompts, tf.string), max_length=tf.constant(max_length),
            temperature=tf.constant(temperature), top_k=tf.constant(top_k),
            seed=tf.constant(seed))["text"].numpy()]
    out["greedy"] = gen(["to be", ""])
    out["seeded"] = [gen(["to"], 30, 1.0, 0, 42), gen(["to"], 30, 1.0, 0, 42), gen(["to"], 30, 1.0, 0, 43)]
    out["top_k_1"] = gen(["to be"], 20, 1.0, 1, 5)
    out["zero_length"] = gen(["to be"], 0) + gen(["to be"], -7)
    out["batch_zero"] = gen([])
    out["odd_inputs"] = gen(["\\u4e2d\\u6587 QZ", "\\ufffd"], 5, 1.0, 0, 1)
    out["non_utf8"] = [t.hex() for t in sig["generate"](
        prompt=tf.constant([b"\\xff\\xfeab"]), max_length=tf.constant(4), temperature=tf.constant(0.0),
        top_k=tf.constant(0), seed=tf.constant(0))["text"].numpy()]
    default = sig["serving_default"](prompt=tf.constant(["to be", ""]))["text"].numpy()
    out["default_lengths"] = [len(t.decode("utf-8")) for t in default]
    scores = sig["log_prob"](text=tf.constant(["to be or", "", "t", "\\u4e2d", b"\\xff\\xfe".decode("latin-1")]))
    out["log_prob"] = scores["log_prob"].numpy().tolist()
    out["num_chars"] = scores["num_chars"].numpy().tolist()
    raw = sig["log_prob"](text=tf.constant([b"\\xff\\xfe"]))
    out["log_prob_raw_bytes"] = raw["num_chars"].numpy().tolist()
    out["log_prob_empty_batch"] = sig["log_prob"](text=tf.constant([], tf.string))["log_prob"].shape.as_list()
    out["rnn_toolkit_imported"] = "rnn_toolkit" in sys.modules
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_reload_in_a_fresh_process_with_plain_tensorflow(model, exported):
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CHECKS, str(exported)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=exported.parent,  # not the repo: rnn_toolkit must not be importable by accident
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT", 1)[1])
    assert out["signatures"] == ["generate", "log_prob", "serving_default"]
    assert out["rnn_toolkit_imported"] is False
    # Same numbers as in process.
    assert out["greedy"] == model.generate(["to be", ""], max_length=20, sampler="greedy")
    log_prob, num_chars = model.log_prob(["to be or", "", "t"])
    np.testing.assert_allclose(out["log_prob"][:3], log_prob, rtol=1e-4)
    assert out["num_chars"] == [8, 0, 1, 1, 2]
    # Reproducible by seed, different across seeds.
    first, again, other = out["seeded"]
    assert first == again and first != other
    assert out["top_k_1"] == [model.generate("to be", max_length=20, sampler="greedy")]
    # Edge cases return results, never crash.
    assert out["zero_length"] == ["to be", "to be"]
    assert out["batch_zero"] == []
    assert out["odd_inputs"][0].startswith("\u4e2d\u6587 QZ") and len(out["odd_inputs"][0]) == 10
    assert bytes.fromhex(out["non_utf8"][0]).startswith(b"\xff\xfeab")
    assert out["default_lengths"] == [5 + 200, 200]
    assert all(np.isfinite(out["log_prob"]))
    assert out["log_prob_raw_bytes"] == [2]
    assert out["log_prob_empty_batch"] == [0]


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(exported):
    cli = Path(sys.executable).with_name("saved_model_cli")
    result = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(exported)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for expected in ("signature_def['generate']", "signature_def['log_prob']", "signature_def['serving_default']",
                     "inputs['prompt']", "inputs['max_length']", "inputs['temperature']", "inputs['top_k']",
                     "inputs['seed']", "outputs['text']", "outputs['log_prob']", "outputs['num_chars']"):
        assert expected in result.stdout


@pytest.mark.slow
def test_plain_tensorflow_client_script(exported, tmp_path):
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(TEXT[:300], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(CLIENT), str(exported), "--prompt", "to be", "--max-length", "30",
         "--heldout", str(heldout)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out loss" in result.stdout and "perplexity" in result.stdout
    assert "rnn_toolkit was not imported" in result.stdout
