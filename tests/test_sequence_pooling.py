"""Tests for rnn_toolkit.layers.SequencePooling and rnn_toolkit.layers.BagOfWords."""

import keras
import numpy as np
import pytest

from rnn_toolkit.layers import POOLING_METHODS, BagOfWords, SequencePooling

# Two sequences of 4 steps with 3 features; the first has 2 valid steps, the second 4.
STATES = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
MASK = np.array([[True, True, False, False], [True, True, True, True]])


def _poolers():
    keras.utils.set_random_seed(0)
    return {method: SequencePooling(method, attention_units=4) for method in POOLING_METHODS}


def test_mean_and_max_pool_only_valid_steps():
    poolers = _poolers()
    mean = poolers["mean"](STATES, mask=MASK).numpy()
    maximum = poolers["max"](STATES, mask=MASK).numpy()
    np.testing.assert_allclose(mean[0], STATES[0, :2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean[1], STATES[1].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(maximum[0], STATES[0, :2].max(axis=0))
    np.testing.assert_allclose(maximum[1], STATES[1].max(axis=0))


@pytest.mark.parametrize("method", POOLING_METHODS)
def test_values_at_masked_steps_cannot_change_the_output(method):
    pool = _poolers()[method]
    changed = STATES.copy()
    changed[0, 2:] = 1e3  # larger than anything valid: max pooling would pick it
    expected = pool(STATES, mask=MASK).numpy()
    assert pool(changed, mask=MASK).shape == (2, 3)
    np.testing.assert_allclose(pool(changed, mask=MASK).numpy(), expected, rtol=1e-6)
    # ... while without the mask they do.
    assert not np.allclose(pool(changed).numpy()[0], expected[0])


def test_attention_weights_sum_to_one_over_valid_steps():
    pool = _poolers()["attention"]
    pooled, weights = pool(STATES, mask=MASK, return_weights=True)
    weights = weights.numpy()
    assert weights.shape == (2, 4)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert np.all(weights[~MASK] == 0.0) and np.all(weights[MASK] > 0.0)
    np.testing.assert_allclose(
        pooled.numpy(), np.einsum("bt,btf->bf", weights, STATES), rtol=1e-5, atol=1e-6
    )
    assert pool(STATES, mask=MASK, return_weights=False).shape == (2, 3)
    assert _poolers()["mean"](STATES, return_weights=True)[1] is None


def test_mask_arrives_from_an_embedding_and_stops_here():
    keras.utils.set_random_seed(0)
    ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(5, 3, mask_zero=True)(ids)
    pooled = SequencePooling("max")(embedded)
    model = keras.Model(ids, keras.layers.Dense(1)(pooled))
    padded = model(np.array([[2, 3, 0, 0]])).numpy()
    assert np.allclose(padded, model(np.array([[2, 3]])).numpy(), atol=1e-6)
    assert SequencePooling("max").compute_mask(STATES, MASK) is None


def test_config_roundtrip_and_bad_method():
    pool = SequencePooling("attention", attention_units=4, name="pool")
    config = pool.get_config()
    assert (config["method"], config["attention_units"]) == ("attention", 4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(pool))
    assert isinstance(restored, SequencePooling)
    assert (restored.method, restored.attention_units, restored.name) == ("attention", 4, "pool")
    with pytest.raises(ValueError, match="`method`"):
        SequencePooling("median")


def test_attention_weights_survive_keras_saving(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4, 3))
    model = keras.Model(inputs, SequencePooling("attention", attention_units=4)(inputs))
    path = tmp_path / "pool.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(STATES).numpy(), model(STATES).numpy(), rtol=1e-6)


# --- BagOfWords ------------------------------------------------------------------------------


def test_bag_of_words_binary_and_count_never_count_padding():
    ids = np.array([[2, 2, 4, 0, 0], [0, 0, 0, 0, 1]])
    binary = BagOfWords(5)(ids).numpy()
    count = BagOfWords(5, mode="count")(ids).numpy()
    assert binary.tolist() == [[0, 0, 1, 0, 1], [0, 1, 0, 0, 0]]
    assert count.tolist() == [[0, 0, 2, 0, 1], [0, 1, 0, 0, 0]]
    assert binary.dtype == np.float32 and count.shape == (2, 5)


def test_bag_of_words_config_and_bad_mode():
    bag = BagOfWords(7, mode="count")
    restored = BagOfWords.from_config(bag.get_config())
    assert (restored.vocabulary_size, restored.mode) == (7, "count")
    with pytest.raises(ValueError, match="`mode`"):
        BagOfWords(5, mode="tfidf")
