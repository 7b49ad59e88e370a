"""tf.data pipelines of character windows for language-model training.

Two ways to feed a character-level RNN:

* `char_windows`: independent, shuffled windows. Each training example is a
  window of `sequence_length + 1` characters; the model reads the first
  `sequence_length` and predicts the last `sequence_length`. The RNN state
  starts from zero for every window. This is the usual way and the default.
* `consecutive_char_batches`: truncated backpropagation through time with a
  carried hidden state. Row `b` of every batch continues the text exactly
  where row `b` of the previous batch stopped, so a stateful RNN can carry
  its state from batch to batch and learn dependencies longer than one
  window.

Text is encoded once per piece with the vocabulary (in TensorFlow, not per
window in Python); windows are then cut from the id arrays with slicing.
"""

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import dataset_options


def _as_pieces(texts):
    """Returns `texts` as a list of non-empty strings, or raises."""
    if isinstance(texts, str):
        texts = [texts]
    elif not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"`texts` must be a string or a list of strings, got {type(texts).__name__}."
        )
    for piece in texts:
        if not isinstance(piece, str):
            raise TypeError(
                f"`texts` must contain only strings, found {type(piece).__name__}."
            )
    pieces = [piece for piece in texts if piece]
    if not pieces:
        raise ValueError("`texts` is empty: there is no character to make windows from.")
    return pieces


def _encode_pieces(pieces, vocabulary):
    """Encodes each piece once with the vocabulary; returns int32 arrays."""
    if not callable(getattr(vocabulary, "encode", None)):
        raise TypeError(
            f"`vocabulary` must have an `encode` method (e.g. a CharVocabulary), "
            f"got {type(vocabulary).__name__}."
        )
    # One vectorised call over all pieces: a [pieces, None] ragged tensor.
    ids = vocabulary.encode(tf.constant(pieces, dtype=tf.string))
    return [np.asarray(row, dtype=np.int32) for row in ids.numpy()]


def _split_input_target(window):
    return window[..., :-1], window[..., 1:]


