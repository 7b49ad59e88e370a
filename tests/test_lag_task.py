"""Tests for the lag task (rnn_toolkit.data.lag_task), the equal-budget accuracy sweep over
it (rnn_toolkit.inspection.long_range_memory) and its plot (Agg)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import lag_task_batches, lag_task_examples
from rnn_toolkit.inspection import lag_accuracy


@pytest.mark.parametrize("num_distractors", [0, 3])
def test_the_target_is_the_first_step_and_the_lag_is_exact(num_distractors):
    inputs, targets = lag_task_examples(50, lag=7, num_symbols=5, num_distractors=num_distractors, seed=1)
    assert inputs.shape == (50, 8, 5 + num_distractors) and inputs.dtype == np.float32
    assert targets.shape == (50,) and targets.dtype == np.int32
    np.testing.assert_array_equal(inputs[:, 0].argmax(-1), targets)
    assert inputs[:, 0].sum() == 50  # one symbol at step 0, no distractor
    # The symbol channels stay silent for exactly `lag` steps after it.
    assert not inputs[:, 1:, :5].any()
    if num_distractors:
        np.testing.assert_array_equal(inputs[:, 1:].sum(-1), 1.0)  # one distractor per step
        assert set(np.unique(inputs[:, 1:, 5:].argmax(-1))) == {0, 1, 2}
    else:
        assert not inputs[:, 1:].any()
    assert set(np.unique(targets)) == set(range(5))


def test_examples_are_seeded():
    first, again, other = (lag_task_examples(20, 4, seed=seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(lag=0), "lag"),
        (dict(lag=2.5), "lag"),
        (dict(lag=3, num_symbols=1), "num_symbols"),
        (dict(lag=3, num_symbols=True), "num_symbols"),
        (dict(lag=3, num_distractors=-1), "num_distractors"),
        (dict(lag=3, train_examples=8, batch_size=16), "at least `batch_size`"),
        (dict(lag=3, validation_examples=0), "validation_examples"),
        (dict(lag=3, seed="zero"), "seed"),
    ],
)
def test_bad_arguments_are_reported(arguments, message):
    with pytest.raises(ValueError, match=message):
        lag_task_batches(**arguments)


def test_the_pipelines_shapes_options_and_held_out_examples():
    train, validation = lag_task_batches(4, num_symbols=3, num_distractors=2, train_examples=40,
                                         validation_examples=10, batch_size=8, seed=3)
    assert train.element_spec[0].shape.as_list() == [8, 5, 5]  # static: drop_remainder
    assert int(train.cardinality()) == 5 and int(validation.cardinality()) == 2
    assert train.options().autotune.enabled is False and validation.options().autotune.enabled is False
    validation_inputs = np.concatenate([x for x, _ in validation.as_numpy_iterator()])
    train_inputs = np.concatenate([x for x, _ in train.as_numpy_iterator()])
    assert len(validation_inputs) == 10
    # Held-out sequences come from another seed stream than the training ones.
    np.testing.assert_array_equal(validation_inputs, lag_task_examples(10, 4, num_symbols=3, num_distractors=2,
                                                                       seed=[3, 1])[0])
    assert len(train_inputs) == 40


def test_held_out_sequences_differ_from_the_training_ones():
    train, validation = lag_task_batches(12, num_symbols=3, num_distractors=3, train_examples=64,
                                         validation_examples=32, batch_size=16)
    train_inputs = np.concatenate([x for x, _ in train.as_numpy_iterator()])
    for row in np.concatenate([x for x, _ in validation.as_numpy_iterator()]):
        assert not (train_inputs == row).all(axis=(1, 2)).any()


def test_the_pipeline_replays_the_same_batches_for_the_same_seeds():
    def first_targets():
        tf.random.set_seed(0)
        train, _ = lag_task_batches(3, train_examples=64, batch_size=16, seed=5)
        return next(iter(train))[1].numpy()

    np.testing.assert_array_equal(first_targets(), first_targets())


def test_lag_accuracy_returns_one_record_per_cell_and_lag():
    table = lag_accuracy(cells=("rnn", "LSTM"), lags=(2, 3), units=3, steps=2, batch_size=4,
                         train_examples=8, validation_examples=6, num_symbols=3, num_distractors=1)
    assert [(record["cell"], record["lag"]) for record in table] == [
        ("rnn", 2), ("lstm", 2), ("rnn", 3), ("lstm", 3)
    ]
    for record in table:
        assert record["chance"] == pytest.approx(1 / 3) and record["steps"] == 2
        assert 0.0 <= record["accuracy"] <= 1.0 and record["ratio_h"] > 0
    # Same units, different cells: an LSTM has 4 gates' weights where the RNN has one.
    rnn, lstm = table[0]["parameters"], table[1]["parameters"]
    assert (rnn, lstm) == (3 * 4 + 3 * 3 + 3 + 3 * 3 + 3, 4 * (3 * 4 + 3 * 3 + 3) + 3 * 3 + 3)
    assert [record["gate_bias"] for record in table[:2]] == [None, 3.0]  # the RNN has no gate
    header = str(table).splitlines()[0].split()
    assert header[:4] == ["cell", "gate_bias", "lag", "accuracy"]
    with pytest.raises(ValueError, match="cell"):
        lag_accuracy(cells=("transformer",))


def test_an_lstm_learns_lag_5_in_a_few_seconds():
    (record,) = lag_accuracy(cells=("lstm",), lags=(5,), units=16, steps=150, learning_rate=1e-2,
                             train_examples=1024, validation_examples=128)
    assert record["accuracy"] > 0.9  # chance: 0.25


# --- Plot -----------------------------------------------------------------------------------

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from rnn_toolkit.plots import plot_lag_accuracy  # noqa: E402


def test_plot_lag_accuracy_one_line_per_cell_and_chance():
    records = [
        {"cell": cell, "lag": lag, "accuracy": accuracy, "chance": 0.25}
        for cell, accuracies in {"rnn": (1.0, 0.6, 0.25), "gru": (1.0, 1.0, 0.9)}.items()
        for lag, accuracy in zip((40, 5, 10), accuracies)
    ]
    ax = plot_lag_accuracy(records, ax=Figure().add_subplot(), title="equal budget")
    rnn, gru, chance = ax.get_lines()
    assert rnn.get_label() == "RNN" and rnn.get_xdata().tolist() == [5, 10, 40]
    assert rnn.get_ydata().tolist() == [0.6, 0.25, 1.0]
    assert chance.get_label() == "chance" and list(chance.get_ydata()) == [0.25, 0.25]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["5", "10", "40"]
    with pytest.raises(ValueError, match="empty"):
        plot_lag_accuracy([])


def test_plot_lag_accuracy_averages_seeds():
    records = [{"cell": "lstm", "lag": 20, "accuracy": accuracy} for accuracy in (1.0, 0.5)]
    ax = plot_lag_accuracy(records, ax=Figure().add_subplot())
    (line,) = ax.get_lines()  # no chance given: no chance line
    assert line.get_ydata().tolist() == [0.75]
    assert len(ax.collections[0].get_offsets()) == 2  # each seed as a dot
