"""Tests for rnn_toolkit.data.CharVocabulary."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import CharVocabulary


@pytest.fixture
def vocab():
    return CharVocabulary("abc")


def test_ids_layout(vocab):
    assert CharVocabulary.PADDING_ID == 0 and CharVocabulary.UNKNOWN_ID == 1
    assert vocab.characters == ["a", "b", "c"]
    assert vocab.size == 5
    assert vocab.encode(["abc"]).to_list() == [[2, 3, 4]]


def test_list_and_string_constructors_agree():
    assert CharVocabulary(["x", "é", " "]).characters == CharVocabulary("xé ").characters


def test_encode_batch_is_ragged_int32_and_scalar_is_dense(vocab):
    ids = vocab.encode(tf.constant(["cab", "", "a"]))
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert ids.to_list() == [[4, 2, 3], [], [2]]
    scalar = vocab.encode("ba")
    assert not isinstance(scalar, tf.RaggedTensor)
    assert scalar.dtype == tf.int32 and scalar.numpy().tolist() == [3, 2]
    assert vocab(tf.constant(["ab"])).to_list() == [[2, 3]]


def test_unseen_and_invalid_utf8_map_to_unknown():
    vocab = CharVocabulary("aé")
    # "é" is two UTF-8 bytes: counted as one character, not two.
    assert vocab.encode(["éa"]).to_list() == [[3, 2]]
    assert vocab.encode(["zé"]).to_list() == [[1, 3]]
    assert vocab.encode(tf.constant([b"a\xffa"])).to_list() == [[2, 1, 2]]


def test_decode_dense_padded_and_ragged(vocab):
    dense = vocab.decode(np.array([[4, 2, 3, 0, 0], [2, 1, 0, 0, 0]], dtype=np.int32))
    assert dense.numpy().tolist() == [b"cab", "a\ufffd".encode()]
    ragged = vocab.decode(tf.ragged.constant([[4, 2], [3]], dtype=tf.int64))
    assert ragged.numpy().tolist() == [b"ca", b"b"]
    assert vocab.decode([4, 4]).numpy() == b"cc"
    # Ids beyond the vocabulary are unknown, not an error.
    assert vocab.decode([2, 99]).numpy().decode() == "a\ufffd"


def test_roundtrip_of_unicode_text():
    text = "Grüße, 世界!\n"
    vocab = CharVocabulary.from_text(text)
    assert vocab.decode(vocab.encode([text])).numpy()[0].decode() == text


def test_from_text_is_sorted_and_filters():
    text = "bbbaac\ufffd"
    assert CharVocabulary.from_text(text).characters == ["a", "b", "c"]
    assert CharVocabulary.from_text([text, "z"]).characters == ["a", "b", "c", "z"]
    assert CharVocabulary.from_text(text, min_count=2).characters == ["a", "b"]
    assert CharVocabulary.from_text(text, max_characters=1).characters == ["b"]
    # Ties in frequency are broken by code point.
    assert CharVocabulary.from_text("ba", max_characters=1).characters == ["a"]


@pytest.mark.parametrize(
    "characters, error, argument",
    [
        ("", ValueError, "`characters`"),
        (["ab"], ValueError, "`characters`"),
        ("aa", ValueError, "duplicates"),
        ("a\ufffd", ValueError, "U\\+FFFD"),
        (42, TypeError, "`characters`"),
        (["a", 1], TypeError, "`characters`"),
    ],
)
def test_bad_characters_are_rejected(characters, error, argument):
    with pytest.raises(error, match=argument):
        CharVocabulary(characters)


def test_from_text_bad_arguments():
    with pytest.raises(TypeError, match="`text_or_texts`"):
        CharVocabulary.from_text(["ok", 3])
    with pytest.raises(ValueError, match="`max_characters`"):
        CharVocabulary.from_text("abc", max_characters=0)
    with pytest.raises(ValueError, match="`min_count`"):
        CharVocabulary.from_text("abc", min_count=0)
    with pytest.raises(ValueError, match="`min_count`"):
        CharVocabulary.from_text("abc", min_count=5)


def test_works_in_tf_function_and_dataset_map(vocab):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def roundtrip(strings):
        return vocab.decode(vocab.encode(strings))

    assert roundtrip(tf.constant(["cab", "xa"])).numpy().tolist() == [b"cab", "\ufffda".encode()]

    dataset = tf.data.Dataset.from_tensor_slices(["ab", "cba"]).batch(2).map(vocab.encode)
    (batch,) = list(dataset)
    assert batch.to_list() == [[2, 3], [4, 3, 2]]


def test_keras_serialization_roundtrip(vocab):
    config = vocab.get_config()
    assert config["characters"] == ["a", "b", "c"]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(vocab))
    assert isinstance(restored, CharVocabulary)
    assert restored.encode(["cabz"]).to_list() == vocab.encode(["cabz"]).to_list()
    assert CharVocabulary.from_config(config).characters == vocab.characters


def test_usable_in_a_functional_model(vocab):
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, vocab(inputs))
    assert model(tf.constant(["ba"])).to_list() == [[3, 2]]


class _Exportable(tf.Module):
    def __init__(self, vocabulary):
        super().__init__()
        self.vocabulary = vocabulary

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def roundtrip(self, strings):
        ids = self.vocabulary.encode(strings)
        return {"ids": ids.to_tensor(), "text": self.vocabulary.decode(ids)}


@pytest.mark.slow
def test_saved_model_loads_without_rnn_toolkit(tmp_path):
    vocab = CharVocabulary.from_text("hello world")
    module = _Exportable(vocab)
    strings = tf.constant(["hello", "word!"])
    expected = module.roundtrip(strings)
    export_dir = tmp_path / "vocab_module"
    tf.saved_model.save(module, str(export_dir))

    script = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        loaded = tf.saved_model.load({str(export_dir)!r})
        out = loaded.roundtrip(tf.constant(["hello", "word!"]))
        assert "rnn_toolkit" not in sys.modules
        print(out["ids"].numpy().tolist())
        print([s.decode() for s in out["text"].numpy()])
        """
    )
    # Run outside the repository so the package cannot be imported by accident.
    env = dict(os.environ, PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ids_line, text_line = result.stdout.strip().splitlines()[-2:]
    assert ids_line == str(expected["ids"].numpy().tolist())
    assert text_line == str(["hello", "word\ufffd"])
