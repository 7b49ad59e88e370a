"""Tests for rnn_toolkit.tasks.translator.model: build_translator, Translator, loss and metric."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary, encode_texts, translation_batches
from rnn_toolkit.models import MaskedSequenceCrossentropy, TokenAccuracy, Translator

# Six tiny pairs a 16-unit model learns by heart in ~150 steps.
SOURCES = ["the house is red", "the dog is big", "a red dog", "the big house", "a dog", "the house is big"]
TARGETS = [
    "la casa es roja", "el perro es grande", "un perro rojo", "la casa grande", "un perro",
    "la casa es grande",
]
SOURCE_VOCABULARY = WordVocabulary.from_texts(SOURCES, min_count=1)
TARGET_VOCABULARY = WordVocabulary.from_texts(TARGETS, min_count=1, sequence_markers=True)


def tiny(seed=0, **kwargs):
    """An untrained translator: tiny sizes, no dropout, float32 (exact comparisons)."""
    keras.utils.set_random_seed(seed)
    arguments = dict(units=4, embedding_dim=3, dropout=0.0, dtype_policy="float32")
    arguments.update(kwargs)
    return rnn_toolkit.build_translator(SOURCE_VOCABULARY, TARGET_VOCABULARY, **arguments)


def teacher_forcing_inputs(texts=SOURCES[:3], targets=TARGETS[:3]):
    source = SOURCE_VOCABULARY.encode_padded(texts)
    target = TARGET_VOCABULARY.encode(targets)
    start = tf.fill([len(targets), 1], TARGET_VOCABULARY.start_id)
    decoder_input = tf.concat([tf.RaggedTensor.from_tensor(start), target], axis=1).to_tensor(0)
    return source, decoder_input


def fit_pairs(model, steps):
    dataset = translation_batches(
        encode_texts(SOURCES, SOURCE_VOCABULARY),
        encode_texts(TARGETS, TARGET_VOCABULARY),
        start_id=TARGET_VOCABULARY.start_id,
        end_id=TARGET_VOCABULARY.end_id,
        batch_size=len(SOURCES),
    )
    return model.fit(dataset.repeat(), steps_per_epoch=steps // 3, epochs=3, verbose=0)


@pytest.fixture(scope="module")
def trained():
    """An additive-attention translator that reproduces the six pairs, and its history."""
    model = tiny(units=16, embedding_dim=8, learning_rate=0.02)
    history = fit_pairs(model, steps=150)
    return model, history.history


# --- Building ---------------------------------------------------------------------------

ARCHITECTURES = [
    dict(attention="none", cell="lstm", bidirectional=True),
    dict(attention="none", cell="gru", bidirectional=False, encoder_layers=2, decoder_layers=2),
    dict(attention="none", cell="rnn", encoder_layers=2, decoder_layers=1),
    dict(attention="additive", cell="lstm", bidirectional=False),
    dict(attention="additive", cell="gru", encoder_layers=1, decoder_layers=2),
    dict(attention="additive", cell="lstm", bridge="zeros", decoder_layers=2),
    dict(attention="multiplicative", cell="lstm", encoder_layers=2, decoder_layers=2),
    dict(attention="multiplicative", cell="gru", bridge="zeros", bidirectional=False),
    dict(attention="multiplicative", cell="rnn", bidirectional=True),
]


def _name(arguments):
    return "-".join(f"{value}" for value in arguments.values())


@pytest.mark.parametrize("arguments", ARCHITECTURES, ids=_name)
def test_build_every_architecture(arguments):
    model = tiny(**arguments)
    assert isinstance(model, Translator) and model.compiled
    assert model.attention_type == arguments["attention"]
    assert (model.attention is None) == (arguments["attention"] == "none")
    assert model.decoder_layers == arguments.get("decoder_layers", 1)
    assert model.encoder_layers == arguments.get("encoder_layers", 1)
    assert len(model.bridge_layers) == (
        0 if arguments.get("bridge") == "zeros"
        else model.decoder_layers * (2 if arguments["cell"] == "lstm" else 1)
    )
    eligible = arguments["cell"] in ("lstm", "gru")
    assert model.encoder.cudnn_eligible == eligible, model.encoder.cudnn_conditions()
    assert model.decoder.cudnn_eligible == eligible, model.decoder.cudnn_conditions()
    source, decoder_input = teacher_forcing_inputs()
    logits, weights = model((source, decoder_input), return_attention=True)
    assert logits.dtype == "float32"
    assert tuple(logits.shape) == (3, decoder_input.shape[1], TARGET_VOCABULARY.size)
    if model.attention is None:
        assert weights is None
    else:
        assert tuple(weights.shape) == (3, decoder_input.shape[1], source.shape[1])


# --- Training and decoding share the weights ---------------------------------------------

STEP_ARCHITECTURES = [
    dict(attention="none"),
    dict(attention="additive"),
    dict(attention="multiplicative"),
    dict(attention="none", cell="gru", encoder_layers=2, decoder_layers=2, bidirectional=False),
    dict(attention="additive", cell="rnn", bridge="zeros", decoder_layers=2),
    dict(attention="multiplicative", cell="lstm", encoder_layers=1, decoder_layers=2),
]


@pytest.mark.parametrize("arguments", STEP_ARCHITECTURES, ids=_name)
def test_step_by_step_logits_equal_teacher_forced_logits(arguments):
    model = tiny(**arguments)
    # Random (not zero) biases, so that a forgotten term would show; different values
    # per variable, so that swapping two of the same shape would show too.
    rng = np.random.default_rng(1)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    source, decoder_input = teacher_forcing_inputs()
    expected = model((source, decoder_input), training=False).numpy()
    logits, state = model.start_decoding(source)
    np.testing.assert_allclose(logits.numpy(), expected[:, 0], rtol=1e-4, atol=1e-5)
    lengths = np.count_nonzero(decoder_input.numpy(), axis=1)
    for t in range(1, decoder_input.shape[1]):
        logits, state = model.step(decoder_input[:, t], state)
        valid = lengths > t  # past its end a row is fed padding; nothing to compare
        np.testing.assert_allclose(logits.numpy()[valid], expected[valid, t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "arguments",
    [dict(attention="none"), dict(attention="additive", cell="gru"),
     dict(attention="multiplicative", bidirectional=False, encoder_layers=2)],
    ids=_name,
)
def test_source_padding_does_not_change_a_rows_output(arguments):
    model = tiny(**arguments)
    source, decoder_input = teacher_forcing_inputs(["the house"], ["la casa"])
    alone = model((source, decoder_input)).numpy()
    # The same row in a batch with a longer sentence: two more padding steps.
    batch, batch_input = teacher_forcing_inputs(["the house", "the dog is big"], ["la casa", "la casa"])
    assert batch.numpy()[0].tolist() == source.numpy()[0].tolist() + [0, 0]
    np.testing.assert_allclose(model((batch, batch_input)).numpy()[0], alone[0], rtol=1e-5, atol=1e-6)
    # And with an extra all-padding column for the whole batch.
    padded = tf.pad(batch, [[0, 0], [0, 1]])
    np.testing.assert_allclose(
        model((padded, batch_input)).numpy(), model((batch, batch_input)).numpy(), rtol=1e-5, atol=1e-6
    )


# --- Translating --------------------------------------------------------------------------


def test_loss_decreases_and_the_pairs_are_learned(trained):
    _, history = trained
    assert history["loss"][-1] < history["loss"][0] / 2
    assert history["token_accuracy"][-1] > history["token_accuracy"][0]


def test_overfit_model_reproduces_its_targets_greedy_and_beam(trained):
    model, _ = trained
    assert model.translate(SOURCES, sampler="greedy") == TARGETS
    assert model.translate(SOURCES, beam_width=4) == TARGETS
    assert model.translate(SOURCES[0]) == TARGETS[0]  # one string in, one string out
    assert model.generate(SOURCES[:2]) == TARGETS[:2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments",
    [dict(attention="none", cell="gru"), dict(attention="multiplicative", bridge="zeros", decoder_layers=2)],
    ids=_name,
)
def test_other_architectures_learn_the_pairs_too(arguments):
    model = tiny(units=16, embedding_dim=8, learning_rate=0.02, **arguments)
    fit_pairs(model, steps=240)
    assert model.translate(SOURCES, sampler="greedy") == TARGETS
    assert model.translate(SOURCES, beam_width=4) == TARGETS


def test_batching_does_not_change_translations(trained):
    model, _ = trained
    assert model.translate(SOURCES, batch_size=4) == TARGETS


@pytest.fixture(scope="module")
def endless():
    """An untrained translator that never emits [END]: every translation runs to its cap."""
    model = tiny(attention="multiplicative")
    end = np.eye(TARGET_VOCABULARY.size)[TARGET_VOCABULARY.end_id]
    model.output_layer.bias.assign(model.output_layer.bias.numpy() - 100.0 * end)
    return model


def test_default_length_cap_is_twice_the_source_plus_ten(endless):
    # Per sentence: "the" gets 2 * 1 + 10 words, whatever else is in its batch.
    assert [len(t.split()) for t in endless.translate(["a dog", "the"], sampler="greedy")] == [14, 12]
    assert len(endless.translate("a dog", max_length=3, sampler="greedy").split()) == 3
    assert len(endless.translate("dog " * 300, sampler="greedy").split()) == endless.max_output_length


def test_a_sentences_default_cap_does_not_depend_on_its_batch(endless):
    alone = endless.translate(["the"], sampler="greedy")
    assert endless.translate(["the", "the house is red " * 5], sampler="greedy")[:1] == alone


def test_beam_width_one_equals_greedy_sampling(endless):
    texts = SOURCES + ["", "dog dog dog red"]
    greedy = endless.translate(texts, sampler="greedy", max_length=8)
    assert endless.translate(texts, beam_width=1, max_length=8) == greedy
    assert len(set(greedy)) > 2  # varied outputs: a real comparison


@pytest.mark.slow  # one more traced decoding function
def test_same_seed_same_samples(trained):
    model, _ = trained
    first = model.translate(SOURCES, sampler="temperature", temperature=3.0, seed=7)
    assert model.translate(SOURCES, sampler="temperature", temperature=3.0, seed=7) == first


def test_odd_inputs_do_not_crash(trained):
    model, _ = trained
    vocabulary = model.target_vocabulary
    long_text = " ".join(["the house is red"] * 500)  # 2,000 words
    texts = ["", "   ", "zebra quantum xylophone", long_text, b"\xff\xfe", b"the \xc3 house"]
    translations = model.translate(texts)
    assert len(translations) == len(texts) and all(isinstance(t, str) for t in translations)
    for translation in translations:
        words = vocabulary.tokenize([translation]).to_list()[0]
        assert len(words) <= model.max_output_length
        assert b"[UNK]" not in words and b"[START]" not in words and b"[END]" not in words
    assert isinstance(model.translate(b"\xff\xfe"), str)
    assert model.translate([]) == [] and model.translate([], sampler="greedy") == []
    one = model.translate(SOURCES, max_length=1)
    assert one == [t.split()[0] for t in TARGETS]


def test_translate_argument_errors(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="`beam_width`"):
        model.translate("a dog", beam_width=0)
    with pytest.raises(ValueError, match="`max_length`"):
        model.translate("a dog", max_length=0)
    with pytest.raises(ValueError, match="`sampler`"):
        model.translate("a dog", sampler="bogus")
    with pytest.raises(ValueError, match="Unknown sampler arguments"):
        model.translate("a dog", sampler="top_k", k=3)


def test_attention_map(trained):
    model, _ = trained
    source_tokens, target_tokens, weights = model.attention_map("The house is red!")
    assert source_tokens == ["the", "house", "is", "red", "[UNK]"]
    assert target_tokens == ["la", "casa", "es", "roja", "[END]"]
    assert weights.shape == (5, 5)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    # An explicit translation is explained as given.
    _, target_tokens, weights = model.attention_map("a dog", translation="un perro rojo")
    assert target_tokens == ["un", "perro", "rojo", "[END]"] and weights.shape == (4, 2)
    with pytest.raises(ValueError, match="attention"):
        tiny(attention="none").attention_map("a dog")


def test_attention_map_of_an_empty_translation_has_only_end():
    model = tiny(attention="additive")
    _, target_tokens, weights = model.attention_map("the house", translation="")
    assert target_tokens == ["[END]"] and weights.shape == (1, 2)


def test_attention_map_explains_the_whole_translation():
    target = WordVocabulary(["la", "casa"], sequence_markers=True, max_length=3)
    keras.utils.set_random_seed(0)
    model = rnn_toolkit.build_translator(SOURCE_VOCABULARY, target, units=4, embedding_dim=3)
    _, target_tokens, _ = model.attention_map("the house", translation="la casa la casa")
    assert target_tokens == ["la", "casa", "la", "casa", "[END]"]


# --- Saving -------------------------------------------------------------------------------


def test_config_roundtrip(trained):
    model, _ = trained
    config = model.get_config()
    assert config["attention"] == "additive" and config["units"] == 16
    assert config["target_vocabulary"]["sequence_markers"] is True
    clone = Translator.from_config(config)
    clone.build()
    clone.set_weights(model.get_weights())
    assert clone.target_vocabulary.tokens == model.target_vocabulary.tokens
    assert clone.source_vocabulary.tokens == model.source_vocabulary.tokens
    source, decoder_input = teacher_forcing_inputs()
    np.testing.assert_array_equal(
        clone((source, decoder_input)).numpy(), model((source, decoder_input)).numpy()
    )


def test_every_constructor_argument_comes_back_in_the_config():
    arguments = dict(
        embedding_dim=5, cell="gru", units=3, encoder_layers=2, decoder_layers=2,
        bidirectional=False, attention="multiplicative", attention_units=7, bridge="zeros",
        dropout=0.25, max_output_length=9, dtype_policy="mixed_bfloat16", clip_norm=0.5,
    )
    model = tiny(**arguments)
    config = model.get_config()
    assert {key: config[key] for key in arguments} == arguments
    clone_config = Translator.from_config(config).get_config()
    for key in ("source_vocabulary", "target_vocabulary"):
        # The vocabularies come back under fresh layer names; everything else is equal.
        assert clone_config.pop(key) | {"name": None} == config[key] | {"name": None}
    assert clone_config == {k: v for k, v in config.items() if not k.endswith("_vocabulary")}


def test_keras_save_and_load_give_identical_translations(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "translator.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Translator)
    texts = SOURCES + ["", "zebra dog"]
    assert loaded.translate(texts) == model.translate(texts)
    source, decoder_input = teacher_forcing_inputs()
    np.testing.assert_allclose(
        loaded((source, decoder_input)).numpy(), model((source, decoder_input)).numpy(), rtol=1e-6
    )


# --- Loss and metric ----------------------------------------------------------------------


def test_loss_ignores_padding():
    rng = np.random.default_rng(0)
    y_true = np.array([[5, 6, 3], [7, 3, 0]], np.int32)
    y_pred = rng.normal(size=(2, 3, 9)).astype("float32")
    loss = MaskedSequenceCrossentropy()
    value = float(loss(y_true, y_pred))
    # By hand: the mean negative log-likelihood over the 5 real positions.
    log_probs = y_pred - np.log(np.exp(y_pred).sum(-1, keepdims=True))
    real = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    expected = -np.mean([log_probs[b, t, y_true[b, t]] for b, t in real])
    assert value == pytest.approx(expected, rel=1e-5)
    # Two more padded columns with arbitrary logits: the same loss.
    more_true = np.pad(y_true, [(0, 0), (0, 2)])
    more_pred = np.concatenate([y_pred, rng.normal(size=(2, 2, 9)).astype("float32") * 10], axis=1)
    assert float(loss(more_true, more_pred)) == pytest.approx(value, rel=1e-5)
    # An all-padding row neither adds loss nor dilutes it.
    with_empty = np.concatenate([y_true, np.zeros((1, 3), np.int32)])
    with_empty_pred = np.concatenate([y_pred, rng.normal(size=(1, 3, 9)).astype("float32")])
    assert float(loss(with_empty, with_empty_pred)) == pytest.approx(value, rel=1e-5)
    smoothed = MaskedSequenceCrossentropy(label_smoothing=0.1)
    assert float(smoothed(more_true, more_pred)) == pytest.approx(float(smoothed(y_true, y_pred)), rel=1e-5)
    restored = MaskedSequenceCrossentropy.from_config(smoothed.get_config())
    assert restored.label_smoothing == pytest.approx(0.1)


def test_token_accuracy_counts_only_real_positions():
    y_true = np.array([[5, 6, 0, 0], [7, 0, 0, 0]], np.int32)
    # Predicts 5, 8 (wrong), then padding's id 0 -- which must not count as right.
    y_pred = np.array([[5, 8, 0, 0], [7, 0, 0, 0]])
    y_pred = np.eye(9, dtype="float32")[y_pred]
    metric = TokenAccuracy()
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(2 / 3)
    metric.update_state(np.array([[8]]), np.eye(9, dtype="float32")[[[8]]])
    assert float(metric.result()) == pytest.approx(3 / 4)
    metric.reset_state()
    assert float(metric.result()) == 0.0


# --- Arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        (dict(attention="bogus"), ValueError, "`attention`"),
        (dict(bridge="x"), ValueError, "`bridge`"),
        (dict(bridge="zeros", attention="none"), ValueError, "bridge='zeros'"),
        (dict(cell="transformer"), ValueError, "`cell`"),
        (dict(units=0), ValueError, "`units`"),
        (dict(dropout=1.0), ValueError, "`dropout`"),
        (dict(encoder_layers=0), ValueError, "`num_layers`|`encoder_layers`"),
        (dict(dtype_policy="float8"), ValueError, "`dtype_policy`"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        tiny(**kwargs)


def test_bad_vocabularies_name_the_argument():
    with pytest.raises(ValueError, match="`target_vocabulary`.*sequence_markers"):
        rnn_toolkit.build_translator(SOURCE_VOCABULARY, WordVocabulary(["la"]))
    with pytest.raises(TypeError, match="`source_vocabulary`"):
        rnn_toolkit.build_translator(["the", "house"], TARGET_VOCABULARY)
    with pytest.raises(TypeError, match="`target_vocabulary`"):
        rnn_toolkit.build_translator(SOURCE_VOCABULARY, "la casa")


def test_mixed_precision_logits_are_float32():
    model = tiny(dtype_policy="mixed_bfloat16", attention="multiplicative")
    source, decoder_input = teacher_forcing_inputs()
    assert model((source, decoder_input)).dtype == "float32"
    logits, _ = model.start_decoding(source)
    assert logits.dtype == "float32"
