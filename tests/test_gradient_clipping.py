import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.training import GradientClippingModel, clip_scale, global_norm


class TinyRegressor(GradientClippingModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
        self.calls_in_python = [0]  # grows only when TensorFlow (re)traces the step

    def call(self, x):
        self.calls_in_python[0] += 1
        return self.dense(x)


def make_model(clip_norm):
    model = TinyRegressor(clip_norm=clip_norm)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    model(np.zeros((1, 3), "float32"))
    return model


X = np.array([[1.0, 2.0, 3.0], [2.0, 0.0, 1.0]], "float32")
Y = np.array([[100.0], [-50.0]], "float32")


def true_gradient_norm():
    model = make_model(None)
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(Y, model(X))
        loss = tf.reduce_mean(loss)
    return float(global_norm(tape.gradient(loss, model.trainable_variables)))


def weights(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights() if w.ndim])


def test_clip_scale():
    assert float(clip_scale(tf.constant(10.0), 2.0)) == pytest.approx(0.2)
    assert float(clip_scale(tf.constant(1.0), 2.0)) == 1.0
    assert float(clip_scale(tf.constant(10.0), 0.0)) == 1.0  # clipping off
    assert np.isnan(float(clip_scale(tf.constant(np.nan), 1.0)))  # lets a loss-scale optimizer skip


def test_global_norm_skips_missing_gradients():
    assert float(global_norm([tf.constant([3.0]), None, tf.constant([4.0])])) == pytest.approx(5.0)


def test_step_is_clipped_to_the_threshold_and_the_pre_clip_norm_is_logged():
    model = make_model(clip_norm=0.5)
    before = weights(model)
    history = model.fit(X, Y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    step = np.linalg.norm(weights(model) - before)
    assert step == pytest.approx(0.5, rel=1e-4)  # SGD with lr 1 moves by the clipped norm
    assert history.history["grad_norm"][0] == pytest.approx(true_gradient_norm(), rel=1e-4)


def test_no_clipping_takes_the_full_step():
    model = make_model(clip_norm=None)
    before = weights(model)
    model.fit(X, Y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    assert np.linalg.norm(weights(model) - before) == pytest.approx(true_gradient_norm(), rel=1e-4)


def test_schedule_changes_the_threshold_without_retracing():
    model = make_model(clip_norm=0.1)
    steps = []

    class RecordStep(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.before = weights(model)

        def on_epoch_end(self, epoch, logs=None):
            steps.append(np.linalg.norm(weights(model) - self.before))

    schedule = rnn_toolkit.ClipNormSchedule({0: 0.1, 1: 0.3, 2: None})
    traces_before = model.calls_in_python[0]
    history = model.fit(
        X, Y, batch_size=2, epochs=3, verbose=0, shuffle=False, callbacks=[schedule, RecordStep()]
    )
    assert steps[0] == pytest.approx(0.1, rel=1e-4)
    assert steps[1] == pytest.approx(0.3, rel=1e-4)
    assert steps[2] > 0.3  # clipping off: the full gradient step
    assert history.history["clip_norm"] == pytest.approx([0.1, 0.3, 0.0])
    assert model.calls_in_python[0] - traces_before == 1  # one trace for all three thresholds


def test_schedule_function_and_bad_schedules():
    model = make_model(clip_norm=1.0)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[rnn_toolkit.ClipNormSchedule(lambda e: 2.0 + e)])
    assert model.clip_norm == 3.0
    with pytest.raises(ValueError, match="schedule"):
        rnn_toolkit.ClipNormSchedule(3.0)
    with pytest.raises(ValueError, match="clip_norm"):
        model.clip_norm = -1


def test_clip_norm_is_in_the_config():
    assert make_model(clip_norm=0.25).get_config()["clip_norm"] == 0.25


@pytest.mark.slow
def test_grad_norm_under_mirrored_strategy_is_that_of_the_global_batch(tmp_path):
    """Two replicas must report (and clip) the norm of the summed gradient."""
    script = textwrap.dedent(
        """
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import rnn_toolkit
        text = "abcabcabd\\n" * 50
        vocabulary = rnn_toolkit.data.CharVocabulary.from_text(text)
        x = np.random.default_rng(0).integers(2, vocabulary.size, size=(8, 12)).astype("int32")
        y = np.roll(x, -1, axis=1)
        def build():
            keras.utils.set_random_seed(0)
            return rnn_toolkit.build_char_lm(vocabulary, units=8, embedding_dim=4,
                                             dtype_policy="float32", clip_norm=1e-3)
        single = build()
        single_norm = single.fit(x, y, batch_size=8, verbose=0, shuffle=False).history["grad_norm"][0]
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            mirrored = build()
        mirrored_norm = mirrored.fit(x, y, batch_size=8, verbose=0, shuffle=False).history["grad_norm"][0]
        step_single = [a - b for a, b in zip(single.get_weights(), build().get_weights())]
        step_mirrored = [a - b for a, b in zip(mirrored.get_weights(), build().get_weights())]
        print("NORMS", single_norm, mirrored_norm)
        print("MAXDIFF", max(float(np.abs(a - b).max()) for a, b in zip(step_single, step_mirrored)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line[:4] in ("NORM", "MAXD"))
    single_norm, mirrored_norm = map(float, lines["NORMS"].split())
    assert mirrored_norm == pytest.approx(single_norm, rel=1e-4)
    assert float(lines["MAXDIFF"]) < 1e-6


def test_grad_norm_reaches_tensorboard(tmp_path):
    model = make_model(clip_norm=1.0)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[keras.callbacks.TensorBoard(str(tmp_path))])
    tags = set()
    for event_file in tmp_path.rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(event_file)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    assert "epoch_grad_norm" in tags and "epoch_loss" in tags
