"""The tf.data pipelines of image captioning: decoded images with one reference caption each.

`caption_batches` gives teacher-forcing batches `((images, decoder_input_ids), target_ids)`:
the images are read with `tf.io.read_file` and decoded with the one graph decoder,
`rnn_toolkit.data.images.decode_image`, inside a parallel `map` (no Python loop over files
per epoch), or taken from precomputed encoder features. Every epoch draws ONE of each
image's reference captions at random (seeded), so an image with five references teaches
all five over the epochs instead of the first one five times.

Augmentation (training only, in the graph) is mild and keeps the caption true for
clip-art: a random zoom-out to 80-100 % placed anywhere in the freed margin (the drawing
is never cropped), a brightness shift of at most 8 % and a contrast change of at most
15 %, and a left-right flip with probability 1/2, but only for images marked
`mirrorable` (Tux Paint's "nomirror" stamps: letters, road signs, clocks) whose captions
have no word in `MIRROR_SENSITIVE_WORDS` ("left", "right", "letter", "arrow", "flag",
"sign", "button", ...): a mirrored "left arrow" or "flag of France" would contradict its
caption. Likewise the brightness and contrast stay untouched when a caption names a
lightness (`LIGHTNESS_WORDS`: the emoji's five skin tones "light" to "dark", "pale",
"bright", ...): a brightened "medium-dark skin tone" is a "medium skin tone".

`image_batches` decodes images in order, for computing a frozen encoder's features once
and for evaluation; with `augment_seed` it gives one fixed augmented view of them, so that
a frozen encoder's features of a few augmented views, computed once, bring augmentation
back to training on cached features (`caption_batches(features=[view, ...])`).

Both use `rnn_toolkit.data.dataset_options` (autotuning off); the decoding map runs
`DECODE_PARALLEL_CALLS` calls in parallel.

Imports from rnn_toolkit: arguments, data.
"""

import os
import re

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.captioned_images import CaptionedImages
from rnn_toolkit.data.dataset_options import finish_pipeline
from rnn_toolkit.data.images import DEFAULT_BACKGROUND, decode_image
from rnn_toolkit.data.text_batches import encode_texts

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
DECODE_PARALLEL_CALLS = max(1, min(8, _CORES or 1))
"""Images decoded at once: one per core (at most 8). A fixed number, since the shared
pipeline options turn tf.data's autotuning off (see `rnn_toolkit.data.dataset_options`)."""

MIRROR_SENSITIVE_WORDS = frozenset(
    """left right leftwards rightwards clockwise counterclockwise anticlockwise letter letters
    number numbers digit digits keycap text word words sign signs button flag flags clock
    o'clock arrow arrows symbol symbols mark copyright registered trade input latin
    japanese waxing waning quarter""".split()
)
"""Caption words that forbid flipping an image left-right: directions, text and glyphs
(letters, digits, signs, buttons with writing), flags, clocks, arrows and moon phases (a
mirrored waxing moon is a waning one)."""

ZOOM_RANGE = (0.8, 1.0)
"""Augmentation: the drawing's size relative to the frame (zoom-out only: never cropped)."""

BRIGHTNESS_DELTA = 0.08 * 255.0
"""Augmentation: the largest brightness shift, in pixel levels."""

CONTRAST_RANGE = (0.85, 1.15)
"""Augmentation: the range of the contrast factor (around the image's mean)."""

LIGHTNESS_WORDS = frozenset(
    """light dark medium medium-light medium-dark pale bright dim tone tones shade shaded
    shadow night grey gray silver""".split()
)
"""Caption words that forbid brightness and contrast changes: lightness is what they say."""

_WORD = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def mirror_safe(captions):
    """Whether flipping an image left-right keeps every caption in `captions` true (no
    word of `MIRROR_SENSITIVE_WORDS`).

    Example:

    >>> from rnn_toolkit.data.caption_batches import mirror_safe
    >>> mirror_safe(["A frog."]), mirror_safe(["A frog.", "A frog facing left."])
    (True, False)
    """
    return not any(word in MIRROR_SENSITIVE_WORDS for caption in captions for word in _words(caption))


def lightness_safe(captions):
    """Whether brightness and contrast changes keep every caption in `captions` true (no
    word of `LIGHTNESS_WORDS`, e.g. a skin tone).

    Example:

    >>> from rnn_toolkit.data.caption_batches import lightness_safe
    >>> lightness_safe(["thumbs up"]), lightness_safe(["thumbs up medium-dark skin tone"])
    (True, False)
    """
    return not any(word in LIGHTNESS_WORDS for caption in captions for word in _words(caption))


