"""The vanilla RNN, the LSTM and the GRU written from their equations, in TensorFlow ops.

Each class holds its weights by the names the equations give them, one matrix per gate
(Keras fuses the gates into one `kernel`, one `recurrent_kernel` and one `bias`), and
`step()` is the lecture's equations line by line. `from_keras()` copies the weights of a
built Keras layer, so `run()` can be checked against the layer: tests/test_cells_equations.py
shows that outputs, final states and gradients agree to rounding error.

Conventions:

* Rows are batch examples, so the lecture's `W_xh x_t` (a matrix times a column vector)
  is `x_t @ W_xh` here, with `W_xh` of shape `[input_size, units]`, as Keras stores it.
* `W_x*` multiply the input, `W_h*` the previous hidden state, `b*` are biases of shape
  `[units]`.
* Keras' column blocks, in order: LSTM `[i, f, c, o]` (its `c` is the candidate `g`
  here), GRU `[z, r, h]` (its `h` is the candidate `g` here). A GRU with
  `reset_after=True` (Keras' default, the one cuDNN runs) has a bias of shape
  `(2, 3 * units)`: row 0 is added to the input projection (`b_x*` here), row 1 to the
  recurrent one (`b_h*` here), which matters for the candidate, where the reset gate
  multiplies the recurrent projection *with* its bias.
* The tests run on the CPU, against Keras' generic loop. On a GPU Keras hands the same
  weights to cuDNN (keras/src/backend/tensorflow/rnn.py): for the LSTM with zeros in
  cuDNN's extra input-side bias, for the GRU with the `z` and `r` blocks swapped into
  cuDNN's `[r, z, h]` order; cuDNN's equations are the ones here.
"""

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.layers import RecurrentStack

# The activation objects a Keras cell holds after `activation="tanh"` (or the op itself).
_TANH = (keras.activations.tanh, keras.ops.tanh, tf.tanh)
_SIGMOID = (keras.activations.sigmoid, keras.ops.sigmoid, tf.sigmoid)


