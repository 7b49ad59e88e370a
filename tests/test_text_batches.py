"""Tests for rnn_toolkit.data.text_batches: encoding texts and length-bucketed batches."""

import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import (
    WordVocabulary,
    encode_texts,
    padding_share,
    text_classification_batches,
)


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
