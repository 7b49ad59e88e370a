import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import CharVocabulary, char_windows, consecutive_char_batches
from rnn_toolkit.models import MAX_GENERATION_LENGTH, CharLanguageModel
from rnn_toolkit.precision import cpu_supports_bfloat16

TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 40


@pytest.fixture(scope="module")
def vocabulary():
    return CharVocabulary.from_text(TEXT)


@pytest.fixture(scope="module")
def trained(vocabulary):
    """A tiny float32 model trained briefly: enough for generation to be non-uniform."""
    keras.utils.set_random_seed(0)
    model = rnn_toolkit.build_char_lm(
        vocabulary, units=16, embedding_dim=8, dtype_policy="float32", learning_rate=1e-2
    )
    model.fit(char_windows(TEXT, vocabulary, sequence_length=20, batch_size=8, seed=0), epochs=2, verbose=0)
    return model


def test_logits_shape_and_dtype(vocabulary):
    model = rnn_toolkit.build_char_lm(vocabulary, units=8, embedding_dim=4, dtype_policy="mixed_bfloat16")
    logits = model(np.zeros((2, 7), "int32"))
    assert tuple(logits.shape) == (2, 7, vocabulary.size)
    assert logits.dtype == "float32"  # the softmax stays in float32 under mixed precision
    assert model.recurrent.compute_dtype == "bfloat16"
    assert model.recurrent.variable_dtype == "float32"


def test_auto_precision_picks_bfloat16_on_a_bf16_cpu(vocabulary):
    model = rnn_toolkit.build_char_lm(vocabulary, units=4, embedding_dim=2)
    expected = "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"
    if tf.config.list_physical_devices("GPU"):
        expected = "mixed_float16"
    assert model.dtype_policy_name == expected


def test_default_recurrent_layers_are_cudnn_eligible(vocabulary):
    for cell in ("lstm", "gru"):
        model = rnn_toolkit.build_char_lm(vocabulary, cell=cell, units=4, num_layers=2, dropout=0.2)
        assert model.recurrent.cudnn_eligible, model.recurrent.cudnn_conditions()


def test_training_lowers_loss_and_logs_grad_norm(vocabulary):
    keras.utils.set_random_seed(1)
    model = rnn_toolkit.build_char_lm(vocabulary, units=16, embedding_dim=8, learning_rate=1e-2)
    history = model.fit(
        char_windows(TEXT, vocabulary, sequence_length=20, batch_size=8, seed=0), epochs=3, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert len(history.history["grad_norm"]) == 3
    assert all(np.isfinite(history.history["grad_norm"]))


def test_generate_returns_prompt_plus_continuation(trained):
    text = trained.generate("the ", max_length=15, seed=3)
    assert isinstance(text, str) and text.startswith("the ") and len(text) == 4 + 15
    texts = trained.generate(["the ", "a"], max_length=5, seed=3)
    assert isinstance(texts, list) and [t[: len(p)] for t, p in zip(texts, ["the ", "a"])] == ["the ", "a"]


def test_generate_is_reproducible_by_seed(trained):
    a = trained.generate("the", max_length=40, seed=7)
    assert a == trained.generate("the", max_length=40, seed=7)
    others = {trained.generate("the", max_length=40, seed=s, temperature=2.0) for s in range(4)}
    assert len(others) > 1


def test_batched_prompts_of_different_lengths_match_single_prompts(trained):
    """Right-padded priming must give each row exactly its own continuation."""
    prompts = ["the cat sat on", "t", "", "the dog"]
    batched = trained.generate(prompts, max_length=12, sampler="greedy")
    singles = [trained.generate(p, max_length=12, sampler="greedy") for p in prompts]
    assert batched == singles


def test_samplers_by_name_and_object(trained):
    greedy = trained.generate("the ", max_length=10, sampler="greedy")
    assert greedy == trained.generate("the ", max_length=10, sampler=rnn_toolkit.decoding.GreedySampler())
    assert greedy == trained.generate("the ", max_length=10, sampler="top_k", top_k=1, seed=5)
    for name, kwargs in [("temperature", {"temperature": 0.5}), ("top_k", {"top_k": 3}), ("top_p", {"top_p": 0.8})]:
        assert len(trained.generate("the ", max_length=10, sampler=name, seed=1, **kwargs)) == 14


def test_custom_sampler_subclass_is_used(trained):
    class AlwaysFirstCharacter(rnn_toolkit.decoding.Sampler):
        def get_next_token(self, logits, seed):
            return tf.fill([tf.shape(logits)[0]], 2)

    first = trained.vocabulary.characters[0]
    assert trained.generate("x", max_length=4, sampler=AlwaysFirstCharacter()) == "x" + first * 4


def test_generation_edge_cases(trained):
    assert trained.generate("the", max_length=0) == "the"
    assert trained.generate("the", max_length=-3) == "the"
    assert trained.generate([], max_length=5) == []
    unseen = trained.generate("QZ\u00e9\u4e2d", max_length=5, seed=0)
    assert unseen.startswith("QZ\u00e9\u4e2d") and "\ufffd" not in unseen[4:]
    assert len(trained.generate("", max_length=6, seed=0)) == 6
    huge = trained.generate("t", max_length=MAX_GENERATION_LENGTH + 50, sampler="greedy")
    assert len(huge) == 1 + MAX_GENERATION_LENGTH


def test_generate_rejects_bad_arguments(trained):
    with pytest.raises(TypeError, match="prompts"):
        trained.generate(5)
    with pytest.raises(TypeError, match="max_length"):
        trained.generate("a", max_length=2.5)
    with pytest.raises(ValueError, match="beam"):
        trained.generate("a", sampler="beam")


def test_log_prob_matches_the_model_probabilities(trained, vocabulary):
    text = "the cat sat"
    log_prob, num_chars = trained.log_prob(text)
    ids = vocabulary.encode(text).numpy()[None]
    logits = trained(ids[:, :-1])
    expected = tf.reduce_sum(
        tf.gather(tf.nn.log_softmax(logits), ids[:, 1:], axis=2, batch_dims=2)
    ).numpy()
    assert num_chars == len(text)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5)


