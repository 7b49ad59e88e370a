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


# --- Case, sequence markers and decoding (target vocabularies) ----------------------------

SPANISH = ["¿", "qué", "?", "¡", "hola", ",", "!", "(", ")", "dijo", ".", "casa", "don't"]


@pytest.fixture
def target():
    return WordVocabulary(SPANISH, sequence_markers=True, max_length=20)


def test_lowercase_false_keeps_case_apart():
    cased = WordVocabulary(["The", "the"], lowercase=False)
    assert cased.encode(["The the THE"]).to_list() == [[2, 3, 1]]
    assert WordVocabulary(["the"]).encode(["The THE"]).to_list() == [[2, 2]]
    built = WordVocabulary.from_texts(["The the THE"], min_count=1, lowercase=False)
    assert built.words == ["THE", "The", "the"] and built.lowercase is False
    assert WordVocabulary.from_texts(["The the THE"], min_count=1).words == ["the"]


def test_sequence_markers_layout(target):
    assert (target.start_id, target.end_id, target.first_word_id) == (2, 3, 4)
    assert target.tokens[:4] == ["", "[UNK]", "[START]", "[END]"]
    assert target.tokens[4:] == SPANISH and target.words == SPANISH
    assert target.size == len(SPANISH) + 4 == len(target.tokens)
    assert target.encode(["¿Qué casa?"]).to_list() == [[4, 5, 15, 6]]
    # Without markers words start at 2 and the marker ids do not exist.
    plain = WordVocabulary(SPANISH)
    assert plain.first_word_id == 2 and plain.size == len(SPANISH) + 2
    assert plain.tokens == ["", "[UNK]"] + SPANISH
    assert plain.encode(["¿"]).to_list() == [[2]]
    # The markers are not words: text that spells them is unknown.
    assert target.encode(["[START] [END]"]).to_list()[0].count(2) == 0


@pytest.mark.parametrize("attribute", ["start_id", "end_id"])
def test_marker_ids_need_sequence_markers(attribute):
    with pytest.raises(ValueError, match=f"`{attribute}`.*sequence_markers=True"):
        getattr(WordVocabulary(["a"]), attribute)


@pytest.mark.parametrize("reserved", ["[START]", "[END]"])
def test_reserved_tokens_are_rejected_as_words_with_markers(reserved):
    with pytest.raises(ValueError, match="reserved tokens"):
        WordVocabulary(["a", reserved], sequence_markers=True)


def test_decode_drops_padding_and_undoes_punctuation_spacing(target):
    ids = [[4, 5, 6, 0, 0], [7, 8, 9, 10, 0], [11, 13, 12, 14, 16]]
    assert [t.decode() for t in target.decode(ids).numpy()] == [
        "¿qué?", "¡hola,!", "(dijo). don't",
    ]
    # Padding in the middle is dropped too; other ids (markers, unknown) are kept as tokens.
    assert target.decode(tf.constant([[8, 0, 2, 3, 1]], tf.int64)).numpy().tolist() == [
        b"hola [START] [END] [UNK]"
    ]


def test_decode_respects_lengths(target):
    ids = tf.constant([[4, 5, 6, 3], [8, 15, 3, 0], [15, 15, 15, 15]])
    texts = target.decode(ids, lengths=tf.constant([3, 2, 0])).numpy().tolist()
    assert texts == ["¿qué?".encode(), b"hola casa", b""]
    # A length beyond the row is the whole row.
    assert target.decode([[15, 15]], lengths=[9]).numpy().tolist() == [b"casa casa"]


def test_decode_of_no_rows(target):
    assert target.decode(tf.zeros([0, 3], tf.int32)).shape == [0]


@pytest.mark.parametrize(
    "sentence",
    ["¿qué casa?", "¡hola, casa!", "dijo (hola) don't.", "¿¡qué!?", "casa, casa."],
)
def test_encode_decode_round_trip_of_a_normalised_sentence(target, sentence):
    ids = target.encode([sentence, "hola"]).to_tensor()  # row 0 padded or not, both work
    assert target.decode(ids).numpy().tolist()[0].decode() == sentence


def test_decode_joins_hyphenated_and_slashed_words_again():
    texts = ["woman medium-light skin tone", "a-b-c and/or", "before - after"]
    vocabulary = WordVocabulary.from_texts(texts, min_count=1, sequence_markers=True)
    decoded = vocabulary.decode(vocabulary.encode(texts).to_tensor()).numpy().tolist()
    # A dash between spaced words cannot be told from a hyphen once tokenized: it is joined.
    assert decoded == [b"woman medium-light skin tone", b"a-b-c and/or", b"before-after"]


def test_decode_in_tf_function(target):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)])
    def decode(ids, lengths):
        return target.decode(ids, lengths)

    result = decode(tf.constant([[4, 5, 6, 3]]), tf.constant([3]))
    assert result.numpy().tolist() == ["¿qué?".encode()]


def test_config_roundtrip_keeps_case_and_markers(target):
    cased = WordVocabulary(["Casa", "casa"], lowercase=False, sequence_markers=True, max_length=5)
    config = cased.get_config()
    assert (config["lowercase"], config["sequence_markers"]) == (False, True)
    assert config["words"] == ["Casa", "casa"]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cased))
    assert (restored.lowercase, restored.sequence_markers, restored.end_id) == (False, True, 3)
    assert restored.tokens == cased.tokens
    assert restored.encode(["Casa casa CASA"]).to_list() == [[4, 5, 1]]
    plain = WordVocabulary.from_config(WordVocabulary(["a"]).get_config())
    assert (plain.lowercase, plain.sequence_markers, plain.first_word_id) == (True, False, 2)
