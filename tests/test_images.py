"""Tests for rnn_toolkit.data.images: one decoder for training, a per-row-safe one for serving.

Test images are made with Pillow (pinned in requirements.txt) and, for the
"decompression bombs", by hand: small files whose headers claim enormous sizes.
"""

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rnn_toolkit.data.images import DEFAULT_MAX_PIXELS, decode_image, decode_image_batch

SIZE = 16  # output side of the fast tests


def encode(array, image_format, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, image_format, **options)
    return buffer.getvalue()


def pixels(height, width, channels, seed=0):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width=100_000, height=100_000):
    """A 100-byte PNG whose IHDR declares `width` x `height` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_declared_size(jpeg, width, height):
    """`jpeg` with its baseline frame header (SOF0) patched to claim `width` x `height`."""
    start = jpeg.index(b"\xff\xc0")
    return jpeg[: start + 5] + struct.pack(">HH", height, width) + jpeg[start + 9 :]


def animated_gif(side, frames):
    """A GIF of `frames` full-size frames, each of its own colour (so none is merged)."""
    images = [Image.new("RGB", (side, side), (60 * frame, 255 - 60 * frame, 0)) for frame in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def gif_with_first_frame_size(gif, width, height):
    """`gif` with its first image descriptor patched to claim `width` x `height`."""
    flags = gif[10]
    position = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while gif[position] == 0x21:  # skip extensions: label, then sub-blocks up to a zero
        position += 2
        while gif[position]:
            position += 1 + gif[position]
        position += 1
    assert gif[position] == 0x2C
    return gif[: position + 5] + struct.pack("<HH", width, height) + gif[position + 9 :]


VALID = {
    "png_rgb": encode(pixels(12, 20, 3), "PNG"),
    "png_rgba": encode(pixels(20, 12, 4, seed=1), "PNG"),
    "png_grey": encode(pixels(9, 9, 1, seed=2), "PNG"),
    "png_grey_alpha": encode(np.stack([pixels(7, 11, 1, 3), pixels(7, 11, 1, 4)], -1), "PNG"),
    "jpeg": encode(pixels(24, 30, 3, seed=5), "JPEG", quality=90),
    "jpeg_grey": encode(pixels(17, 13, 1, seed=6), "JPEG"),
    "gif": encode(pixels(10, 14, 3, seed=7), "GIF"),
    "gif_animated": animated_gif(12, 3),
    "bmp": encode(pixels(13, 6, 3, seed=8), "BMP"),
    "png_1x1": encode(pixels(1, 1, 4, seed=9), "PNG"),
    "jpeg_1x1": encode(pixels(1, 1, 3, seed=10), "JPEG"),
}
LIMIT = f"above the limit of {DEFAULT_MAX_PIXELS}"
TINY_BLOCKS_GIF = (  # 200,000 one-byte sub-blocks: more than the frame count reads
    b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + bytes(6)
    + b"\x2c" + struct.pack("<HHHHB", 0, 0, 4, 4, 0) + b"\x02" + b"\x01\x00" * 200_000 + b"\x00\x3b"
)
JPEG_BOMB = jpeg_with_declared_size(VALID["jpeg"], 65000, 60000)
GIF_BOMB = VALID["gif"][:6] + struct.pack("<HH", 65535, 65535) + VALID["gif"][10:]
BMP_BOMB = VALID["bmp"][:18] + struct.pack("<ii", 100_000, -100_000) + VALID["bmp"][26:]
# Each bad input with the error it must get.
BAD = {
    "empty": (b"", "empty input"),
    "random": (np.random.default_rng(0).bytes(300), "not a PNG, JPEG, GIF or BMP image"),
    "webp": (encode(pixels(8, 8, 3), "WEBP"), "not a PNG, JPEG, GIF or BMP image"),
    "png_signature_only": (VALID["png_rgb"][:8], "truncated image header"),
    "png_truncated": (VALID["png_rgb"][: len(VALID["png_rgb"]) // 2], "corrupt or truncated image data"),
    "jpeg_truncated": (VALID["jpeg"][: len(VALID["jpeg"]) * 2 // 3], "corrupt or truncated image data"),
    "jpeg_header_only": (VALID["jpeg"][:300], "corrupt or truncated image data"),
    "jpeg_magic_then_garbage": (b"\xff\xd8\xff" + bytes(100), "corrupt or truncated image data"),
    "gif_truncated": (VALID["gif"][:40], "corrupt or truncated image data"),
    "bmp_truncated": (VALID["bmp"][:100], "corrupt or truncated image data"),
    "png_bomb": (png_bomb(), f"image too large: 100000x100000 pixels, {LIMIT}"),
    "jpeg_bomb": (JPEG_BOMB, f"image too large: 65000x60000 pixels, {LIMIT}"),
    "gif_bomb": (GIF_BOMB, f"image too large: 65535x65535 pixels, {LIMIT}"),
    "gif_frame_bomb": (
        gif_with_first_frame_size(VALID["gif"], 65535, 65535),
        "GIF too large: its frames hold 4294836225 pixels, above the limit of 40000000",
    ),
    "gif_tiny_blocks": (TINY_BLOCKS_GIF, "GIF has too many blocks to check"),
    "bmp_bomb": (BMP_BOMB, f"image too large: 100000x100000 pixels, {LIMIT}"),
    "png_largest_size": (png_bomb(2**32 - 1, 2**32 - 1), f"image too large: {2**32 - 1}x{2**32 - 1} pixels, {LIMIT}"),
    "png_zero_width": (png_bomb(0, 10), "invalid image size 0x10"),
}


def test_valid_rows_are_exactly_decode_image():
    images, ok, error = decode_image_batch(tf.constant(list(VALID.values())), SIZE, background=200.0)
    assert images.shape == (len(VALID), SIZE, SIZE, 3) and images.dtype == tf.float32
    assert ok.numpy().all(), dict(zip(VALID, error.numpy()))
    assert set(error.numpy().tolist()) == {b""}
    for row, (name, data) in enumerate(VALID.items()):
        expected = decode_image(data, SIZE, background=200.0).numpy()
        np.testing.assert_array_equal(images[row].numpy(), expected, err_msg=name)


def test_bad_rows_get_their_own_error_and_leave_the_others_intact():
    # Good and bad rows interleaved: each good row must still be the right image.
    names = [name for pair in zip(VALID, BAD) for name in pair] + list(BAD)[len(VALID):]
    data = [VALID[n] if n in VALID else BAD[n][0] for n in names]
    images, ok, error = decode_image_batch(tf.constant(data), SIZE)
    for row, name in enumerate(names):
        if name in VALID:
            assert ok[row] and error[row] == b"", name
            np.testing.assert_array_equal(images[row].numpy(), decode_image(VALID[name], SIZE).numpy())
        else:
            assert not ok[row], name
            assert error[row].numpy().decode() == BAD[name][1], name
            assert (images[row].numpy() == 255.0).all(), name  # a blank page of background


def test_the_pixel_cap_is_inclusive_and_read_from_the_header():
    png = encode(pixels(30, 40, 3), "PNG")  # 1,200 pixels, size read from IHDR
    jpeg = encode(pixels(30, 40, 3), "JPEG")  # size read by libjpeg
    _, ok, _ = decode_image_batch(tf.constant([png, jpeg]), SIZE, max_pixels=1200)
    assert ok.numpy().tolist() == [True, True]
    _, ok, error = decode_image_batch(tf.constant([png, jpeg]), SIZE, max_pixels=1199)
    assert ok.numpy().tolist() == [False, False]
    assert error.numpy().tolist() == [b"image too large: 40x30 pixels, above the limit of 1199"] * 2


def test_a_gif_counts_the_pixels_of_all_its_frames():
    # TensorFlow's GIF reader decompresses every frame: 3 frames of 20 x 20 hold 1,200
    # pixels although the logical screen (checked from the header) has 400.
    animation = animated_gif(20, 3)
    big_frame = gif_with_first_frame_size(VALID["gif"], 8000, 8000)  # screen 14 x 10
    images, ok, error = decode_image_batch(tf.constant([animation, big_frame]), SIZE, max_pixels=1000)
    assert ok.numpy().tolist() == [False, False]
    assert error.numpy().tolist() == [
        b"GIF too large: its frames hold 1200 pixels, above the limit of 1000",
        b"GIF too large: its frames hold 64000000 pixels, above the limit of 1000",
    ]
    images, ok, _ = decode_image_batch(tf.constant([animation]), SIZE, max_pixels=1200)
    assert ok.numpy().tolist() == [True]
    np.testing.assert_array_equal(images[0].numpy(), decode_image(animation, SIZE).numpy())


def test_a_gif_of_tiny_blocks_is_refused_not_walked_for_ever():
    _, ok, error = decode_image_batch(tf.constant([TINY_BLOCKS_GIF]), SIZE)  # about a second
    assert not ok[0] and error[0] == b"GIF has too many blocks to check"


def test_a_batch_of_zero_images():
    images, ok, error = decode_image_batch(tf.zeros([0], tf.string), SIZE)
    assert images.shape == (0, SIZE, SIZE, 3) and ok.shape == (0,) and error.shape == (0,)


def test_a_batch_of_only_bad_rows():
    images, ok, error = decode_image_batch(tf.constant([b"", BAD["png_truncated"][0]]), SIZE, background=0.0)
    assert not ok.numpy().any()
    assert error.numpy().tolist() == [b"empty input", b"corrupt or truncated image data"]
    assert (images.numpy() == 0.0).all()


def test_a_graph_computes_what_eager_decode_image_computes():
    # Graph optimization rewrites float arithmetic with constants (x / 255 becomes
    # x * (1 / 255)); the rows must still be exactly what eager `decode_image` gives.
    decode = tf.function(
        lambda encoded: decode_image_batch(encoded, SIZE, background=100.0),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    names = ["png_rgba", "png_grey_alpha", "gif", "bmp"]
    images, ok, _ = decode(tf.constant([VALID[name] for name in names] + [b""]))
    assert images.shape == (5, SIZE, SIZE, 3)
    assert ok.numpy().tolist() == [True, True, True, True, False]
    for row, name in enumerate(names):
        expected = decode_image(VALID[name], SIZE, background=100.0).numpy()
        np.testing.assert_array_equal(images[row].numpy(), expected, err_msg=name)


@pytest.mark.parametrize(
    "arguments, message",
    [({"image_size": 0}, "`image_size` must be a positive integer"), ({"max_pixels": 0}, "`max_pixels`")],
)
def test_argument_errors_name_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        decode_image_batch(tf.constant([b""]), **{"image_size": SIZE, **arguments})


# --- Exported and reloaded in a fresh process (slow) ---------------------------------------------

FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf

    saved_model, inputs = Path(sys.argv[1]), Path(sys.argv[2])
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    data = [path.read_bytes() for path in sorted(inputs.glob("*.bin"))]
    out = serve(image=tf.constant(data, tf.string))
    empty = serve(image=tf.zeros([0], tf.string))
    np.savez(inputs / "result.npz", images=out["images"].numpy(), ok=out["ok"].numpy())
    print("RESULT" + json.dumps({
        "error": [error.decode() for error in out["error"].numpy()],
        "inputs": {name: [spec.dtype.name, spec.shape.as_list()]
                   for name, spec in serve.structured_input_signature[1].items()},
        "empty": {key: list(value.shape) for key, value in empty.items()},
        "rnn_toolkit_imported": "rnn_toolkit" in sys.modules,
    }))
    """
)


