"""How gradients flow back through time in a recurrent network: vanishing and exploding.

Backpropagation through time multiplies the gradient by the recurrent Jacobian
`dh_t / dh_{t-1}` once per step. For a vanilla RNN, `h_t = tanh(W_xh x_t + W_hh h_{t-1} +
b)`, that Jacobian is `diag(1 - h_t^2) W_hh`, so over T steps the gradient shrinks like
`rho^T` when the spectral radius `rho` of `W_hh` is below 1 (vanishing) and can grow like
it above 1 (exploding; the tanh's saturation `1 - h_t^2 <= 1` then caps the growth, so a
tanh RNN explodes mostly near the origin and only for a while). An LSTM's cell state
`c_t = f_t * c_{t-1} + ...` carries the gradient through the forget gate instead: a
forget-gate bias of 1 (Keras' `unit_forget_bias`) keeps `f_t` near 0.73 rather than 0.5
at initialisation.

What this module measures, on the very weights a model uses (`RecurrentStack.step()`, or
a bare Keras cell):

* `state_gradient_norms`: `||dL/dh_t||` (and `||dL/dc_t||` for an LSTM) for every t;
* `spectral_radius`, `largest_singular_value`, `scale_recurrent_kernel`,
  `set_lstm_forget_bias`: the initialisations the lecture compares;
* `gradient_ratio_sweep`, `gradient_norm_curves`: `||dL/dh_0|| / ||dL/dh_T||` for several
  lags T and configurations (vanilla RNN at several weight scales, LSTM with forget bias
  0 and 1, GRU);
* `exploding_gradient_histories`: a vanilla RNN with a large recurrent weight scale
  trained with and without clipping (the toolkit's `GradientClippingModel`), with the
  loss and the pre-clip gradient norm of every step.

Measured at T = 100 by `benchmarks/gradient_flow_and_lag.py` (32 units, Gaussian inputs
of standard deviation 0.1 / 1): the ratio is 4e-6 / 8e-19 for a spectral radius of 0.9,
0.017 / 6e-15 for Keras' orthogonal matrix (radius 1), and 3.8e3 / 5e-3 for 1.5: with
unit inputs the saturated tanh turns even that would-be explosion into vanishing.
"""

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.lag_task import lag_task_batches
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.runs.tables import format_table
from rnn_toolkit.training.gradient_clipping import GRAD_NORM, GradientClippingModel

_CELL_CLASSES = {
    "rnn": keras.layers.SimpleRNNCell,
    "lstm": keras.layers.LSTMCell,
    "gru": keras.layers.GRUCell,
}
_LOSS_ON = ("last", "all")


# --- Result tables ----------------------------------------------------------------------


class RecordTable(list):
    """A list of result records (dicts) that prints as an aligned table.

    It is a plain `list` of plain `dict`s (JSON-ready, easy to filter); only `str()`
    differs (and how IPython shows it): one row per record, one column per key of the
    first record (or `columns`), floats to 3 significant digits and None as "-".

    Args:
        records: the dicts, all with the same keys.
        columns: the keys to print, in order (None: every key of the first record).

    Example:

    >>> from rnn_toolkit.inspection import RecordTable
    >>> print(RecordTable([{"cell": "lstm", "lag": 5, "accuracy": 0.98765}]))
    cell  lag  accuracy
    ----  ---  --------
    lstm  5    0.988
    """

    def __init__(self, records=(), columns=None):
        super().__init__(records)
        self.columns = None if columns is None else list(columns)

    def __str__(self):
        if not self:
            return "(no records)"
        columns = self.columns or list(self[0])
        rows = [tuple(columns)] + [tuple(_cell_text(record.get(key)) for key in columns) for record in self]
        return format_table(rows)

    def _repr_pretty_(self, printer, cycle):
        # A notebook cell ending in a table shows the table, not a list of dicts.
        printer.text(str(self))


def _cell_text(value):
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return str(value)


# --- Norms of dL/dh_t -------------------------------------------------------------------


