"""Exporting a captioner as a SavedModel that takes encoded images and returns captions.

Signatures (every image input is string `[batch]`: PNG, JPEG, GIF or BMP bytes of any
size, grey, grey + alpha, RGB or RGBA):

- `serving_default`: `image` -> `caption` (string `[batch]`) and `error` (string
  `[batch]`: empty for a good row, else why its image could not be read), by beam search
  of the export's width;
- `caption`: `image`, `beam_width` (int32 scalar, 1 = greedy search, clamped to
  `[1, MAX_BEAM_WIDTH]`) and `max_length` (int32 scalar; 0 or less: the model's default,
  at most `MAX_CAPTION_LENGTH`) -> `caption`, `error`;
- `attention`: `image` -> `words` (string `[batch, T]`, the caption's words then `[END]`,
  padded with ""), `weights` (float32 `[batch, T, h, w]`: where the model looked for each
  word, over the encoder's grid; zeros at padding) and `error`.

Images are decoded, composited onto white and resized in the graph exactly as in
training (`rnn_toolkit.data.images`). One undecodable, empty, truncated or oversized image
does not fail its batch: its row gets an empty caption and an error message. The word
vocabulary is also written as `assets/vocabulary.json`.

Captions are decoded in the XLA-compiled loop (unless exported with `jit_compile=False`),
at the sizes of `rnn_toolkit.tasks.captioner.model.CAPTION_BUCKETS`: batches padded to 1, 2, 4,
..., 128 images, captions to 32 or 100 words, one compilation per beam width up to 16.
`assets.extra/tf_serving_warmup_requests` holds one request per batch size for every
signature (and `caption` at beam widths 1 and the default), replayed by TF Serving at load.
"""

import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data.images import decode_image_batch
from rnn_toolkit.data.vocabulary_json import write_vocabulary_json
from rnn_toolkit.decoding.compilation import jit_decoding_enabled
from rnn_toolkit.saved_model import version_dir, write_saved_model
from rnn_toolkit.tasks.captioner.model import CAPTION_BUCKETS

DEFAULT_BEAM_WIDTH = 3
MAX_BEAM_WIDTH = 16
"""The widest beam a request may ask for: the work of a step grows with the width."""


class CaptionerServing(tf.Module):
    """The exported module: the captioner (with its vocabulary) and three serve functions."""

    def __init__(self, model, asset_files, beam_width, jit_compile):
        super().__init__(name="captioner_serving")
        self.model = model
        self.jit_compile = jit_compile
        self.assets = [tf.saved_model.Asset(str(path)) for path in asset_files]
        self.beam_width = int(beam_width)

    # The signatures are traced without autograph: every loop and branch on the way is
    # already a graph op (`tf.while_loop`, `tf.cond`), and autograph's cache of converted
    # methods, shared across the process, once handed `attention` the conversion of
    # `caption_tensors` after a long notebook session (a TypeError at export).

    def _caption(self, image, beam_width, max_length):
        pixels, ok, error = decode_image_batch(image, self.model.image_size)
        result = self.model.caption_tensors(
            pixels, beam_width=tf.clip_by_value(beam_width, 1, MAX_BEAM_WIDTH), max_length=max_length,
            jit_compile=self.jit_compile,
        )
        return {"caption": tf.where(ok, result["caption"], ""), "error": error}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")], autograph=False)
    def serve(self, image):
        return self._caption(image, tf.constant(self.beam_width, tf.int32), tf.constant(0, tf.int32))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image"),
            tf.TensorSpec([], tf.int32, name="beam_width"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ],
        autograph=False,
    )
    def caption(self, image, beam_width, max_length):
        return self._caption(image, beam_width, max_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")], autograph=False)
    def attention(self, image):
        pixels, ok, error = decode_image_batch(image, self.model.image_size)
        result = self.model.caption_tensors(
            pixels, beam_width=tf.constant(self.beam_width, tf.int32), max_length=0,
            jit_compile=self.jit_compile,
        )
        lengths = tf.where(ok, result["lengths"], 0)
        token_ids = result["token_ids"]
        weights = self.model.attention_tensors(pixels, token_ids, lengths)
        # Each row's words, then [END] at its length (one more column than the words);
        # a bad row gets nothing, its [END] included.
        end_id = self.model.vocabulary.end_id
        ids = tf.pad(tf.cast(token_ids, tf.int32), [[0, 0], [0, 1]])
        positions = tf.range(tf.shape(ids)[1])[tf.newaxis, :]
        ids = tf.where(positions == lengths[:, tf.newaxis], end_id, ids)
        tokens = tf.constant(self.model.vocabulary.tokens)
        valid = (positions <= lengths[:, tf.newaxis]) & ok[:, tf.newaxis]
        words = tf.where(valid, tf.gather(tokens, ids), "")
        weights = weights * tf.cast(valid, tf.float32)[..., tf.newaxis, tf.newaxis]
        return {"words": words, "weights": weights, "error": error}


def export_captioner(
    model, base_dir="saved_models", *, name="captioner", version=None, overwrite=False,
    beam_width=DEFAULT_BEAM_WIDTH, jit_compile=None,
):
    """Exports a `Captioner` to `<base_dir>/<name>/<version>/`.

    The result loads with `tf.saved_model.load` in a process that has TensorFlow only,
    and with TF Serving (`--model_base_path=<base_dir>/<name>`).

    Args:
        model: a `rnn_toolkit.models.Captioner` (from `build_captioner`).
        base_dir: the model base folder.
        name: the model's folder name.
        version: version number; None takes the next free one.
        overwrite: replace an existing version (otherwise `FileExistsError`).
        beam_width: the beam width of `serving_default` and `attention`.
        jit_compile: None (the process setting, see `rnn_toolkit.decoding.compilation`),
            True or False: whether the signatures decode in the XLA-compiled loop.

    Returns:
        The `pathlib.Path` of the written version folder.
    """
    if not hasattr(model, "caption_tensors") or not hasattr(model, "vocabulary"):
        raise TypeError(f"`model` must be a rnn_toolkit Captioner; received {type(model).__name__}.")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise ValueError(
            f"`beam_width` must be an int in [1, {MAX_BEAM_WIDTH}]; received beam_width={beam_width!r}."
        )
    target = version_dir(base_dir, name, version)
    with tempfile.TemporaryDirectory() as scratch:
        files = [write_vocabulary_json(model.vocabulary, Path(scratch) / "vocabulary.json")]
        jit_compile = jit_decoding_enabled(jit_compile)
        module = CaptionerServing(model, files, beam_width, jit_compile)
        signatures = {"serving_default": module.serve, "caption": module.caption}
        if model.attention_mode == "soft":
            signatures["attention"] = module.attention
        requests = warmup_requests(signatures, beam_width) if jit_compile else ()
        return write_saved_model(
            module, target, signatures=signatures, overwrite=overwrite, warmup_requests=requests
        )


def warmup_requests(signatures, beam_width):
    """One request per compiled batch size for each signature (`caption` at beam widths 1
    and `beam_width`), with a small white PNG as every image."""
    image = tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(255, tf.uint8))).numpy()
    requests = []
    for batch_size in CAPTION_BUCKETS.batch_sizes:
        images = [image] * batch_size
        for name in signatures:
            if name == "caption":
                for width in sorted({1, beam_width}):
                    requests.append((name, {"image": images, "beam_width": width, "max_length": 0}))
            else:
                requests.append((name, {"image": images}))
    return requests
