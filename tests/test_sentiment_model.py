import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary, encode_texts, text_classification_batches
from rnn_toolkit.models import SentimentClassifier, build_bag_of_words_classifier

# Keras' TF backend module holding the run-time checks of the cuDNN dispatch.
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

WORDS = ["good", "bad", "film", "not", "!"]
TEXTS = ["good film", "bad film", "not good !", "", "a film never seen before , bad"]


def tiny(**kwargs):
    settings = dict(cell="gru", units=3, embedding_dim=4, dropout=0.0, dtype_policy="float32")
    settings.update(kwargs)
    return rnn_toolkit.build_sentiment_classifier(WordVocabulary(WORDS), **settings)


@pytest.mark.parametrize("pooling", ["final", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_one_row_per_text(pooling, bidirectional):
    model = tiny(pooling=pooling, bidirectional=bidirectional)
    result = model.classify(TEXTS)
    assert result["probabilities"].shape == (len(TEXTS), 2)
    np.testing.assert_allclose(result["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert set(result["label"]) <= {"negative", "positive"}
    assert result["class_id"].dtype == np.int32


def test_padding_does_not_change_the_decision():
    # The final state must be read at each text's last word, not at the padded end.
    model = tiny(cell="lstm", bidirectional=True)
    ids = WordVocabulary(WORDS).encode_padded(["good film !"]).numpy()
    padded = np.concatenate([ids, np.zeros((1, 5), ids.dtype)], axis=1)
    np.testing.assert_allclose(model(ids), model(padded), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_pooling_ignores_padding(pooling):
    model = tiny(pooling=pooling)
    ids = WordVocabulary(WORDS).encode_padded(["bad film"]).numpy()
    padded = np.concatenate([ids, np.zeros((1, 4), ids.dtype)], axis=1)
    np.testing.assert_allclose(model(ids), model(padded), rtol=1e-5, atol=1e-6)


def test_batch_rows_are_independent():
    model = tiny(bidirectional=True)
    together = model.classify(TEXTS)["probabilities"]
    alone = np.concatenate([model.classify([text])["probabilities"] for text in TEXTS])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_edge_case_texts_and_empty_batch():
    model = tiny()
    result = model.classify(["", "   ", b"\xff\xfe bad", " ".join(["good"] * 50_000)])
    assert result["probabilities"].shape == (4, 2)
    # An empty text is one unknown word, exactly like a text of one unseen word.
    np.testing.assert_allclose(
        model.classify([""])["probabilities"], model.classify(["zzz"])["probabilities"]
    )
    empty = model.classify([])
    assert empty["probabilities"].shape == (0, 2) and empty["label"].shape == (0,)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers_stay_cudnn_eligible(cell, bidirectional):
    model = tiny(cell=cell, bidirectional=bidirectional, word_dropout=0.3, dropout=0.5)
    assert model.recurrent.cudnn_eligible, model.recurrent.cudnn_conditions()


def test_pipeline_masks_pass_the_cudnn_runtime_checks():
    # What Keras checks on a GPU before taking the cuDNN path: strictly right-padded masks
    # and no row without any valid step. Empty texts are in the data on purpose.
    vocabulary = WordVocabulary(WORDS)
    texts = TEXTS * 7 + ["", "  ", "!"]
    model = tiny()
    batches = text_classification_batches(
        encode_texts(texts, vocabulary), np.arange(len(texts)) % 2, batch_size=4, seed=0
    )
    for ids, _ in batches:
        mask = model.embedding.compute_mask(ids)
        assert bool(keras_tf_rnn._is_sequence_right_padded(mask))
        assert not bool(keras_tf_rnn._has_fully_masked_sequence(mask))


def test_word_dropout_only_while_training():
    model = tiny(word_dropout=0.9)
    ids = WordVocabulary(WORDS).encode_padded(["good film !"] * 8)
    np.testing.assert_allclose(model(ids, training=False), model(ids, training=False))
    dropped = model.word_dropout_layer(ids, training=True).numpy()
    assert (dropped == WordVocabulary.UNKNOWN_ID).mean() > 0.5
    assert (model.word_dropout_layer(ids, training=False).numpy() == ids.numpy()).all()


def test_training_reduces_the_loss_and_logs_grad_norm():
    keras.utils.set_random_seed(0)
    vocabulary = WordVocabulary(WORDS)
    texts = ["good film", "good good film !", "bad film", "bad bad film", "not bad", "not good"] * 6
    labels = np.array([1, 1, 0, 0, 1, 0] * 6)
    batches = text_classification_batches(encode_texts(texts, vocabulary), labels, batch_size=6)
    model = tiny(units=8, embedding_dim=8, learning_rate=1e-2)
    history = model.fit(batches, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert "grad_norm" in history.history
    assert model.classify(["good film"])["label"][0] == "positive"


def test_regression_head_reads_the_class_from_the_score_sign():
    model = tiny(head="regression")
    result = model.classify(TEXTS)
    assert result["score"].shape == (len(TEXTS),)
    np.testing.assert_array_equal(result["class_id"], (result["score"] > 0).astype(np.int32))
    np.testing.assert_allclose(result["probabilities"][:, 1], 1 / (1 + np.exp(-result["score"])), rtol=1e-5)
    targets = np.array([2.0, -1.5, 1.0, -0.5, -3.0])
    ids = encode_texts(TEXTS, model.vocabulary)
    history = model.fit(text_classification_batches(ids, targets, batch_size=5), epochs=1, verbose=0)
    assert {"mae", "sign_accuracy"} <= set(history.history)


def test_multi_class_head():
    model = tiny(class_names=("neg", "neutral", "pos"))
    result = model.classify(TEXTS)
    assert result["probabilities"].shape == (len(TEXTS), 3)
    assert set(result["label"]) <= {"neg", "neutral", "pos"}


def test_attention_weights_cover_the_words():
    model = tiny(pooling="attention")
    (words, weights), (empty_words, empty_weights) = model.attention_weights(["Not good !", ""])
    assert words == ["not", "good", "!"]
    assert len(weights) == 3 and abs(sum(weights) - 1.0) < 1e-5
    assert empty_words == ["[UNK]"] and empty_weights == pytest.approx([1.0])
    with pytest.raises(ValueError, match="attention"):
        tiny().attention_weights(["good"])


def test_save_and_load_round_trip(tmp_path):
    model = tiny(pooling="attention", bidirectional=True, word_dropout=0.1, class_names=("a", "b", "c"))
    model.optimizer.build(model.trainable_variables)  # as after training: saved with its state
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SentimentClassifier)
    assert loaded.class_names == ("a", "b", "c")
    assert loaded.vocabulary.words == WORDS
    np.testing.assert_allclose(
        loaded.classify(TEXTS)["probabilities"], model.classify(TEXTS)["probabilities"], rtol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(head="ordinal"), "head"),
        (dict(pooling="sum"), "pooling"),
        (dict(class_names=("only",)), "class_names"),
        (dict(class_names=("a", "a")), "class_names"),
        (dict(head="regression", class_names=("a", "b", "c")), "regression"),
        (dict(cell="transformer"), "cell"),
        (dict(units=0), "units"),
        (dict(embedding_dim=-1), "embedding_dim"),
        (dict(word_dropout=1.0), "rate"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tiny(**kwargs)


def test_vocabulary_must_be_a_word_vocabulary():
    with pytest.raises(TypeError, match="WordVocabulary"):
        rnn_toolkit.build_sentiment_classifier(["good", "bad"])


def test_bag_of_words_baseline_ignores_order_and_padding():
    model = build_bag_of_words_classifier(WordVocabulary(WORDS))
    a = WordVocabulary(WORDS).encode_padded(["good film !"]).numpy()
    b = WordVocabulary(WORDS).encode_padded(["! film good"]).numpy()
    padded = np.concatenate([a, np.zeros((1, 3), a.dtype)], axis=1)
    np.testing.assert_allclose(model(a), model(b), rtol=1e-6)
    np.testing.assert_allclose(model(a), model(padded), rtol=1e-6)
    assert model.output_shape == (None, 2)


def test_classify_under_mixed_precision_returns_float32():
    model = tiny(dtype_policy="mixed_bfloat16")
    result = model.classify(TEXTS)
    assert result["probabilities"].dtype == np.float32
    assert tf.reduce_all(tf.math.is_finite(result["probabilities"]))
