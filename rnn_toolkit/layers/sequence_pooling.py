"""Turning a sequence of hidden states into one vector, respecting the padding mask.

The lecture's many-to-one model decides from the final hidden state alone. Pooling over
all time steps is the usual alternative: the mean or the maximum of the states, or an
attention-weighted average whose weights the model learns (Yang et al. 2016,
"Hierarchical Attention Networks"), which also shows which words the decision rested on.
"""

import keras
from keras import ops

POOLING_METHODS = ("mean", "max", "attention")


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class SequencePooling(keras.layers.Layer):
    """Pools `[batch, time, features]` to `[batch, features]` over the unmasked steps.

    Args:
        method: `"mean"`, `"max"` or `"attention"` (a learned score per step, softmax over
            the valid steps, weighted sum of the states).
        attention_units: size of the attention scorer's hidden layer.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> pool = rnn_toolkit.layers.SequencePooling("mean")
    >>> states = np.array([[[1.0], [3.0], [100.0]]])
    >>> mask = np.array([[True, True, False]])
    >>> pool(states, mask=mask).numpy().tolist()
    [[2.0]]
    """

    def __init__(self, method="mean", attention_units=64, **kwargs):
        super().__init__(**kwargs)
        if method not in POOLING_METHODS:
            raise ValueError(
                f"`method` must be one of {POOLING_METHODS}; received method={method!r}."
            )
        self.method = method
        self.attention_units = int(attention_units)
        self.supports_masking = True
        if method == "attention":
            # === Layers ===
            self.scorer_hidden = keras.layers.Dense(
                self.attention_units, activation="tanh", name="scorer_hidden", dtype=self.dtype_policy
            )
            self.scorer = keras.layers.Dense(1, use_bias=False, name="scorer", dtype=self.dtype_policy)

    def build(self, input_shape):
        if self.method == "attention":
            self.scorer_hidden.build(input_shape)
            self.scorer.build(tuple(input_shape[:-1]) + (self.attention_units,))
        self.built = True

    def call(self, inputs, mask=None, return_weights=False):
        """Pools `inputs`; with `return_weights`, also returns the attention weights `[batch, time]`."""
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.cast(mask, inputs.dtype)[:, :, None]
        weights = None
        if self.method == "mean":
            pooled = ops.sum(inputs * valid, axis=1) / ops.maximum(ops.sum(valid, axis=1), 1.0)
        elif self.method == "max":
            lowest = ops.cast(-1e4, inputs.dtype)
            pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)
        else:
            scores = ops.cast(self.scorer(self.scorer_hidden(inputs))[:, :, 0], "float32")
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
            weights = ops.softmax(scores, axis=-1)
            pooled = ops.sum(inputs * ops.cast(weights, inputs.dtype)[:, :, None], axis=1)
        if return_weights:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(method=self.method, attention_units=self.attention_units)
        return config