class _RecurrentEquations(tf.Module):
    """What the three cells share: weights by name, argument checks, the loop over time.

    A subclass sets the class attributes below and writes `step()`, the split of Keras'
    fused weights (`_from_keras_cell`) and their fusion back (`to_keras_weights`).
    """

    KERAS_NAME = None  # the Keras layer class name, for messages: "SimpleRNN"
    KERAS_CELL = None  # the Keras cell class whose weights this class reads
    STACK_CELL = None  # the `cell` of a RecurrentStack made of such layers
    STATE_TENSORS = 1  # 2 for the LSTM: (h, c)

    def __init__(self, weights, weight_names, go_backwards, name):
        super().__init__(name=name)
        if not isinstance(weights, dict):
            raise TypeError(
                f"`weights` must be a dict mapping {list(weight_names)} to arrays; "
                f"received {type(weights).__name__}."
            )
        missing = [n for n in weight_names if n not in weights]
        unexpected = sorted(set(weights) - set(weight_names))
        if missing or unexpected:
            raise ValueError(
                f"`weights` must have exactly the keys {list(weight_names)}; "
                f"missing {missing}, unexpected {unexpected}."
            )
        tensors = {n: tf.convert_to_tensor(weights[n]) for n in weight_names}
        first_input_weight = next(n for n in weight_names if n.startswith("W_x"))
        input_size, units = _matrix_shape(first_input_weight, tensors[first_input_weight])
        dtype = tensors[first_input_weight].dtype
        for weight_name, tensor in tensors.items():
            expected = _expected_shape(weight_name, input_size, units)
            if tuple(tensor.shape) != expected or tensor.dtype != dtype:
                raise ValueError(
                    f"`weights[{weight_name!r}]` must be a {dtype.name} array of shape "
                    f"{expected} (input_size={input_size}, units={units}); received "
                    f"{tensor.dtype.name} of shape {tuple(tensor.shape)}."
                )
        if not dtype.is_floating:
            raise ValueError(f"`weights` must be floating-point; received {dtype.name}.")
        self.weight_names = tuple(weight_names)
        self.input_size = input_size
        self.units = units
        self.dtype = dtype
        self.go_backwards = bool(go_backwards)
        with self.name_scope:
            for weight_name, tensor in tensors.items():
                setattr(self, weight_name, tf.Variable(tensor, name=weight_name))

    @property
    def weights(self):
        """The weights as a dict `{name: tf.Variable}`, in the order of `weight_names`."""
        return {n: getattr(self, n) for n in self.weight_names}

    def __repr__(self):
        return (
            f"{type(self).__name__}(input_size={self.input_size}, units={self.units}, "
            f"dtype={self.dtype.name}{self._repr_extra()})"
        )

    def _repr_extra(self):
        return ", go_backwards=True" if self.go_backwards else ""

    # --- Running -----------------------------------------------------------------------

    def initial_state(self, batch_size):
        """Zeros in the structure of `step()`'s state: `h`, or `(h, c)` for the LSTM."""
        zeros = [tf.zeros([batch_size, self.units], self.dtype) for _ in range(self.STATE_TENSORS)]
        return zeros[0] if self.STATE_TENSORS == 1 else tuple(zeros)

    def run(self, inputs, initial_state=None, return_states=False, return_gates=False):
        """Unrolls `step()` over the time axis, as the Keras layer does.

        The loop is a Python loop, so a `tf.GradientTape` around `run()` sees every step
        (backpropagation through time); the number of time steps must be known.

        Args:
            inputs: float `[batch, time, input_size]`. A tensor must have the weights'
                dtype; a NumPy array or list is converted to it.
            initial_state: the state before the first step (`h`, or `(h, c)` for the
                LSTM, each `[batch, units]`); zeros when omitted.
            return_states: also return the state after every step.
            return_gates: also return every gate's activation at every step (a dict
                `{gate: [batch, time, units]}`: the LSTM's `i`, `f`, `o`, `g`, the
                GRU's `z`, `r`, `g`; empty for the vanilla RNN, which has none).

        Returns:
            `(outputs, final_state)`: `outputs` is every `h_t`, `[batch, time, units]`,
            in the order of the inputs (reversed ones when `go_backwards`, as Keras
            returns them), `final_state` the state after the last step. With
            `return_states=True`, `(outputs, final_state, states)`, where `states` has
            the structure of a state and each tensor is `[batch, time, units]` (the
            LSTM's `(every h_t, every c_t)`).

        Raises:
            ValueError: if `inputs` is not `[batch, time, input_size]` with a known,
                non-zero number of steps, or `initial_state` has the wrong structure.
            TypeError: if `inputs` is a tensor of another dtype than the weights.
        """
        inputs = self._checked_tensor("inputs", inputs, "[batch, time, features]")
        steps = inputs.shape[1]
        if steps is None or steps == 0:
            raise ValueError(
                f"`inputs` must have a known, non-zero number of time steps; received shape "
                f"{tuple(inputs.shape)}."
            )
        if self.go_backwards:
            inputs = tf.reverse(inputs, axis=[1])
        state = self.initial_state(tf.shape(inputs)[0]) if initial_state is None else initial_state
        outputs, states, gates = [], [], []
        for t in range(steps):
            if return_gates:
                h_t, state, step_gates = self.step(inputs[:, t], state, return_gates=True)
                gates.append(step_gates)
            else:
                h_t, state = self.step(inputs[:, t], state)
            outputs.append(h_t)
            states.append(state)
        outputs = tf.stack(outputs, axis=1)
        results = [outputs, state]
        if return_states:
            results.append(tf.nest.map_structure(lambda *per_step: tf.stack(per_step, axis=1), *states))
        if return_gates:
            results.append({name: tf.stack([g[name] for g in gates], axis=1) for name in gates[0]})
        return tuple(results)

    def _checked_step_arguments(self, x_t, state):
        x_t = self._checked_tensor("x_t", x_t, "[batch, features]")
        if self.STATE_TENSORS == 1:
            if isinstance(state, (list, tuple)):
                raise ValueError(
                    f"`state` of a {type(self).__name__} must be one tensor h [batch, units]; "
                    f"received a {type(state).__name__} of {len(state)}."
                )
            return x_t, self._checked_state_tensor("state", state)
        if not isinstance(state, (list, tuple)) or len(state) != 2:
            raise ValueError(
                f"`state` of an {type(self).__name__} must be a pair (h, c) of "
                f"[batch, units] tensors; received {type(state).__name__}."
            )
        h, c = state
        return x_t, (self._checked_state_tensor("state[0] (h)", h),
                     self._checked_state_tensor("state[1] (c)", c))

    def _checked_tensor(self, name, value, layout):
        rank = layout.count(",") + 1
        tensor = _as_tensor(name, value, self.dtype)
        shape = tuple(tensor.shape)
        if len(shape) != rank:
            raise ValueError(
                f"`{name}` must be {layout} (rank {rank}); received shape {shape}."
            )
        if shape[-1] != self.input_size:
            raise ValueError(
                f"`{name}` must have {self.input_size} features, the weights' input size; "
                f"received shape {shape}."
            )
        return tensor

    def _checked_state_tensor(self, name, value):
        tensor = _as_tensor(name, value, self.dtype)
        if tensor.shape.rank != 2 or tensor.shape[-1] != self.units:
            raise ValueError(
                f"`{name}` must be [batch, {self.units}] (units={self.units}); received shape "
                f"{tuple(tensor.shape)}."
            )
        return tensor

    # --- Keras -------------------------------------------------------------------------

    @classmethod
    def from_keras(cls, layer, layer_index=None, dtype=None):
        """Copies the weights of a built Keras layer (or cell) into the equations.

        Args:
            layer: a built Keras recurrent layer of the matching kind (for `LSTM`: a
                `keras.layers.LSTM`, a `keras.layers.LSTMCell`, or a
                `keras.layers.RNN` around one), or a built
                `rnn_toolkit.layers.RecurrentStack` of such layers.
            layer_index: which layer of a `RecurrentStack` (needed when it has more than
                one); only for a `RecurrentStack`.
            dtype: the dtype of the copied weights (e.g. `"float64"` for checks to
                rounding error); the layer's variable dtype when omitted.

        Returns:
            An instance holding copies of the weights (zeros for the biases of a layer
            built with `use_bias=False`). A layer with `go_backwards=True` gives an
            instance that reads its inputs backwards, as the layer does.

        Raises:
            TypeError: if `layer` is not a layer of the matching kind (or is a
                `Bidirectional`, whose two directions are loaded one at a time).
            ValueError: if the layer is not built, uses another activation than tanh
                (and sigmoid for the gates), or `layer_index` does not fit.
        """
        cell, go_backwards = _keras_cell(layer, cls, layer_index)
        _check_activation(cell, "activation", _TANH, "tanh")
        if hasattr(cell, "recurrent_activation"):  # the gates of the LSTM and GRU
            _check_activation(cell, "recurrent_activation", _SIGMOID, "sigmoid")
        dtype = tf.as_dtype(dtype or cell.kernel.dtype)
        kernel, recurrent_kernel = (
            tf.constant(keras.ops.convert_to_numpy(w), dtype) for w in (cell.kernel, cell.recurrent_kernel)
        )
        bias = None if cell.bias is None else tf.constant(keras.ops.convert_to_numpy(cell.bias), dtype)
        return cls._from_keras_cell(cell, kernel, recurrent_kernel, bias, go_backwards)

    def to_keras_weights(self, tensors=None):
        """The weights (or `tensors` with the same names) fused into Keras' layout.

        Args:
            tensors: a dict with the keys of `weights`, e.g. the gradients
                `tape.gradient(loss, cell.weights)`; the weights themselves when omitted.

        Returns:
            `[kernel, recurrent_kernel, bias]`, shaped and ordered as the Keras layer's
            `get_weights()` (`layer.set_weights()` takes them, if it has biases).
        """
        raise NotImplementedError