def _words(caption):
    """The lower-case words of `caption`, and each part of a hyphenated one as well."""
    for word in _WORD.findall(caption.lower()):
        yield word
        if "-" in word:
            yield from word.split("-")


def _image_tensors(images):
    """`(sources, is_path)`: the paths (checked to exist) or bytes of `images`, as tensors."""
    missing = [image for image in images if isinstance(image, str) and not os.path.isfile(image)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing):,} image file(s) do not exist, e.g. {missing[0]!r}; the data "
            "refers to files that were moved or deleted."
        )
    sources = [os.fsencode(image) if isinstance(image, str) else image for image in images]
    is_path = [isinstance(image, str) for image in images]
    return tf.constant(sources, tf.string), tf.constant(is_path, tf.bool), all(is_path)


def _loader(images, image_size, background):
    """A graph function `index -> float32 [S, S, 3]` reading and decoding `images[index]`."""
    sources, is_path, all_paths = _image_tensors(images)

    def load(index):
        source = sources[index]
        if all_paths:
            encoded = tf.io.read_file(source)
        else:
            encoded = tf.cond(is_path[index], lambda: tf.io.read_file(source), lambda: source)
        pixels = decode_image(encoded, image_size, background)
        return tf.ensure_shape(pixels, [image_size, image_size, 3])

    return load


