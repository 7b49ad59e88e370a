"""Tests for the vocabularies' one JSON form (rnn_toolkit.data.vocabulary_json)."""

import json

import keras
import pytest

import rnn_toolkit
from rnn_toolkit.data import CharVocabulary, WordVocabulary
from rnn_toolkit.data.vocabulary_json import FORMAT, read_vocabulary_json, write_vocabulary_json

# Known and unknown tokens, punctuation, case, an empty text, invalid UTF-8.
TEXTS = ["La casa es roja!", "¿Qué?", "zebra casa casa casa casa", "", b"\xff casa"]


def _same_vocabulary(copy, original):
    assert type(copy) is type(original)
    assert copy.to_json() == original.to_json()
    assert copy.get_config() | {"name": None} == original.get_config() | {"name": None}
    assert copy.encode(TEXTS).to_list() == original.encode(TEXTS).to_list()
    ids = original.encode(TEXTS).to_tensor(0)
    assert copy.decode(ids).numpy().tolist() == original.decode(ids).numpy().tolist()


def _through_json_text(vocabulary):
    return type(vocabulary).from_json(json.loads(json.dumps(vocabulary.to_json())))


@pytest.mark.parametrize(
    "arguments",
    [
        dict(),
        dict(sequence_markers=True),
        dict(max_length=3, truncation="tail", lowercase=False),
        dict(max_length=2, lowercase=False, sequence_markers=True),
    ],
    ids=["plain", "markers", "tail-cased", "markers-cased"],
)
def test_word_vocabulary_round_trip(arguments):
    vocabulary = WordVocabulary(["casa", "la", "es", "roja", "!", "¿", "qué", "?"], **arguments)
    record = vocabulary.to_json()
    assert record["format"] == FORMAT and record["kind"] == "words"
    assert record["tokens"] == vocabulary.tokens and len(record["tokens"]) == vocabulary.size
    markers = arguments.get("sequence_markers", False)
    assert (record["start_id"], record["end_id"]) == ((2, 3) if markers else (None, None))
    assert (record["max_length"], record["truncation"], record["lowercase"]) == (
        vocabulary.max_length, vocabulary.truncation, vocabulary.lowercase
    )
    _same_vocabulary(_through_json_text(vocabulary), vocabulary)


def test_char_vocabulary_round_trip():
    vocabulary = CharVocabulary("¿?! aceloqrsuzé")
    record = vocabulary.to_json()
    assert record["format"] == FORMAT and record["kind"] == "characters"
    assert record["tokens"] == ["", "\ufffd"] + vocabulary.characters
    assert (record["padding_id"], record["unknown_id"], record["start_id"], record["end_id"]) == (
        0, 1, None, None
    )
    _same_vocabulary(_through_json_text(vocabulary), vocabulary)


@pytest.mark.parametrize(
    "vocabulary",
    [CharVocabulary("abé"), WordVocabulary(["é"]), WordVocabulary(["é", "a"], sequence_markers=True)],
    ids=["characters", "words", "words-markers"],
)
def test_files_come_back_as_the_right_class(vocabulary, tmp_path):
    path = write_vocabulary_json(vocabulary, tmp_path / "vocabulary.json")
    assert "é" in path.read_text(encoding="utf-8")  # readable UTF-8, not \u escapes
    _same_vocabulary(read_vocabulary_json(path), vocabulary)


def test_records_that_do_not_match_are_refused():
    words = WordVocabulary(["la", "casa"], sequence_markers=True).to_json()
    with pytest.raises(ValueError, match="kind"):
        CharVocabulary.from_json(words)
    with pytest.raises(ValueError, match="format"):
        WordVocabulary.from_json(words | {"format": "rnn_toolkit.vocabulary/2"})
    with pytest.raises(ValueError, match="tokens"):
        WordVocabulary.from_json(words | {"tokens": ["", "[UNK]", "la", "casa"]})
    with pytest.raises(ValueError, match="end_id"):
        WordVocabulary.from_json(words | {"end_id": 5})
    with pytest.raises(ValueError, match="max_length"):
        WordVocabulary.from_json({k: v for k, v in words.items() if k != "max_length"})


# --- Exported SavedModels ------------------------------------------------------------------


def _assets(path):
    return {file.name: file for file in (path / "assets").glob("*.json")}


def test_exported_assets_are_the_models_vocabularies(tmp_path):
    keras.utils.set_random_seed(0)
    char_lm = rnn_toolkit.build_char_lm("ab é\n", units=2, embedding_dim=2)
    assets = _assets(rnn_toolkit.export.export_char_lm(char_lm, tmp_path))
    _same_vocabulary(read_vocabulary_json(assets["vocabulary.json"]), char_lm.vocabulary)

    words = WordVocabulary(["good", "bad", "!"], max_length=7, truncation="tail")
    classifier = rnn_toolkit.build_sentiment_classifier(words, units=2, embedding_dim=2)
    assets = _assets(rnn_toolkit.export.export_sentiment(classifier, tmp_path))
    _same_vocabulary(read_vocabulary_json(assets["vocabulary.json"]), words)

    source = WordVocabulary(["la", "casa"], max_length=5)
    target = WordVocabulary(["the", "house"], sequence_markers=True, lowercase=False)
    translator = rnn_toolkit.build_translator(source, target, units=2, embedding_dim=2)
    assets = _assets(rnn_toolkit.export.export_translator(translator, tmp_path))
    _same_vocabulary(read_vocabulary_json(assets["source_vocabulary.json"]), source)
    _same_vocabulary(read_vocabulary_json(assets["target_vocabulary.json"]), target)
