"""Batches of variable-length texts for many-to-one models, bucketed by length.

A batch is padded to its longest text, and a recurrent layer spends as much time on a
padded step as on a real one. Review lengths vary a lot (Rotten Tomatoes sentences: 1 to
~60 words), so batches of random texts are mostly padding. Grouping texts of similar length
into the same batch removes most of it; see
`padding_share` and `benchmarks/sentiment_bucketing.py` for the measured effect.

Every batch is right-padded with id 0 and every row holds at least one real token (the
vocabulary guarantees it), which is exactly what the cuDNN kernels need from a mask.
"""

import math

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.dataset_options import finish_pipeline


def encode_texts(texts, vocabulary, *, batch_size=4096):
    """Word ids of `texts` as one int32 `tf.RaggedTensor` `[n, None]` (tokenized once).

    Args:
        texts: a list of strings.
        vocabulary: a `WordVocabulary` (anything with `encode(strings)` -> ragged ids).
        batch_size: texts tokenized per TensorFlow call.
    """
    texts = list(texts)
    if not texts:
        return tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    pieces = [
        vocabulary.encode(tf.constant(texts[start : start + batch_size], tf.string))
        for start in range(0, len(texts), batch_size)
    ]
    return tf.concat(pieces, axis=0)


def text_classification_batches(
    token_ids,
    targets,
    *,
    batch_size=32,
    bucketing=True,
    pool_batches=50,
    shuffle=True,
    seed=0,
):
    """A `tf.data` pipeline of `(ids [batch, time], targets [batch])`, bucketed by length.

    Bucketing: the (shuffled) texts are taken in pools of `pool_batches * batch_size`;
    each pool is sorted by length and cut into batches, and the batches are shuffled
    again. Texts in a batch then have nearly the same length while every epoch still sees
    new batch compositions in a new order. Unlike `bucket_by_sequence_length`, the number
    of batches per epoch is known in advance, so Keras shows a real progress bar and no
    "ran out of data" warning.

    Args:
        token_ids: an int `tf.RaggedTensor` `[n, None]` (from `encode_texts`), every row
            non-empty.
        targets: `[n]` class ids (int) or scores (float).
        batch_size: texts per batch.
        bucketing: sort each pool by length (True), or batch texts in random order,
            each batch padded to its longest text (False).
        pool_batches: batches per sorted pool; larger pools pad less but mix lengths
            across batches less.
        shuffle: shuffle the texts and batches (anew every epoch, from `seed`).
        seed: the shuffling seed.

    Returns:
        A prefetched `tf.data.Dataset` with known cardinality; ids are right-padded with 0.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    pool_batches = check_positive_int("pool_batches", pool_batches)
    if not isinstance(token_ids, tf.RaggedTensor):
        raise TypeError(
            f"`token_ids` must be a tf.RaggedTensor of word ids (see encode_texts); got "
            f"{type(token_ids).__name__}."
        )
    targets = np.asarray(targets)
    count = int(token_ids.nrows())
    if len(targets) != count:
        raise ValueError(f"`targets` must have one entry per text: {len(targets)} for {count} texts.")
    if count and int(tf.reduce_min(token_ids.row_lengths())) == 0:
        raise ValueError(
            "`token_ids` has an empty row; every text needs at least one token (an all-padding "
            "row breaks the cuDNN kernels' masks). WordVocabulary.encode guarantees this."
        )
    lengths = tf.cast(token_ids.row_lengths(), tf.int32)
    targets = tf.constant(targets)

    indices = tf.data.Dataset.range(count)
    if shuffle and count:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if bucketing:
        pool_size = pool_batches * batch_size

        def sorted_batches(pool):
            order = tf.argsort(tf.gather(lengths, pool), stable=True)
            return tf.data.Dataset.from_tensor_slices(tf.gather(pool, order)).batch(batch_size)

        batches = indices.batch(pool_size).flat_map(sorted_batches)
        full_pools, rest = divmod(count, pool_size)
        cardinality = full_pools * pool_batches + math.ceil(rest / batch_size)
        batches = batches.apply(tf.data.experimental.assert_cardinality(cardinality))
        if shuffle:
            batches = batches.shuffle(2 * pool_batches, seed=seed + 1, reshuffle_each_iteration=True)
    else:
        batches = indices.batch(batch_size)

    def gather(batch):
        ids = tf.gather(token_ids, batch).to_tensor(0)
        return ids, tf.gather(targets, batch)

    return finish_pipeline(batches.map(gather))


def padding_share(dataset):
    """The share of padded positions (id 0) in one pass over a `(ids, targets)` dataset."""
    padded = total = 0
    for ids, _ in dataset:
        ids = ids.numpy()
        padded += int((ids == 0).sum())
        total += ids.size
    return padded / total if total else 0.0
