"""Losses and metrics over padded sequences: every token counts once, padding never.

The translator, the captioner and the frame labeller all predict one class per time step
of right-padded sequences: word ids pad with 0 (`padding_id=0`, the default), frame labels,
whose class 0 is a real class, with -1 (`padding_id=-1`). Averaging over the batch's real
positions (not over rows, not over padded positions) keeps a batch of short sentences
and a batch of long ones on the same scale.

Example:

>>> import numpy as np
>>> from rnn_toolkit.training.sequence_losses import MaskedSequenceCrossentropy, TokenAccuracy
>>> targets = np.array([[2, 3, 0]])                  # the last position is padding
>>> logits = np.log(np.array([[[.1, .1, .7, .1], [.1, .1, .1, .7], [1., 0, 0, 0]]]))
>>> round(float(MaskedSequenceCrossentropy()(targets, logits)), 4)
0.3567
>>> metric = TokenAccuracy()
>>> metric.update_state(targets, logits)
>>> float(metric.result())
1.0
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class MaskedSequenceCrossentropy(keras.losses.Loss):
    """Cross-entropy of int targets `[batch, time]` (`padding_id` = padding) from logits,
    averaged over real positions only, so a batch's padding neither adds loss nor dilutes it."""

    def __init__(self, label_smoothing=0.0, padding_id=0, name="masked_sequence_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.padding_id = int(padding_id)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, self.padding_id), "float32")
        # A padding id outside the classes (-1) must not reach the cross-entropy's gather.
        y_true = ops.where(ops.not_equal(y_true, self.padding_id), y_true, 0)
        logits = ops.cast(y_pred, "float32")
        if self.label_smoothing:
            labels = ops.one_hot(y_true, ops.shape(logits)[-1])
            losses = keras.losses.categorical_crossentropy(
                labels, logits, from_logits=True, label_smoothing=self.label_smoothing
            )
        else:
            losses = keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
        # Per example: the masked sum; `Loss` then averages over the batch, so scale by
        # batch / tokens to get the mean over real tokens.
        tokens = ops.maximum(ops.sum(mask), 1.0)
        batch = ops.cast(ops.shape(y_true)[0], "float32")
        return ops.sum(losses * mask, axis=-1) * batch / tokens

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, padding_id=self.padding_id)
        return config


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class TokenAccuracy(keras.metrics.Metric):
    """The share of real (not `padding_id`) target positions whose argmax is right."""

    def __init__(self, name="token_accuracy", dtype=None, padding_id=0):
        super().__init__(name=name, dtype=dtype)
        self.padding_id = int(padding_id)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        mask = ops.cast(ops.not_equal(y_true, self.padding_id), "float32")
        self.correct.assign_add(ops.sum(ops.cast(ops.equal(predicted, y_true), "float32") * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "padding_id": self.padding_id}


def compile_sequence_model(model, *, learning_rate=1e-3, optimizer=None, label_smoothing=0.0):
    """Compiles a model that predicts one token per position of right-padded targets: Adam
    (or `optimizer`), `MaskedSequenceCrossentropy` and `TokenAccuracy`, as every
    teacher-forced `build_*` of this package does. Returns `model`."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate) if optimizer is None else optimizer,
        loss=MaskedSequenceCrossentropy(label_smoothing=label_smoothing),
        metrics=[TokenAccuracy()],
    )
    return model
