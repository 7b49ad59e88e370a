"""Tests for rnn_toolkit.inspection.gradient_flow: ||dL/dh_t|| through time, the
recurrent-weight initialisations, and the clipping run; and their plots (Agg)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.inspection import (
    exploding_gradient_histories,
    gradient_norm_curves,
    gradient_ratio_sweep,
    largest_singular_value,
    model_state_gradient_norms,
    scale_recurrent_kernel,
    set_gru_update_bias,
    set_lstm_forget_bias,
    spectral_radius,
    state_gradient_norms,
)
from rnn_toolkit.layers import RecurrentStack


def stack_of(cell, units=4, features=3, seed=0):
    keras.utils.set_random_seed(seed)
    stack = RecurrentStack(cell, units=units)
    stack.build((None, None, features))
    return stack


def random_inputs(batch, length, features, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, length, features)).astype("float32")


def test_norms_have_one_entry_per_state_and_the_projection_loss_has_unit_gradient():
    norms = state_gradient_norms(stack_of("rnn"), random_inputs(2, 7, 3))
    assert sorted(norms) == ["h"] and norms["h"].shape == (8,)
    # The default loss <v, h_T> with |v| = 1: dL/dh_T is v itself.
    assert norms["h"][-1] == pytest.approx(1.0, rel=1e-5)
    lstm_norms = state_gradient_norms(stack_of("lstm"), random_inputs(2, 7, 3))
    assert sorted(lstm_norms) == ["c", "h"] and lstm_norms["c"].shape == (8,)
    assert np.all(lstm_norms["c"] > 0)  # c_T reaches the loss through h_T = o * tanh(c_T)


@pytest.mark.parametrize("a", [0.8, 1.2])
def test_a_linear_regime_rnn_scales_the_gradient_by_a_per_step(a):
    # No input, no bias, W_hh = a I and tiny activations (tanh' ~ 1): dh_t/dh_{t-1} = a I.
    cell = keras.layers.SimpleRNNCell(5)
    cell.build((None, 2))
    cell.kernel.assign(np.zeros((2, 5), "float32"))
    cell.recurrent_kernel.assign(a * np.eye(5, dtype="float32"))
    length = 12
    tiny = [[tf.constant(np.full((3, 5), 1e-4, "float32"))]]
    norms = state_gradient_norms(cell, np.zeros((3, length, 2), "float32"), initial_state=tiny)
    np.testing.assert_allclose(norms["h"] / norms["h"][-1], a ** np.arange(length, -1, -1.0), rtol=1e-3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("loss_on", ["last", "all"])
def test_agrees_with_a_gradient_tape_on_the_keras_layer(cell, loss_on):
    stack = stack_of(cell)
    inputs = random_inputs(3, 6, 3)
    projection = tf.constant(np.random.default_rng(1).standard_normal(4), tf.float32)

    def per_example_loss(outputs):  # [batch, units] or [batch, T, units]
        return tf.reduce_sum(outputs * projection, axis=list(range(1, outputs.shape.rank)))

    norms = state_gradient_norms(stack, inputs, loss_fn=per_example_loss, loss_on=loss_on)

    layer = stack.recurrent_layers[0]  # the Keras SimpleRNN / LSTM / GRU over whole sequences
    initial = [tf.zeros((3, 4)) for _ in range(2 if cell == "lstm" else 1)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(initial)
        outputs, *final = layer(inputs, initial_state=initial)
        loss = tf.reduce_sum(per_example_loss(outputs[:, -1] if loss_on == "last" else outputs))
    for name, state, final_state in zip(("h", "c"), initial, final):
        direct = tf.norm(tape.gradient(loss, state), axis=-1).numpy().mean()
        assert norms[name][0] == pytest.approx(direct, rel=1e-4)
        if loss_on == "last":
            # ... and for the final state, whose gradient the tape also gives directly.
            direct_final = tf.norm(tape.gradient(loss, final_state), axis=-1).numpy().mean()
            assert norms[name][-1] == pytest.approx(direct_final, rel=1e-4)


def test_a_forget_bias_of_one_keeps_more_gradient_on_the_cell_state():
    inputs = random_inputs(4, 20, 3)
    norms = {}
    for bias in (0.0, 1.0):
        stack = stack_of("lstm")
        set_lstm_forget_bias(stack, bias)
        norms[bias] = state_gradient_norms(stack, inputs)
    assert norms[1.0]["c"][0] > 10 * norms[0.0]["c"][0]


def test_a_stack_reports_the_layer_asked_for():
    keras.utils.set_random_seed(0)
    stack = RecurrentStack("gru", units=4, num_layers=2)
    inputs = random_inputs(2, 5, 3)
    top, bottom = (state_gradient_norms(stack, inputs, layer=layer)["h"] for layer in (-1, 0))
    assert top[-1] == pytest.approx(1.0, rel=1e-5)
    assert not np.allclose(top, bottom)
    with pytest.raises(ValueError, match="layer"):
        state_gradient_norms(stack, inputs, layer=2)


def test_bad_arguments_are_reported():
    with pytest.raises(TypeError, match="RecurrentStack"):
        state_gradient_norms(keras.layers.Dense(3), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="inputs"):
        state_gradient_norms(stack_of("rnn"), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="loss_on"):
        state_gradient_norms(stack_of("rnn"), np.zeros((1, 2, 3)), loss_on="first")
    with pytest.raises(ValueError, match="does not depend"):
        state_gradient_norms(stack_of("rnn"), np.zeros((1, 2, 3)), loss_fn=lambda outputs: tf.zeros([1]))


def test_model_adapter_matches_a_gradient_tape_on_the_char_language_model():
    keras.utils.set_random_seed(0)
    model = rnn_toolkit.build_char_lm("abc\n", cell="lstm", units=4, embedding_dim=3, dtype_policy="float32")
    ids = np.array([[2, 3, 4, 5, 2], [3, 3, 2, 4, 5]])
    targets = np.array([4, 2])
    norms = model_state_gradient_norms(model, ids, targets)
    initial = [tf.zeros((2, 4)), tf.zeros((2, 4))]
    with tf.GradientTape() as tape:
        tape.watch(initial)
        logits = model(ids, initial_state=[initial])
        loss = tf.reduce_sum(
            keras.losses.sparse_categorical_crossentropy(targets, logits[:, -1], from_logits=True)
        )
    direct = [tf.norm(g, axis=-1).numpy().mean() for g in tape.gradient(loss, initial)]
    assert [norms["h"][0], norms["c"][0]] == pytest.approx(direct, rel=1e-4)
    with pytest.raises(TypeError, match="recurrent"):
        model_state_gradient_norms(keras.Sequential(), ids, targets)


def test_spectral_radius_and_largest_singular_value():
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert spectral_radius(2 * rotation) == pytest.approx(2.0)
    shear = np.array([[1.0, 10.0], [0.0, 1.0]])
    assert spectral_radius(shear) == pytest.approx(1.0)
    assert largest_singular_value(shear) > 10.0
    with pytest.raises(ValueError, match="square"):
        spectral_radius(np.zeros((2, 3)))


@pytest.mark.parametrize("target", [{"spectral_radius": 0.9}, {"spectral_radius": 1.5}, {"singular_value": 0.7}])
def test_scale_recurrent_kernel_hits_the_target(target):
    keras.utils.set_random_seed(0)
    layer = keras.layers.SimpleRNN(6, recurrent_initializer="glorot_uniform")  # not orthogonal
    layer.build((None, None, 2))
    before = layer.cell.recurrent_kernel.numpy()
    (factor,) = scale_recurrent_kernel(layer, **target)
    after = layer.cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(after, factor * before, rtol=1e-6)
    measure = spectral_radius if "spectral_radius" in target else largest_singular_value
    assert measure(after) == pytest.approx(next(iter(target.values())), rel=1e-5)


def test_scale_recurrent_kernel_rescales_every_layer_of_a_stack_and_rejects_the_rest():
    keras.utils.set_random_seed(0)
    stack = RecurrentStack("rnn", units=4, num_layers=2)
    stack.build((None, None, 3))
    assert len(scale_recurrent_kernel(stack, spectral_radius=1.3)) == 2
    for layer in stack.recurrent_layers:
        assert spectral_radius(layer.cell.recurrent_kernel) == pytest.approx(1.3, rel=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        scale_recurrent_kernel(stack, spectral_radius=1.0, singular_value=1.0)
    with pytest.raises(ValueError, match="'rnn' stack"):
        scale_recurrent_kernel(stack_of("lstm"), spectral_radius=1.0)
    with pytest.raises(ValueError, match="build"):
        scale_recurrent_kernel(keras.layers.SimpleRNNCell(3), spectral_radius=1.0)
    with pytest.raises(TypeError, match="SimpleRNNCell"):
        scale_recurrent_kernel(keras.layers.GRUCell(3), spectral_radius=1.0)


def test_set_lstm_forget_bias_changes_only_the_forget_gate():
    stack = stack_of("lstm", units=3)
    set_lstm_forget_bias(stack, 2.5)
    bias = stack.recurrent_layers[0].cell.bias.numpy()
    np.testing.assert_array_equal(bias[3:6], 2.5)
    np.testing.assert_array_equal(np.delete(bias, range(3, 6)), 0.0)
    with pytest.raises(ValueError, match="'lstm' stack"):
        set_lstm_forget_bias(stack_of("gru"), 1.0)


def test_set_gru_update_bias_opens_the_update_gate():
    stack = stack_of("gru", units=3)
    stack.recurrent_layers[0].cell.bias.assign(np.ones((2, 9), "float32"))
    set_gru_update_bias(stack, 3.0)
    bias = stack.recurrent_layers[0].cell.bias.numpy()
    np.testing.assert_array_equal(bias[:, :3].sum(0), 3.0)  # input + recurrent bias of z
    np.testing.assert_array_equal(bias[:, 3:], 1.0)  # reset gate and candidate untouched
    cell = keras.layers.GRUCell(2, reset_after=False)
    cell.build((None, 3))
    set_gru_update_bias(cell, -1.0)
    assert cell.bias.numpy().tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0]


def test_sweep_records_and_the_linear_regime():
    table = gradient_ratio_sweep(lags=(2, 4), spectral_radii=(0.5, 2.0), lstm_forget_biases=(1.0,),
                                 gru_update_biases=(0.0, 3.0), units=4, features=2, batch_size=2,
                                 input_scale=0.0)
    assert [(r["configuration"], r["lag"]) for r in table] == [
        ("RNN radius 0.5", 2), ("RNN radius 0.5", 4), ("RNN radius 2", 2), ("RNN radius 2", 4),
        ("LSTM forget bias 1", 2), ("LSTM forget bias 1", 4), ("GRU update bias 0", 2), ("GRU update bias 0", 4),
        ("GRU update bias 3", 2), ("GRU update bias 3", 4),
    ]
    # A GRU that starts by keeping its state keeps more of the gradient.
    gru = {(r["gate_bias"], r["lag"]): r["ratio_h"] for r in table if r["cell"] == "gru"}
    assert gru[3.0, 4] > gru[0.0, 4]
    # Zero inputs keep a vanilla RNN at the origin, where the ratio is exactly radius ** T.
    ratios = [r["ratio_h"] for r in table if r["cell"] == "rnn"]
    assert ratios == pytest.approx([0.25, 0.0625, 4.0, 16.0], rel=1e-4)
    assert all(r["ratio_c"] is None for r in table if r["cell"] != "lstm")
    assert all(r["ratio_c"] > 0 for r in table if r["cell"] == "lstm")
    assert "RNN radius 0.5" in str(table).splitlines()[2]


def test_curves_cover_every_configuration():
    curves = gradient_norm_curves(4, spectral_radii=(1.0,), lstm_forget_biases=(0.0,), gru_update_biases=(),
                                  units=3)
    assert list(curves) == ["RNN radius 1", "LSTM forget bias 0"]
    assert curves["LSTM forget bias 0"]["c"].shape == (5,)


def test_exploding_gradient_histories_record_every_step_from_the_same_start():
    runs = exploding_gradient_histories(clip_norms=(None, 0.5), lag=3, units=4, steps=3, batch_size=4)
    assert list(runs) == ["no clipping", "clip 0.5"]
    for run in runs.values():
        assert len(run["loss"]) == len(run["grad_norm"]) == len(run["accuracy"]) == 3
    # Same weights and batch at the first step: the same loss and pre-clip norm.
    assert runs["no clipping"]["loss"][0] == pytest.approx(runs["clip 0.5"]["loss"][0], rel=1e-5)
    assert runs["no clipping"]["grad_norm"][0] == pytest.approx(runs["clip 0.5"]["grad_norm"][0], rel=1e-5)
    assert runs["clip 0.5"]["clip_norm"] == 0.5 and runs["no clipping"]["clip_norm"] is None


# --- Plots ----------------------------------------------------------------------------------

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from rnn_toolkit.plots import plot_clipping_histories, plot_gradient_norms, plot_gradient_ratios  # noqa: E402


def test_plot_gradient_norms_draws_distance_on_a_log_scale_and_skips_underflow():
    ax = plot_gradient_norms(
        {"RNN": np.array([0.0, 0.01, 0.1, 1.0]), "LSTM": {"h": np.ones(4), "c": np.ones(4)}},
        ax=Figure().add_subplot(), title="T = 3",
    )
    rnn, lstm_h, lstm_c = ax.get_lines()
    assert rnn.get_xdata().tolist() == [3, 2, 1, 0]
    assert np.isnan(rnn.get_ydata()[0])  # an underflowed 0 is not drawn
    assert lstm_c.get_linestyle() == "--" and lstm_h.get_color() == lstm_c.get_color()
    assert ax.get_yscale() == "log" and ax.get_title() == "T = 3"


def test_plot_gradient_ratios_one_line_per_lag():
    table = [{"spectral_radius": r, "lag": T, "ratio_h": r ** T} for T in (10, 50) for r in (0.9, 1.0, 1.1)]
    table.append({"spectral_radius": None, "lag": 10, "ratio_h": 1e-3})  # an LSTM record: skipped
    ax = plot_gradient_ratios(table, ax=Figure().add_subplot())
    lines = ax.get_lines()
    assert [line.get_label() for line in lines[:2]] == ["T = 10", "T = 50"]
    assert lines[1].get_xdata().tolist() == [0.9, 1.0, 1.1]
    with pytest.raises(ValueError, match="singular_value"):
        plot_gradient_ratios(table, x="singular_value")


def test_plot_clipping_histories_two_panels_with_the_threshold():
    figure = plot_clipping_histories({
        "no clipping": {"loss": [1.0, 2.0, float("nan")], "grad_norm": [1.0, 50.0, 3.0], "clip_norm": None},
        "clip 1": {"loss": [1.0, 0.8, 0.5], "grad_norm": [1.0, 50.0, 0.5], "clip_norm": 1.0},
    }, title="exploding", smoothing=2)
    loss_ax, norm_ax = figure.axes
    assert len(loss_ax.get_lines()) == 2
    assert [line.get_label() for line in norm_ax.get_lines()] == ["no clipping", "clip 1", "clip 1: threshold"]
    assert norm_ax.get_yscale() == "log"
