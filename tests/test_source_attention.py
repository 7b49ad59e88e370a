"""Tests for rnn_toolkit.layers.SourceAttention."""

import keras
import numpy as np
import pytest

from rnn_toolkit.layers import SourceAttention

BATCH, TARGET, SOURCE, FEATURES, QUERY = 2, 3, 5, 6, 4


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    memory = rng.normal(size=(BATCH, SOURCE, FEATURES)).astype("float32")
    queries = rng.normal(size=(BATCH, TARGET, QUERY)).astype("float32")
    # Row 0 has 3 real source positions, row 1 all 5.
    mask = np.array([[True] * 3 + [False] * 2, [True] * SOURCE])
    return memory, queries, mask


def _attention(score, seed=0):
    keras.utils.set_random_seed(seed)
    layer = SourceAttention(score, units=3)
    memory, queries, mask = _inputs(seed)
    keys = layer.project_keys(memory, query_size=QUERY)
    return layer, memory, queries, mask, keys


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
def test_weights_sum_to_one_over_valid_positions_and_vanish_on_padding(score):
    layer, memory, queries, mask, keys = _attention(score)
    context, weights = layer(queries, keys, memory, source_mask=mask)
    context, weights = np.asarray(context), np.asarray(weights)
    assert context.shape == (BATCH, TARGET, FEATURES) and weights.shape == (BATCH, TARGET, SOURCE)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert (weights[0, :, 3:] == 0).all() and (weights[0, :, :3] > 0).all()
    # The context is the weighted sum of the memory.
    np.testing.assert_allclose(context, weights @ memory, rtol=1e-5, atol=1e-6)
    # Changing what sits at masked positions changes nothing.
    noisy = memory.copy()
    noisy[0, 3:] = 100.0
    noisy_context, noisy_weights = layer(
        queries, layer.project_keys(noisy), noisy, source_mask=mask
    )
    np.testing.assert_allclose(np.asarray(noisy_weights), weights, atol=1e-6)
    np.testing.assert_allclose(np.asarray(noisy_context), context, atol=1e-5)


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
def test_single_step_query_equals_the_matching_row(score):
    layer, memory, queries, mask, keys = _attention(score)
    context, weights = layer(queries, keys, memory, source_mask=mask)
    for t in range(TARGET):
        step_context, step_weights = layer(queries[:, t], keys, memory, source_mask=mask)
        assert tuple(step_context.shape) == (BATCH, FEATURES)
        assert tuple(step_weights.shape) == (BATCH, SOURCE)
        np.testing.assert_allclose(np.asarray(step_context), np.asarray(context)[:, t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(step_weights), np.asarray(weights)[:, t], rtol=1e-5, atol=1e-6)


def test_multiplicative_score_is_q_dot_w_k():
    layer, memory, queries, mask, _ = _attention("multiplicative")
    kernel = np.asarray(layer.key_layer.kernel)  # [FEATURES, QUERY], no bias
    assert layer.key_layer.bias is None and kernel.shape == (FEATURES, QUERY)
    scores = np.einsum("btq,bsf,fq->bts", queries, memory, kernel)
    scores = np.where(mask[:, None, :], scores, -np.inf)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    _, weights = layer(queries, layer.project_keys(memory), memory, source_mask=mask)
    np.testing.assert_allclose(np.asarray(weights), expected, rtol=1e-5, atol=1e-6)


def test_additive_score_is_v_tanh_wq_q_plus_wk_k():
    layer, memory, queries, _, _ = _attention("additive")
    w_k = np.asarray(layer.key_layer.kernel)
    w_q, b_q = np.asarray(layer.query_layer.kernel), np.asarray(layer.query_layer.bias)
    v = np.asarray(layer.energy_layer.kernel)[:, 0]
    hidden = np.tanh((queries @ w_q + b_q)[:, :, None, :] + (memory @ w_k)[:, None, :, :])
    scores = hidden @ v
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    _, weights = layer(queries, layer.project_keys(memory), memory)  # no mask: all valid
    np.testing.assert_allclose(np.asarray(weights), expected, rtol=1e-5, atol=1e-6)


def test_fully_masked_row_gives_uniform_weights_not_nan():
    layer, memory, queries, _, keys = _attention("additive")
    mask = np.zeros((BATCH, SOURCE), bool)
    _, weights = layer(queries, keys, memory, source_mask=mask)
    np.testing.assert_allclose(np.asarray(weights), 1.0 / SOURCE, rtol=1e-6)


def test_project_keys_needs_query_size_the_first_time():
    layer = SourceAttention("multiplicative")
    memory, _, _ = _inputs()
    with pytest.raises(ValueError, match="`query_size`"):
        layer.project_keys(memory)
    assert tuple(layer.project_keys(memory, query_size=7).shape) == (BATCH, SOURCE, 7)


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
def test_config_roundtrip(score):
    layer = SourceAttention(score, units=5, name="attend")
    config = layer.get_config()
    assert (config["score"], config["units"]) == (score, 5)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, SourceAttention)
    assert (restored.score, restored.units, restored.name) == (score, 5, "attend")


def test_bad_arguments():
    with pytest.raises(ValueError, match="`score`.*'dot'"):
        SourceAttention("dot")
    with pytest.raises(ValueError, match="`units`"):
        SourceAttention("additive", units=0)


def test_weights_stay_float32_under_mixed_precision():
    layer = SourceAttention("additive", units=3, dtype="mixed_bfloat16")
    memory, queries, mask = _inputs()
    keys = layer.project_keys(memory, query_size=QUERY)
    context, weights = layer(queries, keys, memory, source_mask=mask)
    assert context.dtype == "bfloat16" and weights.dtype == "float32"
    assert (np.asarray(weights)[0, :, 3:] == 0).all()
