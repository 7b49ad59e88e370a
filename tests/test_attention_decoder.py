"""Tests for rnn_toolkit.layers.AttentionDecoder and the translator built on it."""

import io
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.layers import AttentionDecoder

VOCAB, BATCH, MEMORY, FEATURES = 10, 3, 4, 5
# Row 0 uses all 4 memory positions, row 1 three, row 2 one.
MEMORY_MASK = np.array([[True] * 4, [True] * 3 + [False], [True] + [False] * 3])
# Right-padded decoder inputs, each starting with a non-padding "start" id.
DECODER_INPUT = np.array([[1, 5, 6, 7, 8], [1, 9, 2, 0, 0], [1, 0, 0, 0, 0]], np.int32)


def tiny(seed=0, **kwargs):
    """A built decoder with random (non-zero) weights, so a forgotten term would show."""
    keras.utils.set_random_seed(seed)
    arguments = dict(embedding_dim=3, units=4, memory_size=FEATURES, dtype="float32")
    arguments.update(kwargs)
    decoder = AttentionDecoder(VOCAB, **arguments)
    decoder.build()
    rng = np.random.default_rng(seed)
    for variable in decoder.weights:
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    return decoder


def random_inputs(decoder, seed=0):
    rng = np.random.default_rng(seed)
    memory = tf.constant(rng.normal(size=(BATCH, MEMORY, FEATURES)).astype("float32"))
    state = [
        [tf.constant(rng.normal(size=(BATCH, decoder.units)).astype("float32")) for _ in layer]
        for layer in decoder.get_initial_state(BATCH)
    ]
    return memory, state


ARCHITECTURES = [
    dict(cell="lstm", attention="none"),
    dict(cell="gru", attention="none", num_layers=2),
    dict(cell="lstm", attention="additive"),
    dict(cell="gru", attention="additive", attention_units=3),
    dict(cell="lstm", attention="multiplicative", num_layers=2),
    dict(cell="gru", attention="multiplicative"),
]


def _name(arguments):
    return "-".join(f"{value}" for value in arguments.values())


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("arguments", ARCHITECTURES, ids=_name)
def test_step_by_step_logits_equal_teacher_forced_logits(arguments, masked):
    decoder = tiny(**arguments)
    memory, state = random_inputs(decoder)
    # Unmasked: every memory position is valid, as for a flattened image grid.
    mask = tf.constant(MEMORY_MASK) if masked else None
    expected, weights = decoder(
        DECODER_INPUT, state, memory=memory, memory_mask=mask, return_attention=True
    )
    assert expected.dtype == "float32" and tuple(expected.shape) == DECODER_INPUT.shape + (VOCAB,)
    if decoder.attention is None:
        assert weights is None
    else:
        assert tuple(weights.shape) == DECODER_INPUT.shape + (MEMORY,)
        np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
        if masked:
            assert np.all(weights.numpy()[~np.broadcast_to(MEMORY_MASK[:, None], weights.shape)] < 1e-6)
    step_state = decoder.decoding_state(state, memory=memory, memory_mask=mask)
    assert ("memory_mask" in step_state) == (masked and decoder.attention is not None)
    lengths = np.count_nonzero(DECODER_INPUT, axis=1)
    for t in range(DECODER_INPUT.shape[1]):
        logits, step_state = decoder.step(tf.constant(DECODER_INPUT[:, t]), step_state)
        valid = lengths > t  # past its end a row is fed padding; nothing to compare
        np.testing.assert_allclose(
            logits.numpy()[valid], expected.numpy()[valid, t], rtol=1e-4, atol=1e-5
        )


def test_the_memory_changes_the_logits_only_with_attention():
    for attention, changes in (("none", False), ("additive", True)):
        decoder = tiny(attention=attention)
        memory, state = random_inputs(decoder)
        first = decoder(DECODER_INPUT, state, memory=memory).numpy()
        second = decoder(DECODER_INPUT, state, memory=memory * 2.0).numpy()
        assert (not np.allclose(first, second)) == changes


