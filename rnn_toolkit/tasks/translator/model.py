"""Sequence to sequence: an encoder-decoder translator, with or without attention.

The lecture's many-to-one encoder reads the source sentence; a **bridge** turns its final
state into the initial state of a one-to-many decoder that writes the target sentence
word by word. Without attention the final state is the only path from source to target
(the "summary vector" bottleneck). With attention the decoder also looks at every
encoder output at every target word.

Where attention sits: after the decoder's recurrent layers (Luong et al., 2015). The
context vector and the decoder output form the attentional state `W [h_t; c_t]`, from
which the next word is predicted (linear, as in TensorFlow's NMT: see the layer's
comment for why not Luong's tanh). Feeding the context back
into the recurrent input (Bahdanau's decoder, Luong's "input feeding") would force a
step-by-step loop during training; this way the decoder reads the whole shifted target in
one cuDNN-eligible call under teacher forcing, and only the score function differs
between `attention="additive"` (Bahdanau's score) and `"multiplicative"` (Luong's
general score).

The decoder half (target embedding, decoder, attention, output layer) is the shared
`rnn_toolkit.layers.AttentionDecoder`; training (`call`) and inference (`step`, used by
the decoding loop) go through the same layer objects, so they share weights by
construction.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.word_vocabulary import WordVocabulary
from rnn_toolkit.decoding.compilation import DecodingBuckets, jit_decoding_enabled, pad_axis_to_bucket
from rnn_toolkit.decoding.loop import BeamSearch, SamplingSearch, decode_with_strategy
from rnn_toolkit.decoding.samplers import sampling_function
from rnn_toolkit.layers.attention_decoder import AttentionDecoder
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.precision import resolve_dtype_policy
from rnn_toolkit.training.gradient_clipping import GradientClippingModel
from rnn_toolkit.training.sequence_losses import compile_sequence_model

BRIDGES = ("dense", "zeros")

MAX_TRANSLATION_LENGTH = 512

# The sizes the compiled decoding loop is compiled for: batches padded to a power of two
# up to 128 (times the beam width), the output buffer to 128 or MAX_TRANSLATION_LENGTH words.
TRANSLATION_BUCKETS = DecodingBuckets(
    batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), lengths=(128, MAX_TRANSLATION_LENGTH)
)
# The source is padded to one of these lengths before decoding: the attention memory is
# an input of the compiled loop, so each source length would be one more compilation.
SOURCE_BUCKETS = (16, 32, 64, 128, 256, 512)
"""The most target words any call may ask for (bounds the work one request can cause)."""


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class Translator(GradientClippingModel):
    """Encoder -> bridge -> decoder, reading `(source_ids, decoder_input_ids)`.

    `call` returns float32 logits `[batch, target_time, target_vocab]`: at position t,
    the distribution of target word t given the source and the true words before it
    (teacher forcing; see `rnn_toolkit.data.translation_batches`). Build it with
    `build_translator()`, which also compiles it.

    Args:
        source_vocabulary: a `WordVocabulary` for the source language.
        target_vocabulary: a `WordVocabulary` built with `sequence_markers=True`.
        embedding_dim: word embedding size (both languages).
        cell: `"rnn"`, `"lstm"` or `"gru"` (encoder and decoder).
        units: hidden units per recurrent layer (per direction in the encoder).
        encoder_layers: stacked encoder layers.
        decoder_layers: stacked decoder layers.
        bidirectional: read the source in both directions.
        attention: `"none"`, `"additive"` or `"multiplicative"`.
        attention_units: hidden size of the additive score (default `units`).
        bridge: `"dense"` (a learned tanh projection of the encoder's final states
            per decoder layer) or `"zeros"` (the decoder starts from zeros and sees the
            source through attention only; needs attention).
        dropout: dropout on embeddings, between recurrent layers and before the output.
        max_output_length: the default cap on generated words.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        clip_norm: global gradient-norm clipping threshold (None or 0: off).
        **kwargs: standard `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        embedding_dim=256,
        cell="lstm",
        units=256,
        encoder_layers=1,
        decoder_layers=1,
        bidirectional=True,
        attention="additive",
        attention_units=None,
        bridge="dense",
        dropout=0.0,
        max_output_length=100,
        dtype_policy="auto",
        clip_norm=1.0,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        policy = resolve_dtype_policy(dtype_policy)
        super().__init__(clip_norm=clip_norm, dtype=policy, **kwargs)
        source_vocabulary = _as_vocabulary(source_vocabulary, "source_vocabulary")
        target_vocabulary = _as_vocabulary(target_vocabulary, "target_vocabulary")
        if not target_vocabulary.sequence_markers:
            raise ValueError(
                "`target_vocabulary` must be built with sequence_markers=True: the decoder "
                "starts from [START] and stops at [END]."
            )
        # `attention`, `attention_units` and `dropout` are checked by the AttentionDecoder.
        if bridge not in BRIDGES:
            raise ValueError(f"`bridge` must be one of {BRIDGES}; received bridge={bridge!r}.")
        if bridge == "zeros" and attention == "none":
            raise ValueError(
                "`bridge='zeros'` with `attention='none'` leaves the decoder no way to see the "
                "source; use bridge='dense' or an attention."
            )
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        units = check_positive_int("units", units)
        max_output_length = check_positive_int("max_output_length", max_output_length)

        # === Layers ===
        attention_decoder = AttentionDecoder(
            target_vocabulary.size, embedding_dim=embedding_dim, cell=cell, units=units,
            num_layers=decoder_layers, attention=attention, attention_units=attention_units,
            memory_size=units * (2 if bidirectional else 1), dropout=dropout,
            end_id=target_vocabulary.end_id, name="attention_decoder", dtype=policy,
        )
        # The block's layers are also the translator's own attributes, assigned in the
        # order and under the names they had before the block existed: `.keras` files
        # store weights by attribute path and the optimizer's slots in the order of
        # `trainable_variables`, so older files still load. The block itself comes last,
        # under a private name (visited last when saving, after all its layers).
        self.source_vocabulary = source_vocabulary
        self.target_vocabulary = target_vocabulary
        # mask_zero: id 0 is padding. Sources never have an empty row (the vocabulary
        # encodes an empty text as one unknown word), so the mask is right-padded with a
        # valid first step: cuDNN's terms.
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary.size, embedding_dim, mask_zero=True, name="source_embedding",
            dtype=policy,
        )
        self.target_embedding = attention_decoder.embedding
        # One dropout layer for both languages' embeddings, as before the block.
        self.embedding_dropout = attention_decoder.embedding_dropout
        self.encoder = RecurrentStack(
            cell, units=units, num_layers=encoder_layers, dropout=dropout,
            bidirectional=bidirectional, return_sequences=True, name="encoder", dtype=policy,
        )
        self.decoder = attention_decoder.recurrent
        # One projection per decoder state tensor: h gets tanh (hidden states live in
        # [-1, 1]); an LSTM cell state c is unbounded, so its projection is linear.
        self.bridge_layers = []
        if bridge == "dense":
            for layer in range(decoder_layers):
                for index in range(self.decoder.state_size):
                    activation = "tanh" if index == 0 else None
                    self.bridge_layers.append(
                        keras.layers.Dense(
                            units, activation=activation, name=f"bridge_{layer}_{index}",
                            dtype=policy,
                        )
                    )
        self.attention = attention_decoder.attention
        self.attention_projection = attention_decoder.attention_projection
        self.output_dropout = attention_decoder.output_dropout
        self.output_layer = attention_decoder.output_layer
        self._attention_decoder = attention_decoder

        # === Config ===
        self.embedding_dim = embedding_dim
        self.cell = self.encoder.cell
        self.units = units
        self.encoder_layers = self.encoder.num_layers
        self.decoder_layers = self.decoder.num_layers
        self.bidirectional = bool(bidirectional)
        self.attention_type = attention
        self.attention_units = attention_decoder.attention_units
        self.bridge = bridge
        self.dropout = attention_decoder.dropout
        self.max_output_length = max_output_length
        self.dtype_policy_name = policy

    def build(self, input_shape=None):
        # Every layer is built here, in the translator's name scope, so variable paths
        # stay `translator/decoder/...` (not `translator/attention_decoder/decoder/...`);
        # the block then finds its layers built.
        batch = None
        self.source_embedding.build((batch, None))
        self.target_embedding.build((batch, None))
        self.encoder.build((batch, None, self.embedding_dim))
        self.decoder.build((batch, None, self.embedding_dim))
        encoder_state_size = self.encoder.output_size
        for layer in self.bridge_layers:
            layer.build((batch, encoder_state_size))
        if self.attention is not None:
            self.attention.build(self.units, self.encoder.output_size)
            self.attention_projection.build((batch, self.units + self.encoder.output_size))
        self.output_layer.build((batch, self.units))
        self._attention_decoder.build()
        self.built = True

    # --- The pieces: encoder, bridge, decoder output ------------------------------------

    def encode(self, source_ids, training=None):
        """Reads right-padded source ids `[batch, source_time]`.

        Returns:
            `(memory, source_mask, decoder_state)`: the encoder outputs
            `[batch, source_time, encoder_size]`, the bool source mask, and the decoder's
            initial state (a list per decoder layer of state tensors) from the bridge.
        """
        source_mask = self.source_embedding.compute_mask(source_ids)
        embedded = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        memory, states = self.encoder(
            embedded, mask=source_mask, training=training, return_state=True
        )
        return memory, source_mask, self._bridge(states, ops.shape(source_ids)[0])

    def _bridge(self, encoder_states, batch_size):
        if self.bridge == "zeros":
            return self.decoder.get_initial_state(batch_size)
        per_direction = 2 if self.cell == "lstm" else 1
        decoder_states = []
        layers = iter(self.bridge_layers)
        for layer in range(self.decoder_layers):
            # Decoder layers take the states of the encoder layers at the same height,
            # counted from the top (the top encoder layer feeds the top decoder layer).
            source = encoder_states[
                max(self.encoder_layers - self.decoder_layers + layer, 0)
            ]
            layer_states = []
            for index in range(per_direction):
                # Keras orders a bidirectional layer's states as forward (h, c), then
                # backward (h, c): join the two directions of the same kind.
                parts = source[index::per_direction]
                joined = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)
                layer_states.append(next(layers)(joined))
            decoder_states.append(layer_states)
        return decoder_states

    def call(self, inputs, training=None, return_attention=False):
        """Teacher-forced logits for `(source_ids, decoder_input_ids)`.

        With `return_attention=True` also returns the attention weights
        `[batch, target_time, source_time]` (None without attention).
        """
        source_ids, decoder_input_ids = inputs
        memory, source_mask, decoder_state = self.encode(source_ids, training=training)
        return self._attention_decoder(
            decoder_input_ids,
            decoder_state,
            memory=memory,
            memory_mask=source_mask,
            training=training,
            return_attention=return_attention,
        )

    def compute_mask(self, inputs, mask=None):
        return None

    # --- One decoding step ----------------------------------------------------------------

    def start_decoding(self, source_ids, limits=None):
        """Encodes a batch and returns `(first_logits, state)` for the decoding loop.

        The state (see `AttentionDecoder.decoding_state`) holds the decoder state and,
        for attention, the memory, its keys and the source mask: a beam search reorders
        and tiles all of it along the batch.

        Args:
            source_ids: right-padded int ids `[batch, source_time]`.
            limits: optional int32 `[batch]`: row i must end (generate `[END]`) after at
                most `limits[i]` words. Each row's limit lives in the state, so a
                sentence's translation never depends on the other sentences of its
                batch.
        """
        memory, source_mask, decoder_state = self.encode(source_ids, training=False)
        state = self._attention_decoder.decoding_state(
            decoder_state, memory=memory, memory_mask=source_mask, limits=limits
        )
        start = tf.fill(tf.shape(source_ids)[:1], self.target_vocabulary.start_id)
        return self.step(start, state)

    def step(self, token_ids, state):
        """One target word: ids `[batch]` and state -> (float32 logits `[batch, vocab]`, state)."""
        return self._attention_decoder.step(token_ids, state)

    # --- Raw text in, raw text out ----------------------------------------------------

    def encode_sources(self, texts):
        """Right-padded source ids `[batch, time >= 1]` for raw strings."""
        source_ids = self.source_vocabulary.encode_padded(texts)
        # A batch of zero texts has zero time steps, which the recurrent layers' loop
        # cannot slice; one padding column makes it an empty batch of length 1.
        missing = tf.maximum(1 - tf.shape(source_ids)[1], 0)
        return tf.pad(source_ids, [[0, 0], [0, missing]])

    def default_max_lengths(self, source_ids):
        """Each sentence's default cap: twice its length plus 10 words, at most
        `max_output_length`. int32 `[batch]`."""
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, 0), tf.int32), axis=1)
        return tf.minimum(2 * lengths + 10, self.max_output_length)

    def translate_tensors(
        self,
        texts,
        *,
        beam_width=4,
        max_length=None,
        length_penalty=0.6,
        sampler=None,
        seed=0,
        jit_compile=None,
    ):
        """Graph-safe translation: string `[batch]` -> dict of tensors.

        Args:
            texts: string `[batch]`.
            beam_width: int or int32 scalar tensor: beam search width (1 = greedy
                search with the beam bookkeeping). Ignored when `sampler` is given.
            max_length: int32 scalar: the most target words; None or a value <= 0 means
                each sentence's `default_max_lengths` (twice its length plus 10, at most
                `max_output_length`). Always capped at `MAX_TRANSLATION_LENGTH`.
            length_penalty: the beam search's GNMT length-penalty exponent.
            sampler: a callable `(logits, seed) -> ids` (e.g. a `rnn_toolkit.decoding`
                sampler): decode by sampling instead of beam search.
            seed: the sampling seed.
            jit_compile: None (the process setting), True or False: run the decoding
                loop XLA-compiled at the sizes of `TRANSLATION_BUCKETS`.

        Returns:
            A dict: `translation` (string `[batch]`), `token_ids` (int32
            `[batch, max_length]`) and `lengths` (int32 `[batch]`).
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        # Padding columns are masked out: the translation is the same at any padding.
        source_ids = pad_axis_to_bucket(self.encode_sources(texts), 1, SOURCE_BUCKETS)
        limits = self.default_max_lengths(source_ids)
        if max_length is not None:
            max_length = tf.cast(max_length, tf.int32)
            limits = tf.where(max_length > 0, tf.fill(tf.shape(limits), max_length), limits)
        limits = tf.minimum(limits, MAX_TRANSLATION_LENGTH)
        # The loop runs to the longest limit; shorter rows are ended by `step`.
        max_length = tf.reduce_max(tf.concat([limits, [0]], axis=0))
        vocabulary = self.target_vocabulary
        if sampler is None:
            strategy = BeamSearch(
                beam_width, end_id=vocabulary.end_id, padding_id=vocabulary.PADDING_ID,
                length_penalty=length_penalty,
            )
        else:
            strategy = SamplingSearch(
                sampler, end_id=vocabulary.end_id, padding_id=vocabulary.PADDING_ID
            )
        first_logits, state = self.start_decoding(source_ids, limits)
        token_ids, lengths = decode_with_strategy(
            strategy,
            self.step,
            first_logits,
            state,
            max_length=max_length,
            seed=seed,
            # Never emit padding, [START] or [UNK]: an unknown word is no translation.
            forbidden_ids=[vocabulary.PADDING_ID, vocabulary.UNKNOWN_ID, vocabulary.start_id],
            jit_compile=jit_compile,
            buckets=TRANSLATION_BUCKETS,
        )
        return {
            "translation": vocabulary.decode(token_ids, lengths),
            "token_ids": token_ids,
            "lengths": lengths,
        }

    def translate(
        self,
        texts,
        *,
        beam_width=4,
        max_length=None,
        length_penalty=0.6,
        sampler=None,
        seed=0,
        batch_size=64,
        **sampler_kwargs,
    ):
        """Translates raw sentences.

        Args:
            texts: a string or a list of strings (empty strings, unknown words and
                invalid UTF-8 are all accepted; sources longer than the source
                vocabulary's `max_length` words are cut).
            beam_width: beam search width; 1 is greedy search.
            max_length: the most target words per sentence; None: twice the source
                length plus 10, at most `max_output_length`.
            length_penalty: GNMT length-penalty exponent of the beam search (0: none;
                larger values favour longer translations).
            sampler: None for beam search, or a sampler name (`"greedy"`,
                `"temperature"`, `"top_k"`, `"top_p"`) to decode by sampling.
            seed: sampling seed (same seed, same translations).
            batch_size: sentences per call of the network.
            **sampler_kwargs: `temperature`, `top_k`, `top_p` for a named sampler.

        Returns:
            A string for a string input, else a list of strings.

        Example:

        >>> import rnn_toolkit
        >>> source = rnn_toolkit.data.WordVocabulary(["hello", "world"])
        >>> target = rnn_toolkit.data.WordVocabulary(["hola", "mundo"], sequence_markers=True)
        >>> model = rnn_toolkit.build_translator(source, target, units=4, embedding_dim=4)
        >>> isinstance(model.translate("hello world", max_length=3), str)
        True
        """
        single = isinstance(texts, (str, bytes))
        texts = [texts] if single else list(texts)
        beam_width = check_positive_int("beam_width", beam_width)
        batch_size = check_positive_int("batch_size", batch_size)
        if max_length is not None:
            max_length = check_positive_int("max_length", max_length)
        function = self._translate_function(sampler, tuple(sorted(sampler_kwargs.items())))
        translations = []
        for start in range(0, max(len(texts), 1), batch_size):
            batch = tf.constant(texts[start : start + batch_size], tf.string)
            result = function(
                batch,
                tf.constant(beam_width, tf.int32),
                tf.constant(max_length or 0, tf.int32),
                tf.constant(length_penalty, tf.float32),
                tf.constant(seed, tf.int32),
            )
            translations.extend(t.decode("utf-8") for t in result.numpy().tolist())
        return translations[0] if single else translations

    def generate(self, texts, max_length=None, sampler="greedy", seed=0, **sampler_kwargs):
        """`translate` by sampling: what `rnn_toolkit.SampleText` calls during training."""
        return self.translate(
            texts, max_length=max_length, sampler=sampler, seed=seed, **sampler_kwargs
        )

    def _translate_function(self, sampler, sampler_items):
        # Traced functions live in `__dict__` directly, out of Keras' attribute tracking.
        cache = self.__dict__.setdefault("_translate_cache", {})
        jit_compile = jit_decoding_enabled()
        key = (sampler, sampler_items, jit_compile)
        if key not in cache:
            sampler_fn = sampling_function(sampler, **dict(sampler_items))

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None], tf.string),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.float32),
                    tf.TensorSpec([], tf.int32),
                ]
            )
            def translate(texts, beam_width, max_length, length_penalty, seed):
                return self.translate_tensors(
                    texts,
                    beam_width=beam_width,
                    max_length=max_length,
                    length_penalty=length_penalty,
                    sampler=sampler_fn,
                    seed=seed,
                    jit_compile=jit_compile,
                )["translation"]

            cache[key] = translate
        return cache[key]

    def attention_map(self, text, translation=None, **translate_kwargs):
        """Which source words each generated word attended to.

        The model re-reads its own translation with teacher forcing, which gives the
        same attention weights as the decoding steps that produced it.

        Args:
            text: one source sentence.
            translation: the target sentence to explain; None translates `text` first
                (with `translate_kwargs`).

        Returns:
            `(source_tokens, target_tokens, weights)`: token lists and a NumPy array
            `[len(target_tokens), len(source_tokens)]` whose rows sum to 1. The last
            target token is `[END]`.
        """
        if self.attention is None:
            raise ValueError("`attention_map` needs a model built with attention.")
        if translation is None:
            translation = self.translate(text, **translate_kwargs)
        source = self.source_vocabulary
        target = self.target_vocabulary
        source_ids = self.encode_sources(tf.constant([text], tf.string))
        # Tokenized without `encode`'s truncation and empty-text filler: every word of
        # the translation gets its row, and an empty translation only [END].
        words = target.tokenize(tf.constant([translation], tf.string), target.lowercase)
        target_ids = tf.cast(target.word_to_id(words.flat_values), tf.int32).numpy().tolist()
        decoder_input = tf.constant([[target.start_id] + target_ids], tf.int32)
        _, weights = self((source_ids, decoder_input), training=False, return_attention=True)
        tokens = target.tokens
        source_tokens = [
            source.tokens[i] for i in source_ids[0].numpy().tolist() if i != source.PADDING_ID
        ]
        target_tokens = [tokens[i] for i in target_ids] + ["[END]"]
        return source_tokens, target_tokens, np.asarray(weights[0])[:, : len(source_tokens)]

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocabulary=self.source_vocabulary.get_config(),
            target_vocabulary=self.target_vocabulary.get_config(),
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            bidirectional=self.bidirectional,
            attention=self.attention_type,
            attention_units=self.attention_units,
            bridge=self.bridge,
            dropout=self.dropout,
            max_output_length=self.max_output_length,
            dtype_policy=self.dtype_policy_name,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("source_vocabulary", "target_vocabulary"):
            config[key] = _as_vocabulary(config[key], key)
        return cls(**config)


def _as_vocabulary(vocabulary, name):
    if isinstance(vocabulary, dict):
        vocabulary = {k: v for k, v in vocabulary.items() if k not in ("name", "trainable", "dtype")}
        vocabulary = WordVocabulary(**vocabulary)
    if not isinstance(vocabulary, WordVocabulary):
        raise TypeError(
            f"`{name}` must be a rnn_toolkit.data.WordVocabulary (e.g. "
            f"WordVocabulary.from_texts(texts)); got {type(vocabulary).__name__}."
        )
    return vocabulary


def build_translator(
    source_vocabulary,
    target_vocabulary,
    *,
    embedding_dim=256,
    cell="lstm",
    units=256,
    encoder_layers=1,
    decoder_layers=1,
    bidirectional=True,
    attention="additive",
    attention_units=None,
    bridge="dense",
    dropout=0.2,
    max_output_length=100,
    learning_rate=2e-3,
    optimizer=None,
    clip_norm=1.0,
    label_smoothing=0.0,
    dtype_policy="auto",
    name="translator",
):
    """Builds and compiles an encoder-decoder translator.

    The loss is the cross-entropy of each target word under teacher forcing, averaged
    over real (non-padding) target positions; the metric `token_accuracy` is the share
    of those positions where the most likely word is the right one.

    Args:
        source_vocabulary: a `rnn_toolkit.data.WordVocabulary` built on the training
            sources.
        target_vocabulary: a `WordVocabulary` built on the training targets with
            `sequence_markers=True`.
        embedding_dim: word embedding size.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per recurrent layer (and encoder direction).
        encoder_layers: stacked encoder layers.
        decoder_layers: stacked decoder layers.
        bidirectional: bidirectional encoder.
        attention: `"none"` (the lecture's plain encoder-decoder), `"additive"`
            (Bahdanau) or `"multiplicative"` (Luong).
        attention_units: hidden size of the additive score (default `units`).
        bridge: `"dense"` or `"zeros"` (see `Translator`).
        dropout: dropout rate on embeddings, between layers and before the output.
        max_output_length: the default cap on generated words.
        learning_rate: Adam's learning rate (when `optimizer` is None).
        optimizer: a `keras.optimizers.Optimizer` to use instead of Adam.
        clip_norm: gradient clipping by global norm (None or 0: off); the pre-clip norm
            is logged as `grad_norm`.
        label_smoothing: share of each target's probability spread over the vocabulary.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        name: the model's name.

    Returns:
        A compiled `Translator`.

    Example:

    >>> import rnn_toolkit
    >>> source = rnn_toolkit.data.WordVocabulary(["the", "house"])
    >>> target = rnn_toolkit.data.WordVocabulary(["la", "casa"], sequence_markers=True)
    >>> model = rnn_toolkit.build_translator(source, target, units=4, attention="multiplicative")
    >>> model.attention_type, model.encoder.cudnn_eligible, model.decoder.cudnn_eligible
    ('multiplicative', True, True)
    """
    model = Translator(
        source_vocabulary,
        target_vocabulary,
        embedding_dim=embedding_dim,
        cell=cell,
        units=units,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        bidirectional=bidirectional,
        attention=attention,
        attention_units=attention_units,
        bridge=bridge,
        dropout=dropout,
        max_output_length=max_output_length,
        dtype_policy=dtype_policy,
        clip_norm=clip_norm,
        name=name,
    )
    model.build()
    return compile_sequence_model(
        model, learning_rate=learning_rate, optimizer=optimizer, label_smoothing=label_smoothing
    )