class VanillaRNN(_RecurrentEquations):
    """The vanilla (Elman) RNN, what `keras.layers.SimpleRNN` computes:

        h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)

    Args:
        weights: dict of `W_xh` `[input_size, units]`, `W_hh` `[units, units]` and
            `b` `[units]` (arrays or tensors of one float dtype).
        go_backwards: read the inputs from the last step to the first, as a Keras layer
            built with `go_backwards=True`.
        name: the `tf.Module` name.

    Raises:
        ValueError: if `weights` lacks a name or has one too many, or shapes disagree.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from rnn_toolkit.cells import VanillaRNN
    >>> layer = keras.layers.SimpleRNN(4, return_sequences=True, return_state=True)
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
    >>> keras_outputs, keras_h = layer(x)
    >>> rnn = VanillaRNN.from_keras(layer)
    >>> rnn
    VanillaRNN(input_size=5, units=4, dtype=float32)
    >>> outputs, h = rnn.run(x)
    >>> bool(np.abs(outputs - keras_outputs).max() < 1e-5 and np.abs(h - keras_h).max() < 1e-5)
    True
    """

    KERAS_NAME = "SimpleRNN"
    KERAS_CELL = keras.layers.SimpleRNNCell
    STACK_CELL = "rnn"
    WEIGHT_NAMES = ("W_xh", "W_hh", "b")

    def __init__(self, weights, go_backwards=False, name="vanilla_rnn"):
        super().__init__(weights, self.WEIGHT_NAMES, go_backwards, name)

    def step(self, x_t, state, return_gates=False):
        """One time step.

        Args:
            x_t: the inputs at this step, `[batch, input_size]`.
            state: `h_{t-1}`, `[batch, units]`.
            return_gates: also return the gates, `{}`: the vanilla RNN has none.

        Returns:
            `(h_t, h_t)`: the output and the new state, which are the same tensor.
        """
        x_t, h_prev = self._checked_step_arguments(x_t, state)
        h_t = tf.tanh(x_t @ self.W_xh + h_prev @ self.W_hh + self.b)
        return (h_t, h_t, {}) if return_gates else (h_t, h_t)

    @classmethod
    def _from_keras_cell(cls, cell, kernel, recurrent_kernel, bias, go_backwards):
        if bias is None:
            bias = tf.zeros([cell.units], kernel.dtype)
        return cls({"W_xh": kernel, "W_hh": recurrent_kernel, "b": bias}, go_backwards)

    def to_keras_weights(self, tensors=None):
        t = self.weights if tensors is None else tensors
        return [tf.convert_to_tensor(t["W_xh"]), tf.convert_to_tensor(t["W_hh"]), tf.convert_to_tensor(t["b"])]