def test_padding_memory_positions_do_not_matter():
    decoder = tiny(attention="multiplicative")
    memory, state = random_inputs(decoder)
    mask = tf.constant(MEMORY_MASK)
    noisy = tf.where(mask[..., None], memory, 100.0)
    np.testing.assert_allclose(
        decoder(DECODER_INPUT, state, memory=noisy, memory_mask=mask).numpy(),
        decoder(DECODER_INPUT, state, memory=memory, memory_mask=mask).numpy(),
        rtol=1e-5, atol=1e-6,
    )


def test_rows_at_their_limit_may_only_end():
    decoder = tiny(attention="additive", end_id=2)
    memory, state = random_inputs(decoder)
    step_state = decoder.decoding_state(state, memory=memory, limits=[0, 1, 2])
    ids = tf.constant([1, 1, 1])
    for position in range(3):
        logits, step_state = decoder.step(ids, step_state)
        ended = np.argmax(logits.numpy(), axis=1) == 2
        finite = np.isfinite(logits.numpy()).all(axis=1)
        np.testing.assert_array_equal(ended & ~finite, [True, position >= 1, position >= 2])
    with pytest.raises(ValueError, match="end_id"):
        tiny().decoding_state(state, memory=memory, limits=[1, 1, 1])


def test_initial_state_is_zeros_and_none_means_zeros():
    decoder = tiny(attention="none")
    state = decoder.get_initial_state(BATCH)
    assert all(float(tf.reduce_max(tf.abs(s))) == 0.0 for layer in state for s in layer)
    np.testing.assert_allclose(
        decoder(DECODER_INPUT, None).numpy(), decoder(DECODER_INPUT, state).numpy(), rtol=1e-6
    )


def test_project_keys():
    assert tiny(attention="none").project_keys(np.zeros((1, MEMORY, FEATURES), "float32")) is None
    decoder = tiny(attention="additive", attention_units=3)
    assert tuple(decoder.project_keys(np.zeros((2, MEMORY, FEATURES), "float32")).shape) == (2, MEMORY, 3)


def test_get_config_round_trip():
    decoder = tiny(cell="gru", num_layers=2, attention="multiplicative", attention_units=7,
                   dropout=0.25, end_id=3, name="captions")
    config = decoder.get_config()
    expected = dict(vocab_size=VOCAB, embedding_dim=3, cell="gru", units=4, num_layers=2,
                    attention="multiplicative", attention_units=7, memory_size=FEATURES,
                    dropout=0.25, end_id=3, name="captions")
    assert {key: config[key] for key in expected} == expected
    clone = AttentionDecoder.from_config(config)
    assert clone.get_config() == config
    clone.build()
    clone.set_weights(decoder.get_weights())
    memory, state = random_inputs(decoder)
    np.testing.assert_array_equal(
        clone(DECODER_INPUT, state, memory=memory).numpy(),
        decoder(DECODER_INPUT, state, memory=memory).numpy(),
    )


@pytest.mark.parametrize("cell, eligible", [("lstm", True), ("gru", True), ("rnn", False)])
def test_cudnn_eligibility(cell, eligible):
    decoder = tiny(cell=cell, num_layers=2, attention="additive", dropout=0.2)
    assert decoder.recurrent.cudnn_eligible == eligible, decoder.recurrent.cudnn_conditions()


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`attention`"):
        AttentionDecoder(VOCAB, attention="dot")
    with pytest.raises(ValueError, match="`memory_size`"):
        AttentionDecoder(VOCAB, attention="additive")
    with pytest.raises(ValueError, match="`end_id`"):
        AttentionDecoder(VOCAB, attention="none", end_id=VOCAB)
    with pytest.raises(ValueError, match="memory"):
        tiny(attention="additive")(DECODER_INPUT, None)


# --- The translator keeps its variables where older files have them -----------------------

