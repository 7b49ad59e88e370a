"""Tests for rnn_toolkit.training.KeepBestWeights."""

import json

import keras
import numpy as np
import pytest

from rnn_toolkit.training import KeepBestWeights


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def _set_kernel(model, value):
    kernel, bias = model.get_weights()
    model.set_weights([np.full_like(kernel, value), bias])


def _kernel(model):
    return float(model.get_weights()[0][0, 0])


def _callback(path, model, **kwargs):
    callback = KeepBestWeights(path, **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    return callback


def test_saves_on_improvement_only_and_records_the_best(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = _model()
    callback = _callback(path, model, monitor="val_loss")
    _set_kernel(model, 1.0)
    callback.on_epoch_end(0, {"val_loss": 0.5})
    _set_kernel(model, 2.0)
    callback.on_epoch_end(1, {"val_loss": 0.7})  # worse: not saved
    assert json.loads((tmp_path / "best.weights.h5.json").read_text()) == {"best": 0.5, "epoch": 0}
    _set_kernel(model, 3.0)
    callback.on_epoch_end(2, {"val_loss": 0.25})
    assert (callback.best, callback.best_epoch) == (0.25, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5", "best.weights.h5.json"]
    _set_kernel(model, 9.0)
    callback.on_train_end()
    assert _kernel(model) == 3.0


def test_mode_max_and_patience_stop_training(tmp_path):
    model = _model()
    callback = _callback(
        tmp_path / "b.weights.h5", model, monitor="val_accuracy", mode="max", patience=2
    )
    for epoch, accuracy in enumerate([0.6, 0.8, 0.7]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
        assert not model.stop_training
    assert callback.best_epoch == 1
    callback.on_epoch_end(3, {"val_accuracy": 0.8})  # equal is not better
    assert model.stop_training


def test_without_patience_never_stops(tmp_path):
    model = _model()
    callback = _callback(tmp_path / "b.weights.h5", model)
    for epoch in range(6):
        callback.on_epoch_end(epoch, {"val_loss": 1.0 + epoch})
    assert not model.stop_training and callback.best_epoch == 0


def test_a_resumed_run_knows_its_best_epoch(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = _model()
    first = _callback(path, model, patience=2)
    _set_kernel(model, 1.0)
    first.on_epoch_end(0, {"val_loss": 0.4})
    _set_kernel(model, 2.0)
    first.on_epoch_end(1, {"val_loss": 0.6})
    # The run is killed here; a new process resumes from epoch 2 with later weights.
    model = _model()
    _set_kernel(model, 5.0)
    resumed = _callback(path, model, patience=2)
    assert (resumed.best, resumed.best_epoch) == (0.4, 0)
    resumed.on_epoch_end(2, {"val_loss": 0.5})  # better than epoch 1, not than the record
    assert model.stop_training
    resumed.on_train_end()
    assert _kernel(model) == 1.0


def test_missing_metric_names_it(tmp_path):
    callback = _callback(tmp_path / "b.weights.h5", _model(), monitor="val_accuracy")
    with pytest.raises(ValueError, match="'val_accuracy'.*'loss'"):
        callback.on_epoch_end(0, {"loss": 1.0})


def test_bad_arguments():
    with pytest.raises(ValueError, match="`path`"):
        KeepBestWeights("best.h5")
    with pytest.raises(ValueError, match="`mode`"):
        KeepBestWeights("best.weights.h5", mode="up")


def test_in_fit_stops_and_restores_the_best_epoch(tmp_path):
    # Full-batch gradient descent on a linear problem: the loss falls every epoch, so
    # watching it with mode="max" makes epoch 0 the best and stops after `patience`.
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    y = x @ np.array([[1.0], [-2.0]], dtype="float32")
    model = _model()
    kernels = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: kernels.append(model.get_weights()[0].copy())
    )
    keep = KeepBestWeights(tmp_path / "best.weights.h5", monitor="val_loss", mode="max", patience=2)
    history = model.fit(
        x, y, validation_data=(x, y), batch_size=16, epochs=10, verbose=0,
        callbacks=[record, keep],
    )
    losses = history.history["val_loss"]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert keep.best_epoch == 0
    np.testing.assert_array_equal(model.get_weights()[0], kernels[0])
    assert not np.array_equal(kernels[0], kernels[-1])
