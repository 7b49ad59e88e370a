"""A stack of recurrent layers (vanilla RNN, LSTM or GRU) that every builder shares.

The stack keeps two views of the same weights: `call()` runs whole sequences through
Keras' recurrent layers (which pick the cuDNN kernel on a GPU when the configuration
allows it), and `step()` advances the cells by one time step, which is what an in-graph
decoding loop needs. Because both views use the same cell objects, a generator can never
drift from the trained model.
"""

import keras
import tensorflow as tf
from keras import ops

from rnn_toolkit.arguments import check_positive_int

CELL_TYPES = ("rnn", "lstm", "gru")

_LAYER_CLASSES = {
    "rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


# The activation objects Keras' TensorFlow backend accepts for its cuDNN path.
_TANH = (keras.activations.tanh, keras.ops.tanh, tf.tanh)
_SIGMOID = (keras.activations.sigmoid, keras.ops.sigmoid, tf.sigmoid)


def _check_cell(cell):
    if not isinstance(cell, str) or cell.lower() not in CELL_TYPES:
        raise ValueError(
            f"`cell` must be one of {CELL_TYPES}; received cell={cell!r}."
        )
    return cell.lower()


def cudnn_conditions(layer):
    """Says, condition by condition, whether a Keras LSTM or GRU layer can use cuDNN.

    These are the conditions under which TensorFlow's Keras 3 backend dispatches
    `keras.layers.LSTM` / `keras.layers.GRU` to the fused cuDNN kernel on a GPU. Checking
    them on the CPU lets a test catch a configuration change that would silently fall
    back to the generic (several times slower) loop on a GPU.

    Args:
        layer: a `keras.layers.LSTM`, `keras.layers.GRU` or `keras.layers.SimpleRNN`.

    Returns:
        A dict mapping each condition's name to whether it holds.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        forward = cudnn_conditions(layer.forward_layer)
        backward = cudnn_conditions(layer.backward_layer)
        return {name: forward[name] and backward[name] for name in forward}
    cell = getattr(layer, "cell", None)
    conditions = {
        "has_cudnn_kernel": isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)),
        "use_cudnn_not_false": getattr(layer, "use_cudnn", False) in ("auto", True),
        "activation_is_tanh": getattr(cell, "activation", None) in _TANH,
        "recurrent_activation_is_sigmoid": getattr(cell, "recurrent_activation", None)
        in _SIGMOID,
        "use_bias": bool(getattr(cell, "use_bias", False)),
        "not_unrolled": not getattr(layer, "unroll", True),
        "no_recurrent_dropout": not getattr(cell, "recurrent_dropout", 0.0),
    }
    if isinstance(layer, keras.layers.GRU):
        conditions["gru_reset_after"] = bool(cell.reset_after)
    return conditions


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class RecurrentStack(keras.layers.Layer):
    """`num_layers` recurrent layers of one cell type, with dropout between them.

    Defaults keep LSTM and GRU eligible for the cuDNN kernels (tanh / sigmoid, biases,
    no unrolling, no recurrent dropout, GRU `reset_after=True`); `cudnn_eligible` says
    whether they still are. LSTM forget-gate biases start at 1 (`unit_forget_bias`),
    which lets gradients flow through the cell state early in training.

    Masks must be right-padded with at least one valid step per row: that is what
    cuDNN requires on a GPU (see `rnn_toolkit.data`'s pipelines, which guarantee it).

    Args:
        cell: `"rnn"` (vanilla tanh RNN), `"lstm"` or `"gru"`.
        units: hidden units per layer (per direction when bidirectional).
        num_layers: number of stacked recurrent layers.
        dropout: dropout rate applied to the outputs of every layer but the last
            (between layers), during training only.
        bidirectional: run each layer in both directions and concatenate; such a
            stack reads whole sequences only (`step()` is unavailable).
        return_sequences: whether `call()` returns the output of every time step
            (`[batch, time, features]`) or of the last one (`[batch, features]`).
        use_cudnn: passed to Keras' LSTM/GRU: `"auto"` (cuDNN when possible), or
            `False` to force the generic loop.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> stack = rnn_toolkit.layers.RecurrentStack("gru", units=4, num_layers=2)
    >>> outputs, states = stack(np.zeros((2, 5, 3)), return_state=True)
    >>> tuple(outputs.shape), len(states)
    ((2, 5, 4), 2)
    """

    def __init__(
        self,
        cell="lstm",
        units=256,
        num_layers=1,
        dropout=0.0,
        bidirectional=False,
        return_sequences=True,
        use_cudnn="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.cell = _check_cell(cell)
        self.units = check_positive_int("units", units)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received dropout={dropout!r}.")
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.return_sequences = bool(return_sequences)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                f"`use_cudnn` must be 'auto', True or False; received use_cudnn={use_cudnn!r}."
            )
        self.use_cudnn = use_cudnn
        self.supports_masking = True

        # === Layers ===
        self.recurrent_layers = []
        for index in range(self.num_layers):
            layer = self._make_layer(index)
            if self.bidirectional:
                layer = keras.layers.Bidirectional(
                    layer, name=f"bidirectional_{index}", dtype=self.dtype_policy
                )
            self.recurrent_layers.append(layer)
        self.dropout_layers = [
            keras.layers.Dropout(self.dropout, name=f"dropout_{index}", dtype=self.dtype_policy)
            for index in range(self.num_layers - 1)
        ]

    def _make_layer(self, index):
        arguments = dict(
            units=self.units,
            return_sequences=True,
            return_state=True,
            name=f"{self.cell}_{index}",
            dtype=self.dtype_policy,
        )
        if self.cell == "lstm":
            arguments.update(unit_forget_bias=True, use_cudnn=self.use_cudnn)
        elif self.cell == "gru":
            arguments.update(reset_after=True, use_cudnn=self.use_cudnn)
        return _LAYER_CLASSES[self.cell](**arguments)

    @property
    def state_size(self):
        """Number of state tensors per layer: 2 for an LSTM (h, c), 1 otherwise."""
        per_direction = 2 if self.cell == "lstm" else 1
        return per_direction * (2 if self.bidirectional else 1)

    @property
    def output_size(self):
        return self.units * (2 if self.bidirectional else 1)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for index, layer in enumerate(self.recurrent_layers):
            layer.build(shape)
            shape = shape[:-1] + (self.output_size,)
            if index < len(self.dropout_layers):
                self.dropout_layers[index].build(shape)
        self.built = True

    def get_initial_state(self, batch_size):
        """Zero states for `batch_size` rows: a list (one entry per layer) of lists of tensors."""
        dtype = self.compute_dtype
        return [
            [ops.zeros((batch_size, self.units), dtype=dtype) for _ in range(self.state_size)]
            for _ in range(self.num_layers)
        ]

    def call(self, inputs, initial_state=None, mask=None, training=None, return_state=False):
        """Runs whole sequences.

        Args:
            inputs: float tensor `[batch, time, features]`.
            initial_state: optional list (one entry per layer) of lists of state tensors,
                as returned by `get_initial_state()` or by a previous call with
                `return_state=True`. Zeros when omitted.
            mask: optional boolean `[batch, time]`, right-padded.
            training: whether dropout is active.
            return_state: also return the final states.

        Returns:
            The outputs (`[batch, time, units]`, or `[batch, units]` when
            `return_sequences=False`), and with `return_state=True` a tuple
            `(outputs, states)`.
        """
        outputs = inputs
        final_states = []
        for index, layer in enumerate(self.recurrent_layers):
            layer_state = None if initial_state is None else list(initial_state[index])
            results = layer(outputs, initial_state=layer_state, mask=mask, training=training)
            outputs, states = results[0], list(results[1:])
            final_states.append(states)
            if index < len(self.dropout_layers):
                outputs = self.dropout_layers[index](outputs, training=training)
        if not self.return_sequences:
            outputs = outputs[:, -1, :] if mask is None else _last_valid(outputs, mask)
        if return_state:
            return outputs, final_states
        return outputs

    def step(self, inputs, states, full_precision=False):
        """Advances every layer by one time step (inference: no dropout).

        Args:
            inputs: float tensor `[batch, features]`, the input at this time step.
            states: list (one entry per layer) of lists of state tensors.
            full_precision: compute in the variables' dtype (float32) even under a
                mixed-precision policy. A decoding loop wants this: under mixed
                precision Keras casts every weight to 16 bits each time a cell reads it,
                i.e. at every generated token, which costs more than the float32 step
                itself at small batch sizes (see benchmarks/generation_step_profile.py).
                Inputs and states are then cast to float32.

        Returns:
            `(output, new_states)`: the top layer's output `[batch, units]` and the
            states in the same structure as `states`.
        """
        if self.bidirectional:
            raise ValueError(
                "A bidirectional RecurrentStack reads whole sequences; it has no step()."
            )
        outputs = inputs
        new_states = []
        for index, layer in enumerate(self.recurrent_layers):
            if full_precision:
                # `cell.call` skips `Layer.__call__` and its autocast scope, so the
                # float32 variables are read as they are.
                dtype = self.variable_dtype
                outputs, layer_states = layer.cell.call(
                    ops.cast(outputs, dtype),
                    [ops.cast(s, dtype) for s in states[index]],
                    training=False,
                )
            else:
                outputs, layer_states = layer.cell(outputs, list(states[index]), training=False)
            if not isinstance(layer_states, (list, tuple)):
                layer_states = [layer_states]
            new_states.append(list(layer_states))
        return outputs, new_states

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return tuple(input_shape[:-1]) + (self.output_size,)
        return (input_shape[0], self.output_size)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def cudnn_conditions(self):
        """The cuDNN conditions (see `cudnn_conditions()`) of every layer, by layer name."""
        return {layer.name: cudnn_conditions(layer) for layer in self.recurrent_layers}

    @property
    def cudnn_eligible(self):
        """Whether every layer in the stack can run on the fused cuDNN kernel on a GPU."""
        return all(
            all(conditions.values()) for conditions in self.cudnn_conditions().values()
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            return_sequences=self.return_sequences,
            use_cudnn=self.use_cudnn,
        )
        return config


def _last_valid(outputs, mask):
    """The output at each row's last unmasked step (masks are right-padded)."""
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    last = ops.maximum(lengths - 1, 0)
    return ops.take_along_axis(outputs, last[:, None, None], axis=1)[:, 0, :]
