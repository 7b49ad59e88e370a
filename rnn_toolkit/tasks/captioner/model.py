"""One-to-many: an image captioner, with or without soft spatial attention.

A convolutional network reads the image into a grid of feature vectors (7 x 7 x 1280 for
EfficientNet-Lite0 at 224 px). The grid's mean initialises the state of a recurrent
language model (one learned projection per state tensor), which then writes the caption
word by word from `[START]` until it writes `[END]`:

- `attention="none"`: the initial state is the only path from image to words, the
  lecture's first captioning model (Vinyals et al., 2015, "Show and Tell").
- `attention="soft"`: at every word the decoder also attends over all grid positions
  ("Show, Attend and Tell", Xu et al., 2015, soft attention): a softmax over the
  positions weighs the feature vectors into a context vector, and the attention map is
  where the model "looks" for that word. The doubly stochastic penalty of that paper,
  `attention_penalty * mean_i (1 - sum_t alpha_ti)^2`, is an option. So is a code of
  each cell's row and column added to the attended grid (`grid_positions`): without it
  the score can ask for *what* but hardly *where*, and captions that say "left of" put
  the objects on their sides no better than chance; with it they do, but captions of
  single-object images got worse (see the README's measured numbers), so it is off by
  default.

The decoder is the shared `rnn_toolkit.layers.AttentionDecoder` (Bahdanau's additive
score, attention placed after the recurrent layers so that training reads a whole caption
in one cuDNN-eligible call); training (`call`) and decoding (`step`, driven by the shared
`rnn_toolkit.decoding` loop: greedy, sampling or beam search) go through the same layer
objects, so they share weights by construction.

The encoder is frozen by default, and then `fit` can take precomputed encoder features
instead of pixels (the run computes them once); `fine_tune_encoder=True` trains it
jointly, the gradient of the caption loss flowing into the CNN.
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.images import composite_on_background, decode_image_batch, resize_to_square
from rnn_toolkit.data.word_vocabulary import WordVocabulary
from rnn_toolkit.decoding.compilation import DecodingBuckets, jit_decoding_enabled
from rnn_toolkit.decoding.loop import BeamSearch, SamplingSearch, decode_with_strategy
from rnn_toolkit.decoding.samplers import sampling_function
from rnn_toolkit.layers.attention_decoder import AttentionDecoder
from rnn_toolkit.layers.grid_positions import GRID_POSITION_CODES, GridPositions
from rnn_toolkit.layers.image_encoders import efficientnet_lite0
from rnn_toolkit.layers.image_encoders import image_encoder as resolve_image_encoder
from rnn_toolkit.precision import resolve_dtype_policy
from rnn_toolkit.training.gradient_clipping import GradientClippingModel
from rnn_toolkit.training.sequence_losses import compile_sequence_model

ATTENTION_MODES = ("soft", "none")

MAX_CAPTION_LENGTH = 100

# The sizes the compiled decoding loop is compiled for: batches padded to a power of two
# up to 128 (times the beam width), the output buffer to 32 or MAX_CAPTION_LENGTH words.
CAPTION_BUCKETS = DecodingBuckets(
    batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), lengths=(32, MAX_CAPTION_LENGTH)
)
"""The most words any call may ask for (bounds the work one request can cause)."""

UNTRAINED_ENCODERS = ("small_cnn", "efficientnet_lite0_random")
"""Encoders whose weights start random, so they always train with the decoder."""


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class Captioner(GradientClippingModel):
    """Image encoder -> initial state (and attended grid) -> word decoder.

    `call((images, decoder_input_ids))` returns float32 logits `[batch, time, vocab]`:
    at position t, the distribution of caption word t given the image and the true words
    before it (teacher forcing). `images` is either pixels, float `[batch, S, S, 3]` in
    [0, 255] (see `rnn_toolkit.data.images.decode_image`), or the frozen encoder's
    features `[batch, h, w, feature_size]` computed beforehand (`encode_images`). Build it
    with `build_captioner()`, which also compiles it.

    Args:
        vocabulary: a `WordVocabulary` built with `sequence_markers=True`.
        image_encoder: `"efficientnet_lite0"` (pretrained on ImageNet), `"small_cnn"`
            or `"efficientnet_lite0_random"` (trained from scratch), or a `keras.Model` mapping `[b, S, S, 3]` pixels in
            [0, 255] to a grid `[b, h, w, c]` (see `rnn_toolkit.layers.image_encoder`).
        image_size: the side of the square images the encoder reads.
        fine_tune_encoder: train the encoder jointly; None: only an encoder whose weights
            start random (`"small_cnn"`, `"efficientnet_lite0_random"`), pretrained ones
            and a user's model stay frozen.
        attention: `"soft"` or `"none"`.
        grid_positions: the position code added to the attended grid: `"none"`,
            `"sinusoidal"` (fixed) or `"learned"` (see `rnn_toolkit.layers.GridPositions`).
            Without attention there is no attended grid, and it is `"none"`.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per recurrent layer.
        embedding_dim: word embedding size.
        num_layers: stacked recurrent layers in the decoder.
        attention_units: hidden size of the additive score (default `units`).
        dropout: dropout on the image features, the embeddings, between recurrent layers
            and before the output layer.
        attention_penalty: weight of the doubly stochastic attention penalty (0: off).
        max_output_length: the default cap on generated words.
        pretrained: load the encoder's pretrained weights (False when the weights come
            from a saved model anyway).
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        clip_norm: global gradient-norm clipping threshold (None or 0: off).
        **kwargs: standard `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        vocabulary,
        image_encoder="efficientnet_lite0",
        image_size=224,
        fine_tune_encoder=None,
        attention="soft",
        grid_positions="none",
        cell="lstm",
        units=512,
        embedding_dim=256,
        num_layers=1,
        attention_units=None,
        dropout=0.3,
        attention_penalty=0.0,
        max_output_length=30,
        pretrained=True,
        dtype_policy="auto",
        clip_norm=1.0,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        policy = resolve_dtype_policy(dtype_policy)
        super().__init__(clip_norm=clip_norm, dtype=policy, **kwargs)
        vocabulary = _as_vocabulary(vocabulary)
        if attention not in ATTENTION_MODES:
            raise ValueError(
                f"`attention` must be one of {ATTENTION_MODES}; received attention={attention!r}."
            )
        if grid_positions not in GRID_POSITION_CODES:
            raise ValueError(
                f"`grid_positions` must be one of {GRID_POSITION_CODES}; received "
                f"grid_positions={grid_positions!r}."
            )
        if attention == "none":
            grid_positions = "none"  # nothing is attended: the summary is the grid's mean
        if float(attention_penalty) < 0:
            raise ValueError(
                f"`attention_penalty` must be >= 0; received attention_penalty={attention_penalty!r}."
            )
        if float(attention_penalty) > 0 and attention == "none":
            raise ValueError("`attention_penalty` needs attention='soft'.")
        image_size = check_positive_int("image_size", image_size)
        units = check_positive_int("units", units)
        max_output_length = check_positive_int("max_output_length", max_output_length)
        encoder_spec = image_encoder

        # === Layers ===
        self.vocabulary = vocabulary
        if fine_tune_encoder is None:
            # Random weights must train; pretrained (or a user's) weights stay frozen.
            fine_tune_encoder = image_encoder in UNTRAINED_ENCODERS
        if image_encoder == "efficientnet_lite0" and not pretrained:
            # The same network without fetching its weights (a saved model has its own).
            image_encoder = efficientnet_lite0(weights=None, image_size=image_size)
        encoder, grid_shape = resolve_image_encoder(
            image_encoder, image_size=image_size, trainable=bool(fine_tune_encoder)
        )
        feature_size = int(grid_shape[-1])
        if feature_size == 3:
            raise ValueError(
                "The image encoder's grid has 3 channels, which `call` cannot tell from "
                "pixels; give it more channels (e.g. a 1x1 convolution on top)."
            )
        self.image_encoder = encoder
        self.feature_dropout = keras.layers.Dropout(dropout, name="feature_dropout", dtype=policy)
        self.position_code = GridPositions(grid_positions, name="grid_positions", dtype=policy)
        self.decoder = AttentionDecoder(
            vocabulary.size, embedding_dim=embedding_dim, cell=cell, units=units,
            num_layers=num_layers, attention="additive" if attention == "soft" else "none",
            attention_units=attention_units, memory_size=feature_size, dropout=dropout,
            end_id=vocabulary.end_id, name="decoder", dtype=policy,
        )
        # Show, Attend and Tell's init MLPs: one projection of the mean feature per state
        # tensor of each decoder layer; h gets tanh (hidden states live in [-1, 1]), an
        # LSTM's cell state c is unbounded, so its projection is linear.
        self.initial_state_layers = []
        for layer in range(self.decoder.num_layers):
            for index in range(self.decoder.recurrent.state_size):
                self.initial_state_layers.append(
                    keras.layers.Dense(
                        units, activation="tanh" if index == 0 else None,
                        name=f"initial_state_{layer}_{index}", dtype=policy,
                    )
                )

        # === Config ===
        self.image_encoder_spec = encoder_spec
        # Random initial weights: its batch normalisation must learn its statistics.
        self.encoder_from_scratch = bool(fine_tune_encoder) and (
            isinstance(encoder_spec, str) and encoder_spec in UNTRAINED_ENCODERS
        )
        self.image_size = image_size
        self.fine_tune_encoder = bool(fine_tune_encoder)
        self.grid_shape = tuple(int(d) for d in grid_shape)
        self.feature_size = feature_size
        self.attention_mode = attention
        self.grid_positions = grid_positions
        self.cell = self.decoder.cell
        self.units = units
        self.embedding_dim = self.decoder.embedding_dim
        self.num_layers = self.decoder.num_layers
        self.attention_units = self.decoder.attention_units
        self.dropout = self.decoder.dropout
        self.attention_penalty = float(attention_penalty)
        self.max_output_length = max_output_length
        self.dtype_policy_name = policy

    def build(self, input_shape=None):
        batch = None
        self.decoder.build()
        self.position_code.build((batch, *self.grid_shape))
        for layer in self.initial_state_layers:
            layer.build((batch, self.feature_size))
        self.built = True

    # --- The pieces: encoder, initial state, decoder ----------------------------------------

    def image_features(self, images, training=None):
        """The encoder's grid `[batch, h, w, feature_size]` for pixels, or `images` itself
        when it already is such a grid (precomputed features)."""
        images = tf.convert_to_tensor(images)
        channels = images.shape[-1]
        if images.shape.rank != 4 or channels not in (3, self.feature_size):
            raise ValueError(
                f"Captioner inputs must be pixels [batch, size, size, 3] or encoder features "
                f"[batch, h, w, {self.feature_size}]; received shape {images.shape}."
            )
        if channels == self.feature_size:
            return images
        # A pretrained encoder keeps its batch-normalisation statistics, also when it is
        # fine-tuned: caption batches are too small (and too alike) to replace ImageNet's.
        # An encoder trained from scratch has no statistics but the ones it learns here.
        learns_statistics = training and self.encoder_from_scratch
        return self.image_encoder(tf.cast(images, tf.float32), training=bool(learns_statistics))

    def _inference_features(self, images):
        """`image_features` for decoding, where a batch may hold zero images: some CPU
        kernels (oneDNN's batch normalisation after a convolution) fail on an empty batch,
        so the encoder is skipped for it."""
        images = tf.convert_to_tensor(images)
        if images.shape[-1] != 3:
            return self.image_features(images)
        empty = tf.zeros([0, *self.grid_shape], self.image_encoder.compute_dtype)
        return tf.cond(
            tf.shape(images)[0] > 0, lambda: self.image_features(images, training=False), lambda: empty
        )

    def encode(self, images, training=None):
        """Pixels or features -> `(memory [batch, positions, feature_size], grid
        [batch, h, w, feature_size], initial decoder state)`."""
        grid = self.image_features(images, training=True) if training else self._inference_features(images)
        grid = ops.cast(grid, self.compute_dtype)
        # With `grid_positions`, each cell also says where it is. Dropout then falls on the
        # code as on the features: with the code added after the dropout, kept whole, the
        # sinusoidal run on the two-object scenes scored 229 greedy CIDEr-D instead of 367
        # (one seed each).
        placed = self.feature_dropout(self.position_code(grid), training=training)
        summary = ops.mean(placed, axis=[1, 2])
        shape = tf.shape(placed)
        memory = tf.reshape(placed, [shape[0], shape[1] * shape[2], self.feature_size])
        layers = iter(self.initial_state_layers)
        state = [
            [next(layers)(summary) for _ in range(self.decoder.recurrent.state_size)]
            for _ in range(self.num_layers)
        ]
        return memory, grid, state

    def call(self, inputs, training=None, return_attention=False):
        """Teacher-forced logits for `(images_or_features, decoder_input_ids)`.

        With `return_attention=True` also returns the attention weights
        `[batch, time, positions]` (None without attention).
        """
        images, decoder_input_ids = inputs
        memory, _, state = self.encode(images, training=training)
        attend = self.attention_mode == "soft"
        logits, weights = self.decoder(
            decoder_input_ids, state, memory=memory if attend else None,
            training=training, return_attention=True,
        )
        if training and self.attention_penalty > 0:
            self.add_loss(self._attention_penalty(weights, decoder_input_ids))
        if return_attention:
            return logits, weights
        return logits

    def _attention_penalty(self, weights, decoder_input_ids):
        # Doubly stochastic regularisation: the attention a position receives over the
        # whole caption should be near 1, so that every part of the image gets looked at.
        valid = tf.cast(tf.not_equal(decoder_input_ids, 0), tf.float32)[..., tf.newaxis]
        received = tf.reduce_sum(tf.cast(weights, tf.float32) * valid, axis=1)
        return self.attention_penalty * tf.reduce_mean(tf.square(1.0 - received))

    def compute_mask(self, inputs, mask=None):
        return None

    # --- Decoding -----------------------------------------------------------------------------

    def start_decoding(self, images):
        """Encodes a batch and returns `(first_logits, state)` for the decoding loop."""
        memory, _, state = self.encode(images, training=False)
        attend = self.attention_mode == "soft"
        state = self.decoder.decoding_state(state, memory=memory if attend else None)
        start = tf.fill(tf.shape(memory)[:1], self.vocabulary.start_id)
        return self.step(start, state)

    def step(self, token_ids, state):
        """One word: ids `[batch]` and state -> (float32 logits `[batch, vocab]`, state)."""
        return self.decoder.step(token_ids, state)

    def caption_tensors(
        self, images, *, beam_width=3, max_length=None, length_penalty=0.0, sampler=None, seed=0,
        jit_compile=None,
    ):
        """Graph-safe captioning of pixels or features -> dict of tensors.

        Args:
            images: float pixels `[batch, S, S, 3]` in [0, 255] or encoder features.
            beam_width: int or int32 scalar tensor (1 = greedy search). Ignored when
                `sampler` is given.
            max_length: int32 scalar: the most words; None or <= 0: `max_output_length`.
                Always capped at `MAX_CAPTION_LENGTH`.
            length_penalty: the beam search's GNMT length-penalty exponent.
            sampler: a callable `(logits, seed) -> ids`: sample instead of beam search.
            seed: the sampling seed.
            jit_compile: None (the process setting), True or False: run the decoding
                loop XLA-compiled at the sizes of `CAPTION_BUCKETS`.

        Returns:
            A dict: `caption` (string `[batch]`), `token_ids` (int32 `[batch, length]`) and
            `lengths` (int32 `[batch]`).
        """
        if max_length is None:
            max_length = 0
        max_length = tf.cast(max_length, tf.int32)
        max_length = tf.where(max_length > 0, max_length, self.max_output_length)
        max_length = tf.minimum(max_length, MAX_CAPTION_LENGTH)
        vocabulary = self.vocabulary
        if sampler is None:
            strategy = BeamSearch(
                beam_width, end_id=vocabulary.end_id, padding_id=vocabulary.PADDING_ID,
                length_penalty=length_penalty,
            )
        else:
            strategy = SamplingSearch(
                sampler, end_id=vocabulary.end_id, padding_id=vocabulary.PADDING_ID
            )
        first_logits, state = self.start_decoding(images)
        token_ids, lengths = decode_with_strategy(
            strategy, self.step, first_logits, state, max_length=max_length, seed=seed,
            # Never emit padding, [START] or [UNK]: an unknown word is no caption.
            forbidden_ids=[vocabulary.PADDING_ID, vocabulary.UNKNOWN_ID, vocabulary.start_id],
            jit_compile=jit_compile,
            buckets=CAPTION_BUCKETS,
        )
        return {
            "caption": vocabulary.decode(token_ids, lengths),
            "token_ids": token_ids,
            "lengths": lengths,
        }

    def attention_tensors(self, images, token_ids, lengths):
        """Attention weights of given captions, by re-reading them with teacher forcing
        (the same weights as the decoding steps that wrote them).

        Returns:
            float32 `[batch, length + 1, h, w]`: one map per word and one for `[END]`.
        """
        if self.attention_mode != "soft":
            raise ValueError("Attention maps need a captioner built with attention='soft'.")
        grid = self._inference_features(images)
        start = tf.fill(tf.shape(token_ids)[:1], self.vocabulary.start_id)[:, tf.newaxis]
        decoder_input = tf.concat([start, tf.cast(token_ids, tf.int32)], axis=1)
        positions = tf.range(tf.shape(decoder_input)[1])[tf.newaxis, :]
        decoder_input = tf.where(positions <= lengths[:, tf.newaxis], decoder_input, 0)
        _, weights = self((grid, decoder_input), training=False, return_attention=True)
        shape = tf.shape(grid)
        weights = tf.reshape(
            tf.cast(weights, tf.float32), [shape[0], tf.shape(weights)[1], shape[1], shape[2]]
        )
        return weights * tf.cast(positions <= lengths[:, tf.newaxis], tf.float32)[..., None, None]

    # --- Raw images in, text out --------------------------------------------------------------

    def pixels(self, images):
        """Float pixels `[n, S, S, 3]` for file paths, encoded bytes or arrays.

        Encoded images go through `rnn_toolkit.data.images.decode_image_batch`, as in the
        exported SavedModel: the same pixels, and the same checks (a file declaring more
        than 40 megapixels is refused before it is decoded).

        Args:
            images: a list of images: file paths (str or `pathlib.Path`), encoded bytes
                (PNG, JPEG, GIF or BMP), or arrays `[H, W, C]` of pixel values in [0, 255]
                with C = 1, 2, 3 or 4.

        Raises:
            FileNotFoundError: for a path that is not a file.
            ValueError: for bytes that are not a readable image or an array of another
                shape, naming the first such image (`images[i]`) and why.
        """
        images = [self._bytes_or_array(image, i) for i, image in enumerate(images)]
        encoded = [i for i, image in enumerate(images) if isinstance(image, bytes)]
        pixels = [None] * len(images)
        if encoded:
            decoded, ok, errors = decode_image_batch(
                tf.constant([images[i] for i in encoded], tf.string), self.image_size
            )
            for row, (index, good) in enumerate(zip(encoded, ok.numpy())):
                if not good:
                    raise ValueError(
                        f"images[{index}] is not a readable PNG, JPEG, GIF or BMP image "
                        f"({len(images[index]):,} bytes): {errors[row].numpy().decode()}."
                    )
                pixels[index] = decoded[row]
        for index, image in enumerate(images):
            if pixels[index] is None:
                flat = composite_on_background(np.clip(image, 0, 255).astype(np.uint8))
                pixels[index] = resize_to_square(flat, self.image_size)
        if not pixels:
            return tf.zeros([0, self.image_size, self.image_size, 3])
        return tf.stack(pixels)

    @staticmethod
    def _bytes_or_array(image, index):
        if isinstance(image, (str, pathlib.Path)):
            path = pathlib.Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"images[{index}]: no image file {str(path)!r}.")
            return path.read_bytes()
        if isinstance(image, bytes):
            return image
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[..., np.newaxis]
        if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or 0 in array.shape:
            raise ValueError(
                f"images[{index}] must be a path, encoded bytes or a pixel array "
                f"[height, width, 1|2|3|4]; received an array of shape {array.shape}."
            )
        return array

    def _as_image_list(self, images):
        if isinstance(images, (str, bytes, pathlib.Path)):
            return [images], True
        if isinstance(images, np.ndarray) or tf.is_tensor(images):
            array = np.asarray(images)
            if array.ndim == 4:
                return list(array), False
            return [array], True
        return list(images), False

    def caption(
        self,
        images,
        *,
        beam_width=3,
        max_length=None,
        length_penalty=0.0,
        sampler=None,
        seed=0,
        batch_size=32,
        **sampler_kwargs,
    ):
        """Captions images.

        Args:
            images: one image or a list: file paths, encoded bytes (PNG, JPEG, GIF, BMP) or
                pixel arrays `[H, W, C]` in [0, 255] (or a batch array `[N, H, W, C]`); or
                the encoder's grids `[N, h, w, feature_size]` from `encode_images`.
            beam_width: beam search width; 1 is greedy search.
            max_length: the most words per caption (default `max_output_length`).
            length_penalty: GNMT length-penalty exponent of the beam search.
            sampler: None for beam search, or `"greedy"`, `"temperature"`, `"top_k"`,
                `"top_p"` to sample (test-time sampling from `[START]`, as in the lecture).
            seed: sampling seed (same seed, same captions).
            batch_size: images per call of the network.
            **sampler_kwargs: `temperature`, `top_k`, `top_p` for a named sampler.

        Returns:
            A string for a single image, else a list of strings.
        """
        features = self._is_features(images)
        if features:
            images, single = np.asarray(images, np.float32), False
        else:
            images, single = self._as_image_list(images)
        beam_width = check_positive_int("beam_width", beam_width)
        batch_size = check_positive_int("batch_size", batch_size)
        if max_length is not None:
            max_length = check_positive_int("max_length", max_length)
        function = self._caption_function(
            sampler, tuple(sorted(sampler_kwargs.items())), features
        )
        captions = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            result = function(
                tf.constant(batch) if features else self.pixels(batch),
                tf.constant(beam_width, tf.int32),
                tf.constant(max_length or 0, tf.int32),
                tf.constant(length_penalty, tf.float32),
                tf.constant(seed, tf.int32),
            )
            captions.extend(c.decode("utf-8") for c in result.numpy().tolist())
        return captions[0] if single else captions

    def generate(self, images, max_length=None, sampler="greedy", seed=0, **sampler_kwargs):
        """`caption` by sampling: what `rnn_toolkit.SampleText` calls during training."""
        return self.caption(
            images, max_length=max_length, sampler=sampler, seed=seed, **sampler_kwargs
        )

    def _is_features(self, images):
        """Whether `images` is a batch of precomputed encoder grids (`encode_images`)."""
        return (
            isinstance(images, np.ndarray) or tf.is_tensor(images)
        ) and len(images.shape) == 4 and images.shape[-1] == self.feature_size

    def _caption_function(self, sampler, sampler_items, features=False):
        # Traced functions live in `__dict__` directly, out of Keras' attribute tracking.
        cache = self.__dict__.setdefault("_caption_cache", {})
        jit_compile = jit_decoding_enabled()
        key = (sampler, sampler_items, features, jit_compile)
        if key not in cache:
            sampler_fn = sampling_function(sampler, **dict(sampler_items))
            size = self.image_size
            input_shape = [None, None, None, self.feature_size] if features else [None, size, size, 3]

            @tf.function(
                input_signature=[
                    tf.TensorSpec(input_shape, tf.float32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.float32),
                    tf.TensorSpec([], tf.int32),
                ]
            )
            def caption(pixels, beam_width, max_length, length_penalty, seed):
                return self.caption_tensors(
                    pixels, beam_width=beam_width, max_length=max_length,
                    length_penalty=length_penalty, sampler=sampler_fn, seed=seed,
                    jit_compile=jit_compile,
                )["caption"]

            cache[key] = caption
        return cache[key]

    def attention_maps(self, image, **caption_kwargs):
        """Where the model looked for each word of its caption of one image.

        Args:
            image: a file path, encoded bytes or a pixel array (as for `caption`).
            **caption_kwargs: how to caption it (`beam_width`, `sampler`, ...).

        Returns:
            `(words, weights)`: the generated words followed by `"[END]"`, and a NumPy
            array `[len(words), h, w]` over the encoder's grid, each map summing to 1.
        """
        images, single = self._as_image_list(image)
        if not single or len(images) != 1:
            raise ValueError("`attention_maps` takes one image.")
        if self.attention_mode != "soft":
            raise ValueError("`attention_maps` needs a captioner built with attention='soft'.")
        # Decoded and encoded once: the caption and its attention read the same grid.
        grid = self.image_features(self.pixels(images)).numpy()
        caption = self.caption(grid, **caption_kwargs)[0]
        words = self.vocabulary.tokenize(tf.constant([caption]), self.vocabulary.lowercase)
        ids = tf.cast(self.vocabulary.word_to_id(words.flat_values), tf.int32)[tf.newaxis, :]
        weights = self.attention_tensors(grid, ids, tf.shape(ids)[1:2])
        tokens = [w.decode("utf-8") for w in words.flat_values.numpy().tolist()] + ["[END]"]
        return tokens, weights[0].numpy()

    def encode_images(self, images, batch_size=32):
        """The frozen encoder's grids `[n, h, w, feature_size]` (NumPy) for a dataset of
        pixel batches or for images as `caption` takes them."""
        if isinstance(images, tf.data.Dataset):
            batches = images
        else:
            listed, _ = self._as_image_list(images)
            batches = (
                self.pixels(listed[i : i + batch_size]) for i in range(0, len(listed), batch_size)
            )
        function = self.__dict__.get("_encode_function")
        if function is None:
            function = tf.function(lambda pixels: self.image_encoder(pixels, training=False))
            self.__dict__["_encode_function"] = function
        grids = [np.asarray(function(tf.cast(b, tf.float32))) for b in batches]
        if not grids:
            return np.zeros((0,) + self.grid_shape, np.float32)
        return np.concatenate(grids)

    def get_config(self):
        config = super().get_config()
        encoder = self.image_encoder_spec
        if isinstance(encoder, keras.Model):
            encoder = keras.saving.serialize_keras_object(encoder)
        config.update(
            vocabulary=self.vocabulary.get_config(),
            image_encoder=encoder,
            image_size=self.image_size,
            fine_tune_encoder=self.fine_tune_encoder,
            attention=self.attention_mode,
            grid_positions=self.grid_positions,
            cell=self.cell,
            units=self.units,
            embedding_dim=self.embedding_dim,
            num_layers=self.num_layers,
            attention_units=self.attention_units,
            dropout=self.dropout,
            attention_penalty=self.attention_penalty,
            max_output_length=self.max_output_length,
            dtype_policy=self.dtype_policy_name,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["vocabulary"] = _as_vocabulary(config["vocabulary"])
        if isinstance(config.get("image_encoder"), dict):
            config["image_encoder"] = keras.saving.deserialize_keras_object(config["image_encoder"])
        # Saved before the option existed: the attended grid had no position code.
        config.setdefault("grid_positions", "none")
        # The saved weights replace the pretrained ones: do not fetch them.
        config["pretrained"] = False
        return cls(**config)


def _as_vocabulary(vocabulary):
    if isinstance(vocabulary, dict):
        vocabulary = {k: v for k, v in vocabulary.items() if k not in ("name", "trainable", "dtype")}
        vocabulary = WordVocabulary(**vocabulary)
    if not isinstance(vocabulary, WordVocabulary):
        raise TypeError(
            "`vocabulary` must be a rnn_toolkit.data.WordVocabulary (e.g. "
            "WordVocabulary.from_texts(captions, sequence_markers=True)); "
            f"got {type(vocabulary).__name__}."
        )
    if not vocabulary.sequence_markers:
        raise ValueError(
            "`vocabulary` must be built with sequence_markers=True: the decoder starts from "
            "[START] and stops at [END]."
        )
    return vocabulary


def build_captioner(
    vocabulary,
    *,
    image_encoder="efficientnet_lite0",
    image_size=224,
    fine_tune_encoder=None,
    attention="soft",
    grid_positions="none",
    cell="lstm",
    units=512,
    embedding_dim=256,
    num_layers=1,
    attention_units=None,
    dropout=0.3,
    attention_penalty=0.0,
    max_output_length=30,
    pretrained=True,
    learning_rate=1e-3,
    optimizer=None,
    clip_norm=5.0,
    label_smoothing=0.0,
    dtype_policy="auto",
    name="captioner",
):
    """Builds and compiles an image captioner (see `Captioner` for the arguments).

    The loss is the cross-entropy of each caption word under teacher forcing, averaged
    over real (non-padding) positions, plus the attention penalty when it is on; the metric
    `token_accuracy` is the share of positions where the most likely word is right.

    Args:
        vocabulary: a `WordVocabulary` of the training captions, `sequence_markers=True`.
        image_encoder: `"efficientnet_lite0"`, `"small_cnn"` or a `keras.Model`.
        image_size: the side of the square input images.
        fine_tune_encoder: train the encoder jointly with the decoder (None: only an
            encoder whose weights start random).
        attention: `"soft"` (Show, Attend and Tell) or `"none"` (Show and Tell).
        grid_positions: the code of each cell's row and column added to the attended
            grid: `"none"`, `"sinusoidal"` (fixed) or `"learned"`; for captions that say
            where things are.
        cell, units, embedding_dim, num_layers, attention_units, dropout: the decoder.
        attention_penalty: weight of the doubly stochastic attention penalty (0: off).
        max_output_length: default cap on generated words.
        pretrained: load the pretrained encoder weights.
        learning_rate: Adam's learning rate (when `optimizer` is None).
        optimizer: a `keras.optimizers.Optimizer` to use instead of Adam.
        clip_norm: gradient clipping by global norm (None or 0: off); the pre-clip norm is
            logged as `grad_norm`.
        label_smoothing: share of each target's probability spread over the vocabulary.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        name: the model's name.

    Returns:
        A compiled `Captioner`.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> vocabulary = rnn_toolkit.data.WordVocabulary(["a", "red", "ball"], sequence_markers=True)
    >>> model = rnn_toolkit.build_captioner(
    ...     vocabulary, image_encoder="small_cnn", image_size=32, units=8, embedding_dim=4
    ... )
    >>> image = np.zeros((20, 30, 3), np.uint8)
    >>> isinstance(model.caption(image, max_length=3), str)
    True
    >>> model.decoder.recurrent.cudnn_eligible
    True
    """
    model = Captioner(
        vocabulary,
        image_encoder=image_encoder,
        image_size=image_size,
        fine_tune_encoder=fine_tune_encoder,
        attention=attention,
        grid_positions=grid_positions,
        cell=cell,
        units=units,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        attention_units=attention_units,
        dropout=dropout,
        attention_penalty=attention_penalty,
        max_output_length=max_output_length,
        pretrained=pretrained,
        dtype_policy=dtype_policy,
        clip_norm=clip_norm,
        name=name,
    )
    model.build()
    return compile_sequence_model(
        model, learning_rate=learning_rate, optimizer=optimizer, label_smoothing=label_smoothing
    )
