"""Tests for rnn_toolkit.data.WordVocabulary."""

import time

import keras
import pytest
import tensorflow as tf

from rnn_toolkit.data import WordVocabulary


@pytest.fixture
def vocab():
    return WordVocabulary(["the", "film", "!", "don't"], max_length=6)


def _tokens(*texts):
    return [[t.decode() for t in row] for row in WordVocabulary.tokenize(list(texts)).to_list()]


def test_tokenize_lowercases_and_splits_punctuation():
    assert _tokens("The FILM, great!!") == [["the", "film", ",", "great", "!", "!"]]
    assert _tokens("(really?)") == [["(", "really", "?", ")"]]


def test_tokenize_apostrophes_inside_words_stay_at_edges_go():
    assert _tokens("Don't miss the film's end") == [["don't", "miss", "the", "film's", "end"]]
    assert _tokens("'quoted' critics' rock 'n' roll") == [
        ["quoted", "critics", "rock", "n", "roll"]
    ]
    # Two quoted words side by side: the space between them serves both quotes.
    assert _tokens("'good' 'bad'") == [["good", "bad"]]


def test_tokenize_keeps_accented_words_whole():
    assert _tokens("Café ÉLAN naïve") == [["café", "élan", "naïve"]]


def test_newlines_and_tabs_are_whitespace_other_control_characters_are_invalid():
    assert _tokens("one\ntwo\tthree\r\nfour\x0bfive") == [["one", "two", "three", "four", "five"]]
    assert _tokens("a\x00b\x7f") == [["a", "\ufffd", "b", "\ufffd"]]


def test_ids_layout(vocab):
    assert WordVocabulary.PADDING_ID == 0 and WordVocabulary.UNKNOWN_ID == 1
    assert vocab.words == ["the", "film", "!", "don't"]
    assert vocab.size == 6
    ids = vocab.encode(tf.constant(["The film! Don't", "unseen film"]))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    assert ids.to_list() == [[2, 3, 4, 5], [1, 3]]
    assert vocab(tf.constant(["the"])).to_list() == [[2]]
    assert vocab.encode_padded(["the film", "!"]).numpy().tolist() == [[2, 3], [4, 0]]


def test_from_texts_orders_by_count_then_word_and_filters():
    texts = ["b a b", "c b a d", "d"]
    assert WordVocabulary.from_texts(texts, min_count=1).words == ["b", "a", "d", "c"]
    assert WordVocabulary.from_texts(texts, min_count=2).words == ["b", "a", "d"]
    assert WordVocabulary.from_texts(texts, min_count=1, max_words=2).words == ["b", "a"]
    # Batching the counting changes nothing.
    assert WordVocabulary.from_texts(texts, min_count=1, batch_size=1).words == ["b", "a", "d", "c"]
    built = WordVocabulary.from_texts(texts, min_count=1, max_length=3, truncation="tail")
    assert (built.max_length, built.truncation) == (3, "tail")


def test_from_texts_errors():
    with pytest.raises(ValueError, match="`min_count`=5"):
        WordVocabulary.from_texts(["a b"], min_count=5)
    with pytest.raises(ValueError, match="`max_words`"):
        WordVocabulary.from_texts(["a b"], max_words=0)


def test_empty_text_becomes_one_unknown_token(vocab):
    assert vocab.encode(["", "   ", "\n\t", "the"]).to_list() == [[1], [1], [1], [2]]
    padded = vocab.encode_padded(["", "the film"]).numpy()
    assert padded.tolist() == [[1, 0], [2, 3]]


def test_invalid_utf8_does_not_crash_and_is_not_a_word(vocab):
    # Each bad byte becomes U+FFFD, a token of its own that no vocabulary holds.
    ids = vocab.encode(tf.constant([b"the \xff\xfe film", b"\xc3"]))
    assert ids.to_list() == [[2, 1, 1, 3], [1]]
    built = WordVocabulary.from_texts([b"good \xff good", b"\xff", "ok\x00"], min_count=1)
    assert built.words == ["good", "ok"]


def test_truncation_head_and_tail():
    words = ["a", "b", "c", "d"]
    head = WordVocabulary(words, max_length=2)
    tail = WordVocabulary(words, max_length=2, truncation="tail")
    assert head.encode(["a b c d", "c"]).to_list() == [[2, 3], [4]]
    assert tail.encode(["a b c d", "c"]).to_list() == [[4, 5], [4]]


def test_a_50000_word_text_is_cut_to_max_length(vocab):
    text = "the film " * 25_000
    start = time.perf_counter()
    ids = vocab.encode([text, "film"])
    assert time.perf_counter() - start < 5.0
    assert ids.row_lengths().numpy().tolist() == [6, 1]
    assert ids[0].numpy().tolist() == [2, 3, 2, 3, 2, 3]


def test_batch_of_zero_texts(vocab):
    ids = vocab.encode(tf.constant([], tf.string))
    assert ids.shape.as_list() == [0, None] and ids.to_list() == []
    assert vocab.encode_padded(tf.constant([], tf.string)).shape[0] == 0


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"words": "the film"}, TypeError, "`words`"),
        ({"words": []}, ValueError, "`words`"),
        ({"words": ["a", "a"]}, ValueError, "duplicates"),
        ({"words": ["a", " b"]}, ValueError, "`words`"),
        ({"words": ["[UNK]"]}, ValueError, "unknown token"),
        ({"words": ["a"], "max_length": 0}, ValueError, "`max_length`"),
        ({"words": ["a"], "truncation": "middle"}, ValueError, "`truncation`"),
    ],
)
def test_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        WordVocabulary(**kwargs)


def test_config_roundtrip(vocab):
    tail = WordVocabulary(vocab.words, max_length=2, truncation="tail", name="words")
    config = tail.get_config()
    assert (config["words"], config["max_length"], config["truncation"]) == (
        vocab.words, 2, "tail",
    )
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tail))
    assert isinstance(restored, WordVocabulary) and restored.name == "words"
    texts = ["the film ! don't", "x the"]
    assert restored.encode(texts).to_list() == tail.encode(texts).to_list() == [[4, 5], [1, 2]]


def test_works_in_tf_function_and_dataset_map(vocab):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def padded(strings):
        return vocab.encode_padded(strings)

    assert padded(tf.constant(["the film", ""])).numpy().tolist() == [[2, 3], [1, 0]]
    dataset = tf.data.Dataset.from_tensor_slices(["film !", "x"]).batch(2).map(vocab.encode)
    (batch,) = list(dataset)
    assert batch.to_list() == [[3, 4], [1]]


class _Tokenizer(tf.Module):
    def __init__(self, vocabulary):
        super().__init__()
        self.vocabulary = vocabulary

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(self, strings):
        return self.vocabulary.encode_padded(strings)


def test_saved_model_reload_gives_identical_ids(vocab, tmp_path):
    module = _Tokenizer(vocab)
    texts = tf.constant(["The film! Don't.", "", "café the", b"\xff the"])
    expected = module.encode(texts).numpy()
    tf.saved_model.save(module, str(tmp_path / "tokenizer"))
    del module
    loaded = tf.saved_model.load(str(tmp_path / "tokenizer"))
    assert loaded.encode(texts).numpy().tolist() == expected.tolist()
    assert expected.tolist()[1] == [1, 0, 0, 0, 0]