class LSTM(_RecurrentEquations):
    """The long short-term memory cell, what `keras.layers.LSTM` computes:

        i = sigmoid(W_xi x_t + W_hi h_{t-1} + b_i)     input gate
        f = sigmoid(W_xf x_t + W_hf h_{t-1} + b_f)     forget gate
        o = sigmoid(W_xo x_t + W_ho h_{t-1} + b_o)     output gate
        g = tanh(W_xg x_t + W_hg h_{t-1} + b_g)        candidate cell
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Keras' fused kernel holds the blocks in the order `[i, f, c, o]`, its `c` being
    the candidate `g` (not the cell state).

    Args:
        weights: dict of `W_x<gate>` `[input_size, units]`, `W_h<gate>`
            `[units, units]` and `b_<gate>` `[units]` for each gate `i`, `f`, `g`, `o`
            (see `WEIGHT_NAMES`), of one float dtype.
        go_backwards: read the inputs from the last step to the first, as a Keras layer
            built with `go_backwards=True`.
        name: the `tf.Module` name.

    Raises:
        ValueError: if `weights` lacks a name or has one too many, or shapes disagree.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from rnn_toolkit.cells import LSTM
    >>> layer = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
    >>> keras_outputs, keras_h, keras_c = layer(x)
    >>> lstm = LSTM.from_keras(layer)
    >>> outputs, (h, c) = lstm.run(x)
    >>> float(np.abs(c - keras_c).max()) < 1e-5
    True
    >>> lstm.b_f.numpy()  # Keras starts the forget gate's bias at 1 (unit_forget_bias)
    array([1., 1., 1., 1.], dtype=float32)
    """

    KERAS_NAME = "LSTM"
    KERAS_CELL = keras.layers.LSTMCell
    STACK_CELL = "lstm"
    STATE_TENSORS = 2
    GATES = ("i", "f", "g", "o")  # Keras' column order, with its "c" called g here
    WEIGHT_NAMES = tuple(f"{kind}{gate}" for gate in GATES for kind in ("W_x", "W_h", "b_"))

    def __init__(self, weights, go_backwards=False, name="lstm"):
        super().__init__(weights, self.WEIGHT_NAMES, go_backwards, name)

    def step(self, x_t, state, return_gates=False):
        """One time step.

        Args:
            x_t: the inputs at this step, `[batch, input_size]`.
            state: `(h_{t-1}, c_{t-1})`, each `[batch, units]`.
            return_gates: also return the gates `{"i", "f", "o", "g"}`.

        Returns:
            `(h_t, (h_t, c_t))`: the output and the new state (and the gates' dict).
        """
        x_t, (h_prev, c_prev) = self._checked_step_arguments(x_t, state)
        i = tf.sigmoid(x_t @ self.W_xi + h_prev @ self.W_hi + self.b_i)
        f = tf.sigmoid(x_t @ self.W_xf + h_prev @ self.W_hf + self.b_f)
        o = tf.sigmoid(x_t @ self.W_xo + h_prev @ self.W_ho + self.b_o)
        g = tf.tanh(x_t @ self.W_xg + h_prev @ self.W_hg + self.b_g)
        c_t = f * c_prev + i * g
        h_t = o * tf.tanh(c_t)
        if return_gates:
            return h_t, (h_t, c_t), {"i": i, "f": f, "o": o, "g": g}
        return h_t, (h_t, c_t)

    @classmethod
    def _from_keras_cell(cls, cell, kernel, recurrent_kernel, bias, go_backwards):
        if bias is None:
            bias = tf.zeros([4 * cell.units], kernel.dtype)
        weights = {}
        for gate, w_x, w_h, b in zip(
            cls.GATES, tf.split(kernel, 4, axis=1), tf.split(recurrent_kernel, 4, axis=1), tf.split(bias, 4)
        ):
            weights.update({f"W_x{gate}": w_x, f"W_h{gate}": w_h, f"b_{gate}": b})
        return cls(weights, go_backwards)

    def to_keras_weights(self, tensors=None):
        t = self.weights if tensors is None else tensors
        return [
            tf.concat([t[f"W_x{gate}"] for gate in self.GATES], axis=1),
            tf.concat([t[f"W_h{gate}"] for gate in self.GATES], axis=1),
            tf.concat([t[f"b_{gate}"] for gate in self.GATES], axis=0),
        ]


