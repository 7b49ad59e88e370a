"""Word dropout: during training, replace random words by the unknown word.

A vocabulary built on the training texts knows every training word, so without this the
unknown id never occurs in training and its embedding stays random, while held-out text
is full of words the vocabulary lacks. Replacing a share of words with the unknown id
teaches the model both what "some word I don't know" means and not to lean on any single
word (Iyyer et al. 2015; Dai & Le 2015).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class WordDropout(keras.layers.Layer):
    """Replaces each non-padding word id by `unknown_id` with probability `rate` (training only).

    Args:
        rate: the share of words replaced, in [0, 1).
        unknown_id: the id that replaces them.
        padding_id: the id that is never touched.
        seed: optional seed of the random draws.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import rnn_toolkit
    >>> dropout = rnn_toolkit.layers.WordDropout(0.5)
    >>> import numpy as np
    >>> dropout(np.array([[5, 6, 0]]), training=False).numpy().tolist()
    [[5, 6, 0]]
    """

    def __init__(self, rate, unknown_id=1, padding_id=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"`rate` must be in [0, 1); received rate={rate!r}.")
        self.rate = float(rate)
        self.unknown_id = int(unknown_id)
        self.padding_id = int(padding_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, token_ids, training=None):
        if not training or self.rate == 0.0:
            return token_ids
        draws = keras.random.uniform(tf.shape(token_ids), seed=self.seed_generator)
        replace = tf.logical_and(draws < self.rate, tf.not_equal(token_ids, self.padding_id))
        return tf.where(replace, tf.cast(self.unknown_id, token_ids.dtype), token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            rate=self.rate, unknown_id=self.unknown_id, padding_id=self.padding_id, seed=self.seed
        )
        return config
