"""Images in TensorFlow ops: encoded bytes in, fixed-size RGB pixels out.

One decoder serves training pipelines (inside `tf.data.Dataset.map`, in parallel) and
every exported SavedModel, so a served image is prepared exactly as the training images
were: PNG, JPEG, GIF (first frame) or BMP bytes, grey, grey+alpha, RGB or RGBA, any size.
Transparent clip-art is composited onto a background colour (a transparent pixel's RGB is
arbitrary and often black: without compositing, a black drawing on a transparent sheet
would be black on black), then resized to a square, keeping the aspect ratio and padding
with the background.

Imports from rnn_toolkit: arguments, data.
"""

import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int

DEFAULT_BACKGROUND = 255.0
"""White: the page colour of clip-art and emoji sheets."""


def composite_on_background(image, background=DEFAULT_BACKGROUND):
    """Flattens a decoded image `[H, W, 1|2|3|4]` (uint8) onto a background.

    Args:
        image: uint8 `[height, width, channels]`, channels 1 (grey), 2 (grey + alpha),
            3 (RGB) or 4 (RGBA).
        background: the background's grey level in [0, 255] (float scalar).

    Returns:
        float32 `[height, width, 3]` RGB in [0, 255].
    """
    image = tf.cast(image, tf.float32)
    channels = tf.shape(image)[-1]
    has_alpha = tf.equal(channels % 2, 0)  # 2 (grey + alpha) or 4 (RGBA)
    colour_channels = tf.where(has_alpha, channels - 1, channels)
    colour = image[..., :colour_channels]
    alpha = tf.cond(
        has_alpha,
        lambda: image[..., -1:] / 255.0,
        lambda: tf.ones_like(image[..., :1]),
    )
    # Grey -> RGB by repetition; `tile` with a tensor multiple keeps shapes dynamic.
    colour = tf.tile(colour, [1, 1, 3 // colour_channels])
    colour = tf.ensure_shape(colour, [None, None, 3])
    background = tf.cast(background, tf.float32)
    return colour * alpha + background * (1.0 - alpha)


def resize_to_square(image, image_size, background=DEFAULT_BACKGROUND):
    """Resizes float RGB `[H, W, 3]` to `[image_size, image_size, 3]`, keeping its aspect
    ratio and padding the short side with `background` (anti-aliased when shrinking)."""
    background = tf.cast(background, tf.float32)
    # `resize_with_pad` pads with zeros: shift the background to zero and back.
    resized = tf.image.resize_with_pad(
        image - background, image_size, image_size, antialias=True
    )
    return tf.clip_by_value(resized + background, 0.0, 255.0)


def decode_image(encoded, image_size, background=DEFAULT_BACKGROUND):
    """Decodes one encoded image to float32 RGB `[image_size, image_size, 3]` in [0, 255].

    Graph-safe (usable in `tf.data` and in a SavedModel). Undecodable bytes raise
    `tf.errors.InvalidArgumentError` when run; `rnn_toolkit.data.images.decode_image_batch`
    (for serving) turns such rows into per-row errors instead.

    Args:
        encoded: a string scalar: PNG, JPEG, GIF or BMP bytes.
        image_size: the side of the square output, in pixels.
        background: grey level the transparent parts and the padding become.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from rnn_toolkit.data.images import decode_image
    >>> rgba = np.zeros((4, 8, 4), np.uint8)          # fully transparent, 2:1 aspect
    >>> png = tf.io.encode_png(rgba)
    >>> pixels = decode_image(png, 6)
    >>> tuple(pixels.shape), float(pixels.numpy().min())  # all white
    ((6, 6, 3), 255.0)
    """
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False, dtype=tf.uint8)
    image = composite_on_background(image, background)
    return resize_to_square(image, image_size, background)


DEFAULT_MAX_PIXELS = 40_000_000
"""The most pixels (width × height) `decode_image_batch` decodes in one image: 40
megapixels take about 2 GB of working memory in `decode_image` (some 50 bytes a pixel),
and a batch decodes one row per CPU core at a time."""

# Format codes of `_read_headers`.
_UNKNOWN, _PNG, _JPEG, _GIF, _BMP = 0, 1, 2, 3, 4
_HEADER_BYTES = 26  # enough for the PNG, GIF and BMP sizes
# The most blocks and sub-blocks a GIF's check reads: 16,384 blocks (8,192 frames with
# their extensions) and 32 MB of image data at the 255 bytes a sub-block encoders
# write; past either, the check has spent about half a second of one core.
_GIF_MAX_BLOCKS = 2**14
_GIF_MAX_SUB_BLOCKS = 2**17


def decode_image_batch(encoded, image_size, background=DEFAULT_BACKGROUND, max_pixels=DEFAULT_MAX_PIXELS,
                       resize=None):
    """Decodes a batch of encoded images for serving: a bad row gets an error, not the batch.

    A valid row's pixels are exactly `decode_image(row, image_size, background)`. A row
    that cannot be decoded (empty, not an image, truncated, corrupt) or that is larger
    than `max_pixels` gets `ok=False`, a short error and a blank image; the other rows
    are unaffected, and a batch of zero rows returns zero rows.

    Sizes are checked before anything is decoded, so a decompression bomb (a small
    file whose header claims 100,000 × 100,000 pixels) is refused without allocating
    its pixels: the size a PNG's IHDR, a GIF's logical screen or a BMP's info header
    declares is read from the bytes, a JPEG's by libjpeg's header parser
    (`tf.image.extract_jpeg_shape`). For a GIF, the pixels of all its frames count,
    because TensorFlow's GIF reader decompresses every frame before it keeps the first.
    Errors that only decoding reveals (truncated or corrupt data) are caught per row
    by decoding the rows in a `tf.data` pipeline whose `ignore_errors` drops failing
    rows: graph ops only, so the function works inside a `tf.function` and an exported
    SavedModel, in a process that imports TensorFlow alone. Rows are decoded in
    parallel, one per CPU core (up to 16). libjpeg may print a line such as "Input file
    read error" on standard error for a bad JPEG.

    Args:
        encoded: string `[batch]`: PNG, JPEG, GIF (first frame) or BMP bytes.
        image_size: the side of the square output, in pixels (Python int).
        background: grey level the transparent parts, the padding and the failed
            rows become.
        max_pixels: the most pixels (width × height) a row may have.
        resize: None (keep the aspect ratio and pad, as `decode_image`), or a function
            from a decoded image composited on `background` (float32 RGB `[H, W, 3]`) to
            float32 `[image_size, image_size, 3]` (the frame labeller stretches frames to
            the square it trained on).

    Returns:
        `(images, ok, error)`: float32 `[batch, image_size, image_size, 3]` in
        [0, 255] (a failed row is all `background`), bool `[batch]`, and string
        `[batch]`: empty where `ok`, otherwise one of "empty input", "not a PNG, JPEG,
        GIF or BMP image", "truncated image header", "invalid image size WxH", "image
        too large: WxH pixels, above the limit of N", "GIF too large: its frames hold
        P pixels, above the limit of N", "GIF has too many blocks to check" and
        "corrupt or truncated image data".

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from rnn_toolkit.data.images import decode_image_batch
    >>> png = tf.io.encode_png(np.zeros((4, 8, 3), np.uint8))
    >>> images, ok, error = decode_image_batch(tf.stack([png, b"", b"GIF89a"]), 6)
    >>> tuple(images.shape), ok.numpy().tolist()
    ((3, 6, 6, 3), [True, False, False])
    >>> [e.decode() for e in error.numpy()]
    ['', 'empty input', 'truncated image header']
    """
    image_size = check_positive_int("image_size", image_size)
    max_pixels = check_positive_int("max_pixels", max_pixels)
    encoded = tf.ensure_shape(tf.convert_to_tensor(encoded, tf.string), [None])
    background = tf.cast(background, tf.float32)
    batch = tf.shape(encoded)[0]

    header = _read_headers(encoded)
    width, height = header["width"], header["height"]
    error = tf.where(
        tf.equal(header["error"], "") & (_pixels(width, height) > max_pixels),
        _too_large_message(width, height, max_pixels),
        header["error"],
    )
    # TensorFlow's GIF reader decompresses every frame before it keeps the first:
    # count the pixels of all frames.
    gifs = tf.where(tf.equal(error, "") & tf.equal(header["kind"], _GIF))[:, 0]
    frame_pixels, counted = tf.map_fn(
        _gif_frame_pixels,
        tf.gather(encoded, gifs),
        fn_output_signature=(tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.bool)),
    )
    gif_error = tf.where(
        ~counted,
        "GIF has too many blocks to check",
        tf.where(
            frame_pixels > max_pixels,
            tf.strings.join(
                [
                    "GIF too large: its frames hold ",
                    tf.strings.as_string(frame_pixels),
                    f" pixels, above the limit of {max_pixels}",
                ]
            ),
            "",
        ),
    )
    error = tf.tensor_scatter_nd_update(error, gifs[:, None], gif_error)

    candidates = tf.where(tf.equal(error, ""))[:, 0]
    decoded = _decode_rows(
        candidates,
        tf.gather(encoded, candidates),
        tf.gather(header["kind"], candidates),
        image_size,
        background,
        max_pixels,
        resize,
    )
    index = decoded["index"][:, None]
    ok = tf.scatter_nd(index, decoded["ok"], [batch])
    # A candidate missing from `decoded` failed to decode; one there but not ok is a
    # JPEG whose size (known only now) is too large.
    jpeg_error = _too_large_message(decoded["width"], decoded["height"], max_pixels)
    error = tf.tensor_scatter_nd_update(
        tf.where(tf.equal(error, ""), "corrupt or truncated image data", error),
        index,
        tf.where(decoded["ok"], "", jpeg_error),
    )
    blank = tf.fill([batch, image_size, image_size, 3], background)
    images = tf.tensor_scatter_nd_update(blank, index, decoded["pixels"])
    return images, ok, error