class CaptionImages(tf.Module):
    """The image half of a captioning serve function: raw bytes in, pixels + row status out."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")])
    def serve(self, image):
        images, ok, error = decode_image_batch(image, 32, background=100.0)
        return {"images": images, "ok": ok, "error": error}


def large_jpeg(side=4000):
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    array = np.empty((side, side, 3), np.uint8)
    array[..., 0], array[..., 1], array[..., 2] = ramp[None, :], ramp[:, None], 128
    return encode(array, "JPEG", quality=85)


@pytest.mark.slow
def test_exported_signature_in_a_fresh_process(tmp_path):
    inputs = {**VALID, "jpeg_4000x4000": large_jpeg(), **{name: data for name, (data, _) in BAD.items()}}
    folder = tmp_path / "inputs"
    folder.mkdir()
    for row, data in enumerate(inputs.values()):
        (folder / f"{row:03d}.bin").write_bytes(data)
    module = CaptionImages()
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"serving_default": module.serve})

    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "model"), str(folder)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("RESULT", 1)[1])
    assert report["rnn_toolkit_imported"] is False
    assert report["inputs"] == {"image": ["string", [None]]}
    assert report["empty"] == {"images": [0, 32, 32, 3], "ok": [0], "error": [0]}
    out = np.load(folder / "result.npz")
    for row, (name, data) in enumerate(inputs.items()):
        if name in BAD:
            assert not out["ok"][row], name
            assert report["error"][row] == BAD[name][1], name
        else:
            assert out["ok"][row] and report["error"][row] == "", name
            expected = decode_image(data, 32, background=100.0).numpy()
            np.testing.assert_array_equal(out["images"][row], expected, err_msg=name)
