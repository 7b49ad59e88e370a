"""The captioner model: training and decoding share layers, attention maps, inputs, saving."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.tasks.captioner.model import Captioner, build_captioner

SIZE = 32


@pytest.fixture(scope="module")
def vocabulary():
    return WordVocabulary.from_texts(
        ["a red ball", "a blue cat", "the red cat", "a green tree"], min_count=1, sequence_markers=True
    )


def tiny(vocabulary, **kwargs):
    settings = dict(
        image_encoder="small_cnn", image_size=SIZE, units=8, embedding_dim=4, dropout=0.0,
        dtype_policy="float32",
    )
    settings.update(kwargs)
    return build_captioner(vocabulary, **settings)


def images(count=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")


def batch(vocabulary, count=4):
    ids = vocabulary.encode(["a red ball", "a blue cat", "the red cat", "a green tree"][:count]).to_tensor()
    start = tf.fill([count, 1], vocabulary.start_id)
    decoder_input = tf.concat([start, ids], axis=1)
    end = tf.fill([count, 1], vocabulary.end_id)
    targets = tf.concat([ids, end], axis=1)
    return decoder_input, targets


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "attention, grid_positions", [("soft", "sinusoidal"), ("soft", "learned"), ("none", "sinusoidal")]
)
def test_teacher_forcing_and_decoding_steps_give_the_same_logits(vocabulary, attention, grid_positions):
    model = tiny(vocabulary, attention=attention, grid_positions=grid_positions, cell="gru")
    pixels = images(2)
    decoder_input, _ = batch(vocabulary, 2)
    forced = model((pixels, decoder_input), training=False).numpy()
    logits, state = model.start_decoding(tf.constant(pixels))
    stepped = [logits.numpy()]
    for t in range(1, decoder_input.shape[1]):
        logits, state = model.step(decoder_input[:, t], state)
        stepped.append(logits.numpy())
    np.testing.assert_allclose(forced, np.stack(stepped, axis=1), atol=1e-5)


def test_decoder_stays_cudnn_eligible(vocabulary):
    assert tiny(vocabulary).decoder.recurrent.cudnn_eligible


def test_attention_maps_cover_every_word_and_sum_to_one(vocabulary):
    model = tiny(vocabulary)
    words, weights = model.attention_maps(images(1)[0], beam_width=1, max_length=6)
    assert words[-1] == "[END]" and len(words) == weights.shape[0]
    assert weights.shape[1:] == model.grid_shape[:2]
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_attention_maps_need_soft_attention(vocabulary):
    with pytest.raises(ValueError, match="attention='soft'"):
        tiny(vocabulary, attention="none").attention_maps(images(1)[0])


def test_the_position_code_lets_attention_tell_identical_cells_apart(vocabulary):
    # A grid whose cells all hold the same vector: content alone cannot prefer any cell.
    grid_shape = tiny(vocabulary).grid_shape
    same = np.tile(np.linspace(0, 1, grid_shape[-1], dtype="float32"), (1, *grid_shape[:2], 1))
    decoder_input, _ = batch(vocabulary, 1)
    maps = {}
    for code in ("none", "sinusoidal"):
        keras.utils.set_random_seed(0)
        model = tiny(vocabulary, grid_positions=code)
        _, weights = model((same, decoder_input), training=False, return_attention=True)
        maps[code] = weights.numpy()
    np.testing.assert_allclose(maps["none"], 1 / np.prod(grid_shape[:2]), rtol=1e-5)
    assert maps["sinusoidal"].std(axis=-1).min() > 1e-4
    assert tiny(vocabulary, attention="none").grid_positions == "none"  # nothing attended


def test_a_model_saved_before_the_position_code_loads_without_one(vocabulary):
    config = tiny(vocabulary).get_config()
    del config["grid_positions"]
    assert Captioner.from_config(config).grid_positions == "none"


def test_the_attention_penalty_is_a_training_loss(vocabulary):
    model = tiny(vocabulary, attention_penalty=1.0)
    decoder_input, _ = batch(vocabulary)
    model((images(), decoder_input), training=True)
    assert len(model.losses) == 1 and float(model.losses[0]) > 0
    with pytest.raises(ValueError, match="attention_penalty"):
        tiny(vocabulary, attention="none", attention_penalty=1.0)


def test_precomputed_features_give_the_same_captions_as_pixels(vocabulary):
    model = tiny(vocabulary)
    pixels = images(3)
    features = model.encode_images(list(pixels))
    assert features.shape == (3,) + model.grid_shape
    assert model.caption(features, beam_width=2) == model.caption(list(pixels), beam_width=2)


def test_a_random_encoder_trains_and_a_frozen_one_does_not(vocabulary):
    decoder_input, targets = batch(vocabulary)
    data = tf.data.Dataset.from_tensor_slices(((images(), decoder_input), targets)).batch(4)
    for fine_tune, changes in ((None, True), (False, False)):
        model = tiny(vocabulary, fine_tune_encoder=fine_tune)
        before = [w.copy() for w in model.image_encoder.get_weights()]
        model.fit(data, epochs=1, verbose=0)
        after = model.image_encoder.get_weights()
        changed = any(not np.array_equal(a, b) for a, b in zip(before, after))
        assert changed == changes, f"fine_tune_encoder={fine_tune}"


def test_an_encoder_from_scratch_learns_its_batch_norm_statistics_a_pretrained_one_keeps_them(vocabulary):
    decoder_input, targets = batch(vocabulary)
    data = tf.data.Dataset.from_tensor_slices(((images(), decoder_input), targets)).batch(4)

    def moving_means(model):
        return [w.numpy().copy() for w in model.image_encoder.weights if "moving_mean" in w.path]

    scratch = tiny(vocabulary)  # small_cnn: random weights, trained
    before = moving_means(scratch)
    scratch.fit(data, epochs=1, verbose=0)
    assert scratch.encoder_from_scratch
    assert all(not np.array_equal(a, b) for a, b in zip(before, moving_means(scratch)))

    inputs = keras.Input((SIZE, SIZE, 3))
    grid = keras.layers.BatchNormalization()(keras.layers.Conv2D(6, 3, strides=4, padding="same")(inputs))
    users = tiny(vocabulary, image_encoder=keras.Model(inputs, grid), fine_tune_encoder=True)
    before = moving_means(users)
    users.fit(data, epochs=1, verbose=0)
    assert not users.encoder_from_scratch
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_means(users)))


def test_caption_takes_paths_bytes_and_arrays_of_any_mode(vocabulary, tmp_path):
    model = tiny(vocabulary)
    rgb = images(1)[0].astype(np.uint8)
    path = tmp_path / "image.png"
    path.write_bytes(png_bytes(rgb))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    captions = model.caption([str(path), path, png_bytes(rgb), rgb, rgba], beam_width=1)
    # The same pixels in every form (an opaque alpha channel changes nothing).
    assert len(set(captions)) == 1
    grey = model.caption(rgb[..., 0], beam_width=1)
    assert isinstance(grey, str)
    assert model.caption([], beam_width=1) == []


def test_caption_errors_name_the_bad_image(vocabulary, tmp_path):
    model = tiny(vocabulary)
    with pytest.raises(FileNotFoundError, match=r"images\[0\]"):
        model.caption([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match=r"images\[1\] is not a readable .*not a PNG, JPEG, GIF or BMP"):
        model.caption([images(1)[0], b"not an image"])
    truncated = png_bytes(images(1)[0].astype(np.uint8))[:200]
    with pytest.raises(ValueError, match=r"images\[0\] .*corrupt or truncated"):
        model.caption([truncated])
    with pytest.raises(ValueError, match=r"images\[0\] must be"):
        model.caption([np.zeros((4, 4, 5))])
    with pytest.raises(ValueError, match="beam_width"):
        model.caption(images(1)[0], beam_width=0)
    with pytest.raises(ValueError, match="sampler"):
        model.caption(images(1)[0], sampler="best")


def test_beam_of_width_one_is_greedy_sampling(vocabulary):
    model = tiny(vocabulary)
    pixels = list(images(4))
    assert model.caption(pixels, beam_width=1) == model.caption(pixels, sampler="greedy")


def test_keras_save_and_load_give_identical_captions(vocabulary, tmp_path):
    model = tiny(vocabulary, attention_penalty=0.5, grid_positions="learned")
    path = tmp_path / "captioner.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Captioner)
    pixels = list(images(3))
    assert loaded.caption(pixels, beam_width=2) == model.caption(pixels, beam_width=2)
    assert loaded.get_config()["attention_penalty"] == 0.5
    assert loaded.get_config()["grid_positions"] == "learned"


def test_a_users_keras_encoder(vocabulary, tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    grid = keras.layers.Conv2D(6, 3, strides=4, padding="same")(keras.layers.Rescaling(1 / 255)(inputs))
    encoder = keras.Model(inputs, grid, name="users_cnn")
    model = tiny(vocabulary, image_encoder=encoder)
    assert model.grid_shape == (8, 8, 6) and not model.fine_tune_encoder
    path = tmp_path / "captioner.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    pixels = list(images(2))
    assert loaded.caption(pixels, beam_width=1) == model.caption(pixels, beam_width=1)
    classifier = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="4-D grid"):
        tiny(vocabulary, image_encoder=classifier)


def test_bad_arguments_are_named(vocabulary):
    with pytest.raises(ValueError, match="sequence_markers"):
        tiny(WordVocabulary(["a"]))
    with pytest.raises(ValueError, match="attention"):
        tiny(vocabulary, attention="hard")
    with pytest.raises(ValueError, match="grid_positions"):
        tiny(vocabulary, grid_positions="absolute")
    with pytest.raises(ValueError, match="encoder"):
        tiny(vocabulary, image_encoder="vgg16")
    with pytest.raises(ValueError, match="Captioner inputs"):
        tiny(vocabulary)((np.zeros((1, SIZE, SIZE, 5), np.float32), np.ones((1, 2), np.int32)))
