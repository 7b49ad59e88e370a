import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

# Keras' TF backend module that decides the cuDNN dispatch (the package re-exports a
# function under the same name, hence the explicit import).
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

from rnn_toolkit.layers import RecurrentStack, cudnn_conditions


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_call_shapes_and_state_structure(cell):
    stack = RecurrentStack(cell, units=3, num_layers=2)
    outputs, states = stack(np.zeros((2, 5, 4), "float32"), return_state=True)
    assert tuple(outputs.shape) == (2, 5, 3)
    assert len(states) == 2
    assert all(len(layer) == (2 if cell == "lstm" else 1) for layer in states)
    assert all(tuple(s.shape) == (2, 3) for layer in states for s in layer)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_reproduces_call(cell):
    """Decoding step by step must give exactly what the sequence call gives."""
    stack = RecurrentStack(cell, units=4, num_layers=2)
    x = np.random.default_rng(0).normal(size=(3, 6, 5)).astype("float32")
    outputs, final = stack(x, return_state=True)
    states = stack.get_initial_state(3)
    for t in range(6):
        step_out, states = stack.step(tf.constant(x[:, t]), states)
        np.testing.assert_allclose(step_out, outputs[:, t], atol=1e-5)
    for got, want in zip(tf.nest.flatten(states), tf.nest.flatten(final)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_initial_state_is_used():
    stack = RecurrentStack("gru", units=4)
    x = np.ones((1, 3, 2), "float32")
    zero = stack(x)
    other = stack(x, initial_state=[[tf.ones((1, 4))]])
    assert not np.allclose(zero, other)


def test_last_output_respects_right_padded_mask():
    stack = RecurrentStack("lstm", units=4, return_sequences=False)
    x = np.random.default_rng(1).normal(size=(1, 5, 2)).astype("float32")
    padded = np.concatenate([x[:, :3], np.zeros((1, 2, 2), "float32")], axis=1)
    mask = np.array([[True, True, True, False, False]])
    np.testing.assert_allclose(stack(padded, mask=mask), stack(x[:, :3]), atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_defaults_are_cudnn_eligible(cell):
    stack = RecurrentStack(cell, units=4, num_layers=2, dropout=0.3)
    stack.build((None, None, 3))
    assert stack.cudnn_eligible, stack.cudnn_conditions()


def test_vanilla_rnn_has_no_cudnn_kernel():
    stack = RecurrentStack("rnn", units=4)
    stack.build((None, None, 3))
    assert not stack.cudnn_eligible
    (conditions,) = stack.cudnn_conditions().values()
    assert conditions == {**conditions, "has_cudnn_kernel": False}


def test_lstm_forget_gate_bias_starts_at_one():
    stack = RecurrentStack("lstm", units=3)
    stack.build((None, None, 2))
    bias = keras.ops.convert_to_numpy(stack.recurrent_layers[0].cell.bias)
    np.testing.assert_array_equal(bias[3:6], np.ones(3))  # gates: i, f, c, o


@pytest.mark.parametrize(
    "layer, broken",
    [
        (keras.layers.LSTM(2, activation="relu"), "activation_is_tanh"),
        (keras.layers.LSTM(2, recurrent_activation="hard_sigmoid"), "recurrent_activation_is_sigmoid"),
        (keras.layers.LSTM(2, use_bias=False), "use_bias"),
        (keras.layers.LSTM(2, unroll=True), "not_unrolled"),
        (keras.layers.LSTM(2, recurrent_dropout=0.1), "no_recurrent_dropout"),
        (keras.layers.LSTM(2, use_cudnn=False), "use_cudnn_not_false"),
        (keras.layers.GRU(2, reset_after=False), "gru_reset_after"),
        (keras.layers.SimpleRNN(2), "has_cudnn_kernel"),
    ],
)
def test_each_cudnn_condition_is_detected(layer, broken):
    conditions = cudnn_conditions(layer)
    assert conditions[broken] is False
    others = {k: v for k, v in conditions.items() if k != broken}
    if not isinstance(layer, keras.layers.SimpleRNN):
        assert all(others.values()), others


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_conditions_agree_with_keras_dispatch(activation, use_bias):
    """Our check must say what Keras' own TF backend decides (minus the GPU check)."""
    layer = keras.layers.LSTM(2, activation=activation, use_bias=use_bias)
    keras_says = keras_tf_rnn._do_lstm_arguments_support_cudnn(
        layer.cell.activation, layer.cell.recurrent_activation, layer.unroll, layer.cell.use_bias
    )
    assert all(cudnn_conditions(layer).values()) == keras_says


def test_bidirectional_doubles_features_and_has_no_step():
    stack = RecurrentStack("gru", units=3, bidirectional=True)
    outputs = stack(np.zeros((2, 4, 2), "float32"))
    assert tuple(outputs.shape) == (2, 4, 6)
    assert stack.cudnn_eligible
    with pytest.raises(ValueError, match="bidirectional"):
        stack.step(tf.zeros((2, 2)), stack.get_initial_state(2))


def test_config_round_trip():
    stack = RecurrentStack("gru", units=5, num_layers=3, dropout=0.2, bidirectional=True)
    clone = RecurrentStack.from_config(stack.get_config())
    assert clone.get_config() == stack.get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"cell": "transformer"}, "cell"),
        ({"units": 0}, "units"),
        ({"units": 2.5}, "units"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_cudnn": "yes"}, "use_cudnn"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        RecurrentStack(**{"cell": "lstm", "units": 2, **kwargs})


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_full_precision_step_under_mixed_precision(cell):
    """The decoding step can run in float32 on a bfloat16 stack, reading the same weights."""
    stack = RecurrentStack(cell, units=4, num_layers=2, dtype="mixed_bfloat16")
    x = np.random.default_rng(2).normal(size=(2, 3, 5)).astype("float32")
    outputs = stack(x)
    states = [[tf.cast(s, tf.float32) for s in layer] for layer in stack.get_initial_state(2)]
    for t in range(3):
        step_out, states = stack.step(tf.constant(x[:, t]), states, full_precision=True)
        assert step_out.dtype == tf.float32
        # bfloat16 keeps ~3 significant digits: the float32 step agrees to that.
        np.testing.assert_allclose(step_out, tf.cast(outputs[:, t], tf.float32), atol=3e-2)
    reference = RecurrentStack.from_config({**stack.get_config(), "dtype": "float32"})
    reference.build((None, None, 5))
    reference.set_weights(stack.get_weights())
    states = [[tf.zeros((2, 4))] * len(layer) for layer in stack.get_initial_state(2)]
    exact = reference(x)
    for t in range(3):
        step_out, states = stack.step(tf.constant(x[:, t]), states, full_precision=True)
        np.testing.assert_allclose(step_out, exact[:, t], atol=1e-5)
