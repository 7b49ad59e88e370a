"""The decoder half of an encoder-decoder: target words in, next-word logits out.

Embedding -> dropout -> a unidirectional `RecurrentStack` started from a given state
-> (optionally) `SourceAttention` over a memory and a linear projection of
`[output; context]` -> dropout -> float32 logits over the target vocabulary.

The memory is whatever the decoder should look at: the encoder outputs of a translator
(with the source padding mask), or the flattened feature grid of an image (no mask:
every position is valid). Attention sits after the recurrent layers (Luong et al.,
2015), so under teacher forcing the decoder reads the whole shifted target in one
cuDNN-eligible call; only `step`, used by the decoding loop, goes word by word. Both go
through the same layer objects, so they share weights by construction.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.layers.source_attention import ATTENTION_SCORES, SourceAttention


@contextlib.contextmanager
def _in_variable_dtype(layer):
    """Calls to `layer` and to every layer inside it compute in their variables' dtype
    (float32) while the block runs, whatever their mixed-precision policy.

    For a decoding step traced once into a graph: the policies are put back on exit.
    """
    changed = []
    for sublayer in layer._flatten_layers(include_self=True):
        policy = sublayer._dtype_policy
        if isinstance(policy, keras.dtype_policies.DTypePolicyMap):
            continue
        if policy.quantization_mode is None and policy.compute_dtype != policy.variable_dtype:
            changed.append((sublayer, policy))
            sublayer._dtype_policy = keras.dtype_policies.DTypePolicy(policy.variable_dtype)
    try:
        yield
    finally:
        for sublayer, policy in reversed(changed):
            sublayer._dtype_policy = policy

ATTENTION_TYPES = ("none",) + ATTENTION_SCORES


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class AttentionDecoder(keras.layers.Layer):
    """A recurrent decoder that may attend over a memory, for training and decoding.

    `call` gives teacher-forced logits for whole target sequences; `step` advances one
    word for `rnn_toolkit.decoding`, with a state dict built by `decoding_state`:
    `"decoder"` (the recurrent state), and when attending `"memory"`, `"keys"` and, for
    a masked memory, `"memory_mask"`; with per-row length limits also `"limits"` and
    `"position"`. Every entry has the batch as its first axis, so a beam search can
    tile and reorder the whole state.

    Args:
        vocab_size: size of the target vocabulary (id 0 is padding).
        embedding_dim: target word embedding size.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per recurrent layer.
        num_layers: stacked recurrent layers.
        attention: `"none"`, `"additive"` (Bahdanau) or `"multiplicative"` (Luong).
        attention_units: hidden size of the additive score (default `units`).
        memory_size: features per memory position (needed with attention).
        dropout: dropout on the embeddings, between recurrent layers and before the
            output layer.
        end_id: the id a row must produce once it reaches its length limit (needed
            only for `decoding_state(..., limits=...)`).
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> decoder = rnn_toolkit.layers.AttentionDecoder(
    ...     vocab_size=10, embedding_dim=3, units=4, attention="additive", memory_size=5
    ... )
    >>> memory = np.random.rand(2, 4, 5).astype("float32")  # e.g. a 2x2 image grid
    >>> state = decoder.get_initial_state(2)
    >>> logits = decoder(np.array([[1, 2, 3], [1, 4, 0]]), state, memory=memory)
    >>> tuple(logits.shape)
    (2, 3, 10)
    >>> logits, state = decoder.step(np.array([1, 1]), decoder.decoding_state(state, memory))
    >>> tuple(logits.shape), sorted(state)
    ((2, 10), ['decoder', 'keys', 'memory'])
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=256,
        cell="lstm",
        units=256,
        num_layers=1,
        attention="additive",
        attention_units=None,
        memory_size=None,
        dropout=0.0,
        end_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention not in ATTENTION_TYPES:
            raise ValueError(
                f"`attention` must be one of {ATTENTION_TYPES}; received attention={attention!r}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received dropout={dropout!r}.")
        vocab_size = check_positive_int("vocab_size", vocab_size)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        units = check_positive_int("units", units)
        attention_units = units if attention_units is None else attention_units
        attention_units = check_positive_int("attention_units", attention_units)
        # The attention's weights are created in `build`, before any memory is seen.
        memory_size = check_positive_int("memory_size", memory_size, allow_none=attention == "none")
        if end_id is not None and not 0 <= int(end_id) < vocab_size:
            raise ValueError(
                f"`end_id` must be a target id below {vocab_size}; received end_id={end_id!r}."
            )
        policy = self.dtype_policy

        # === Layers ===
        # mask_zero: id 0 is padding. Decoder inputs start with a start token, so the
        # mask is right-padded with a valid first step: cuDNN's terms.
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, name="target_embedding", dtype=policy
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, name="embedding_dropout", dtype=policy
        )
        self.recurrent = RecurrentStack(
            cell, units=units, num_layers=num_layers, dropout=dropout,
            bidirectional=False, return_sequences=True, name="decoder", dtype=policy,
        )
        self.attention = None
        self.attention_projection = None
        if attention != "none":
            self.attention = SourceAttention(
                attention, units=attention_units, name="attention", dtype=policy
            )
            # Linear, as in TensorFlow's NMT attention wrapper. With Luong's tanh here,
            # Adam drove the projection into saturation within ~100 steps on the Bible
            # data (constant features, vanishing gradients, a unigram model at best),
            # with any learning rate from 5e-4 to 2e-3.
            self.attention_projection = keras.layers.Dense(
                units, use_bias=False, name="attention_projection", dtype=policy,
            )
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=policy)
        # float32 logits: the softmax over the vocabulary and the loss stay exact.
        self.output_layer = keras.layers.Dense(vocab_size, name="output", dtype="float32")

        # === Config ===
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.cell = self.recurrent.cell
        self.units = units
        self.num_layers = self.recurrent.num_layers
        self.attention_type = attention
        self.attention_units = attention_units
        self.memory_size = memory_size
        self.dropout = float(dropout)
        self.end_id = None if end_id is None else int(end_id)

    def build(self, input_shape=None):
        # A layer already built is kept: a model that held these layers before it used
        # this block (the translator) builds them in its own name scope, so their
        # variable paths stay `translator/decoder/...` as in its older files.
        batch = None
        if not self.embedding.built:
            self.embedding.build((batch, None))
        if not self.recurrent.built:
            self.recurrent.build((batch, None, self.embedding_dim))
        if self.attention is not None:
            if not self.attention.built:
                self.attention.build(self.units, self.memory_size)
            if not self.attention_projection.built:
                self.attention_projection.build((batch, self.units + self.memory_size))
        if not self.output_layer.built:
            self.output_layer.build((batch, self.units))

    def get_initial_state(self, batch_size):
        """Zero recurrent states for `batch_size` rows (see `RecurrentStack`)."""
        return self.recurrent.get_initial_state(batch_size)

    def project_keys(self, memory):
        """The attention keys of `memory` `[batch, positions, memory_size]`, computed once
        per memory and reused at every step; None without attention."""
        if self.attention is None:
            return None
        return self.attention.project_keys(memory)

    def _predict(self, decoder_outputs, memory, keys, memory_mask, training=None):
        """Logits from decoder outputs (sequences or one step), attending if configured."""
        weights = None
        features = decoder_outputs
        if self.attention is not None:
            context, weights = self.attention(
                decoder_outputs, keys, memory, source_mask=memory_mask
            )
            features = self.attention_projection(
                ops.concatenate([decoder_outputs, context], axis=-1)
            )
        logits = self.output_layer(self.output_dropout(features, training=training))
        return logits, weights

    def call(
        self,
        decoder_input_ids,
        initial_state,
        memory=None,
        memory_mask=None,
        keys=None,
        training=None,
        return_attention=False,
    ):
        """Teacher-forced logits for right-padded decoder inputs.

        Args:
            decoder_input_ids: int `[batch, time]`: a start token, then the true words
                before each position (0 = padding).
            initial_state: the recurrent state to start from (a list per layer of state
                tensors, e.g. from a bridge or `get_initial_state`); None for zeros.
            memory: `[batch, positions, memory_size]`, what the attention reads
                (required with attention, ignored without).
            memory_mask: optional bool `[batch, positions]`, False at padding; None
                when every position is valid.
            keys: `project_keys(memory)` if already computed.
            training: whether dropout is active.
            return_attention: also return the attention weights.

        Returns:
            float32 logits `[batch, time, vocab_size]`; with `return_attention=True`
            also the weights `[batch, time, positions]` (None without attention).
        """
        if self.attention is not None:
            if memory is None:
                raise ValueError("An AttentionDecoder with attention needs a `memory`.")
            if keys is None:
                keys = self.project_keys(memory)
        target_mask = self.embedding.compute_mask(decoder_input_ids)
        embedded = self.embedding_dropout(self.embedding(decoder_input_ids), training=training)
        outputs = self.recurrent(
            embedded, initial_state=initial_state, mask=target_mask, training=training
        )
        logits, weights = self._predict(outputs, memory, keys, memory_mask, training=training)
        # A fresh tensor without the decoder's Keras mask attached: the loss masks
        # padding itself, and Keras must not apply a (differently scaled) mask again.
        logits = tf.identity(logits)
        if return_attention:
            return logits, weights
        return logits

    def compute_mask(self, *args, **kwargs):
        return None

    # --- One decoding step ----------------------------------------------------------------

    def decoding_state(self, initial_state, memory=None, memory_mask=None, limits=None):
        """The state `step` starts from.

        Args:
            initial_state: the recurrent state (as for `call`).
            memory: `[batch, positions, memory_size]` (with attention).
            memory_mask: optional bool `[batch, positions]`; None: all positions valid.
            limits: optional int32 `[batch]`: row i must produce `end_id` after at most
                `limits[i]` words. Each row's limit lives in the state, so a row's
                output never depends on the other rows of its batch.

        Returns:
            A dict of tensors with the batch as first axis (see the class docstring).
        """
        state = {"decoder": initial_state}
        if self.attention is not None:
            if memory is None:
                raise ValueError("An AttentionDecoder with attention needs a `memory`.")
            # `step` reads them in float32: cast once here rather than at every step.
            state.update(
                memory=ops.cast(memory, "float32"),
                keys=ops.cast(self.project_keys(memory), "float32"),
            )
            if memory_mask is not None:
                state.update(memory_mask=memory_mask)
        if limits is not None:
            if self.end_id is None:
                raise ValueError("Per-row `limits` need an AttentionDecoder built with `end_id`.")
            limits = tf.cast(limits, tf.int32)
            state.update(limits=limits, position=tf.zeros_like(limits))
        return state

    def step(self, token_ids, state):
        """One word: ids `[batch]` and state -> (float32 logits `[batch, vocab]`, state).

        Runs in float32 whatever the training precision, as the character model's step
        does: under a mixed policy Keras would cast every weight to 16 bits at every
        word, and an XLA-compiled loop rounds 16-bit arithmetic differently from
        TensorFlow's kernels (it keeps float32 between fused ops), which changed about
        one translation in six between the compiled and the uncompiled loop. In float32
        the two agree. The returned decoder state is float32, as are the memory and keys
        of `decoding_state`.
        """
        with _in_variable_dtype(self):
            # A plain lookup: the layer call would attach a padding mask that the cells
            # cannot use (and warn about).
            embedded = ops.take(self.embedding.embeddings, token_ids, axis=0)
            outputs, decoder_state = self.recurrent.step(
                embedded, state["decoder"], full_precision=True
            )
            memory, keys = state.get("memory"), state.get("keys")
            if memory is not None:
                memory, keys = ops.cast(memory, "float32"), ops.cast(keys, "float32")
            logits, _ = self._predict(outputs, memory, keys, state.get("memory_mask"))
        state = dict(state, decoder=decoder_state)
        if "limits" in state:
            # The logits of position `position`: a row at its limit may only end.
            logits = tf.cast(logits, tf.float32)
            at_limit = state["position"] >= state["limits"]
            only_end = tf.where(
                tf.equal(tf.range(tf.shape(logits)[1]), self.end_id), 0.0, -float("inf")
            )
            logits = tf.where(at_limit[:, tf.newaxis], only_end[tf.newaxis, :], logits)
            state["position"] = state["position"] + 1
        return logits, state

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            attention=self.attention_type,
            attention_units=self.attention_units,
            memory_size=self.memory_size,
            dropout=self.dropout,
            end_id=self.end_id,
        )
        return config