def char_windows(
    texts,
    vocabulary,
    *,
    sequence_length=100,
    batch_size=64,
    shuffle=True,
    seed=None,
    drop_remainder=True,
    autotune=False,
):
    """Builds a dataset of shuffled, non-overlapping character windows.

    Each piece of `texts` is encoded once and cut into consecutive,
    non-overlapping chunks of `sequence_length + 1` ids (a piece's last,
    shorter chunk is dropped). A window never spans two pieces, so the pieces
    returned by `split_text` keep training and validation apart. The windows
    are shuffled with a buffer holding all of them (a full shuffle), reshuffled
    every epoch.

    Args:
        texts: A string or a list of strings (separate pieces).
        vocabulary: A `CharVocabulary` (anything with a compatible `encode`).
        sequence_length: Characters the model reads per example.
        batch_size: Windows per batch.
        shuffle: Whether to shuffle the windows (turn off for evaluation if
            order matters).
        seed: Optional shuffle seed, for reproducible batches.
        drop_remainder: Drop the last incomplete batch, so every batch has
            the static shape `[batch_size, sequence_length]`.
        autotune: Use tf.data's autotuning defaults instead of
            `rnn_toolkit.data.pipeline_options()`; only for comparisons.

    Returns:
        A `tf.data.Dataset` of `(inputs, targets)`, both int32
        `[batch_size, sequence_length]`, where `targets` is `inputs` shifted
        left by one character. Its cardinality is known.

    Raises:
        TypeError: If `texts` is not a string or list of strings, or
            `vocabulary` has no `encode`.
        ValueError: If `texts` is empty, `sequence_length` or `batch_size`
            is not a positive integer, or the text yields no batch.

    Example:

    >>> import rnn_toolkit.data
    >>> vocab = rnn_toolkit.data.CharVocabulary("abcd")
    >>> ds = rnn_toolkit.data.char_windows(
    ...     "abcdabcdabcd", vocab, sequence_length=3, batch_size=2, shuffle=False)
    >>> inputs, targets = next(iter(ds))
    >>> vocab.decode(inputs).numpy().tolist(), vocab.decode(targets).numpy().tolist()
    ([b'abc', b'abc'], [b'bcd', b'bcd'])
    """
    sequence_length = check_positive_int("sequence_length", sequence_length)
    batch_size = check_positive_int("batch_size", batch_size)
    pieces = _as_pieces(texts)
    window_length = sequence_length + 1

    windows = []
    for ids in _encode_pieces(pieces, vocabulary):
        count = len(ids) // window_length
        if count:
            windows.append(ids[: count * window_length].reshape(count, window_length))
    num_windows = sum(len(w) for w in windows)
    num_batches = num_windows // batch_size if drop_remainder else -(-num_windows // batch_size)
    if num_batches == 0:
        raise ValueError(
            f"`texts` gives {num_windows} windows of `sequence_length`+1 = {window_length} "
            f"characters, fewer than one batch of `batch_size` = {batch_size}."
        )
    windows = np.concatenate(windows)

    dataset = tf.data.Dataset.from_tensor_slices(windows)
    if shuffle:
        dataset = dataset.shuffle(num_windows, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    # Slicing a batch is far cheaper than a training step: one thread is plenty.
    dataset = dataset.map(
        _split_input_target, num_parallel_calls=tf.data.AUTOTUNE if autotune else None
    )
    return dataset_options.finish_pipeline(dataset, autotune=autotune)


def consecutive_char_batches(
    texts, vocabulary, *, sequence_length=100, batch_size=64, autotune=False
):
    """Builds batches for truncated BPTT with a hidden state carried over.

    The pieces of `texts` are encoded and concatenated into one id stream,
    which is cut into `batch_size` equal, contiguous streams (the tail that
    does not divide evenly is dropped). Batch `i`, row `b` is chunk `i` of
    stream `b`:

        stream b:  [ chunk 0 | chunk 1 | chunk 2 | ... ]
        batch 0 = chunk 0 of every stream, batch 1 = chunk 1, ...

    so row `b` of batch `i + 1` starts exactly where row `b` of batch `i`
    ended. Train a stateful RNN on it (state kept across batches, reset at
    the start of each epoch) and do not shuffle. The batch size is fixed:
    there is no partial last batch, as a stateful RNN needs a fixed one.

    Args:
        texts: A string or a list of strings (concatenated in order).
        vocabulary: A `CharVocabulary` (anything with a compatible `encode`).
        sequence_length: Characters per row per batch (the truncation length
            of backpropagation through time).
        batch_size: Number of parallel streams.
        autotune: Use tf.data's autotuning defaults instead of
            `rnn_toolkit.data.pipeline_options()`; only for comparisons.

    Returns:
        A `tf.data.Dataset` of `(inputs, targets)`, both int32
        `[batch_size, sequence_length]`; `targets` is `inputs` shifted left
        by one character within the stream (the last target of a row is the
        first input of the same row in the next batch). Its cardinality is
        known.

    Raises:
        TypeError: If `texts` or `vocabulary` has the wrong type.
        ValueError: If `texts` is empty, `sequence_length` or `batch_size`
            is not a positive integer, or the text is too short for one
            batch.

    Example:

    >>> import rnn_toolkit.data
    >>> vocab = rnn_toolkit.data.CharVocabulary("abcdefgh")
    >>> ds = rnn_toolkit.data.consecutive_char_batches(
    ...     "abcdefgh", vocab, sequence_length=1, batch_size=2)
    >>> [vocab.decode(x).numpy().tolist() for x, _ in ds]
    [[b'a', b'e'], [b'b', b'f'], [b'c', b'g']]
    """
    sequence_length = check_positive_int("sequence_length", sequence_length)
    batch_size = check_positive_int("batch_size", batch_size)
    pieces = _as_pieces(texts)

    stream = np.concatenate(_encode_pieces(pieces, vocabulary))
    stream_length = len(stream) // batch_size
    # Every input chunk needs one more id after it for its last target.
    num_batches = (stream_length - 1) // sequence_length if stream_length else 0
    if num_batches < 1:
        raise ValueError(
            f"`texts` has {len(stream)} characters: too few for `batch_size` = {batch_size} "
            f"streams of at least `sequence_length`+1 = {sequence_length + 1} characters."
        )
    streams = stream[: batch_size * stream_length].reshape(batch_size, stream_length)
    used = num_batches * sequence_length
    # [batch, num_batches, time] -> [num_batches, batch, time]: element i is batch i.
    inputs = streams[:, :used].reshape(batch_size, num_batches, sequence_length)
    targets = streams[:, 1 : used + 1].reshape(batch_size, num_batches, sequence_length)
    dataset = tf.data.Dataset.from_tensor_slices(
        (inputs.transpose(1, 0, 2), targets.transpose(1, 0, 2))
    )
    return dataset_options.finish_pipeline(dataset, autotune=autotune)