class GRU(_RecurrentEquations):
    """The gated recurrent unit, what `keras.layers.GRU` computes, in both variants.

    With `reset_after=True` (Keras' default and the variant cuDNN runs), each gate has
    two biases, `b_x*` on the input side and `b_h*` on the recurrent side, and the reset
    gate multiplies the recurrent projection of the candidate:

        z = sigmoid(W_xz x_t + b_xz + W_hz h_{t-1} + b_hz)       update gate
        r = sigmoid(W_xr x_t + b_xr + W_hr h_{t-1} + b_hr)       reset gate
        g = tanh(W_xg x_t + b_xg + r * (W_hg h_{t-1} + b_hg))    candidate
        h_t = z * h_{t-1} + (1 - z) * g

    With `reset_after=False` (Cho et al., 2014), one bias per gate, and the reset gate
    multiplies the previous state before the matrix:

        z = sigmoid(W_xz x_t + W_hz h_{t-1} + b_z)
        r = sigmoid(W_xr x_t + W_hr h_{t-1} + b_r)
        g = tanh(W_xg x_t + W_hg (r * h_{t-1}) + b_g)
        h_t = z * h_{t-1} + (1 - z) * g

    Keras' fused kernel holds the blocks in the order `[z, r, h]`, its `h` being the
    candidate `g`.

    Args:
        weights: dict of `W_x<gate>` `[input_size, units]` and `W_h<gate>`
            `[units, units]` for each gate `z`, `r`, `g`, and the biases `[units]`
            named above (see `weight_names_for()`), of one float dtype.
        reset_after: which of the two variants.
        go_backwards: read the inputs from the last step to the first, as a Keras layer
            built with `go_backwards=True`.
        name: the `tf.Module` name.

    Raises:
        ValueError: if `weights` lacks a name or has one too many, or shapes disagree.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from rnn_toolkit.cells import GRU
    >>> layer = keras.layers.GRU(4, return_sequences=True, return_state=True)
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
    >>> keras_outputs, keras_h = layer(x)
    >>> gru = GRU.from_keras(layer)
    >>> gru
    GRU(input_size=5, units=4, dtype=float32, reset_after=True)
    >>> outputs, h = gru.run(x)
    >>> float(np.abs(outputs - keras_outputs).max()) < 1e-5
    True
    """

    KERAS_NAME = "GRU"
    KERAS_CELL = keras.layers.GRUCell
    STACK_CELL = "gru"
    GATES = ("z", "r", "g")  # Keras' column order, with its "h" called g here

    def __init__(self, weights, reset_after=True, go_backwards=False, name="gru"):
        self.reset_after = bool(reset_after)
        super().__init__(weights, self.weight_names_for(self.reset_after), go_backwards, name)

    @classmethod
    def weight_names_for(cls, reset_after):
        """The weights' names of the variant: with `reset_after`, two biases per gate."""
        biases = ("b_x", "b_h") if reset_after else ("b_",)
        return tuple(f"{kind}{gate}" for gate in cls.GATES for kind in ("W_x", "W_h", *biases))

    def _repr_extra(self):
        return f", reset_after={self.reset_after}" + super()._repr_extra()

    def step(self, x_t, state, return_gates=False):
        """One time step.

        Args:
            x_t: the inputs at this step, `[batch, input_size]`.
            state: `h_{t-1}`, `[batch, units]`.
            return_gates: also return the gates `{"z", "r", "g"}`.

        Returns:
            `(h_t, h_t)`: the output and the new state, which are the same tensor (and
            the gates' dict).
        """
        x_t, h_prev = self._checked_step_arguments(x_t, state)
        if self.reset_after:
            z = tf.sigmoid(x_t @ self.W_xz + self.b_xz + h_prev @ self.W_hz + self.b_hz)
            r = tf.sigmoid(x_t @ self.W_xr + self.b_xr + h_prev @ self.W_hr + self.b_hr)
            g = tf.tanh(x_t @ self.W_xg + self.b_xg + r * (h_prev @ self.W_hg + self.b_hg))
        else:
            z = tf.sigmoid(x_t @ self.W_xz + h_prev @ self.W_hz + self.b_z)
            r = tf.sigmoid(x_t @ self.W_xr + h_prev @ self.W_hr + self.b_r)
            g = tf.tanh(x_t @ self.W_xg + (r * h_prev) @ self.W_hg + self.b_g)
        # Keras and cuDNN keep the old state where z is 1 (some texts swap z and 1 - z).
        h_t = z * h_prev + (1 - z) * g
        return (h_t, h_t, {"z": z, "r": r, "g": g}) if return_gates else (h_t, h_t)

    @classmethod
    def _from_keras_cell(cls, cell, kernel, recurrent_kernel, bias, go_backwards):
        reset_after = bool(cell.reset_after)
        if bias is None:
            bias = tf.zeros([2, 3 * cell.units] if reset_after else [3 * cell.units], kernel.dtype)
        weights = {}
        for gate, w_x, w_h in zip(cls.GATES, tf.split(kernel, 3, axis=1), tf.split(recurrent_kernel, 3, axis=1)):
            weights.update({f"W_x{gate}": w_x, f"W_h{gate}": w_h})
        if reset_after:
            # Row 0 is added to the input projection, row 1 to the recurrent one.
            for gate, b_x, b_h in zip(cls.GATES, tf.split(bias[0], 3), tf.split(bias[1], 3)):
                weights.update({f"b_x{gate}": b_x, f"b_h{gate}": b_h})
        else:
            for gate, b in zip(cls.GATES, tf.split(bias, 3)):
                weights[f"b_{gate}"] = b
        return cls(weights, reset_after=reset_after, go_backwards=go_backwards)

    def to_keras_weights(self, tensors=None):
        t = self.weights if tensors is None else tensors
        kernel = tf.concat([t[f"W_x{gate}"] for gate in self.GATES], axis=1)
        recurrent_kernel = tf.concat([t[f"W_h{gate}"] for gate in self.GATES], axis=1)
        if self.reset_after:
            bias = tf.stack([
                tf.concat([t[f"b_x{gate}"] for gate in self.GATES], axis=0),
                tf.concat([t[f"b_h{gate}"] for gate in self.GATES], axis=0),
            ])
        else:
            bias = tf.concat([t[f"b_{gate}"] for gate in self.GATES], axis=0)
        return [kernel, recurrent_kernel, bias]


