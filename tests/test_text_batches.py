"""Tests for rnn_toolkit.data.text_batches: encoding texts and length-bucketed batches."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import (
    WordVocabulary,
    encode_texts,
    padding_share,
    text_classification_batches,
    translation_batches,
)

# The module, not the `rnn` function that keras.src.backend.tensorflow also exports.
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


def _ragged(lengths):
    """Row i holds `lengths[i]` copies of id i + 1: a row's content names its example."""
    return tf.ragged.constant([[i + 1] * n for i, n in enumerate(lengths)], dtype=tf.int32)


# Lengths from 1 to 40 in a fixed shuffled order: widely varying.
LENGTHS = np.random.default_rng(0).permutation(np.arange(1, 41).repeat(3)).tolist()


def _epoch(dataset):
    return [(ids.numpy(), targets.numpy()) for ids, targets in dataset]


def _order(dataset):
    return [int(t) for _, targets in _epoch(dataset) for t in targets]


def test_encode_texts_matches_one_call_and_handles_no_texts():
    vocab = WordVocabulary(["a", "b"], max_length=3)
    texts = ["a b", "", "b b b b", "c"]
    ids = encode_texts(texts, vocab, batch_size=3)
    assert ids.dtype == tf.int32
    assert ids.to_list() == vocab.encode(texts).to_list() == [[2, 3], [1], [3, 3, 3], [1]]
    none = encode_texts([], vocab)
    assert isinstance(none, tf.RaggedTensor) and int(none.nrows()) == 0


