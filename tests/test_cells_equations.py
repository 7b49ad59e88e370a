"""The cells written from their equations compute what the Keras layers compute.

Outputs, final states and gradients (inputs and every weight) of `rnn_toolkit.cells`
against `keras.layers.SimpleRNN` / `LSTM` / `GRU` with random weights and biases, in
float64 (to rounding error) and float32.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.cells import GRU, LSTM, VanillaRNN
from rnn_toolkit.layers import RecurrentStack

BATCH, TIME, FEATURES, UNITS = 3, 7, 5, 4

# (case id, Keras layer class, layer options, equations class)
CASES = [
    ("simple_rnn", keras.layers.SimpleRNN, {}, VanillaRNN),
    ("lstm", keras.layers.LSTM, {}, LSTM),
    ("gru_reset_after", keras.layers.GRU, {"reset_after": True}, GRU),
    ("gru_reset_before", keras.layers.GRU, {"reset_after": False}, GRU),
]
# Largest differences allowed: float64 agrees to rounding error (~1e-15 seen).
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def _random_layer(layer_class, options, dtype, seed, **more):
    """A built Keras layer whose weights, biases included, are random (not Keras' zeros)."""
    layer = layer_class(UNITS, return_sequences=True, return_state=True, dtype=dtype, **options, **more)
    layer.build((BATCH, TIME, FEATURES))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    return layer


def _outputs_loss_and_gradients(run, weights, inputs, initial_state, output_weights):
    """`run`'s outputs and final state, and the gradients of a scalar loss of both."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs, final_state = run(inputs, initial_state)
        # Every output and every final state tensor enters the loss with its own weights.
        loss = tf.reduce_sum(outputs * output_weights) + sum(
            tf.reduce_sum(s * (i + 2.0)) for i, s in enumerate(tf.nest.flatten(final_state))
        )
    input_gradient, weight_gradients = tape.gradient(loss, (inputs, weights))
    return outputs, final_state, input_gradient, weight_gradients


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_outputs_states_and_gradients_equal_keras(case, dtype):
    _, layer_class, options, equations_class = case
    layer = _random_layer(layer_class, options, dtype, seed=1)
    cell = equations_class.from_keras(layer)
    assert cell.dtype == tf.as_dtype(dtype)

    rng = np.random.default_rng(2)
    inputs = tf.constant(rng.normal(size=(BATCH, TIME, FEATURES)), dtype)
    state_count = 2 if equations_class is LSTM else 1
    initial = [tf.constant(rng.normal(scale=0.5, size=(BATCH, UNITS)), dtype) for _ in range(state_count)]
    output_weights = tf.constant(rng.normal(size=(BATCH, TIME, UNITS)), dtype)

    def keras_run(x, state):
        outputs, *states = layer(x, initial_state=state)
        return outputs, states

    def equations_run(x, state):
        return cell.run(x, initial_state=tuple(state) if state_count == 2 else state[0])

    keras_weights = [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]
    want = _outputs_loss_and_gradients(keras_run, keras_weights, inputs, initial, output_weights)
    got = _outputs_loss_and_gradients(equations_run, cell.weights, inputs, initial, output_weights)

    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=tolerance)
    for got_state, want_state in zip(tf.nest.flatten(got[1]), want[1], strict=True):
        np.testing.assert_allclose(got_state, want_state, rtol=0, atol=tolerance)
    # Gradients are sums over time of magnitudes up to ~10: compare relative to them too.
    np.testing.assert_allclose(got[2], want[2], rtol=tolerance, atol=tolerance)
    # The per-gate gradients, fused back into Keras' layout, are Keras' gradients.
    fused = cell.to_keras_weights(got[3])
    for name, got_gradient, want_gradient in zip(("kernel", "recurrent_kernel", "bias"), fused, want[3]):
        assert got_gradient.shape == want_gradient.shape, name
        np.testing.assert_allclose(got_gradient, want_gradient, rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_weights_split_by_gate_and_fuse_back(case):
    _, layer_class, options, equations_class = case
    layer = _random_layer(layer_class, options, "float32", seed=3)
    cell = equations_class.from_keras(layer)
    for got, want in zip(cell.to_keras_weights(), layer.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    # Copies: training the Keras layer further leaves the equations' weights alone.
    layer.cell.kernel.assign(layer.cell.kernel + 1.0)
    assert not np.array_equal(cell.to_keras_weights()[0], layer.get_weights()[0])


def test_keras_gate_order_lstm_i_f_c_o():
    """Keras' LSTM kernel columns are [i, f, c, o]: a bias of 1 lands in the forget gate."""
    layer = keras.layers.LSTM(UNITS, unit_forget_bias=True)
    layer.build((None, None, FEATURES))
    cell = LSTM.from_keras(layer)
    np.testing.assert_array_equal(cell.b_f, np.ones(UNITS))
    for gate in ("i", "g", "o"):
        np.testing.assert_array_equal(getattr(cell, f"b_{gate}"), np.zeros(UNITS))


def test_keras_gru_bias_rows_are_input_then_recurrent():
    layer = keras.layers.GRU(UNITS, reset_after=True)
    layer.build((None, None, FEATURES))
    bias = np.arange(2 * 3 * UNITS, dtype="float32").reshape(2, 3 * UNITS)
    layer.cell.bias.assign(bias)
    cell = GRU.from_keras(layer)
    np.testing.assert_array_equal(cell.b_xz, bias[0, :UNITS])
    np.testing.assert_array_equal(cell.b_hg, bias[1, 2 * UNITS :])
    assert GRU.weight_names_for(reset_after=False) == ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xg", "W_hg", "b_g")


def test_lstm_run_returns_every_state_and_steps_like_run():
    layer = _random_layer(keras.layers.LSTM, {}, "float64", seed=4)
    cell = LSTM.from_keras(layer)
    x = np.random.default_rng(5).normal(size=(BATCH, TIME, FEATURES))
    outputs, (h, c), (every_h, every_c) = cell.run(x, return_states=True)
    assert tuple(every_c.shape) == (BATCH, TIME, UNITS)
    np.testing.assert_array_equal(every_h, outputs)
    np.testing.assert_array_equal(every_c[:, -1], c)
    state = cell.initial_state(BATCH)
    for t in range(TIME):
        h_t, state = cell.step(x[:, t], state)
    np.testing.assert_array_equal(h_t, h)


def test_no_bias_and_go_backwards_layers():
    layer = keras.layers.GRU(UNITS, use_bias=False, go_backwards=True, return_sequences=True)
    x = np.random.default_rng(6).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    want = layer(x)
    cell = GRU.from_keras(layer)
    assert cell.go_backwards and np.all(cell.b_hz.numpy() == 0)
    np.testing.assert_allclose(cell.run(x)[0], want, atol=1e-5)


@pytest.mark.parametrize("kind, equations_class", [("lstm", LSTM), ("gru", GRU), ("rnn", VanillaRNN)])
def test_layers_of_a_recurrent_stack(kind, equations_class):
    stack = RecurrentStack(kind, units=UNITS, num_layers=2)
    x = np.random.default_rng(7).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    want = stack(x)
    outputs = x
    for index in range(2):
        outputs, _ = equations_class.from_keras(stack, layer_index=index).run(outputs)
    np.testing.assert_allclose(outputs, want, atol=1e-5)
    single = RecurrentStack(kind, units=UNITS, num_layers=1)
    single.build((None, None, FEATURES))
    assert equations_class.from_keras(single).units == UNITS  # one layer: no index needed


def test_keras_cell_and_rnn_wrapper_are_accepted():
    cell = keras.layers.LSTMCell(UNITS)
    cell.build((None, FEATURES))
    layer = keras.layers.RNN(cell, return_sequences=True)
    x = np.random.default_rng(8).normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    np.testing.assert_allclose(LSTM.from_keras(cell).run(x)[0], layer(x), atol=1e-5)
    np.testing.assert_allclose(LSTM.from_keras(layer).run(x)[0], layer(x), atol=1e-5)


def _built(layer, features=FEATURES):
    layer.build((None, None, features))
    return layer


@pytest.mark.parametrize(
    "equations_class, layer, error, message",
    [
        (LSTM, _built(keras.layers.GRU(UNITS)), TypeError, r"`layer` must be a built keras.layers.LSTM.*received a GRU"),
        (GRU, keras.layers.Dense(UNITS), TypeError, r"keras.layers.GRUCell.*received a Dense"),
        (LSTM, keras.layers.LSTM(UNITS), ValueError, r"`layer` .* is not built"),
        (VanillaRNN, _built(keras.layers.SimpleRNN(UNITS, activation="relu")), ValueError, r"activation='relu'.*'tanh' only"),
        (LSTM, _built(keras.layers.LSTM(UNITS, recurrent_activation="hard_sigmoid")), ValueError, r"recurrent_activation='hard_sigmoid'.*'sigmoid'"),
        (GRU, _built(keras.layers.Bidirectional(keras.layers.GRU(UNITS))), TypeError, r"forward_layer"),
        (GRU, _built(RecurrentStack("gru", units=UNITS, num_layers=2)), ValueError, r"`layer_index` is needed .* 2 layers"),
        (LSTM, _built(RecurrentStack("gru", units=UNITS)), TypeError, r"RecurrentStack\('lstm'\).*received a RecurrentStack\('gru'\)"),
        (GRU, _built(RecurrentStack("gru", units=UNITS, bidirectional=True)), TypeError, r"bidirectional RecurrentStack"),
    ],
    ids=["wrong_kind", "not_recurrent", "unbuilt", "relu", "hard_sigmoid", "bidirectional", "stack_needs_index", "stack_kind", "bidirectional_stack"],
)
def test_from_keras_errors_say_what_was_expected(equations_class, layer, error, message):
    with pytest.raises(error, match=message):
        equations_class.from_keras(layer)


def test_layer_index_errors():
    stack = _built(RecurrentStack("lstm", units=UNITS, num_layers=2))
    with pytest.raises(ValueError, match=r"`layer_index` must be an integer in \[0, 2\).*layer_index=2"):
        LSTM.from_keras(stack, layer_index=2)
    with pytest.raises(ValueError, match=r"`layer_index` is for a RecurrentStack only"):
        LSTM.from_keras(_built(keras.layers.LSTM(UNITS)), layer_index=0)


def test_input_and_state_errors():
    cell = VanillaRNN.from_keras(_built(keras.layers.SimpleRNN(UNITS)))
    with pytest.raises(ValueError, match=r"`inputs` must be \[batch, time, features\] \(rank 3\); received shape \(3, 5\)"):
        cell.run(np.zeros((BATCH, FEATURES)))
    with pytest.raises(ValueError, match=r"`inputs` must have 5 features"):
        cell.run(np.zeros((BATCH, TIME, FEATURES + 1)))
    with pytest.raises(ValueError, match=r"non-zero number of time steps"):
        cell.run(np.zeros((BATCH, 0, FEATURES)))
    with pytest.raises(TypeError, match=r"`inputs` must be float32.*received float64"):
        cell.run(tf.zeros((BATCH, TIME, FEATURES), tf.float64))
    with pytest.raises(ValueError, match=r"`x_t` must be \[batch, features\]"):
        cell.step(np.zeros((BATCH, TIME, FEATURES)), cell.initial_state(BATCH))
    with pytest.raises(ValueError, match=r"`state` must be \[batch, 4\]"):
        cell.step(np.zeros((BATCH, FEATURES)), np.zeros((BATCH, UNITS + 1)))
    lstm = LSTM.from_keras(_built(keras.layers.LSTM(UNITS)))
    with pytest.raises(ValueError, match=r"`state` of an LSTM must be a pair \(h, c\)"):
        lstm.step(np.zeros((BATCH, FEATURES)), np.zeros((BATCH, UNITS)))


def test_constructor_checks_weight_names_and_shapes():
    weights = {"W_xh": np.zeros((FEATURES, UNITS)), "W_hh": np.zeros((UNITS, UNITS)), "b": np.zeros(UNITS)}
    assert VanillaRNN(weights).units == UNITS
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['bias'\]"):
        VanillaRNN({**{k: v for k, v in weights.items() if k != "b"}, "bias": np.zeros(UNITS)})
    with pytest.raises(ValueError, match=r"`weights\['W_hh'\]` must be a float64 array of shape \(4, 4\)"):
        VanillaRNN({**weights, "W_hh": np.zeros((UNITS, UNITS + 1))})


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_gates_returned_by_run_rebuild_the_states(case):
    _, layer_class, options, equations_class = case
    cell = equations_class.from_keras(_random_layer(layer_class, options, "float64", seed=5))
    inputs = tf.constant(np.random.default_rng(6).normal(size=(BATCH, TIME, FEATURES)))
    outputs, _, states, gates = cell.run(inputs, return_states=True, return_gates=True)
    plain_outputs, _ = cell.run(inputs)
    np.testing.assert_array_equal(outputs, plain_outputs)
    if equations_class is VanillaRNN:
        assert gates == {}
        return
    expected_names = {"i", "f", "o", "g"} if equations_class is LSTM else {"z", "r", "g"}
    assert set(gates) == expected_names
    assert all(tuple(value.shape) == (BATCH, TIME, UNITS) for value in gates.values())
    if equations_class is LSTM:
        h, c = states
        previous_c = tf.concat([tf.zeros_like(c[:, :1]), c[:, :-1]], axis=1)
        np.testing.assert_allclose(c, gates["f"] * previous_c + gates["i"] * gates["g"], atol=1e-12)
        np.testing.assert_allclose(h, gates["o"] * tf.tanh(c), atol=1e-12)
    else:
        previous_h = tf.concat([tf.zeros_like(states[:, :1]), states[:, :-1]], axis=1)
        np.testing.assert_allclose(
            states, gates["z"] * previous_h + (1 - gates["z"]) * gates["g"], atol=1e-12
        )
