import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.export import export_sentiment, version_dir

WORDS = ["good", "bad", "film", "not", "!"]
MAX_LENGTH = 8
TEXTS = ["good film", "bad film !", "not good", "Not BAD at all!", "a film", "bad bad bad bad bad bad"]
CLIENT = Path(rnn_toolkit.__file__).parent / "tasks" / "sentiment" / "client.py"
# Each model: (class names, builder arguments). Tiny, untrained; the default precision,
# as exported models have it.
MODELS = {
    "binary": (("negative", "positive"), {"units": 3}),
    "regression": (("negative", "positive"), {"head": "regression", "cell": "gru", "units": 2}),
    "three_class": (("negative", "neutral", "positive"), {"units": 4, "bidirectional": True, "pooling": "attention"}),
}


def build(kind, seed=0):
    keras.utils.set_random_seed(seed)
    class_names, kwargs = MODELS[kind]
    vocabulary = WordVocabulary(WORDS, max_length=MAX_LENGTH)
    model = rnn_toolkit.build_sentiment_classifier(
        vocabulary, class_names=class_names, embedding_dim=4, dropout=0.0, **kwargs
    )
    # Large output weights centred on TEXTS make the decisions clear-cut and different
    # between texts, so no label hinges on a rounding difference.
    model.head.kernel.assign(model.head.kernel * 40.0)
    outputs = model(vocabulary.encode_padded(TEXTS), training=False)
    model.head.bias.assign(model.head.bias - tf.reduce_mean(outputs, axis=0))
    return model


@pytest.fixture(scope="module")
def models():
    return {kind: build(kind) for kind in MODELS}


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    return {kind: export_sentiment(model, base / kind) for kind, model in models.items()}


@pytest.fixture(scope="module")
def loaded(exported):
    # The loaded objects, not only their signatures: they own the variables.
    return {kind: tf.saved_model.load(str(path)) for kind, path in exported.items()}


def call(module, texts, name="classify"):
    """The signature `name` of a loaded SavedModel on `texts`, as NumPy arrays."""
    texts = [t if isinstance(t, bytes) else t.encode("utf-8") for t in texts]
    result = module.signatures[name](text=tf.constant(texts, tf.string))
    return {key: value.numpy() for key, value in result.items()}