def test_log_prob_batches_agree_and_handle_edge_cases(trained):
    texts = ["the cat", "", "t", "the dog sat on the log", "\u4e2d\u6587"]
    batched, counts = trained.log_prob(texts)
    singles = [trained.log_prob(t)[0] for t in texts]
    np.testing.assert_allclose(batched, singles, rtol=1e-5, atol=1e-6)
    assert counts.tolist() == [7, 0, 1, 22, 2]
    assert batched[1] == 0.0 and batched[2] == 0.0
    assert np.all(np.isfinite(batched)) and np.all(batched <= 0)


def test_state_carry_continues_the_previous_batch(vocabulary):
    """With the carry on, two consecutive chunks equal one long sequence."""
    model = rnn_toolkit.build_char_lm(vocabulary, units=8, embedding_dim=4, dtype_policy="float32")
    ids = vocabulary.encode(["the cat sat on the mat"]).to_tensor().numpy()
    whole = model(ids, training=True)
    model.enable_state_carry(batch_size=1)
    first = model(ids[:, :10], training=True)
    second = model(ids[:, 10:], training=True)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    model.reset_carried_state()
    np.testing.assert_allclose(model(ids[:, 10:], training=True), model(ids[:, 10:]), atol=1e-5)
    model.disable_state_carry()


def test_truncated_bptt_training_with_carried_state(vocabulary):
    keras.utils.set_random_seed(2)
    model = rnn_toolkit.build_char_lm(vocabulary, units=16, embedding_dim=8, learning_rate=1e-2)
    model.enable_state_carry(batch_size=4)
    dataset = consecutive_char_batches(TEXT, vocabulary, sequence_length=10, batch_size=4)
    history = model.fit(dataset, epochs=2, verbose=0, callbacks=[rnn_toolkit.ResetCarriedState()])
    assert history.history["loss"][-1] < history.history["loss"][0]
    carried = [v.numpy() for layer in model._carried.variables for v in layer]
    assert any(np.abs(c).sum() > 0 for c in carried)


def test_keras_save_and_load_round_trip(trained, tmp_path):
    path = tmp_path / "model.keras"
    trained.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, CharLanguageModel)
    assert loaded.vocabulary.characters == trained.vocabulary.characters
    prompt = "the "
    assert loaded.generate(prompt, max_length=20, sampler="greedy") == trained.generate(
        prompt, max_length=20, sampler="greedy"
    )


def test_mixed_float16_trains_with_loss_scaling(vocabulary):
    """The GPU policy also runs on the CPU: loss scaling must not leak into grad_norm."""
    keras.utils.set_random_seed(3)
    # One fixed batch: a shuffled pipeline reshuffles on every pass.
    data = tf.data.Dataset.from_tensors(
        next(iter(char_windows(TEXT, vocabulary, sequence_length=10, batch_size=8, seed=0)))
    )
    norms = {}
    for policy in ("float32", "mixed_float16"):
        keras.utils.set_random_seed(3)
        model = rnn_toolkit.build_char_lm(vocabulary, units=8, embedding_dim=4, dtype_policy=policy)
        history = model.fit(data, epochs=1, verbose=0)
        norms[policy] = history.history["grad_norm"][0]
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # The loss scale starts at 32768; unscaled, the first step's norm is float32's within float16 noise.
    np.testing.assert_allclose(norms["mixed_float16"], norms["float32"], rtol=1e-3)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"vocabulary": 123}, TypeError, "characters"),
        ({"cell": "transformer"}, ValueError, "cell"),
        ({"units": 0}, ValueError, "units"),
        ({"embedding_dim": -1}, ValueError, "embedding_dim"),
        ({"dtype_policy": "float64"}, ValueError, "dtype_policy"),
        ({"clip_norm": -1.0}, ValueError, "clip_norm"),
    ],
)
def test_builder_rejects_bad_arguments(vocabulary, kwargs, error, name):
    arguments = {"vocabulary": vocabulary, "units": 4, **kwargs}
    with pytest.raises(error, match=name):
        rnn_toolkit.build_char_lm(arguments.pop("vocabulary"), **arguments)


def test_builder_takes_another_optimizer(vocabulary):
    model = rnn_toolkit.build_char_lm(vocabulary, units=4, optimizer=keras.optimizers.SGD(0.5))
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert isinstance(rnn_toolkit.build_char_lm(vocabulary, units=4).optimizer, keras.optimizers.Adam)


def test_generation_stops_at_an_end_character(trained):
    # Same seed, same draws: the stopped text is the full text cut at its first newline.
    prompts = ["the ", "a"]
    full = trained.generate(prompts, max_length=200, seed=4)
    lines = trained.generate(prompts, max_length=200, seed=4, end_character="\n")
    for prompt, whole, line in zip(prompts, full, lines):
        continuation = whole[len(prompt):]
        assert "\n" in continuation
        assert line == prompt + continuation.split("\n")[0]
    with pytest.raises(ValueError, match="end_character"):
        trained.generate("the", end_character="QQ")