def augment_image(pixels, seed, mirror_ok, background=DEFAULT_BACKGROUND, lightness_ok=True):
    """Mild, caption-preserving augmentation of one clip-art image (see the module docstring).

    Args:
        pixels: float32 `[S, S, 3]` in [0, 255] (from `decode_image`).
        seed: int `[2]`: the stateless random seed (the same seed, the same result).
        mirror_ok: bool scalar: whether a left-right flip is allowed.
        background: the grey level of the margin the zoom-out frees.
        lightness_ok: bool scalar: whether brightness and contrast may change.

    Returns:
        float32 `[S, S, 3]` in [0, 255].
    """
    size = pixels.shape[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    uniform = [tf.random.stateless_uniform([], seed=seeds[i]) for i in range(6)]
    scale = ZOOM_RANGE[0] + (ZOOM_RANGE[1] - ZOOM_RANGE[0]) * uniform[0]
    side = tf.maximum(1, tf.cast(tf.round(scale * size), tf.int32))
    margin = size - side
    top = tf.cast(tf.floor(uniform[1] * tf.cast(margin + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(uniform[2] * tf.cast(margin + 1, tf.float32)), tf.int32)
    background = tf.cast(background, tf.float32)
    # Shift the background to zero so that the zero padding comes out as background.
    shrunk = tf.image.resize(pixels - background, tf.stack([side, side]))
    pixels = tf.image.pad_to_bounding_box(shrunk, top, left, size, size) + background
    flip = tf.logical_and(tf.cast(mirror_ok, tf.bool), uniform[3] < 0.5)
    pixels = tf.cond(flip, lambda: tf.reverse(pixels, axis=[1]), lambda: pixels)
    contrast = CONTRAST_RANGE[0] + (CONTRAST_RANGE[1] - CONTRAST_RANGE[0]) * uniform[4]
    brightness = BRIGHTNESS_DELTA * (2.0 * uniform[5] - 1.0)
    mean = tf.reduce_mean(pixels)
    jittered = (pixels - mean) * contrast + mean + brightness
    pixels = tf.where(tf.cast(lightness_ok, tf.bool), jittered, pixels)
    return tf.ensure_shape(tf.clip_by_value(pixels, 0.0, 255.0), [size, size, 3])


def _check_data(data, argument="data"):
    if not isinstance(data, CaptionedImages):
        raise TypeError(f"`{argument}` must be CaptionedImages; got {type(data).__name__}.")
    if not len(data):
        raise ValueError(f"`{argument}` holds no image.")


def caption_batches(
    data,
    vocabulary,
    *,
    image_size,
    batch_size,
    seed=None,
    shuffle=True,
    augment=False,
    features=None,
    max_caption_length=None,
    background=DEFAULT_BACKGROUND,
):
    """Teacher-forcing batches of a captioner: `((images, decoder_input_ids), target_ids)`.

    Each pass over the dataset (epoch) holds every image once and draws one of its
    reference captions at random: `decoder_input_ids` is `[START] w1 .. wn` and
    `target_ids` is `w1 .. wn [END]`, both right-padded with 0 to the longest caption of
    the batch.

    Args:
        data: `CaptionedImages`.
        vocabulary: a `WordVocabulary` built with `sequence_markers=True`.
        image_size: the side of the square images, in pixels.
        batch_size: images per batch (the last batch may be smaller).
        seed: fixes the order, the caption drawn for each image in each epoch and the
            augmentation, epoch after epoch (None: different in every run).
        shuffle: shuffle the images and draw new captions every epoch (training);
            False keeps the order and draws the same captions every pass (evaluation;
            augmentation, if asked for, still changes every epoch).
        augment: augment the pixels (training only; see the module docstring). Not with
            `features`.
        features: instead of pixels, a precomputed float array `[len(data), h, w, c]`
            (a frozen encoder's grid of each image, e.g. from `image_batches`), or a
            list of such arrays, one per view of the images (e.g. the grids of augmented
            copies, `image_batches(..., augment_seed=v)`): every epoch then takes one
            view of each image at random. Batched as float32.
        max_caption_length: cut captions to this many words (default: the vocabulary's
            `max_length`); a cut caption still ends with `[END]`.
        background: the grey level transparent parts and padding become.

    Returns:
        A prefetched `tf.data.Dataset` of `((float32 [b, S, S, 3] in [0, 255] or float32
        [b, h, w, c], int32 [b, T]), int32 [b, T])` with known cardinality.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> import rnn_toolkit.data
    >>> from rnn_toolkit.data.captioned_images import CaptionedImages
    >>> from rnn_toolkit.data.caption_batches import caption_batches
    >>> png = tf.io.encode_png(np.zeros((4, 4, 4), np.uint8)).numpy()
    >>> data = CaptionedImages([png, png], [["a red frog"], ["a frog", "a green frog"]])
    >>> vocab = rnn_toolkit.data.WordVocabulary(["a", "frog", "red", "green"], sequence_markers=True)
    >>> ds = caption_batches(data, vocab, image_size=8, batch_size=2, shuffle=False, seed=0)
    >>> (images, decoder_input), target = next(iter(ds))
    >>> tuple(images.shape), decoder_input.numpy().tolist()[0], target.numpy().tolist()[0]
    ((2, 8, 8, 3), [2, 4, 6, 5], [4, 6, 5, 3])
    """
    _check_data(data)
    image_size = check_positive_int("image_size", image_size)
    batch_size = check_positive_int("batch_size", batch_size)
    max_caption_length = check_positive_int("max_caption_length", max_caption_length, allow_none=True)
    if not getattr(vocabulary, "sequence_markers", False):
        raise ValueError(
            "`vocabulary` must be a WordVocabulary built with sequence_markers=True: the "
            "decoder starts from [START] and learns to write [END]."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an integer or None; received seed={seed!r}.")
    if features is not None and augment:
        raise ValueError(
            "`augment=True` needs pixels: precomputed `features` cannot be augmented; "
            "pass one or the other."
        )
    count = len(data)

    # Every reference, tokenized once; image i owns rows starts[i] .. starts[i] + counts[i].
    references = [caption for captions in data.captions for caption in captions]
    token_ids = encode_texts(references, vocabulary)
    if max_caption_length is not None:
        token_ids = token_ids[:, :max_caption_length]
    words, row_splits = tf.cast(token_ids.flat_values, tf.int32), token_ids.row_splits
    counts = np.asarray([len(captions) for captions in data.captions], np.int64)
    starts = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int64)
    counts = tf.constant(counts, tf.int64)
    start_id = tf.constant([vocabulary.start_id], tf.int32)
    end_id = tf.constant([vocabulary.end_id], tf.int32)

    if features is not None:
        views = [np.asarray(view) for view in features] if isinstance(features, (list, tuple)) else [np.asarray(features)]
        for view in views:
            if view.ndim < 2 or len(view) != count or not np.issubdtype(view.dtype, np.floating):
                raise ValueError(
                    f"`features` must be a float array with one row per image ({count}), e.g. "
                    f"[{count}, h, w, c], or a list of such arrays of one shape; received "
                    f"shape {view.shape} of {view.dtype}."
                )
            if view.shape != views[0].shape:
                raise ValueError(
                    f"Every view in `features` must have one shape; received {views[0].shape} "
                    f"and {view.shape}."
                )
        # View v of image i is row v * count + i; kept in its dtype (float16 halves the memory).
        table = tf.constant(views[0] if len(views) == 1 else np.concatenate(views))
        view_count = tf.constant(len(views), tf.int64)

        def image_of(index, seed):
            # A random view per image and epoch (the augmentation draw picks it).
            view = tf.math.floormod(seed[0], view_count)
            return tf.cast(table[view * count + index], tf.float32)

        image_shape = list(views[0].shape[1:])
    else:
        load = _loader(data.images, image_size, background)
        mirror_ok, lightness_ok = _allowed_changes(data)

        def image_of(index, seed):
            pixels = load(index)
            if augment:
                pixels = augment_image(pixels, seed, mirror_ok[index], background, lightness_ok[index])
            return pixels

        image_shape = [image_size, image_size, 3]

    def example(index, draw, augment_draw):
        choice = starts[index] + tf.math.floormod(draw, counts[index])
        caption = words[row_splits[choice] : row_splits[choice + 1]]
        decoder_input = tf.concat([start_id, caption], axis=0)
        target = tf.concat([caption, end_id], axis=0)
        return (image_of(index, tf.stack([augment_draw, index])), decoder_input), target

    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    # Caption draws: new for every image and epoch when shuffling (reproducible with a
    # seed), the same every pass for evaluation. Augmentation draws: new every epoch.
    if seed is None:
        draw_seed = None if shuffle else 0  # evaluation draws are fixed even without a seed
    else:
        draw_seed = int(seed) + 1
    draws = tf.data.Dataset.random(seed=draw_seed, rerandomize_each_iteration=bool(shuffle))
    augment_draws = tf.data.Dataset.random(
        seed=None if seed is None else int(seed) + 2, rerandomize_each_iteration=True
    )
    dataset = tf.data.Dataset.zip(indices, draws, augment_draws).map(
        example, num_parallel_calls=DECODE_PARALLEL_CALLS, deterministic=True
    )
    dataset = dataset.padded_batch(
        batch_size,
        padded_shapes=((image_shape, [None]), [None]),
        padding_values=((tf.constant(0.0, tf.float32), 0), 0),
    )
    return finish_pipeline(dataset)


def image_batches(data, *, image_size, batch_size=32, augment_seed=None, background=DEFAULT_BACKGROUND):
    """The images of `data`, decoded in order: float32 `[b, S, S, 3]` batches in [0, 255].

    Args:
        data: `CaptionedImages`, or a list of image paths / encoded bytes.
        image_size: the side of the square images, in pixels.
        batch_size: images per batch.
        augment_seed: None, or an integer: augment every image as training does
            (`augment_image`; flips only where `data` allows them), image `i` with the
            stateless seed `[augment_seed, i]`, so one seed gives one fixed augmented view
            of the images (e.g. to compute a frozen encoder's features of it once).
        background: the grey level transparent parts and padding become.

    Returns:
        A prefetched `tf.data.Dataset` of pixel batches (no captions), decoded in parallel.
    """
    if not isinstance(data, CaptionedImages):
        if isinstance(data, (str, bytes)):
            raise TypeError("`data` must be CaptionedImages or a list of images, not one image.")
        data = CaptionedImages(list(data), [["-"]] * len(list(data)))
    _check_data(data)
    image_size = check_positive_int("image_size", image_size)
    batch_size = check_positive_int("batch_size", batch_size)
    if augment_seed is not None and (
        isinstance(augment_seed, bool) or not isinstance(augment_seed, (int, np.integer))
    ):
        raise ValueError(f"`augment_seed` must be an integer or None; received augment_seed={augment_seed!r}.")
    load = _loader(data.images, image_size, background)
    if augment_seed is None:
        image_of = load
    else:
        mirror_ok, lightness_ok = _allowed_changes(data)

        def image_of(index):
            seed = tf.stack([tf.constant(int(augment_seed), tf.int64), index])
            return augment_image(load(index), seed, mirror_ok[index], background, lightness_ok[index])

    dataset = tf.data.Dataset.range(len(data)).map(
        image_of, num_parallel_calls=DECODE_PARALLEL_CALLS, deterministic=True
    )
    return finish_pipeline(dataset.batch(batch_size))


def _allowed_changes(data):
    """Per image of `data`, whether augmentation may flip it (`mirror_safe`) and change its
    brightness and contrast (`lightness_safe`): two bool vectors."""
    mirror_ok = [m and mirror_safe(c) for m, c in zip(data.mirrorable, data.captions)]
    lightness_ok = [lightness_safe(c) for c in data.captions]
    return tf.constant(mirror_ok, tf.bool), tf.constant(lightness_ok, tf.bool)
