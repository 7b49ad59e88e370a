"""Attention of a decoder over the encoder's outputs (the source sentence).

At each target position the decoder's state (the query) scores every source position,
the scores become weights with a masked softmax, and the context vector is the weighted
sum of the encoder outputs. Two scores from the literature:

* `"additive"` (Bahdanau et al., 2015): `v . tanh(W_q q + W_k k)`, a small feed-forward
  network per (query, key) pair;
* `"multiplicative"` (Luong et al., 2015, "general"): `q . (W k)`, one bilinear form.

The key projection depends on the source only, so `project_keys` runs once per
sentence and the decoding loop reuses the result at every step.
"""

import keras
from keras import ops

from rnn_toolkit.arguments import check_positive_int

ATTENTION_SCORES = ("additive", "multiplicative")

# Masked positions get this score before the softmax: exp() of it is 0 in float32, and
# (unlike -inf) a row with every position masked gives uniform weights, not NaN.
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class SourceAttention(keras.layers.Layer):
    """Scores source positions for each query and returns `(context, weights)`.

    Args:
        score: `"additive"` (Bahdanau) or `"multiplicative"` (Luong's general score).
        units: the additive score's hidden size; the multiplicative score projects the
            keys to the query size instead and ignores it.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> attention = rnn_toolkit.layers.SourceAttention("additive", units=4)
    >>> memory = np.random.rand(2, 5, 6).astype("float32")   # [batch, source, features]
    >>> queries = np.random.rand(2, 3, 8).astype("float32")  # [batch, target, features]
    >>> keys = attention.project_keys(memory, query_size=8)
    >>> context, weights = attention(queries, keys, memory)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(self, score="additive", units=128, **kwargs):
        super().__init__(**kwargs)
        if score not in ATTENTION_SCORES:
            raise ValueError(f"`score` must be one of {ATTENTION_SCORES}; received score={score!r}.")
        # === Config ===
        self.score = score
        self.units = check_positive_int("units", units)
        # Queries may carry Keras' target-padding mask; the outputs need none (the
        # loss masks padding itself), and the source mask is an explicit argument.
        self.supports_masking = True
        self.key_layer = None
        self.query_layer = None
        self.energy_layer = None

    def build(self, query_size, memory_size):
        """Creates the weights for queries of `query_size` and memory of `memory_size` features."""
        # === Layers ===
        if self.score == "additive":
            self.key_layer = keras.layers.Dense(
                self.units, use_bias=False, name="key", dtype=self.dtype_policy
            )
            self.query_layer = keras.layers.Dense(
                self.units, use_bias=True, name="query", dtype=self.dtype_policy
            )
            self.energy_layer = keras.layers.Dense(
                1, use_bias=False, name="energy", dtype=self.dtype_policy
            )
            self.key_layer.build((None, None, memory_size))
            self.query_layer.build((None, None, query_size))
            self.energy_layer.build((None, None, None, self.units))
        else:
            self.key_layer = keras.layers.Dense(
                query_size, use_bias=False, name="key", dtype=self.dtype_policy
            )
            self.key_layer.build((None, None, memory_size))
        self.built = True

    def project_keys(self, memory, query_size=None):
        """The keys of `memory` `[batch, source, features]`, computed once per sentence."""
        if not self.built:
            if query_size is None:
                raise ValueError("`query_size` is needed the first time `project_keys` runs.")
            self.build(query_size, memory.shape[-1])
        return self.key_layer(memory)

    def call(self, queries, keys, values, source_mask=None):
        """Attends from `queries` over the source.

        Args:
            queries: `[batch, target, query_size]`, or `[batch, query_size]` for one step.
            keys: `project_keys(memory)`, `[batch, source, key_size]`.
            values: the memory itself, `[batch, source, features]`.
            source_mask: optional bool `[batch, source]`, False at source padding.

        Returns:
            `(context, weights)`: `[batch, target, features]` and float32
            `[batch, target, source]` (without the target axis for a single-step query).
        """
        single_step = len(queries.shape) == 2
        if single_step:
            queries = ops.expand_dims(queries, 1)
        if self.score == "additive":
            hidden = ops.tanh(
                ops.expand_dims(self.query_layer(queries), 2) + ops.expand_dims(keys, 1)
            )
            scores = ops.squeeze(self.energy_layer(hidden), -1)
        else:
            scores = ops.matmul(queries, ops.transpose(keys, (0, 2, 1)))
        # The softmax runs in float32 even under mixed precision: the masked score
        # does not fit in float16, and small weights matter over long sentences.
        scores = ops.cast(scores, "float32")
        if source_mask is not None:
            scores = ops.where(ops.expand_dims(source_mask, 1), scores, _MASKED_SCORE)
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(ops.cast(weights, values.dtype), values)
        if single_step:
            return context[:, 0], weights[:, 0]
        return context, weights

    def compute_mask(self, queries, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(score=self.score, units=self.units)
        return config
