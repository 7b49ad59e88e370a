"""The NumPy min-char-rnn: its hand-written gradients, training, sampling and seeding."""

import numpy as np
import pytest

from rnn_toolkit.cells import MinCharRNN, MinCharVocabulary, gradient_check

TEXT = "to be or not to be, that is the question. "
HIDDEN = 8


def _model_with_random_biases(seed=0, init_scale=0.1):
    """A small model whose biases are nonzero too, so that their gradients are checked."""
    model = MinCharRNN(MinCharVocabulary.from_text(TEXT), hidden_size=HIDDEN, seed=seed, init_scale=init_scale)
    rng = np.random.default_rng(seed + 1)
    for name in ("b_h", "b_y"):
        model.parameters[name][:] = rng.normal(scale=init_scale, size=model.parameters[name].shape)
    return model


def _window(model, length=12):
    ids = model.vocabulary.encode(TEXT)
    return ids[:length], ids[1 : length + 1]


@pytest.mark.parametrize("init_scale", [0.01, 0.1])
def test_gradient_check_every_parameter(init_scale):
    model = _model_with_random_biases(init_scale=init_scale)
    inputs, targets = _window(model)
    h_prev = np.tanh(np.random.default_rng(2).normal(size=HIDDEN))  # the carried state is used too
    before = {name: p.copy() for name, p in model.parameters.items()}
    errors = gradient_check(model, inputs, targets, h_prev)
    assert sorted(errors) == sorted(MinCharRNN.PARAMETER_NAMES)
    assert all(error < 1e-6 for error in errors.values()), errors
    for name, p in model.parameters.items():
        np.testing.assert_array_equal(p, before[name])  # perturbations undone exactly


def test_gradient_check_catches_a_wrong_backward_pass(monkeypatch):
    model = _model_with_random_biases()
    inputs, targets = _window(model)
    right = MinCharRNN.loss_and_gradients

    def one_percent_off_in_W_hh(self, *args, **kwargs):
        loss, grads, h = right(self, *args, **kwargs)
        grads["W_hh"] = grads["W_hh"] * 1.01
        return loss, grads, h

    monkeypatch.setattr(MinCharRNN, "loss_and_gradients", one_percent_off_in_W_hh)
    errors = gradient_check(model, inputs, targets)
    assert errors["W_hh"] > 1e-3
    assert errors["W_xh"] < 1e-6


def test_gradient_check_random_entries_and_per_entry_measure():
    model = _model_with_random_biases()
    inputs, targets = _window(model)
    sampled = gradient_check(model, inputs, targets, num_checks=5, seed=3)
    assert max(sampled.values()) < 1e-6
    per_entry = gradient_check(model, inputs, targets, num_checks=5, seed=3, per_entry=True)
    assert sorted(per_entry) == sorted(sampled)


def test_clipping_bounds_every_gradient_entry():
    model = _model_with_random_biases(init_scale=2.0)
    inputs, targets = _window(model, length=30)
    _, exact, _ = model.loss_and_gradients(inputs, targets)
    _, clipped, _ = model.loss_and_gradients(inputs, targets, clip=0.5)
    assert max(np.abs(g).max() for g in exact.values()) > 0.5
    assert max(np.abs(g).max() for g in clipped.values()) <= 0.5


def test_training_memorises_a_short_text_and_samples_its_characters():
    vocabulary = MinCharVocabulary.from_text(TEXT)
    model = MinCharRNN(vocabulary, hidden_size=24, seed=0)
    ids = vocabulary.encode(TEXT)
    loss_before = model.loss(ids[:-1], ids[1:]) / (len(ids) - 1)
    history = model.train(TEXT * 3, steps=400, seq_length=16, learning_rate=0.1)
    loss_after = model.loss(ids[:-1], ids[1:]) / (len(ids) - 1)
    assert history.shape == (400,)
    assert loss_before == pytest.approx(np.log(vocabulary.size), rel=0.05)  # uniform guessing
    assert loss_after < 0.1  # nats per character: next to memorised (2.7 before)
    assert history[-1] < history[0]
    sample = model.sample(None, ids[0], n=40, rng=0)
    assert len(sample) == 40 and all(0 <= ix < vocabulary.size for ix in sample)
    assert set(vocabulary.decode(sample)) <= set(TEXT)


def test_seeded_runs_are_reproducible():
    def run(seed):
        model = MinCharRNN(MinCharVocabulary.from_text(TEXT), hidden_size=HIDDEN, seed=seed)
        history = model.train(TEXT, steps=20, seq_length=10)
        return history, model.sample(None, 0, n=20, rng=7)

    first, second, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
    assert not np.array_equal(first[0], other[0])


def test_vocabulary_round_trip_and_errors():
    vocabulary = MinCharVocabulary.from_text(TEXT)
    assert vocabulary.chars == "".join(sorted(set(TEXT)))
    assert vocabulary.decode(vocabulary.encode(TEXT)) == TEXT
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['Z'\]"):
        vocabulary.encode("Z")
    with pytest.raises(ValueError, match=r"`text` must be a non-empty string"):
        MinCharVocabulary.from_text("")


def test_argument_errors():
    vocabulary = MinCharVocabulary.from_text(TEXT)
    with pytest.raises(TypeError, match=r"`vocabulary` must be a MinCharVocabulary"):
        MinCharRNN(len(vocabulary.chars))
    with pytest.raises(ValueError, match=r"`hidden_size` must be a positive integer"):
        MinCharRNN(vocabulary, hidden_size=0)
    model = MinCharRNN(vocabulary, hidden_size=HIDDEN)
    with pytest.raises(ValueError, match=r"at least seq_length \+ 1 = 26 characters; received 5"):
        model.train(TEXT[:5], steps=1, seq_length=25)
    with pytest.raises(ValueError, match=r"`h_prev` must have shape \(8,\)"):
        model.loss([0, 1], [1, 2], h_prev=np.zeros(3))
    with pytest.raises(ValueError, match=r"`targets` must be character ids in \[0, "):
        model.loss([0, 1], [1, 99])
    with pytest.raises(ValueError, match=r"same length"):
        model.loss_and_gradients([0, 1, 2], [1, 2])