def _decode_rows(index, encoded, kind, image_size, background, max_pixels, resize=None):
    """`decode_image` of each row in a `tf.data` pipeline that drops the rows that raise.

    The rows are decoded whole in `tf.data`, as training pipelines decode them: graph
    optimization of a `tf.function` (constant folding) rewrites some of the float
    arithmetic of compositing and resizing, changing last bits; `tf.data`'s functions
    compute exactly what eager `decode_image` computes.

    Returns a dict of tensors with a row per row that did not raise, in any order:
    `index` (as given), `pixels` (`background` for a JPEG above `max_pixels`),
    `width`, `height` (a JPEG's, else 0) and `ok`.
    """
    blank = tf.fill([image_size, image_size, 3], background)

    def decode_row(row):
        # A JPEG's size comes from libjpeg's header parser, which raises on garbage;
        # the other formats' sizes were checked already.
        height, width = tf.unstack(
            tf.cond(
                tf.equal(row["kind"], _JPEG),
                lambda: tf.cast(tf.image.extract_jpeg_shape(row["data"])[:2], tf.int64),
                lambda: tf.zeros([2], tf.int64),
            )
        )
        ok = width * height <= max_pixels
        if resize is None:
            pixels = tf.cond(ok, lambda: decode_image(row["data"], image_size, background), lambda: blank)
        else:
            def decoded():
                image = tf.io.decode_image(row["data"], channels=0, expand_animations=False, dtype=tf.uint8)
                return tf.ensure_shape(resize(composite_on_background(image, background)), blank.shape)

            pixels = tf.cond(ok, decoded, lambda: blank)
        return {"index": row["index"], "pixels": pixels, "width": width, "height": height, "ok": ok}

    # The pipeline is built and run at every call: its graph rewrites and autotuning
    # would cost more (some 30 ms a call) than they save on one batch.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False  # `AUTOTUNE` parallelism is then one call per core, up to 16
    decoded = (
        tf.data.Dataset.from_tensor_slices({"index": index, "data": encoded, "kind": kind})
        .map(decode_row, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .with_options(options)
    )
    # All rows in one batch (or none), concatenated onto empty tensors.
    nothing = tf.nest.map_structure(lambda spec: tf.zeros([0, *spec.shape], spec.dtype), decoded.element_spec)
    return decoded.batch(tf.maximum(tf.size(index, tf.int64), 1)).reduce(
        nothing, lambda total, batch: tf.nest.map_structure(lambda a, b: tf.concat([a, b], 0), total, batch)
    )


# A function, so that eager callers run its loops as a graph, not as Python loops. Its
# loops are `tf.while_loop`s already: AutoGraph has nothing to convert, and once in a
# long session its conversion failed with a warning on stdout ("Unknown node type").
@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def _gif_frame_pixels(data):
    """The pixels of all a GIF's frames (int64 scalar), and whether they were all counted.

    Walks the GIF's blocks as giflib reads them: after the header and global colour
    table come extensions (`0x21`, a label) and images (`0x2C`, a 9-byte descriptor, a
    local colour table, a code size), each followed by a chain of sub-blocks (a length
    byte, that many bytes, ..., a zero byte). The walk stops at the trailer, at a byte
    that starts no block (where giflib stops too), or at the end of the data. It gives
    up after `_GIF_MAX_BLOCKS` blocks or `_GIF_MAX_SUB_BLOCKS` sub-blocks, which bounds
    its time on files made of tiny blocks (then the second result is False).
    """
    raw = tf.io.decode_raw(data, tf.uint8)
    length = tf.size(raw)
    # Zero-padded so that reads at and just past the end are in range.
    data = tf.cast(tf.concat([raw, tf.zeros([16], tf.uint8)], 0), tf.int32)

    def byte(position):
        return data[tf.minimum(position, length)]

    def colour_table_bytes(flags):
        return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(2, flags % 8), 0)

    def skip_sub_blocks(position, sub_blocks):
        def more(position, count):
            return (position < length) & (count < _GIF_MAX_SUB_BLOCKS) & tf.not_equal(byte(position), 0)

        position, sub_blocks = tf.while_loop(
            more, lambda position, count: (position + 1 + byte(position), count + 1), (position, sub_blocks)
        )
        return position + 1, sub_blocks

    def is_block(position, blocks, sub_blocks):
        introducer = byte(position)
        return (
            (position < length)
            & (blocks < _GIF_MAX_BLOCKS)
            & (sub_blocks < _GIF_MAX_SUB_BLOCKS)
            & (tf.equal(introducer, 0x21) | tf.equal(introducer, 0x2C))
        )

    def read_block(position, pixels, blocks, sub_blocks):
        # `is_block` held: `position` is inside the data, and the padding covers the
        # descriptor's 9 bytes.
        descriptor = tf.equal(data[position], 0x2C)
        width = tf.cast(data[position + 5] + 256 * data[position + 6], tf.int64)
        height = tf.cast(data[position + 7] + 256 * data[position + 8], tf.int64)
        pixels += tf.where(descriptor, width * height, 0)
        image_data = position + 10 + colour_table_bytes(data[position + 9]) + 1
        position, sub_blocks = skip_sub_blocks(tf.where(descriptor, image_data, position + 2), sub_blocks)
        return position, pixels, blocks + 1, sub_blocks

    zero = tf.constant(0)
    _, pixels, blocks, sub_blocks = tf.while_loop(
        lambda position, pixels, blocks, sub_blocks: is_block(position, blocks, sub_blocks),
        read_block,
        (13 + colour_table_bytes(data[10]), tf.constant(0, tf.int64), zero, zero),
    )
    return pixels, (blocks < _GIF_MAX_BLOCKS) & (sub_blocks < _GIF_MAX_SUB_BLOCKS)