class _Unrolled:
    """One interface over a RecurrentStack and a bare Keras cell: states are a list (one
    entry per layer) of lists of tensors, `[h]` or `[h, c]`."""

    def __init__(self, recurrent):
        if isinstance(recurrent, keras.layers.RNN):
            recurrent = recurrent.cell
        if isinstance(recurrent, RecurrentStack):
            if recurrent.bidirectional:
                raise ValueError(
                    "A bidirectional RecurrentStack has no step-by-step view; measure a "
                    "unidirectional one."
                )
            self.cell_type = recurrent.cell
            self.num_layers = recurrent.num_layers
        elif isinstance(recurrent, tuple(_CELL_CLASSES.values())):
            self.cell_type = next(name for name, kind in _CELL_CLASSES.items() if isinstance(recurrent, kind))
            self.num_layers = 1
        else:
            raise TypeError(
                "`recurrent` must be a rnn_toolkit RecurrentStack, a Keras SimpleRNNCell / "
                "LSTMCell / GRUCell or a SimpleRNN / LSTM / GRU layer; received "
                f"{type(recurrent).__name__}."
            )
        self.recurrent = recurrent
        self.units = recurrent.units
        self.state_names = ("h", "c") if self.cell_type == "lstm" else ("h",)

    def build(self, features):
        if not self.recurrent.built:
            if isinstance(self.recurrent, RecurrentStack):
                self.recurrent.build((None, None, features))
            else:
                self.recurrent.build((None, features))

    def zeros(self, batch_size):
        return [
            [tf.zeros((batch_size, self.units)) for _ in self.state_names] for _ in range(self.num_layers)
        ]

    def step(self, inputs, states):
        if isinstance(self.recurrent, RecurrentStack):
            # float32 weights as stored, whatever the model's compute precision.
            _, states = self.recurrent.step(inputs, states, full_precision=True)
            return states
        # `call`, not `__call__`: the states come back as the tensors the cell computed
        # (the gradient must see c_t as the input of h_t), and in the weights' float32.
        _, new_states = self.recurrent.call(inputs, list(states[0]), training=False)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        return [list(new_states)]


def state_gradient_norms(
    recurrent,
    inputs,
    *,
    loss_fn=None,
    loss_on="last",
    initial_state=None,
    layer=-1,
    seed=0,
):
    """The norm of dLoss/dh_t (and dLoss/dc_t for an LSTM) at every time step.

    The sequence is unrolled step by step with the recurrent weights themselves
    (`RecurrentStack.step()`, or the Keras cell), and every state of layer `layer` is
    recorded, so the gradient with respect to it is the full one that backpropagation
    through time delivers there: from every later step, from its own output when
    `loss_on="all"`, and for an LSTM's `c_t` also through `h_t = o_t * tanh(c_t)`.
    `h_0` is the initial state (zeros unless given) and `h_t` the state after reading `t`
    inputs: with the default loss, read off the last step, `h_0` is `T` steps before the
    loss and `norms["h"][0] / norms["h"][T]` is the lecture's ratio.

    What is reported: each example's loss `l_b` is differentiated with respect to its own
    state `h_t^b`, the L2 norm `||dl_b / dh_t^b||` is taken over the units, and the mean
    over the batch is reported (examples never interact, so this is the gradient of
    `sum_b l_b` read row by row). The default loss is a fixed random projection of the
    output, `l_b = <v, y_T^b>` with `v` a unit vector drawn from `seed`, so that
    `||dL/dh_T|| = 1` exactly for a vanilla RNN or GRU (the output is `h_T`).

    Args:
        recurrent: a unidirectional `rnn_toolkit.layers.RecurrentStack`, or a Keras
            `SimpleRNNCell` / `LSTMCell` / `GRUCell` (or `SimpleRNN` / `LSTM` / `GRU`
            layer: its cell is used). Built on first use if it is not yet.
        inputs: float `[batch, T, features]`.
        loss_fn: None for the random projection, or a function of the top layer's
            outputs returning the loss of each example, `[batch]` (a scalar is used as
            is: a batch mean divides every norm by the batch size). It receives the
            last step's output `[batch, units]` with `loss_on="last"`, and every step's
            output `[batch, T, units]` with `loss_on="all"`.
        loss_on: `"last"` (the loss reads the last step's output) or `"all"` (every
            step's output; the default projection then sums over steps).
        initial_state: the states to start from, as `RecurrentStack.get_initial_state`
            gives them (a list per layer of `[h]` or `[h, c]`); zeros when None. A bare
            cell takes a list with its one layer's states.
        layer: which layer's states to report, for a stack (-1: the top one).
        seed: fixes the default loss's projection.

    Returns:
        A dict of float64 NumPy arrays `[T + 1]`, index t = the state after t inputs:
        `"h"`, and `"c"` for an LSTM.

    Raises:
        TypeError: for an unsupported `recurrent`.
        ValueError: for `inputs` that are not `[batch, T >= 1, features]`, an unknown
            `loss_on`, a `layer` out of range, or a loss that does not reach the states.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> from rnn_toolkit.inspection import state_gradient_norms
    >>> stack = rnn_toolkit.layers.RecurrentStack("lstm", units=4)
    >>> norms = state_gradient_norms(stack, np.ones((2, 6, 3), "float32"))
    >>> sorted(norms), norms["h"].shape
    (['c', 'h'], (7,))
    >>> bool(norms["c"][0] < norms["c"][6])  # the gradient fades going back in time
    True
    """
    unrolled = _Unrolled(recurrent)
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    if inputs.shape.rank != 3 or not inputs.shape[1]:
        raise ValueError(
            f"`inputs` must be float [batch, T >= 1, features]; received shape {inputs.shape.as_list()}."
        )
    if loss_on not in _LOSS_ON:
        raise ValueError(f"`loss_on` must be one of {_LOSS_ON}; received loss_on={loss_on!r}.")
    if not -unrolled.num_layers <= layer < unrolled.num_layers:
        raise ValueError(
            f"`layer` must index one of the {unrolled.num_layers} layers; received layer={layer!r}."
        )
    layer = layer % unrolled.num_layers
    batch_size, length, features = inputs.shape
    unrolled.build(features)
    states = unrolled.zeros(batch_size) if initial_state is None else initial_state
    # Distinct tensors, even where the caller passed one tensor for both h and c.
    states = [[tf.identity(tf.cast(s, tf.float32)) for s in layer_states] for layer_states in states]
    if loss_fn is None:
        projection = np.random.default_rng(seed).standard_normal(unrolled.units)
        projection = tf.constant(projection / np.linalg.norm(projection), tf.float32)

        def loss_fn(outputs):
            return tf.reduce_sum(outputs * projection, axis=list(range(1, outputs.shape.rank)))

    # The gradient with respect to the very tensors the cell returned is the total one:
    # for an LSTM's c_t it includes the path through h_t = o_t * tanh(c_t) inside the
    # same step, not only the carry into the next step.
    with tf.GradientTape() as tape:
        tape.watch(tf.nest.flatten(states))
        recorded = [states[layer]]
        outputs = []
        for t in range(length):
            states = unrolled.step(inputs[:, t], states)
            recorded.append(states[layer])
            # The top layer's h is its output for all three cells.
            outputs.append(states[-1][0])
        outputs = outputs[-1] if loss_on == "last" else tf.stack(outputs, axis=1)
        loss = tf.reduce_sum(loss_fn(outputs))
    gradients = tape.gradient(loss, recorded, unconnected_gradients=tf.UnconnectedGradients.NONE)
    if all(g is None for step in gradients for g in step):
        raise ValueError("The loss does not depend on the recurrent states: check `loss_fn`.")
    norms = {}
    for index, name in enumerate(unrolled.state_names):
        per_step = [
            np.zeros(batch_size) if step[index] is None else tf.norm(step[index], axis=-1).numpy()
            for step in gradients
        ]
        norms[name] = np.mean(np.stack(per_step).astype(np.float64), axis=1)
    return norms