# --- Helpers ---------------------------------------------------------------------------


def _matrix_shape(name, tensor):
    if tensor.shape.rank != 2:
        raise ValueError(
            f"`weights[{name!r}]` must be a matrix [input_size, units]; received shape "
            f"{tuple(tensor.shape)}."
        )
    return tuple(tensor.shape)


def _expected_shape(name, input_size, units):
    if name.startswith("W_x"):
        return (input_size, units)
    if name.startswith("W_h"):
        return (units, units)
    return (units,)


def _as_tensor(name, value, dtype):
    """`value` as a tensor of `dtype`: arrays are converted, tensors must already be."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        if value.dtype != dtype:
            raise TypeError(
                f"`{name}` must be {dtype.name}, the weights' dtype; received {value.dtype.name} "
                f"(cast it, or copy the weights with `from_keras(..., dtype={value.dtype.name!r})`)."
            )
        return tf.convert_to_tensor(value)
    return tf.convert_to_tensor(np.asarray(value, dtype=dtype.as_numpy_dtype))


def _describe(layer):
    name = getattr(layer, "name", None)
    return f"a {type(layer).__name__}" + (f" named {name!r}" if name else "")


def _keras_cell(layer, cls, layer_index):
    """The Keras cell `cls.from_keras` reads, and whether its layer runs backwards."""
    expected = (
        f"a built keras.layers.{cls.KERAS_NAME}, keras.layers.{cls.KERAS_NAME}Cell, or "
        f"rnn_toolkit.layers.RecurrentStack('{cls.STACK_CELL}')"
    )
    if isinstance(layer, RecurrentStack):
        if layer.cell != cls.STACK_CELL:
            raise TypeError(f"`layer` must be {expected}; received a RecurrentStack('{layer.cell}').")
        if layer.bidirectional:
            raise TypeError(
                "`layer` is a bidirectional RecurrentStack; pass one direction, e.g. "
                "`stack.recurrent_layers[0].forward_layer` (or `.backward_layer`)."
            )
        if layer_index is None:
            if layer.num_layers > 1:
                raise ValueError(
                    f"`layer_index` is needed for a RecurrentStack of {layer.num_layers} layers; "
                    "received layer_index=None."
                )
            layer_index = 0
        if isinstance(layer_index, bool) or not isinstance(layer_index, int) or not 0 <= layer_index < layer.num_layers:
            raise ValueError(
                f"`layer_index` must be an integer in [0, {layer.num_layers}) for this "
                f"RecurrentStack; received layer_index={layer_index!r}."
            )
        layer = layer.recurrent_layers[layer_index]
    elif layer_index is not None:
        raise ValueError(
            f"`layer_index` is for a RecurrentStack only; received layer_index={layer_index!r} "
            f"with {_describe(layer)}."
        )
    if isinstance(layer, keras.layers.Bidirectional):
        raise TypeError(
            f"`layer` must be {expected}; received a Bidirectional layer: pass one direction, "
            "`layer.forward_layer` or `layer.backward_layer`."
        )
    cell, go_backwards = layer, False
    if isinstance(layer, keras.layers.RNN):
        cell, go_backwards = layer.cell, layer.go_backwards
    if not isinstance(cell, cls.KERAS_CELL):
        raise TypeError(f"`layer` must be {expected}; received {_describe(layer)}.")
    if not cell.built:
        raise ValueError(
            f"`layer` ({_describe(layer)}) is not built, so it has no weights yet: call it "
            "on a batch or call `layer.build(input_shape)` first."
        )
    return cell, go_backwards


def _check_activation(cell, attribute, allowed, expected):
    activation = getattr(cell, attribute)
    if activation not in allowed:
        name = getattr(activation, "__name__", repr(activation))
        raise ValueError(
            f"`layer` has {attribute}={name!r}; the equations cover {attribute}={expected!r} "
            "only (the Keras default, and what cuDNN requires)."
        )
