"""A bag-of-words layer: word ids in, one row of word indicators per text out.

It is the baseline's whole input representation: it forgets word order, which is exactly
what a recurrent model is supposed to exploit, so a linear model on it measures what the
recurrence buys on the same vocabulary and split.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class BagOfWords(keras.layers.Layer):
    """Maps right-padded word ids `[batch, time]` to float `[batch, vocabulary_size]`.

    Each column says whether (`"binary"`) or how often (`"count"`) a word occurs; the
    padding id 0 is never counted.

    Args:
        vocabulary_size: number of ids (including padding and unknown).
        mode: `"binary"` or `"count"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> bag = rnn_toolkit.layers.BagOfWords(5)
    >>> bag(np.array([[2, 2, 4, 0]])).numpy().tolist()
    [[0.0, 0.0, 1.0, 0.0, 1.0]]
    """

    def __init__(self, vocabulary_size, mode="binary", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("binary", "count"):
            raise ValueError(f"`mode` must be 'binary' or 'count'; received mode={mode!r}.")
        self.vocabulary_size = int(vocabulary_size)
        self.mode = mode
        self.built = True

    def call(self, token_ids):
        token_ids = tf.cast(token_ids, tf.int32)
        counts = tf.math.bincount(
            token_ids,
            minlength=self.vocabulary_size,
            maxlength=self.vocabulary_size,
            binary_output=self.mode == "binary",
            axis=-1,
            dtype=tf.float32,
        )
        not_padding = tf.concat([[0.0], tf.ones([self.vocabulary_size - 1])], axis=0)
        return tf.cast(counts * not_padding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary_size=self.vocabulary_size, mode=self.mode)
        return config