@pytest.mark.parametrize("bucketing", [True, False])
def test_every_example_once_right_padded_with_known_cardinality(bucketing):
    token_ids = _ragged(LENGTHS)
    dataset = text_classification_batches(
        token_ids, np.arange(len(LENGTHS)), batch_size=7, pool_batches=3, bucketing=bucketing
    )
    batches = _epoch(dataset)
    assert int(dataset.cardinality()) == len(batches) == -(-len(LENGTHS) // 7)
    seen = np.concatenate([targets for _, targets in batches])
    assert sorted(seen.tolist()) == list(range(len(LENGTHS)))
    for ids, targets in batches:
        assert ids.dtype == np.int32 and ids.shape[1] == max(LENGTHS[t] for t in targets)
        for row, target in zip(ids, targets):
            length = LENGTHS[target]
            assert row[:length].tolist() == [target + 1] * length
            assert not row[length:].any()  # right padding, id 0
            assert row[0] != 0  # never an all-padding row


def test_bucketing_pads_far_less():
    token_ids = _ragged(LENGTHS)
    targets = np.zeros(len(LENGTHS), np.int64)
    bucketed = padding_share(text_classification_batches(token_ids, targets, batch_size=8))
    unsorted = padding_share(
        text_classification_batches(token_ids, targets, batch_size=8, bucketing=False)
    )
    assert unsorted > 0.3
    assert bucketed < unsorted / 4


def test_same_seed_same_batches_and_new_order_each_epoch():
    token_ids = _ragged(LENGTHS)
    targets = np.arange(len(LENGTHS))

    def make(seed):
        return text_classification_batches(
            token_ids, targets, batch_size=5, pool_batches=4, seed=seed
        )

    first = make(0)
    epoch_1, epoch_2 = _order(first), _order(first)
    assert _order(make(0)) == epoch_1
    assert epoch_2 != epoch_1 and sorted(epoch_2) == sorted(epoch_1)
    assert _order(make(1)) != epoch_1


def test_no_shuffle_keeps_order_within_pools_sorted_by_length():
    lengths = [3, 1, 2, 5, 4]
    dataset = text_classification_batches(
        _ragged(lengths), np.arange(5), batch_size=2, pool_batches=1, shuffle=False
    )
    # Pools of 2 in input order, each sorted by length.
    assert [t.tolist() for _, t in _epoch(dataset)] == [[1, 0], [2, 3], [4]]
    plain = text_classification_batches(
        _ragged(lengths), np.arange(5), batch_size=2, bucketing=False, shuffle=False
    )
    assert _order(plain) == [0, 1, 2, 3, 4]


def test_float_targets_pass_through():
    dataset = text_classification_batches(
        _ragged([1, 2]), np.array([0.5, -1.5], np.float32), batch_size=2, shuffle=False
    )
    ((_, targets),) = _epoch(dataset)
    assert targets.dtype == np.float32 and sorted(targets.tolist()) == [-1.5, 0.5]


def test_errors():
    with pytest.raises(ValueError, match="empty row"):
        text_classification_batches(tf.ragged.constant([[1], []], dtype=tf.int32), [0, 1])
    with pytest.raises(ValueError, match="`targets`"):
        text_classification_batches(_ragged([1, 2]), [0, 1, 1])
    with pytest.raises(TypeError, match="`token_ids`"):
        text_classification_batches(np.ones((2, 3), np.int32), [0, 1])
    with pytest.raises(ValueError, match="`batch_size`"):
        text_classification_batches(_ragged([1, 2]), [0, 1], batch_size=0)


def test_padding_share():
    ids = tf.constant([[1, 2, 0, 0], [3, 0, 0, 0]])
    dataset = tf.data.Dataset.from_tensors((ids, tf.constant([0, 1])))
    assert padding_share(dataset) == 5 / 8
    assert padding_share(dataset.take(0)) == 0.0


# --- Translation batches (teacher forcing) -----------------------------------------------

START, END = 2, 3


def _pairs(source_lengths, target_lengths):
    """Source row i holds id 10 + i, target row i id 100 + i: rows name their pair."""
    source = tf.ragged.constant([[10 + i] * n for i, n in enumerate(source_lengths)], dtype=tf.int32)
    target = tf.ragged.constant([[100 + i] * n for i, n in enumerate(target_lengths)], dtype=tf.int32)
    return source, target


def _translation_epoch(dataset):
    return [(s.numpy(), i.numpy(), t.numpy()) for (s, i), t in dataset]


@pytest.mark.parametrize("bucketing", [True, False])
def test_translation_batches_shift_the_target_for_teacher_forcing(bucketing):
    source_lengths = LENGTHS[:30]
    target_lengths = [(n * 7) % 11 for n in source_lengths]  # 0..10, an empty target included
    assert 0 in target_lengths
    dataset = translation_batches(
        *_pairs(source_lengths, target_lengths), start_id=START, end_id=END, batch_size=4,
        pool_batches=2, bucketing=bucketing,
    )
    batches = _translation_epoch(dataset)
    assert int(dataset.cardinality()) == len(batches) == 8
    seen = []
    for source, decoder_input, decoder_target in batches:
        assert source.dtype == decoder_input.dtype == decoder_target.dtype == np.int32
        assert decoder_input.shape == decoder_target.shape
        assert decoder_input.shape[1] == max(target_lengths[s[0] - 10] for s in source) + 1
        for source_row, input_row, target_row in zip(source, decoder_input, decoder_target):
            pair = int(source_row[0]) - 10
            seen.append(pair)
            n, m = source_lengths[pair], target_lengths[pair]
            assert source_row[:n].tolist() == [10 + pair] * n and not source_row[n:].any()
            words = [100 + pair] * m
            assert input_row[: m + 1].tolist() == [START] + words and not input_row[m + 1 :].any()
            assert target_row[: m + 1].tolist() == words + [END] and not target_row[m + 1 :].any()
    assert sorted(seen) == list(range(30))


def test_translation_masks_pass_the_cudnn_runtime_checks():
    # Both the source and the decoder input feed cuDNN-eligible layers: every mask must be
    # right-padded with a valid first step. Decoder input and target masks line up.
    dataset = translation_batches(
        *_pairs(LENGTHS, [n % 5 for n in LENGTHS]), start_id=START, end_id=END, batch_size=6
    )
    for (source, decoder_input), decoder_target in dataset:
        for ids in (source, decoder_input):
            mask = tf.not_equal(ids, 0)
            assert bool(keras_tf_rnn._is_sequence_right_padded(mask))
            assert not bool(keras_tf_rnn._has_fully_masked_sequence(mask))
        np.testing.assert_array_equal(decoder_input.numpy() != 0, decoder_target.numpy() != 0)


def test_translation_bucketing_pads_far_less():
    pairs = _pairs(LENGTHS, LENGTHS[::-1])
    kwargs = dict(start_id=START, end_id=END, batch_size=8)
    bucketed = padding_share(translation_batches(*pairs, **kwargs))
    unsorted = padding_share(translation_batches(*pairs, bucketing=False, **kwargs))
    assert unsorted > 0.3 and bucketed < unsorted / 4


def test_translation_batches_same_seed_same_batches():
    pairs = _pairs(LENGTHS, LENGTHS)

    def order(seed):
        dataset = translation_batches(*pairs, start_id=START, end_id=END, batch_size=5, seed=seed)
        return [int(s[0]) for (source, _), _ in dataset for s in source.numpy()]

    assert order(0) == order(0) and order(0) != order(1)


def test_translation_batches_accept_int64_ids_and_no_pairs():
    source = tf.ragged.constant([[5, 6]], dtype=tf.int64)
    target = tf.ragged.constant([[7]], dtype=tf.int64)
    ((s, i), t), = list(translation_batches(source, target, start_id=START, end_id=END, shuffle=False))
    assert s.dtype == i.dtype == t.dtype == tf.int32
    assert (i.numpy().tolist(), t.numpy().tolist()) == ([[START, 7]], [[7, END]])
    empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    none = translation_batches(empty, empty, start_id=START, end_id=END)
    assert int(none.cardinality()) == 0 and list(none) == []


def test_translation_batches_errors():
    source, target = _pairs([1, 2], [1, 2])
    with pytest.raises(ValueError, match="one row per pair"):
        translation_batches(source, target[:1], start_id=START, end_id=END)
    with pytest.raises(TypeError, match="`source_ids`"):
        translation_batches(np.ones((2, 3), np.int32), target, start_id=START, end_id=END)
    with pytest.raises(TypeError, match="`target_ids`"):
        translation_batches(source, np.ones((2, 3), np.int32), start_id=START, end_id=END)
    with pytest.raises(ValueError, match="empty row"):
        translation_batches(*_pairs([1, 0], [1, 1]), start_id=START, end_id=END)
    with pytest.raises(ValueError, match="`batch_size`"):
        translation_batches(source, target, start_id=START, end_id=END, batch_size=0)
    # An empty target is fine: the decoder then learns to stop at once.
    ((_, decoder_input), decoder_target), = list(
        translation_batches(*_pairs([1], [0]), start_id=START, end_id=END)
    )
    assert (decoder_input.numpy().tolist(), decoder_target.numpy().tolist()) == ([[START]], [[END]])