def model_state_gradient_norms(
    model, inputs, targets, *, encoder="embedding", head="head", loss_on="last", layer=-1
):
    """`state_gradient_norms` for a whole model: encoder -> `.recurrent` stack -> head.

    Works with any model that has a `recurrent` attribute holding a
    `RecurrentStack` (the char LM, the sentiment classifier and the frame labeller do;
    the translator's encoder stack is `model.encoder`, and `state_gradient_norms` takes it,
    or any stack, directly), an input encoder and an output head; for the character language model: ids -> `model.embedding` -> stack,
    and the loss is the cross-entropy of `model.head`'s logits. The model runs in
    inference mode (no dropout).

    Args:
        model: the model (anything with `.recurrent`).
        inputs: what the encoder reads, `[batch, T, ...]` (ids for an embedding).
        targets: int class ids: `[batch]` for the last step (`loss_on="last"`), `[batch,
            T]` for every step (`loss_on="all"`, the per-example loss is then summed over
            steps).
        encoder: the name of the model's attribute that encodes the inputs into
            `[batch, T, features]`, or a callable.
        head: the name of the attribute mapping the stack's output to logits, or a
            callable.
        loss_on: `"last"` or `"all"` (see `state_gradient_norms`).
        layer: which recurrent layer's states to report (-1: the top one).

    Returns:
        As `state_gradient_norms`: `{"h": [T + 1], ("c": [T + 1])}`, the mean over the
        batch of each example's `||d cross-entropy / dh_t||`.

    Raises:
        TypeError: if the model has no `RecurrentStack` in `.recurrent`, or `encoder` /
            `head` is neither an attribute name nor a callable.
        ValueError: as `state_gradient_norms`.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> from rnn_toolkit.inspection import model_state_gradient_norms
    >>> model = rnn_toolkit.build_char_lm("abc\\n", cell="gru", units=4, embedding_dim=2)
    >>> ids = np.array([[2, 3, 4, 2, 3]])
    >>> norms = model_state_gradient_norms(model, ids, targets=np.array([4]))
    >>> norms["h"].shape
    (6,)
    """
    recurrent = getattr(model, "recurrent", None)
    if not isinstance(recurrent, RecurrentStack):
        raise TypeError(
            f"`model.recurrent` must be a rnn_toolkit RecurrentStack; {type(model).__name__} has "
            f"{type(recurrent).__name__}."
        )
    encode = _model_part(model, encoder, "encoder")
    logits_of = _model_part(model, head, "head")
    if loss_on not in _LOSS_ON:
        raise ValueError(f"`loss_on` must be one of {_LOSS_ON}; received loss_on={loss_on!r}.")
    targets = tf.convert_to_tensor(targets)

    def cross_entropy(outputs):
        logits = tf.cast(logits_of(outputs), tf.float32)
        losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        return losses if loss_on == "last" else tf.reduce_sum(losses, axis=1)

    features = tf.cast(encode(inputs), tf.float32)
    return state_gradient_norms(recurrent, features, loss_fn=cross_entropy, loss_on=loss_on, layer=layer)


