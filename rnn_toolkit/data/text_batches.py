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
    targets = tf.constant(targets)
    batches = _index_batches(
        tf.cast(token_ids.row_lengths(), tf.int32),
        batch_size=batch_size,
        bucketing=bucketing,
        pool_batches=pool_batches,
        shuffle=shuffle,
        seed=seed,
    )

    def gather(batch):
        ids = tf.gather(token_ids, batch).to_tensor(0)
        return ids, tf.gather(targets, batch)

    return finish_pipeline(batches.map(gather))


def translation_batches(
    source_ids,
    target_ids,
    *,
    start_id,
    end_id,
    batch_size=64,
    bucketing=True,
    pool_batches=50,
    shuffle=True,
    seed=0,
):
    """Teacher-forcing batches for an encoder-decoder: `((source, decoder_input), target)`.

    The decoder reads the target shifted right: `decoder_input` is `[START] w1 ... wn`
    and it learns to predict `target` = `w1 ... wn [END]` at the same positions, so at
    every step it is fed the true previous word, not its own guess (teacher forcing).
    All three tensors are right-padded with 0, the source and decoder input rows each
    hold at least one real token, and pairs of similar length share a batch (bucketing
    by source length, then target length, as in `text_classification_batches`).

    Args:
        source_ids: int `tf.RaggedTensor` `[n, None]` (from `encode_texts`), no empty row.
        target_ids: int `tf.RaggedTensor` `[n, None]`, the target words without markers.
        start_id: the target vocabulary's `[START]` id.
        end_id: the target vocabulary's `[END]` id.
        batch_size: pairs per batch.
        bucketing: group pairs of similar length (True) or batch them in random order.
        pool_batches: batches per sorted pool.
        shuffle: shuffle pairs and batches anew every epoch.
        seed: the shuffling seed.

    Returns:
        A prefetched `tf.data.Dataset` of `((int32 [batch, S], int32 [batch, T + 1]),
        int32 [batch, T + 1])` with known cardinality.

    Example:

    >>> import tensorflow as tf
    >>> import rnn_toolkit.data
    >>> source = tf.ragged.constant([[5, 6, 7], [5]])
    >>> target = tf.ragged.constant([[8, 9], [8]])
    >>> ds = rnn_toolkit.data.translation_batches(
    ...     source, target, start_id=2, end_id=3, batch_size=2, shuffle=False)
    >>> (source_batch, decoder_input), decoder_target = next(iter(ds))
    >>> decoder_input.numpy().tolist(), decoder_target.numpy().tolist()
    ([[2, 8, 0], [2, 8, 9]], [[8, 3, 0], [8, 9, 3]])
    """
    batch_size = check_positive_int("batch_size", batch_size)
    pool_batches = check_positive_int("pool_batches", pool_batches)
    for name, ids in (("source_ids", source_ids), ("target_ids", target_ids)):
        if not isinstance(ids, tf.RaggedTensor):
            raise TypeError(
                f"`{name}` must be a tf.RaggedTensor of word ids (see encode_texts); got "
                f"{type(ids).__name__}."
            )
    count = int(source_ids.nrows())
    if int(target_ids.nrows()) != count:
        raise ValueError(
            f"`source_ids` and `target_ids` must have one row per pair: {count} sources for "
            f"{int(target_ids.nrows())} targets."
        )
    if count and int(tf.reduce_min(source_ids.row_lengths())) == 0:
        raise ValueError(
            "`source_ids` has an empty row; every source needs at least one token (an "
            "all-padding row breaks the cuDNN kernels' masks)."
        )
    source_lengths = tf.cast(source_ids.row_lengths(), tf.int32)
    target_lengths = tf.cast(target_ids.row_lengths(), tf.int32)
    longest_target = tf.reduce_max(tf.concat([target_lengths, [0]], axis=0))
    batches = _index_batches(
        source_lengths * (longest_target + 1) + target_lengths,
        batch_size=batch_size,
        bucketing=bucketing,
        pool_batches=pool_batches,
        shuffle=shuffle,
        seed=seed,
    )
    source_ids = tf.cast(source_ids, tf.int32)
    target_ids = tf.cast(target_ids, tf.int32)

    def gather(batch):
        source = tf.gather(source_ids, batch).to_tensor(0)
        target = tf.gather(target_ids, batch)
        rows = tf.shape(batch)[:1]
        start = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([rows, [1]], 0), start_id))
        end = tf.RaggedTensor.from_tensor(tf.fill(tf.concat([rows, [1]], 0), end_id))
        decoder_input = tf.concat([start, target], axis=1).to_tensor(0)
        decoder_target = tf.concat([target, end], axis=1).to_tensor(0)
        return (source, decoder_input), decoder_target

    return finish_pipeline(batches.map(gather))


def _index_batches(sort_keys, *, batch_size, bucketing, pool_batches, shuffle, seed):
    """Batches of example indices; with `bucketing`, sorted pools keep similar keys together.

    The (shuffled) indices are taken in pools of `pool_batches * batch_size`; each pool is
    sorted by `sort_keys` and cut into batches, and the batches are shuffled again. The
    cardinality is set, so Keras knows the number of steps per epoch.
    """
    count = int(sort_keys.shape[0])
    indices = tf.data.Dataset.range(count)
    if shuffle and count:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if not bucketing:
        return indices.batch(batch_size)
    pool_size = pool_batches * batch_size

    def sorted_batches(pool):
        order = tf.argsort(tf.gather(sort_keys, pool), stable=True)
        return tf.data.Dataset.from_tensor_slices(tf.gather(pool, order)).batch(batch_size)

    batches = indices.batch(pool_size).flat_map(sorted_batches)
    full_pools, rest = divmod(count, pool_size)
    cardinality = full_pools * pool_batches + math.ceil(rest / batch_size)
    batches = batches.apply(tf.data.experimental.assert_cardinality(cardinality))
    if shuffle:
        batches = batches.shuffle(2 * pool_batches, seed=seed + 1, reshuffle_each_iteration=True)
    return batches


def padding_share(dataset):
    """The share of padded positions (id 0) in one pass over a `(ids, targets)` dataset.

    For translation batches `ids` is the source batch.
    """
    padded = total = 0
    for ids, _ in dataset:
        if isinstance(ids, tuple):
            ids = ids[0]
        ids = ids.numpy()
        padded += int((ids == 0).sum())
        total += ids.size
    return padded / total if total else 0.0