def assert_same_results(actual, expected):
    assert sorted(actual) == sorted(expected)
    assert [label.decode("utf-8") if isinstance(label, bytes) else label for label in actual["label"]] == list(
        expected["label"]
    )
    np.testing.assert_array_equal(actual["class_id"], expected["class_id"])
    np.testing.assert_allclose(actual["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
    if "score" in expected:
        np.testing.assert_allclose(actual["score"], expected["score"], rtol=1e-5, atol=1e-6)


# --- Layout, versions, atomicity ----------------------------------------------------------


def test_layout_and_assets(models, exported):
    for kind, path in exported.items():
        model = models[kind]
        assert path.name == "1" and path.parent.name == "sentiment"
        assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
        assert not list(path.parent.glob(".*"))  # no staging folder left behind
        labels = json.loads((path / "assets" / "labels.json").read_text("utf-8"))
        assert labels == {"class_names": list(MODELS[kind][0]), "head": model.head_type}
        vocabulary = json.loads((path / "assets" / "vocabulary.json").read_text("utf-8"))
        assert vocabulary == {
            "format": "rnn_toolkit.vocabulary/1",
            "kind": "words",
            "tokens": ["", "[UNK]"] + WORDS,
            "padding_id": 0,
            "unknown_id": 1,
            "start_id": None,
            "end_id": None,
            "max_length": MAX_LENGTH,
            "truncation": "head",
            "lowercase": True,
        }
    assert json.loads((exported["regression"] / "assets" / "labels.json").read_text())["head"] == "regression"


def test_loaded_module_points_at_its_own_assets(exported, loaded):
    module = loaded["binary"]
    for asset in (module.vocabulary_file, module.labels_file):
        path = Path(asset.asset_path.numpy().decode())
        assert path.parent == exported["binary"] / "assets" and path.is_file()


def test_versions_overwrite_and_file_exists(models, tmp_path):
    first = export_sentiment(models["binary"], tmp_path)
    assert first == tmp_path / "sentiment" / "1"
    assert export_sentiment(models["binary"], tmp_path).name == "2"
    seventh = export_sentiment(models["binary"], tmp_path, version=7)
    assert version_dir(tmp_path, "sentiment").name == "8"
    stamp = (seventh / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite"):
        export_sentiment(models["three_class"], tmp_path, version=7)
    assert (seventh / "saved_model.pb").stat().st_mtime_ns == stamp
    # Overwriting really replaces the version: it now holds the three-class model.
    assert export_sentiment(models["three_class"], tmp_path, version=7, overwrite=True) == seventh
    labels = json.loads((seventh / "assets" / "labels.json").read_text("utf-8"))
    assert labels["class_names"] == ["negative", "neutral", "positive"]
    assert sorted(p.name for p in (tmp_path / "sentiment").iterdir()) == ["1", "2", "7"]
    other = export_sentiment(models["binary"], tmp_path, name="reviews", version=3)
    assert other == tmp_path / "reviews" / "3"


def _explode(*args, **kwargs):
    raise RuntimeError("disk full")


def test_failed_export_leaves_nothing(models, tmp_path, monkeypatch):
    monkeypatch.setattr(tf.saved_model, "save", _explode)
    with pytest.raises(RuntimeError, match="disk full"):
        export_sentiment(models["binary"], tmp_path, version=1)
    assert list((tmp_path / "sentiment").iterdir()) == []


def test_failed_overwrite_keeps_the_old_version(models, tmp_path, monkeypatch):
    old = export_sentiment(models["binary"], tmp_path, version=1)
    before = sorted((p.relative_to(old), p.stat().st_mtime_ns) for p in old.rglob("*"))
    monkeypatch.setattr(tf.saved_model, "save", _explode)
    with pytest.raises(RuntimeError, match="disk full"):
        export_sentiment(models["three_class"], tmp_path, version=1, overwrite=True)
    assert sorted(p.name for p in old.parent.iterdir()) == ["1"]  # no .tmp / .old folder
    assert sorted((p.relative_to(old), p.stat().st_mtime_ns) for p in old.rglob("*")) == before
    monkeypatch.undo()
    assert json.loads((old / "assets" / "labels.json").read_text())["class_names"] == ["negative", "positive"]
    assert_same_results(call(tf.saved_model.load(str(old)), TEXTS), models["binary"].classify(TEXTS))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [({"version": 0}, ValueError, "version"), ({"name": "../x"}, ValueError, "name")],
)
def test_bad_export_arguments(models, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export_sentiment(models["binary"], tmp_path, **kwargs)
    assert not (tmp_path / "sentiment").exists()


def test_export_rejects_other_models(tmp_path):
    with pytest.raises(TypeError, match="SentimentClassifier"):
        export_sentiment(keras.Sequential([keras.layers.Dense(1)]), tmp_path)


# --- Signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MODELS))
def test_signature_names_dtypes_and_shapes(loaded, kind):
    module = loaded[kind]
    assert sorted(module.signatures) == ["classify", "serving_default"]
    classes = len(MODELS[kind][0])
    expected = {
        "label": (tf.string, [None]),
        "probabilities": (tf.float32, [None, classes]),
        "class_id": (tf.int32, [None]),
    }
    if kind == "regression":
        expected["score"] = (tf.float32, [None])
    for name in ("classify", "serving_default"):
        signature = module.signatures[name]
        args, inputs = signature.structured_input_signature
        assert args == () and list(inputs) == ["text"]
        assert inputs["text"].dtype == tf.string and inputs["text"].shape.as_list() == [None]
        outputs = signature.structured_outputs
        assert {key: (spec.dtype, spec.shape.as_list()) for key, spec in outputs.items()} == expected
    result = call(loaded[kind], TEXTS)
    assert result["probabilities"].dtype == np.float32 and result["probabilities"].shape == (len(TEXTS), classes)
    assert result["class_id"].dtype == np.int32


@pytest.mark.parametrize("kind", list(MODELS))
def test_results_match_classify_in_process(models, loaded, kind):
    expected = models[kind].classify(TEXTS)
    for name in ("classify", "serving_default"):
        assert_same_results(call(loaded[kind], TEXTS, name), expected)
    np.testing.assert_allclose(expected["probabilities"].sum(axis=-1), 1.0, rtol=1e-5)
    if kind == "regression":
        assert np.all((expected["score"] > 0) == (expected["class_id"] == 1))
    assert len(set(expected["label"])) > 1  # the texts do not all get the same label


# --- Edge cases, through the loaded signature ----------------------------------------------

LONG = "not bad film ! good " * 10_000  # 50,000 words


@pytest.mark.parametrize("kind", list(MODELS))
def test_edge_cases_through_the_loaded_signature(models, loaded, kind):
    assert len(LONG.split()) == 50_000
    # Empty, whitespace only and an unknown word are all one unknown token.
    empty = call(loaded[kind], ["", " \t\n  ", "zzz"])
    for row in (0, 1):
        np.testing.assert_array_equal(empty["probabilities"][row], empty["probabilities"][2])
        assert empty["label"][row] == empty["label"][2]
    # A 50,000-word text is read as its first `max_length` words.
    long = call(loaded[kind], [LONG, " ".join(LONG.split()[:MAX_LENGTH])])
    np.testing.assert_array_equal(long["probabilities"][0], long["probabilities"][1])
    # Bytes that are not UTF-8 are replaced (U+FFFD), not rejected.
    raw = call(loaded[kind], [b"\xff\xfe bad \xc3(", "\ufffd\ufffd bad \ufffd("])
    assert np.all(np.isfinite(raw["probabilities"]))
    np.testing.assert_array_equal(raw["probabilities"][0], raw["probabilities"][1])
    # A batch of zero texts gives empty results of the right shapes and types.
    none = call(loaded[kind], [])
    classes = len(MODELS[kind][0])
    assert none["label"].shape == (0,) and none["class_id"].shape == (0,)
    assert none["probabilities"].shape == (0, classes) and none["probabilities"].dtype == np.float32
    if kind == "regression":
        assert none["score"].shape == (0,)
    # In one mixed batch every text gets what it gets alone.
    mixed = ["good film", "", "   ", LONG, b"\xff\xfe good", "not bad at all !"]
    together = call(loaded[kind], mixed)
    for row, text in enumerate(mixed):
        alone = call(loaded[kind], [text])
        assert together["label"][row] == alone["label"][0]
        np.testing.assert_allclose(together["probabilities"][row], alone["probabilities"][0], rtol=1e-5, atol=1e-6)
    assert_same_results(together, models[kind].classify(mixed))


# --- The client script --------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    """The client module, loaded from its file (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("sentiment_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_client_picks_the_highest_numeric_version(client, tmp_path):
    for version in ("2", "10", "9", "latest", ".11.tmp-x"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").touch()
    assert client.resolve_version(tmp_path).name == "10"  # numeric, not lexical order
    assert client.resolve_version(tmp_path / "9").name == "9"


class Other(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="text")])
    def serve(self, text):
        return {"label": text}


@pytest.mark.parametrize("problem", ["missing", "empty", "no_classify", "wrong_classify"])
def test_client_errors_are_one_line_and_exit_2(client, tmp_path, capsys, problem):
    path = tmp_path / "model"
    if problem != "missing":
        path.mkdir()
    if problem in ("no_classify", "wrong_classify"):
        module = Other()
        name = "serving_default" if problem == "no_classify" else "classify"
        tf.saved_model.save(module, str(path / "1"), signatures={name: module.serve})
    with pytest.raises(SystemExit) as exit_info:
        client.main([str(path), "a text"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "error:" in error
    expected = {
        "missing": "no such folder",
        "empty": "neither a SavedModel",
        "no_classify": "no 'classify' signature",
        "wrong_classify": "expected a string 'text'",
    }[problem]
    assert expected in error


@pytest.mark.slow
def test_plain_tensorflow_client_script(models, exported, tmp_path):
    # Texts from the command line, on the model folder (the highest version is taken).
    result = subprocess.run(
        [sys.executable, str(CLIENT), str(exported["three_class"].parent), "good film", "", "not bad " * 40],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the repo: rnn_toolkit must not be imported by accident
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    expected = models["three_class"].classify(["good film", "", "not bad " * 40])
    assert len(lines) == 3
    for line, label, probabilities in zip(lines, expected["label"], expected["probabilities"]):
        assert line.split()[0] == label
        assert [f"{name}={p:.3f}" for name, p in zip(MODELS["three_class"][0], probabilities)] == line.split()[1:4]
    assert lines[0].endswith("good film") and lines[2].endswith("...") and len(lines[2]) < 150
    assert "rnn_toolkit was not imported" in result.stderr

    # One text per line from stdin, as JSON lines, on a version folder of the regression model.
    stdin = b"good film\n\n   \n\xff\xfe bad\nnot good at all !\n"
    result = subprocess.run(
        [sys.executable, str(CLIENT), str(exported["regression"]), "--json", "--batch-size", "2"],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    texts = stdin.split(b"\n")[:-1]
    expected = models["regression"].classify(texts)
    assert [r["label"] for r in records] == list(expected["label"])
    assert [r["text"] for r in records] == [t.decode("utf-8", "replace") for t in texts]
    np.testing.assert_allclose([r["score"] for r in records], expected["score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        [[r["probabilities"]["negative"], r["probabilities"]["positive"]] for r in records],
        expected["probabilities"],
        rtol=1e-5,
        atol=1e-6,
    )
    assert b"rnn_toolkit was not imported" in result.stderr


FRESH_PROCESS_CHECKS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    texts = json.loads(sys.argv[1])
    out = {}
    for path in sys.argv[2:]:
        loaded = tf.saved_model.load(path)
        result = loaded.signatures["serving_default"](text=tf.constant(texts, tf.string))
        out[path] = {
            "signatures": sorted(loaded.signatures),
            "label": [label.decode("utf-8") for label in result["label"].numpy()],
            "probabilities": result["probabilities"].numpy().tolist(),
        }
    out["rnn_toolkit_imported"] = "rnn_toolkit" in sys.modules
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_reload_in_a_fresh_process_with_plain_tensorflow(models, exported, tmp_path):
    texts = TEXTS + ["", "   "]
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CHECKS, json.dumps(texts)] + [str(p) for p in exported.values()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the repo: rnn_toolkit must not be importable by accident
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT", 1)[1])
    assert out.pop("rnn_toolkit_imported") is False
    for kind, path in exported.items():
        expected = models[kind].classify(texts)
        assert out[str(path)]["signatures"] == ["classify", "serving_default"]
        assert out[str(path)]["label"] == list(expected["label"])
        np.testing.assert_allclose(out[str(path)]["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
