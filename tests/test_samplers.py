"""Tests for rnn_toolkit.decoding.samplers: what each sampler may and may not draw."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.decoding import (
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    get_sampler,
    sample_logits,
)
from rnn_toolkit.decoding import samplers as samplers_module

VOCAB_SIZE = 8
NUM_DRAWS = 4000  # rows drawn in one call: each row gets its own noise (`uniform_noise`)


def random_logits(batch_size=4, seed=0):
    values = np.random.default_rng(seed).normal(size=(batch_size, VOCAB_SIZE))
    return tf.constant(values, tf.float32)


def draws(logits_row, seed=(3, 4), **options):
    """Draws NUM_DRAWS ids from one distribution, as a numpy array."""
    logits = tf.tile(tf.constant([logits_row], tf.float32), [NUM_DRAWS, 1])
    return sample_logits(logits, tf.constant(seed, tf.int64), **options).numpy()


def chi_square(ids, probabilities):
    counts = np.bincount(ids, minlength=len(probabilities))
    expected = NUM_DRAWS * np.asarray(probabilities)
    return float(np.sum((counts - expected) ** 2 / expected))


# Critical value of chi-square with 7 degrees of freedom at p = 0.001: a correct sampler
# fails this less than once in a thousand seeds, and the seeds here are fixed.
CHI_SQUARE_7_DOF = 24.32


def test_greedy_is_argmax():
    logits = random_logits()
    expected = np.argmax(logits.numpy(), axis=-1)
    np.testing.assert_array_equal(GreedySampler()(logits, [1, 2]), expected)
    np.testing.assert_array_equal(sample_logits(logits, [1, 2], temperature=0.0), expected)
    np.testing.assert_array_equal(sample_logits(logits, [1, 2], temperature=-1.0), expected)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_low_precision_logits_are_accepted(dtype):
    logits = random_logits()
    ids = GreedySampler()(tf.cast(logits, dtype), [1, 2])
    assert ids.dtype == tf.int32
    np.testing.assert_array_equal(ids, np.argmax(logits.numpy(), axis=-1))
    assert TopKSampler(k=3)(tf.cast(logits, dtype), [1, 2]).dtype == tf.int32


@pytest.mark.parametrize("temperature", [1e-3, 1e-37])
def test_temperature_towards_zero_is_greedy(temperature):
    # 250 / 1e-37 overflows float32 to inf unless logits are shifted by their maximum.
    logits_row = [100.0, 200.0, 250.0, 0.0, -100.0, 240.0, 30.0, 10.0]
    ids = draws(logits_row, temperature=temperature)
    np.testing.assert_array_equal(ids, np.full(NUM_DRAWS, 2))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_draws_follow_scaled_softmax(temperature):
    logits_row = np.array([2.0, 1.0, 0.5, 0.0, 0.0, -0.5, -1.0, -2.0])
    ids = draws(logits_row, temperature=temperature)
    expected = tf.nn.softmax(logits_row / temperature).numpy()
    assert chi_square(ids, expected) < CHI_SQUARE_7_DOF
    # The same draws are far from the unscaled distribution (for T != 1): the test can
    # tell temperatures apart.
    if temperature != 1.0:
        assert chi_square(ids, tf.nn.softmax(logits_row).numpy()) > 10 * CHI_SQUARE_7_DOF


def test_high_temperature_spreads_towards_uniform():
    logits_row = [4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    uniform = np.full(VOCAB_SIZE, 1.0 / VOCAB_SIZE)
    assert chi_square(draws(logits_row, temperature=1.0), uniform) > 100 * CHI_SQUARE_7_DOF
    assert chi_square(draws(logits_row, temperature=1000.0), uniform) < CHI_SQUARE_7_DOF


def test_top_k_1_is_greedy():
    logits = random_logits(batch_size=64)
    expected = np.argmax(logits.numpy(), axis=-1)
    for seed in range(5):
        for temperature in (0.5, 1.0, 5.0):
            ids = sample_logits(logits, [seed, 0], temperature=temperature, top_k=1)
            np.testing.assert_array_equal(ids, expected)


def test_top_k_draws_only_from_the_k_most_likely():
    logits_row = [0.1, 1.0, -0.3, 0.9, 0.0, 1.1, -2.0, 0.2]
    ids = draws(logits_row, temperature=3.0, top_k=3)
    assert set(ids) == {1, 3, 5}
    # Renormalised over the top 3.
    kept = tf.nn.softmax(np.array([1.0, 0.9, 1.1]) / 3.0).numpy()
    counts = np.array([np.sum(ids == token) for token in (1, 3, 5)])
    np.testing.assert_allclose(counts / NUM_DRAWS, kept, atol=0.03)


def test_top_k_off_or_above_vocab_keeps_everything():
    logits = random_logits(batch_size=32)
    unfiltered = sample_logits(logits, [5, 6])
    np.testing.assert_array_equal(sample_logits(logits, [5, 6], top_k=0), unfiltered)
    np.testing.assert_array_equal(sample_logits(logits, [5, 6], top_k=-3), unfiltered)
    np.testing.assert_array_equal(sample_logits(logits, [5, 6], top_k=100), unfiltered)


def test_top_p_keeps_only_the_nucleus():
    probabilities = np.array([0.5, 0.3, 0.12, 0.05, 0.01, 0.01, 0.005, 0.005])
    logits_row = np.log(probabilities)
    assert set(draws(logits_row, top_p=0.3)) == {0}
    assert set(draws(logits_row, top_p=0.7)) == {0, 1}
    assert set(draws(logits_row, top_p=0.85)) == {0, 1, 2}
    assert set(draws(logits_row, top_p=0.95)) == {0, 1, 2, 3}
    ids = draws(logits_row, top_p=0.7)
    np.testing.assert_allclose(np.mean(ids == 0), 0.5 / 0.8, atol=0.03)


def test_top_p_always_keeps_the_most_likely_token():
    logits_row = np.log([0.1, 0.6, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03])
    assert set(draws(logits_row, top_p=1e-9)) == {1}
    assert set(draws(logits_row, top_p=0.0)) == {1}
    assert set(draws(logits_row, top_p=-0.5)) == {1}


def test_top_p_applies_after_temperature():
    # At T=1 token 0 alone holds 0.6 >= p; flattened by T=10 the nucleus must grow.
    logits_row = np.log([0.6, 0.2, 0.1, 0.05, 0.02, 0.01, 0.01, 0.01])
    assert set(draws(logits_row, top_p=0.55)) == {0}
    assert len(set(draws(logits_row, temperature=10.0, top_p=0.55))) > 1


def test_same_seed_same_ids_and_different_seeds_differ():
    flat = tf.zeros([16, VOCAB_SIZE])
    first = sample_logits(flat, tf.constant([7, 8], tf.int32)).numpy()
    np.testing.assert_array_equal(sample_logits(flat, tf.constant([7, 8], tf.int64)), first)
    assert not np.array_equal(sample_logits(flat, [7, 9]).numpy(), first)


def test_minus_inf_logits_are_never_drawn():
    logits_row = [0.0, -np.inf, 0.0, -np.inf, 0.0, 0.0, -np.inf, 0.0]
    assert set(draws(logits_row, temperature=5.0)) == {0, 2, 4, 5, 7}
    assert set(draws(logits_row, top_p=0.99)) == {0, 2, 4, 5, 7}


def test_tensor_parameters_match_python_numbers_without_retracing():
    logits = random_logits(batch_size=64)
    signature = [
        tf.TensorSpec([None, VOCAB_SIZE], tf.float32),
        tf.TensorSpec([2], tf.int64),
        tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float32),
    ]

    @tf.function(input_signature=signature)
    def serve(logits, seed, temperature, top_k, top_p):
        return sample_logits(logits, seed, temperature=temperature, top_k=top_k, top_p=top_p)

    seed = tf.constant([11, 12], tf.int64)
    settings = [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.7, 3, 1.0), (1.5, 0, 0.6), (2.0, 4, 0.8)]
    for temperature, top_k, top_p in settings:
        served = serve(
            logits, seed, tf.constant(temperature), tf.constant(top_k), tf.constant(top_p)
        )
        expected = sample_logits(logits, seed, temperature=temperature, top_k=top_k, top_p=top_p)
        np.testing.assert_array_equal(served, expected)
    assert serve.experimental_get_tracing_count() == 1


def test_sampler_classes_use_sample_logits():
    logits = random_logits(batch_size=32)
    seed = tf.constant([1, 2])
    np.testing.assert_array_equal(
        TemperatureSampler(0.8)(logits, seed), sample_logits(logits, seed, temperature=0.8)
    )
    np.testing.assert_array_equal(
        TopKSampler(k=3, temperature=2.0)(logits, seed),
        sample_logits(logits, seed, temperature=2.0, top_k=3),
    )
    np.testing.assert_array_equal(
        TopPSampler(p=0.5, temperature=2.0)(logits, seed),
        sample_logits(logits, seed, temperature=2.0, top_p=0.5),
    )


def test_custom_sampler_overrides_one_method():
    class LastTokenSampler(Sampler):
        def get_next_token(self, logits, seed):
            assert logits.dtype == tf.float32
            return tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1] - 1)

    ids = LastTokenSampler()(tf.zeros([3, VOCAB_SIZE], tf.float16), [0, 0])
    assert ids.dtype == tf.int32
    np.testing.assert_array_equal(ids, [VOCAB_SIZE - 1] * 3)
    with pytest.raises(NotImplementedError):
        Sampler()(tf.zeros([1, VOCAB_SIZE]), [0, 0])


@pytest.mark.parametrize(
    "sampler",
    [
        GreedySampler(),
        TemperatureSampler(0.7),
        TopKSampler(k=4, temperature=0.5),
        TopPSampler(p=0.8),
    ],
)
def test_config_round_trip(sampler):
    config = sampler.get_config()
    assert type(sampler).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert type(restored) is type(sampler) and restored.get_config() == config
    assert get_sampler(keras.saving.serialize_keras_object(sampler)).get_config() == config


def test_get_sampler_by_name_and_instance():
    assert isinstance(get_sampler("greedy"), GreedySampler)
    assert isinstance(get_sampler("random"), TemperatureSampler)
    assert get_sampler("temperature", temperature=0.3).temperature == 0.3
    assert get_sampler("TOP_K", k=5).k == 5
    assert get_sampler("top_p", p=0.5).p == 0.5
    sampler = TopKSampler(k=2)
    assert get_sampler(sampler) is sampler


def test_get_sampler_rejects_unknown_names_listing_valid_ones():
    with pytest.raises(ValueError, match="greedy.*random.*temperature.*top_k.*top_p"):
        get_sampler("beam")
    with pytest.raises(TypeError):
        get_sampler(3)
    with pytest.raises(TypeError):
        get_sampler("greedy", temperature=0.5)


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="k"):
        TopKSampler(k=0)
    with pytest.raises(ValueError, match="p"):
        TopPSampler(p=0.0)
    with pytest.raises(ValueError, match="p"):
        TopPSampler(p=1.5)


def test_docstring_examples_run():
    results = doctest.testmod(samplers_module, extraglobs={"tf": tf, "rnn_toolkit": rnn_toolkit})
    assert results.attempted > 0 and results.failed == 0
