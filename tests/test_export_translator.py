"""Tests for rnn_toolkit.export.export_translator: a SavedModel from raw text to raw text."""

import json
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary, encode_texts, translation_batches
from rnn_toolkit.export import export_translator, version_dir
from rnn_toolkit.tasks.translator.export import MAX_BEAM_WIDTH

SOURCES = ["the house is red", "the dog is big", "a red dog", "the big house", "a dog", "the house is big"]
TARGETS = [
    "la casa es roja", "el perro es grande", "un perro rojo", "la casa grande", "un perro",
    "la casa es grande",
]
LONG = " ".join(["the house is red"] * 500)  # 2,000 words
# Inputs a server must survive; the last one is not UTF-8.
ODD = ["", "   ", "zebra quantum", LONG, b"\xff\xfe", b"the \xc3 house"]
TEXTS = SOURCES + ODD


@pytest.fixture(scope="module")
def model():
    """One tiny translator, trained a little on six pairs (so translations end early)."""
    keras.utils.set_random_seed(0)
    source = WordVocabulary.from_texts(SOURCES, min_count=1, max_length=12)
    target = WordVocabulary.from_texts(TARGETS, min_count=1, sequence_markers=True)
    model = rnn_toolkit.build_translator(
        source, target, units=8, embedding_dim=4, dropout=0.0, dtype_policy="float32",
        learning_rate=0.02, max_output_length=20,
    )
    dataset = translation_batches(
        encode_texts(SOURCES, source), encode_texts(TARGETS, target),
        start_id=target.start_id, end_id=target.end_id, batch_size=6,
    )
    model.fit(dataset.repeat(), steps_per_epoch=60, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("saved_models")


@pytest.fixture(scope="module")
def exported(model, base_dir):
    return export_translator(model, base_dir)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


def _strings(texts):
    return tf.constant([t if isinstance(t, bytes) else t.encode() for t in texts], tf.string)


def serve(loaded, texts):
    result = loaded.signatures["serving_default"](text=_strings(texts))
    assert sorted(result) == ["translation"]
    return [t.decode("utf-8") for t in result["translation"].numpy()]


def translate(loaded, texts, beam_width, max_length):
    result = loaded.signatures["translate"](
        text=_strings(texts),
        beam_width=tf.constant(beam_width, tf.int32),
        max_length=tf.constant(max_length, tf.int32),
    )
    return [t.decode("utf-8") for t in result["translation"].numpy()]


# --- In-process reload --------------------------------------------------------------------


def test_signatures_inputs_and_outputs(loaded):
    assert sorted(loaded.signatures) == ["serving_default", "translate"]
    _, serving_inputs = loaded.signatures["serving_default"].structured_input_signature
    assert serving_inputs == {"text": tf.TensorSpec([None], tf.string, name="text")}
    _, translate_inputs = loaded.signatures["translate"].structured_input_signature
    assert translate_inputs == {
        "text": tf.TensorSpec([None], tf.string, name="text"),
        "beam_width": tf.TensorSpec([], tf.int32, name="beam_width"),
        "max_length": tf.TensorSpec([], tf.int32, name="max_length"),
    }
    for name in loaded.signatures:
        outputs = loaded.signatures[name].structured_outputs
        assert sorted(outputs) == ["translation"] and outputs["translation"].dtype == tf.string


def test_translations_equal_the_model(model, loaded):
    assert len(set(model.translate(SOURCES))) > 2  # varied translations: a real comparison
    assert serve(loaded, TEXTS) == model.translate(TEXTS, beam_width=4)
    assert translate(loaded, TEXTS, 4, 0) == model.translate(TEXTS, beam_width=4)
    assert translate(loaded, TEXTS, 1, 0) == model.translate(TEXTS, sampler="greedy")
    assert translate(loaded, TEXTS, 2, 3) == model.translate(TEXTS, beam_width=2, max_length=3)


def test_odd_requests_are_clamped_not_refused(model, loaded):
    greedy = model.translate(TEXTS, sampler="greedy")
    assert translate(loaded, TEXTS, 0, 0) == greedy
    assert translate(loaded, TEXTS, -5, 0) == greedy
    assert translate(loaded, SOURCES, 10**6, 0) == model.translate(SOURCES, beam_width=MAX_BEAM_WIDTH)
    default = serve(loaded, TEXTS)
    assert translate(loaded, TEXTS, 4, -1) == default
    assert translate(loaded, TEXTS, 4, 10**9) == model.translate(TEXTS, max_length=10**6)
    assert all(len(t.split()) <= 1 for t in translate(loaded, TEXTS, 4, 1))
    assert serve(loaded, []) == [] and translate(loaded, [], 3, 5) == []


def test_vocabularies_are_assets(model, exported):
    for side, vocabulary in (("source", model.source_vocabulary), ("target", model.target_vocabulary)):
        record = json.loads((exported / "assets" / f"{side}_vocabulary.json").read_text(encoding="utf-8"))
        assert record["tokens"] == vocabulary.tokens
        assert (record["padding_id"], record["unknown_id"]) == (0, 1)
        assert record["max_length"] == vocabulary.max_length and record["lowercase"] is True
        assert record == vocabulary.to_json()
    target = json.loads((exported / "assets" / "target_vocabulary.json").read_text(encoding="utf-8"))
    assert (target["start_id"], target["end_id"]) == (2, 3)
    source = json.loads((exported / "assets" / "source_vocabulary.json").read_text(encoding="utf-8"))
    assert source["start_id"] is None and source["end_id"] is None


# --- Versions and atomicity ---------------------------------------------------------------


def test_versions_are_never_replaced_silently(model, base_dir, exported):
    assert exported == base_dir / "translator" / "1"
    assert version_dir(base_dir, "translator") == base_dir / "translator" / "2"
    (exported / "marker").write_text("version 1")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_translator(model, base_dir, version=1)
    assert (exported / "marker").exists()  # untouched
    # Replaced whole: the old folder's files are gone, the new one is complete.
    replaced = export_translator(model, base_dir, version=1, overwrite=True)
    assert replaced == exported and not (replaced / "marker").exists()
    assert (replaced / "saved_model.pb").is_file()
    assert (replaced / "assets" / "target_vocabulary.json").is_file()
    # Nothing half-written is left beside the version.
    assert [p.name for p in (base_dir / "translator").iterdir()] == ["1"]


def test_wrong_model_or_beam_width(model, tmp_path):
    with pytest.raises(TypeError, match="Translator"):
        export_translator(keras.Sequential([keras.layers.Dense(1)]), tmp_path)
    for beam_width in (0, MAX_BEAM_WIDTH + 1, 2.0, True):
        with pytest.raises(ValueError, match="`beam_width`"):
            export_translator(model, tmp_path, beam_width=beam_width)
    assert not any(tmp_path.iterdir())


# --- A fresh process with TensorFlow only ---------------------------------------------------

FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    path, texts = sys.argv[1], [bytes.fromhex(t) for t in json.loads(sys.argv[2])]
    loaded = tf.saved_model.load(path)
    out = {"signatures": {}}
    for name, function in loaded.signatures.items():
        _, inputs = function.structured_input_signature
        out["signatures"][name] = {
            key: [spec.dtype.name, spec.shape.as_list()] for key, spec in inputs.items()
        }

    def run(name, strings, **scalars):
        arguments = {key: tf.constant(value, tf.int32) for key, value in scalars.items()}
        result = loaded.signatures[name](text=tf.constant(strings, tf.string), **arguments)
        return [t.decode("utf-8") for t in result["translation"].numpy()]

    out["serving"] = run("serving_default", texts)
    out["beam1"] = run("translate", texts, beam_width=1, max_length=0)
    out["beam0"] = run("translate", texts, beam_width=0, max_length=-3)
    out["empty"] = run("translate", [], beam_width=4, max_length=0)
    out["rnn_toolkit_imported"] = "rnn_toolkit" in sys.modules
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_reload_in_a_fresh_process_with_plain_tensorflow(model, exported, tmp_path):
    texts = [t if isinstance(t, bytes) else t.encode() for t in TEXTS]
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(exported), json.dumps([t.hex() for t in texts])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # not the repo
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT", 1)[1])
    assert out["rnn_toolkit_imported"] is False
    assert out["signatures"] == {
        "serving_default": {"text": ["string", [None]]},
        "translate": {"text": ["string", [None]], "beam_width": ["int32", []], "max_length": ["int32", []]},
    }
    assert out["serving"] == model.translate(TEXTS, beam_width=4)
    greedy = model.translate(TEXTS, sampler="greedy")
    assert out["beam1"] == out["beam0"] == greedy
    assert out["empty"] == []