def _read_headers(encoded):
    """Format, declared width and height (int64), and a header error per row."""
    length = tf.strings.length(encoded)
    # The first bytes, zero-padded to a fixed length so that they decode to a matrix.
    head = tf.strings.substr(
        tf.strings.join([tf.strings.substr(encoded, 0, _HEADER_BYTES), b"\0" * _HEADER_BYTES]),
        0,
        _HEADER_BYTES,
    )
    data = tf.cast(tf.reshape(tf.io.decode_raw(head, tf.uint8), [-1, _HEADER_BYTES]), tf.int64)

    def unsigned(start, size, big_endian):
        order = range(start, start + size) if big_endian else reversed(range(start, start + size))
        value = tf.zeros_like(length, tf.int64)
        for position in order:
            value = value * 256 + data[:, position]
        return value

    def starts_with(prefix):
        return tf.equal(tf.strings.substr(head, 0, len(prefix)), prefix)

    png = starts_with(b"\x89PNG\r\n\x1a\n")
    jpeg = starts_with(b"\xff\xd8\xff")
    gif = starts_with(b"GIF87a") | starts_with(b"GIF89a")
    bmp = starts_with(b"BM")
    kind = tf.where(png, _PNG, tf.where(jpeg, _JPEG, tf.where(gif, _GIF, tf.where(bmp, _BMP, _UNKNOWN))))
    # BMP sizes are signed 32-bit little-endian; a negative height means top-down rows.
    bmp_width = unsigned(18, 4, big_endian=False)
    bmp_width = tf.where(bmp_width >= 2**31, bmp_width - 2**32, bmp_width)
    bmp_height = unsigned(22, 4, big_endian=False)
    bmp_height = tf.abs(tf.where(bmp_height >= 2**31, bmp_height - 2**32, bmp_height))
    width = tf.where(png, unsigned(16, 4, True), tf.where(gif, unsigned(6, 2, False), bmp_width))
    height = tf.where(png, unsigned(20, 4, True), tf.where(gif, unsigned(8, 2, False), bmp_height))
    width = tf.where(jpeg, tf.zeros_like(width), width)  # read while decoding
    height = tf.where(jpeg, tf.zeros_like(height), height)

    needed = tf.where(png, 24, tf.where(gif, 10, tf.where(bmp, 26, 0)))
    complete = (length >= needed) & (~png | tf.equal(tf.strings.substr(head, 12, 4), b"IHDR"))
    empty_size = ~jpeg & ((width <= 0) | (height <= 0))
    size_text = tf.strings.join([tf.strings.as_string(width), "x", tf.strings.as_string(height)])
    error = tf.where(
        tf.equal(length, 0),
        "empty input",
        tf.where(
            tf.equal(kind, _UNKNOWN),
            "not a PNG, JPEG, GIF or BMP image",
            tf.where(
                ~complete,
                "truncated image header",
                tf.where(empty_size, tf.strings.join(["invalid image size ", size_text]), ""),
            ),
        ),
    )
    return {"kind": kind, "width": width, "height": height, "error": error}


def _pixels(width, height):
    """`width * height` (int64), without overflow for PNG's 32-bit sizes."""
    return tf.minimum(width, 2**31) * tf.minimum(height, 2**31)


def _too_large_message(width, height, max_pixels):
    return tf.strings.join(
        [
            "image too large: ",
            tf.strings.as_string(width),
            "x",
            tf.strings.as_string(height),
            f" pixels, above the limit of {max_pixels}",
        ]
    )
