"""Tests for rnn_toolkit.data.windows and rnn_toolkit.data.dataset_options."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import (
    CharVocabulary,
    char_windows,
    consecutive_char_batches,
    pipeline_options,
)
from rnn_toolkit.data import dataset_options

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
VOCAB = CharVocabulary(LOWER + UPPER + " ")


def _decode_rows(vocab, ids):
    return [s.decode() for s in vocab.decode(ids).numpy()]


def _all_windows(dataset, vocab):
    """Returns every (input + last target character) window as a string."""
    windows = []
    for inputs, targets in dataset:
        for x, y in zip(_decode_rows(vocab, inputs), _decode_rows(vocab, targets)):
            windows.append(x + y[-1])
    return windows


class CountingVocabulary:
    """Wraps a vocabulary and counts `encode` calls."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.encode_calls = 0

    def encode(self, strings):
        self.encode_calls += 1
        return self.vocab.encode(strings)


# --- char_windows -------------------------------------------------------------------


def test_windows_have_static_shape_int32_and_shifted_targets():
    text = (LOWER * 10)[:250]
    dataset = char_windows(text, VOCAB, sequence_length=7, batch_size=4, seed=1)
    assert dataset.element_spec[0].shape.as_list() == [4, 7]
    for inputs, targets in dataset:
        assert inputs.dtype == tf.int32 and targets.dtype == tf.int32
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])


def test_windows_are_non_overlapping_chunks_within_each_piece():
    pieces = [LOWER[:23], UPPER[:17]]  # windows of 5: 4 from the first, 3 from the second
    dataset = char_windows(pieces, VOCAB, sequence_length=4, batch_size=1, shuffle=False)
    assert _all_windows(dataset, VOCAB) == [
        "abcde", "fghij", "klmno", "pqrst", "ABCDE", "FGHIJ", "KLMNO",
    ]


def test_text_is_encoded_once_for_all_pieces():
    counting = CountingVocabulary(VOCAB)
    char_windows([LOWER, UPPER, LOWER], counting, sequence_length=4, batch_size=2)
    consecutive_char_batches([LOWER, UPPER], counting, sequence_length=4, batch_size=2)
    assert counting.encode_calls == 2


def test_shuffle_is_seeded_and_keeps_every_window():
    text = LOWER * 8
    ordered = _all_windows(
        char_windows(text, VOCAB, sequence_length=3, batch_size=2, shuffle=False), VOCAB
    )
    first = _all_windows(char_windows(text, VOCAB, sequence_length=3, batch_size=2, seed=7), VOCAB)
    again = _all_windows(char_windows(text, VOCAB, sequence_length=3, batch_size=2, seed=7), VOCAB)
    assert first == again
    assert first != ordered
    assert sorted(first) == sorted(ordered)


def test_cardinality_is_known_with_and_without_remainder():
    text = LOWER[:25]  # 6 windows of 4
    dropped = char_windows(text, VOCAB, sequence_length=3, batch_size=4)
    kept = char_windows(text, VOCAB, sequence_length=3, batch_size=4, drop_remainder=False)
    assert int(dropped.cardinality()) == 1 == len(list(dropped))
    assert int(kept.cardinality()) == 2
    assert [int(x.shape[0]) for x, _ in kept] == [4, 2]


def test_pipelines_use_the_shared_options():
    windows = char_windows(LOWER * 4, VOCAB, sequence_length=3, batch_size=2)
    streams = consecutive_char_batches(LOWER * 4, VOCAB, sequence_length=3, batch_size=2)
    for dataset in (windows, streams):
        assert dataset.options().autotune.enabled is False
        assert dataset.options().deterministic is True
    assert pipeline_options().autotune.enabled is False


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"sequence_length": 0}, ValueError, "`sequence_length`"),
        ({"sequence_length": 2.5}, ValueError, "`sequence_length`"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"batch_size": True}, ValueError, "`batch_size`"),
        ({"texts": 123}, TypeError, "`texts`"),
        ({"texts": ["fine", b"bytes"]}, TypeError, "`texts`"),
        ({"texts": ""}, ValueError, "`texts`"),
        ({"texts": ["", ""]}, ValueError, "`texts`"),
        ({"texts": "abc"}, ValueError, "`batch_size`"),
        ({"vocabulary": {"a": 2}}, TypeError, "`vocabulary`"),
    ],
)
@pytest.mark.parametrize("builder", [char_windows, consecutive_char_batches])
def test_bad_arguments_name_the_argument(builder, kwargs, error, argument):
    arguments = {"texts": LOWER * 4, "vocabulary": VOCAB, "sequence_length": 3, "batch_size": 2}
    arguments.update(kwargs)
    texts, vocabulary = arguments.pop("texts"), arguments.pop("vocabulary")
    with pytest.raises(error, match=argument):
        builder(texts, vocabulary, **arguments)


# --- consecutive_char_batches -------------------------------------------------------


def test_consecutive_batches_continue_each_row():
    text = (LOWER + UPPER) * 3  # 156 characters
    batch_size, length = 3, 5
    dataset = consecutive_char_batches(text, VOCAB, sequence_length=length, batch_size=batch_size)
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    stream_length = len(text) // batch_size  # 52
    assert len(batches) == int(dataset.cardinality()) == (stream_length - 1) // length  # 10

    for i in range(len(batches) - 1):
        inputs, targets = batches[i]
        next_inputs, _ = batches[i + 1]
        # Row b of batch i+1 starts where row b of batch i ended ...
        np.testing.assert_array_equal(next_inputs[:, 0], targets[:, -1])
    for b in range(batch_size):
        # ... and concatenating a row over batches gives back stream b of the text.
        row_text = "".join(_decode_rows(VOCAB, np.stack([x[b] for x, _ in batches])))
        assert row_text == text[b * stream_length : b * stream_length + len(batches) * length]
        target_text = "".join(_decode_rows(VOCAB, np.stack([y[b] for _, y in batches])))
        assert target_text == text[b * stream_length + 1 : b * stream_length + 1 + len(batches) * length]


def test_consecutive_batches_have_a_fixed_batch_size():
    dataset = consecutive_char_batches(LOWER * 5, VOCAB, sequence_length=4, batch_size=3)
    assert dataset.element_spec[0].shape.as_list() == [3, 4]
    assert {tuple(x.shape) for x, _ in dataset} == {(3, 4)}


# --- with Keras ---------------------------------------------------------------------


def test_fit_on_char_windows_and_stateful_fit_on_consecutive_batches():
    text = (LOWER + " ") * 12
    vocab = CharVocabulary.from_text(text)

    windows = char_windows(text, vocab, sequence_length=8, batch_size=4, seed=0)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab.size, 4),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.Dense(vocab.size),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(windows, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])

    streams = consecutive_char_batches(text, vocab, sequence_length=8, batch_size=2)
    stateful = keras.Sequential(
        [
            keras.Input((8,), batch_size=2, dtype="int32"),
            keras.layers.Embedding(vocab.size, 4),
            keras.layers.GRU(4, return_sequences=True, stateful=True),
            keras.layers.Dense(vocab.size),
        ]
    )
    stateful.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = stateful.fit(streams, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_autotune_flag_restores_tf_data_defaults():
    dataset = char_windows(LOWER * 4, VOCAB, sequence_length=3, batch_size=2, autotune=True)
    assert dataset.options().autotune.enabled is not False
    assert dataset_options.PREFETCH_BUFFER_SIZE >= 1