def _model_part(model, part, role):
    if isinstance(part, str):
        part = getattr(model, part, None)
    if not callable(part):
        raise TypeError(f"`{role}` must name a callable attribute of the model, or be a callable.")
    return part


# --- Initialisations ----------------------------------------------------------------------


def spectral_radius(matrix):
    """The largest absolute eigenvalue of a square matrix.

    It sets the growth rate of `W^T v` over many steps: for a vanilla RNN near the origin
    (tanh' = 1) the gradient scales like `spectral_radius(W_hh) ** T`.

    Args:
        matrix: a square array-like (a NumPy array, a tensor or a Keras variable).

    Returns:
        A Python float.

    Raises:
        ValueError: if `matrix` is not square.

    Example:

    >>> from rnn_toolkit.inspection import spectral_radius
    >>> round(spectral_radius([[0.0, 2.0], [-2.0, 0.0]]), 6)  # a rotation by 90 degrees, scaled by 2
    2.0
    """
    matrix = _square(matrix)
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def largest_singular_value(matrix):
    """The largest singular value (spectral norm) of a matrix.

    It bounds how much one step can stretch a vector: `||W v|| <= sigma_max ||v||`, so
    below 1 the gradient of a vanilla RNN must vanish (sufficient condition), while
    a spectral radius above 1 is needed for it to explode (necessary condition).

    Args:
        matrix: a 2-D array-like.

    Returns:
        A Python float.

    Raises:
        ValueError: if `matrix` is not 2-D.

    Example:

    >>> from rnn_toolkit.inspection import largest_singular_value
    >>> largest_singular_value([[0.0, 3.0], [0.0, 0.0]])  # radius 0, stretches by 3
    3.0
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"`matrix` must be 2-D; received shape {list(matrix.shape)}.")
    return float(np.linalg.norm(matrix, ord=2))


def _square(matrix):
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be square; received shape {list(matrix.shape)}.")
    return matrix


def _cells(cell_or_layer, kind, role):
    """The built Keras cells of one type in a cell, a Keras RNN layer or a RecurrentStack."""
    if isinstance(cell_or_layer, RecurrentStack):
        if cell_or_layer.cell != kind:
            raise ValueError(f"{role} needs a {kind!r} stack; received a {cell_or_layer.cell!r} one.")
        if not cell_or_layer.built:
            raise ValueError(f"{role}: build the stack first (call it once, or `.build(input_shape)`).")
        cells = []
        for layer in cell_or_layer.recurrent_layers:
            if isinstance(layer, keras.layers.Bidirectional):
                cells += [layer.forward_layer.cell, layer.backward_layer.cell]
            else:
                cells.append(layer.cell)
        return cells
    cell = cell_or_layer.cell if isinstance(cell_or_layer, keras.layers.RNN) else cell_or_layer
    if not isinstance(cell, _CELL_CLASSES[kind]):
        raise TypeError(
            f"{role} needs a {_CELL_CLASSES[kind].__name__}, its Keras layer or a {kind!r} "
            f"RecurrentStack; received {type(cell_or_layer).__name__}."
        )
    if not cell.built:
        raise ValueError(f"{role}: build the cell first (call it once, or `.build(input_shape)`).")
    return [cell]


def scale_recurrent_kernel(cell_or_layer, spectral_radius=None, singular_value=None):
    """Rescales a vanilla RNN's recurrent weights W_hh to a target spectral radius or
    largest singular value.

    The matrix is multiplied by one factor, so its eigenvectors and the ratios between
    its singular values are kept. For Keras' default orthogonal initialisation both
    measures are 1, so both targets give the same matrix.

    Args:
        cell_or_layer: a built `keras.layers.SimpleRNNCell`, `keras.layers.SimpleRNN`,
            or a `RecurrentStack("rnn")` (every layer is rescaled).
        spectral_radius: the target largest absolute eigenvalue.
        singular_value: the target largest singular value. Give exactly one of the two.

    Returns:
        The factors applied, one per recurrent kernel (a list of floats).

    Raises:
        TypeError: if it is not a vanilla RNN cell, layer or stack.
        ValueError: for not exactly one target, a target that is not a positive number,
            an unbuilt cell, or an all-zero kernel (no scale reaches a target).

    Example:

    >>> import keras
    >>> from rnn_toolkit.inspection import scale_recurrent_kernel, spectral_radius
    >>> cell = keras.layers.SimpleRNNCell(8)
    >>> cell.build((None, 3))
    >>> _ = scale_recurrent_kernel(cell, spectral_radius=1.5)
    >>> round(spectral_radius(cell.recurrent_kernel), 4)
    1.5
    """
    if (spectral_radius is None) == (singular_value is None):
        raise ValueError("Give exactly one of `spectral_radius` and `singular_value`.")
    target = spectral_radius if singular_value is None else singular_value
    if isinstance(target, bool) or not isinstance(target, (int, float, np.number)) or not target > 0:
        raise ValueError(f"The target must be a positive number; received {target!r}.")
    measure = _spectral_radius if singular_value is None else largest_singular_value
    factors = []
    for cell in _cells(cell_or_layer, "rnn", "scale_recurrent_kernel"):
        kernel = keras.ops.convert_to_numpy(cell.recurrent_kernel)
        current = measure(kernel)
        if current == 0.0:
            raise ValueError("The recurrent kernel is all zeros: no scale gives it the target.")
        factor = float(target) / current
        cell.recurrent_kernel.assign((kernel * factor).astype(kernel.dtype))
        factors.append(factor)
    return factors


_spectral_radius = spectral_radius  # `scale_recurrent_kernel`'s argument shadows the name


def set_lstm_forget_bias(cell_or_layer, value):
    """Sets every forget-gate bias of an LSTM to `value` (Keras' `unit_forget_bias` is 1).

    Keras orders an LSTM's gates input, forget, cell, output; the forget gate's bias is
    the second quarter of the bias vector.

    Args:
        cell_or_layer: a built `keras.layers.LSTMCell`, `keras.layers.LSTM` or
            `RecurrentStack("lstm")` (every layer).
        value: the bias (0: the gate starts half open, 1: about 0.73 open).

    Raises:
        TypeError: if it is not an LSTM cell, layer or stack.
        ValueError: for an unbuilt cell or one without biases.

    Example:

    >>> import keras
    >>> from rnn_toolkit.inspection import set_lstm_forget_bias
    >>> cell = keras.layers.LSTMCell(2)
    >>> cell.build((None, 3))
    >>> set_lstm_forget_bias(cell, 0.0)
    >>> cell.bias.numpy().tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    for cell in _cells(cell_or_layer, "lstm", "set_lstm_forget_bias"):
        if not cell.use_bias:
            raise ValueError("set_lstm_forget_bias: this LSTM has no biases (use_bias=False).")
        bias = keras.ops.convert_to_numpy(cell.bias)
        bias[cell.units: 2 * cell.units] = float(value)
        cell.bias.assign(bias)


def set_gru_update_bias(cell_or_layer, value):
    """Sets every update-gate bias of a GRU so that the gate starts at `sigmoid(value)`.

    Keras' GRU keeps the share `z_t` of the old state, `h_t = z_t * h_{t-1} + (1 - z_t) *
    candidate`, and starts with zero biases: `z_t` near 0.5, so the state halves its
    memory every step. A positive bias makes it start by remembering, as an LSTM's
    forget bias does. Keras orders a GRU's gates update, reset, candidate; with
    `reset_after=True` (the default, and `RecurrentStack`'s) the bias has an input row and
    a recurrent row, and the input row gets `value` (the recurrent row's update slice 0).

    Args:
        cell_or_layer: a built `keras.layers.GRUCell`, `keras.layers.GRU` or
            `RecurrentStack("gru")` (every layer).
        value: the total update-gate bias.

    Raises:
        TypeError: if it is not a GRU cell, layer or stack.
        ValueError: for an unbuilt cell or one without biases.

    Example:

    >>> import keras
    >>> from rnn_toolkit.inspection import set_gru_update_bias
    >>> cell = keras.layers.GRUCell(2)
    >>> cell.build((None, 3))
    >>> set_gru_update_bias(cell, 3.0)
    >>> cell.bias.numpy().tolist()
    [[3.0, 3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    for cell in _cells(cell_or_layer, "gru", "set_gru_update_bias"):
        if not cell.use_bias:
            raise ValueError("set_gru_update_bias: this GRU has no biases (use_bias=False).")
        bias = keras.ops.convert_to_numpy(cell.bias)
        if bias.ndim == 2:  # reset_after: [input bias, recurrent bias]
            bias[0, : cell.units] = float(value)
            bias[1, : cell.units] = 0.0
        else:
            bias[: cell.units] = float(value)
        cell.bias.assign(bias)


# --- Sweeps over configurations and lags -----------------------------------------------


def _configurations(spectral_radii, singular_values, lstm_forget_biases, gru_update_biases):
    """`(name, cell, settings, prepare(stack))` for each configuration of a sweep."""
    for radius in spectral_radii:
        yield (f"RNN radius {radius:g}", "rnn", {"spectral_radius": float(radius)},
               lambda stack, r=radius: scale_recurrent_kernel(stack, spectral_radius=float(r)))
    for value in singular_values:
        yield (f"RNN sigma_max {value:g}", "rnn", {"singular_value": float(value)},
               lambda stack, v=value: scale_recurrent_kernel(stack, singular_value=float(v)))
    for bias in lstm_forget_biases:
        yield (f"LSTM forget bias {bias:g}", "lstm", {"gate_bias": float(bias)},
               lambda stack, b=bias: set_lstm_forget_bias(stack, float(b)))
    for bias in gru_update_biases:
        yield (f"GRU update bias {bias:g}", "gru", {"gate_bias": float(bias)},
               lambda stack, b=bias: set_gru_update_bias(stack, float(b)))


def _prepared_stack(cell, prepare, units, features, seed):
    # The same seed for every configuration: the same kernels before `prepare`.
    keras.utils.set_random_seed(seed)
    stack = RecurrentStack(cell, units=units)
    stack.build((None, None, features))
    prepare(stack)
    return stack


def _sweep_inputs(batch_size, length, features, input_scale, seed):
    rng = np.random.default_rng([seed, length])
    return (input_scale * rng.standard_normal((batch_size, length, features))).astype(np.float32)


def gradient_ratio_sweep(
    lags=(10, 50, 100),
    *,
    spectral_radii=(0.9, 1.5),
    singular_values=(),
    lstm_forget_biases=(0.0, 1.0),
    gru_update_biases=(0.0,),
    units=32,
    features=8,
    batch_size=16,
    input_scale=1.0,
    seed=0,
):
    """`||dL/dh_0|| / ||dL/dh_T||` for each configuration and lag T, at initialisation.

    Each configuration is a one-layer `RecurrentStack` with Keras' default initialisation
    (Glorot-uniform input kernel, orthogonal recurrent kernel, zero biases except the
    LSTM's forget gate), the same seed for all, then changed as its name says: a vanilla
    RNN's W_hh rescaled to each spectral radius (or largest singular value), an LSTM's
    forget-gate bias or a GRU's update-gate bias set (Keras' are 1 and 0). For each lag T it reads `T` steps of Gaussian
    inputs (`input_scale` times N(0, 1), seeded by T) from a zero state, with the
    default loss of `state_gradient_norms` on the last step. A ratio << 1 is a
    vanishing gradient, >> 1 an exploding one.

    Args:
        lags: the T values (positive ints).
        spectral_radii: vanilla-RNN spectral radii to compare.
        singular_values: vanilla-RNN largest singular values to compare.
        lstm_forget_biases: LSTM forget-gate biases to compare.
        gru_update_biases: GRU update-gate biases to compare (`set_gru_update_bias`).
        units: hidden units.
        features: input features.
        batch_size: sequences averaged over.
        input_scale: the inputs' standard deviation (small inputs keep a tanh RNN near
            its linear regime, where W_hh alone sets the ratio).
        seed: fixes the weights, the inputs and the loss's projection.

    Returns:
        A `RecordTable` with one record per configuration and lag: `configuration`,
        `cell`, `lag`, `ratio_h` (= `grad_h0 / grad_hT`), `grad_h0`, `grad_hT` (batch
        means of the per-example norms), for an LSTM also `ratio_c` and `grad_c0`
        (else None), and the configuration's `spectral_radius`, `singular_value`,
        `gate_bias` (the LSTM's forget or the GRU's update bias; None where they do
        not apply).

    Raises:
        ValueError: for a lag or size that is not a positive integer.

    Example:

    >>> from rnn_toolkit.inspection import gradient_ratio_sweep
    >>> table = gradient_ratio_sweep(lags=(3,), spectral_radii=(0.5,), lstm_forget_biases=(),
    ...                              gru_update_biases=(), units=4, features=2, batch_size=2,
    ...                              input_scale=0.0)
    >>> round(table[0]["ratio_h"], 4)  # zero inputs: exactly 0.5 ** 3
    0.125
    """
    lags = [check_positive_int("lag", lag) for lag in lags]
    units = check_positive_int("units", units)
    features = check_positive_int("features", features)
    batch_size = check_positive_int("batch_size", batch_size)
    table = RecordTable(columns=(
        "configuration", "lag", "ratio_h", "grad_h0", "grad_hT", "ratio_c", "grad_c0",
    ))
    configurations = _configurations(spectral_radii, singular_values, lstm_forget_biases, gru_update_biases)
    for name, cell, settings, prepare in configurations:
        stack = _prepared_stack(cell, prepare, units, features, seed)
        for lag in lags:
            norms = state_gradient_norms(
                stack, _sweep_inputs(batch_size, lag, features, input_scale, seed), seed=seed
            )
            record = {
                "configuration": name,
                "cell": cell,
                "lag": lag,
                "ratio_h": float(norms["h"][0] / norms["h"][-1]),
                "grad_h0": float(norms["h"][0]),
                "grad_hT": float(norms["h"][-1]),
                "ratio_c": None,
                "grad_c0": None,
                "spectral_radius": settings.get("spectral_radius"),
                "singular_value": settings.get("singular_value"),
                "gate_bias": settings.get("gate_bias"),
            }
            if "c" in norms:
                record.update(ratio_c=float(norms["c"][0] / norms["c"][-1]), grad_c0=float(norms["c"][0]))
            table.append(record)
    return table


def gradient_norm_curves(
    length=100,
    *,
    spectral_radii=(0.9, 1.5),
    singular_values=(),
    lstm_forget_biases=(0.0, 1.0),
    gru_update_biases=(0.0,),
    units=32,
    features=8,
    batch_size=16,
    input_scale=1.0,
    seed=0,
):
    """`state_gradient_norms` of each configuration of `gradient_ratio_sweep` on one
    sequence length: the whole curve of ||dL/dh_t|| rather than its two ends.

    Args:
        length: the sequence length T (the loss reads step T).
        spectral_radii, singular_values, lstm_forget_biases, gru_update_biases, units,
            features, batch_size, input_scale, seed: as in `gradient_ratio_sweep`.

    Returns:
        `{configuration name: {"h": [T + 1], ("c": [T + 1])}}`, index t = the state after
        t inputs; `rnn_toolkit.plots.plot_gradient_norms` draws it.

    Example:

    >>> from rnn_toolkit.inspection import gradient_norm_curves
    >>> curves = gradient_norm_curves(5, spectral_radii=(0.9,), lstm_forget_biases=(1.0,), units=4)
    >>> {name: sorted(norms) for name, norms in curves.items()}
    {'RNN radius 0.9': ['h'], 'LSTM forget bias 1': ['c', 'h'], 'GRU update bias 0': ['h']}
    """
    length = check_positive_int("length", length)
    curves = {}
    configurations = _configurations(spectral_radii, singular_values, lstm_forget_biases, gru_update_biases)
    for name, cell, _, prepare in configurations:
        stack = _prepared_stack(cell, prepare, units, features, seed)
        curves[name] = state_gradient_norms(
            stack, _sweep_inputs(batch_size, length, features, input_scale, seed), seed=seed
        )
    return curves


# --- Training: a recurrent classifier, and clipping an exploding run ------------------------


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class RecurrentClassifier(GradientClippingModel):
    """Sequence in, one class out: a `RecurrentStack` read at its last step, then Dense.

    The smallest many-to-one model, for the gradient and memory experiments (build it
    with `build_recurrent_classifier`). It clips by global norm and logs the pre-clip
    gradient norm as every toolkit model does (`GradientClippingModel`).

    Args:
        num_classes: output classes (logits `[batch, num_classes]`).
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per layer.
        num_layers: stacked recurrent layers.
        clip_norm: global gradient-norm threshold (None or 0: off; the norm is still
            logged as `grad_norm`).
        **kwargs: standard `keras.Model` arguments.
    """

    def __init__(self, num_classes, cell="lstm", units=32, num_layers=1, clip_norm=None, **kwargs):
        super().__init__(clip_norm=clip_norm, **kwargs)
        # === Layers ===
        self.recurrent = RecurrentStack(
            cell, units=units, num_layers=num_layers, return_sequences=False, name="recurrent"
        )
        self.head = keras.layers.Dense(check_positive_int("num_classes", num_classes), name="logits")
        # === Config ===
        self.num_classes = int(num_classes)
        self.cell = self.recurrent.cell
        self.units = units
        self.num_layers = num_layers

    def build(self, input_shape):
        self.recurrent.build(tuple(input_shape))
        self.head.build((input_shape[0], self.units))
        self.built = True

    def call(self, inputs, training=None):
        return self.head(self.recurrent(inputs, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, cell=self.cell, units=self.units, num_layers=self.num_layers)
        return config


def build_recurrent_classifier(
    input_size,
    num_classes,
    *,
    cell="lstm",
    units=32,
    num_layers=1,
    optimizer="adam",
    learning_rate=1e-2,
    clip_norm=None,
):
    """A built and compiled `RecurrentClassifier` (sparse cross-entropy, accuracy).

    Args:
        input_size: features per time step.
        num_classes: output classes.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per layer.
        num_layers: stacked recurrent layers.
        optimizer: `"adam"` or `"sgd"` (plain SGD shows exploding gradients as they
            are; Adam divides each step by a running gradient scale), or a Keras
            optimizer.
        learning_rate: the named optimizer's learning rate.
        clip_norm: global gradient-norm threshold (None or 0: off).

    Returns:
        The compiled model; `model.count_params()` gives its size.

    Raises:
        ValueError: for an unknown optimizer name or a bad size.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.inspection import build_recurrent_classifier
    >>> model = build_recurrent_classifier(input_size=3, num_classes=2, cell="gru", units=4)
    >>> model(np.zeros((5, 7, 3), "float32")).shape
    TensorShape([5, 2])
    """
    input_size = check_positive_int("input_size", input_size)
    if isinstance(optimizer, str):
        optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
        if optimizer not in optimizers:
            raise ValueError(f"`optimizer` must be 'adam', 'sgd' or a Keras optimizer; received {optimizer!r}.")
        optimizer = optimizers[optimizer](learning_rate=learning_rate)
    model = RecurrentClassifier(num_classes, cell=cell, units=units, num_layers=num_layers, clip_norm=clip_norm)
    model.build((None, None, input_size))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


class StepHistory(keras.callbacks.Callback):
    """Records the training logs of every step, not the running means of the epoch.

    Keras' batch logs average over the epoch so far; this callback resets the model's
    metrics before each step, so each record is that step's own loss and (for a
    `GradientClippingModel`) its own pre-clip `grad_norm`.

    Attributes:
        history: `{log name: [value at step 1, value at step 2, ...]}`.
    """

    def __init__(self):
        super().__init__()
        self.history = {}

    def on_train_batch_begin(self, batch, logs=None):
        self.model.reset_metrics()

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))


def exploding_gradient_histories(
    clip_norms=(None, 1.0),
    *,
    spectral_radius=1.5,
    lag=20,
    units=32,
    steps=150,
    batch_size=32,
    learning_rate=0.3,
    seed=0,
):
    """Trains a vanilla RNN whose gradients explode, without and with clipping.

    The recipe the lecture describes: a vanilla RNN (`build_recurrent_classifier`)
    whose recurrent kernel is scaled to a large spectral radius, trained with plain SGD
    on the lag task (`rnn_toolkit.data.lag_task_batches`, 4 symbols and 4 distractors),
    once per clipping threshold, from the same initial weights and on the same batches.
    Clipping is the toolkit's own (`GradientClippingModel`, global norm); the gradient
    norm recorded is the one BEFORE clipping, so the two runs' norms show what the
    gradient was, and the losses what clipping made of it.

    Args:
        clip_norms: the thresholds to compare (None or 0: no clipping).
        spectral_radius: the recurrent kernel's spectral radius at initialisation.
        lag: the lag task's lag (sequences of `lag + 1` steps).
        units: hidden units.
        steps: training steps per run.
        batch_size: sequences per step.
        learning_rate: SGD learning rate.
        seed: fixes the weights and the batches.

    Returns:
        `{label: {"clip_norm": float or None, "loss": [per step], "grad_norm": [per
        step], "accuracy": [per step]}}`, labels `"no clipping"` and `"clip <norm>"`; a
        diverged run's losses turn NaN.

    Example:

    >>> from rnn_toolkit.inspection import exploding_gradient_histories
    >>> runs = exploding_gradient_histories(lag=3, units=4, steps=2, batch_size=4)
    >>> {label: len(run["grad_norm"]) for label, run in runs.items()}
    {'no clipping': 2, 'clip 1': 2}
    """
    steps = check_positive_int("steps", steps)
    histories = {}
    for clip_norm in clip_norms:
        # Both runs must see the same batches: a new pipeline each (each iterator of one
        # dataset object would draw a new order), created after the global seed is set
        # (TensorFlow combines it with the shuffle's own seed).
        keras.utils.set_random_seed(seed)
        train, _ = lag_task_batches(
            lag, train_examples=max(batch_size, 1024), validation_examples=1, batch_size=batch_size, seed=seed
        )
        model = build_recurrent_classifier(
            train.element_spec[0].shape[-1], 4, cell="rnn", units=units, optimizer="sgd",
            learning_rate=learning_rate, clip_norm=clip_norm,
        )
        scale_recurrent_kernel(model.recurrent, spectral_radius=spectral_radius)
        recorder = StepHistory()
        model.fit(train.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[recorder])
        label = f"clip {clip_norm:g}" if clip_norm else "no clipping"
        histories[label] = {
            "clip_norm": float(clip_norm) if clip_norm else None,
            "loss": recorder.history["loss"],
            "grad_norm": recorder.history[GRAD_NORM],
            "accuracy": recorder.history["accuracy"],
        }
    return histories