# A tiny translator's variables, as written by the translator before the decoder block:
# variable paths, the order of `trainable_variables` (the optimizer's slot order), and
# the `.keras` weights layout (attribute paths).
TRAINABLE_PATHS = [
    "translator/source_embedding/embeddings",
    "translator/target_embedding/embeddings",
    "translator/encoder/bidirectional_0/forward_lstm_0/lstm_cell/kernel",
    "translator/encoder/bidirectional_0/forward_lstm_0/lstm_cell/recurrent_kernel",
    "translator/encoder/bidirectional_0/forward_lstm_0/lstm_cell/bias",
    "translator/encoder/bidirectional_0/backward_lstm_0/lstm_cell/kernel",
    "translator/encoder/bidirectional_0/backward_lstm_0/lstm_cell/recurrent_kernel",
    "translator/encoder/bidirectional_0/backward_lstm_0/lstm_cell/bias",
    "translator/decoder/lstm_0/lstm_cell/kernel",
    "translator/decoder/lstm_0/lstm_cell/recurrent_kernel",
    "translator/decoder/lstm_0/lstm_cell/bias",
    "translator/bridge_0_0/kernel",
    "translator/bridge_0_0/bias",
    "translator/bridge_0_1/kernel",
    "translator/bridge_0_1/bias",
    "translator/attention/key/kernel",
    "translator/attention/query/kernel",
    "translator/attention/query/bias",
    "translator/attention/energy/kernel",
    "translator/attention_projection/kernel",
    "translator/output/kernel",
    "translator/output/bias",
]
KERAS_FILE_WEIGHTS = [
    "attention/energy_layer/vars/0",
    "attention/key_layer/vars/0",
    "attention/query_layer/vars/0",
    "attention/query_layer/vars/1",
    "attention_projection/vars/0",
    "bridge_layers/dense/vars/0",
    "bridge_layers/dense/vars/1",
    "bridge_layers/dense_1/vars/0",
    "bridge_layers/dense_1/vars/1",
    "decoder/recurrent_layers/lstm/cell/vars/0",
    "decoder/recurrent_layers/lstm/cell/vars/1",
    "decoder/recurrent_layers/lstm/cell/vars/2",
    "encoder/recurrent_layers/bidirectional/backward_layer/cell/vars/0",
    "encoder/recurrent_layers/bidirectional/backward_layer/cell/vars/1",
    "encoder/recurrent_layers/bidirectional/backward_layer/cell/vars/2",
    "encoder/recurrent_layers/bidirectional/forward_layer/cell/vars/0",
    "encoder/recurrent_layers/bidirectional/forward_layer/cell/vars/1",
    "encoder/recurrent_layers/bidirectional/forward_layer/cell/vars/2",
    "layers/dense_3/vars/0",
    "layers/dense_3/vars/1",
    "layers/embedding/vars/0",
    "layers/embedding_1/vars/0",
    "optimizer/vars/0",
    "optimizer/vars/1",
    "vars/0",
]


def test_translator_variables_are_where_older_files_have_them(tmp_path):
    source = WordVocabulary(["a", "b"])
    target = WordVocabulary(["x", "y"], sequence_markers=True)
    model = rnn_toolkit.build_translator(source, target, units=2, embedding_dim=2, dtype_policy="float32")
    assert [v.path for v in model.trainable_variables] == TRAINABLE_PATHS
    assert [v.path for v in model.weights] == ["clip_norm"] + TRAINABLE_PATHS
    # The translator's layers are the block's: one set of weights.
    assert model.decoder is model._attention_decoder.recurrent
    assert model.embedding_dropout is model._attention_decoder.embedding_dropout
    model.save(tmp_path / "translator.keras")
    with zipfile.ZipFile(tmp_path / "translator.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
            stored = []
            weights.visititems(lambda key, item: stored.append(key) if isinstance(item, h5py.Dataset) else None)
    assert stored == KERAS_FILE_WEIGHTS
