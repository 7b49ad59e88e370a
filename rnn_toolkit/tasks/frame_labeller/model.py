"""The frame labeller: a CNN reads every frame, a recurrent stack carries what it has seen,
and a softmax per label kind labels every frame (the lecture's many-to-many case);
optionally a softmax per clip label kind also labels the whole clip, from the same parts
(many-to-one: see `FrameLabeller.clip_summary`).

`direction` picks what connects the frames:

* `"causal"`: a recurrent stack reading forward; a frame's labels depend on it and the
  frames before it, so the model can label a live stream one frame at a time (`step`)
  and gives the labels of the offline pass on the same frames;
* `"bidirectional"`: forward and backward stacks; a frame's labels may use later frames
  (offline only);
* `"none"`: no recurrence, the frame-only baseline: the same CNN and a dense layer per
  frame, so that a comparison on one split shows what the recurrence buys.

Frames are float pixels `[batch, time, size, size, channels]` in [0, 255] with 1 (grey)
or 3 channels; `lengths` `[batch]` masks the padded frames of shorter clips (right-padded,
at least one frame per clip, as cuDNN needs on a GPU).
"""

import keras
import tensorflow as tf
from keras import ops

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.layers.image_encoders import image_encoder as resolve_image_encoder
from rnn_toolkit.layers.image_encoders import small_cnn
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.precision import resolve_dtype_policy
from rnn_toolkit.training.gradient_clipping import GradientClippingModel
from rnn_toolkit.training.sequence_losses import MaskedSequenceCrossentropy, TokenAccuracy

DIRECTIONS = ("causal", "bidirectional", "none")
# Frame labels pad with -1: class 0 is a real class.
PADDING_LABEL = -1
# A clip label kind's output (and target) key: `clip_<kind>`.
CLIP_PREFIX = "clip_"
# Encoders whose weights start random: they train with the model.
_UNTRAINED_ENCODERS = ("small_cnn", "efficientnet_lite0_random")


def _as_class_names(class_names, argument="class_names"):
    """`{kind: tuple of names}` from a list of names (one kind, `"label"`) or a mapping."""
    if isinstance(class_names, str) or not class_names:
        raise ValueError(
            f"`{argument}` must be a non-empty list of class names, or a mapping from label "
            f"kind to such a list; received {class_names!r}."
        )
    if not isinstance(class_names, dict):
        class_names = {"label": class_names}
    checked = {}
    for kind, names in class_names.items():
        names = tuple(str(name) for name in names) if not isinstance(names, str) else ()
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(
                f"`{argument}[{kind!r}]` must hold at least 2 distinct names; received {class_names[kind]!r}."
            )
        checked[str(kind)] = names
    return checked


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class FrameLabeller(GradientClippingModel):
    """Frame CNN -> recurrent stack (or none) -> one softmax per label kind and frame.

    `call({"frames": frames, "lengths": lengths})` returns `{kind: float32 logits
    [batch, time, classes]}`, and with `clip_class_names` also `{"clip_<kind>": float32
    logits [batch, classes]}` per clip label kind. Build it with `build_frame_labeller()`,
    which also compiles it.

    Args:
        class_names: a list of class names (one label kind, `"label"`) or a mapping
            `{kind: class names}` for several labels per frame (e.g. a digit and its
            direction of motion).
        frame_encoder: `"small_cnn"` (trained jointly from scratch), `"efficientnet_lite0"`
            (pretrained on ImageNet, frozen unless `fine_tune_encoder`) or any
            `keras.Model` from `[b, S, S, 3]` pixels in [0, 255] to a grid `[b, h, w, c]`.
        frame_size: the side of the square frames the encoder reads.
        frame_filters: the channels of each block of the `"small_cnn"` encoder (see
            `rnn_toolkit.layers.small_cnn`).
        frame_normalization: its normalisation: `"none"`, `"group"` or `"batch"`.
        fine_tune_encoder: train the encoder; None: only an encoder whose weights start random.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: recurrent units per layer and direction (the frame-only baseline's dense
            layer has as many).
        num_layers: stacked recurrent layers.
        direction: `"causal"`, `"bidirectional"` or `"none"` (see the module docstring).
        dropout: on the frame features, between recurrent layers and before the heads.
        pretrained: load a pretrained encoder's weights (False when a saved model brings them).
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        clip_norm: global gradient-norm clipping threshold (None or 0: off).
        clip_class_names: None (no clip label), or like `class_names`: label kinds to
            predict once per clip as well (e.g. which digit moves), each from a summary of
            the clip's real frames (see `clip_summary`).
        **kwargs: standard `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        class_names,
        frame_encoder="small_cnn",
        frame_size=64,
        frame_filters=(16, 32, 64, 128),
        frame_normalization="none",
        fine_tune_encoder=None,
        cell="lstm",
        units=128,
        num_layers=1,
        direction="causal",
        dropout=0.2,
        pretrained=True,
        dtype_policy="auto",
        clip_norm=1.0,
        clip_class_names=None,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        policy = resolve_dtype_policy(dtype_policy)
        super().__init__(clip_norm=clip_norm, dtype=policy, **kwargs)
        class_names = _as_class_names(class_names)
        clip_class_names = {} if clip_class_names is None else _as_class_names(clip_class_names, "clip_class_names")
        clashes = sorted(CLIP_PREFIX + kind for kind in clip_class_names if CLIP_PREFIX + kind in class_names)
        if clashes:
            raise ValueError(
                f"The clip label outputs {clashes} would have the names of frame label kinds; rename those kinds."
            )
        if direction not in DIRECTIONS:
            raise ValueError(f"`direction` must be one of {DIRECTIONS}; received direction={direction!r}.")
        frame_size = check_positive_int("frame_size", frame_size)
        units = check_positive_int("units", units)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received dropout={dropout!r}.")
        encoder_spec = frame_encoder
        if fine_tune_encoder is None:
            fine_tune_encoder = isinstance(frame_encoder, str) and frame_encoder in _UNTRAINED_ENCODERS
        if frame_encoder == "efficientnet_lite0" and not pretrained:
            frame_encoder = "efficientnet_lite0_random"  # the same network; the saved weights follow
        frame_filters = tuple(int(f) for f in frame_filters)
        if frame_encoder == "small_cnn":
            # Every frame of every clip goes through the CNN: a lighter one than the
            # captioner's (which reads one image per caption) keeps a step affordable.
            # No batch statistics: on moving digits (mostly black frames) they swing from
            # batch to batch, and with them a model labelled held-out frames with one
            # class in inference after 190 steps while its training accuracy was 58 %.
            # Group normalisation fixes that at 2.3x the step time; no normalisation
            # learned as fast per step (validation digit accuracy 45 % after 128 steps
            # against 34 % for group normalisation after 96).
            frame_encoder = small_cnn(
                image_size=frame_size, filters=frame_filters, normalization=frame_normalization,
                name="frame_cnn",
            )

        # === Layers ===
        self.frame_encoder, grid_shape = resolve_image_encoder(
            frame_encoder, image_size=frame_size, trainable=bool(fine_tune_encoder)
        )
        self.feature_dropout = keras.layers.Dropout(dropout, name="feature_dropout", dtype=policy)
        if direction == "none":
            self.recurrent = None
            self.frame_dense = keras.layers.Dense(units, activation="relu", name="frame_dense", dtype=policy)
        else:
            self.recurrent = RecurrentStack(
                cell, units=units, num_layers=num_layers, dropout=dropout,
                bidirectional=direction == "bidirectional", name="recurrent", dtype=policy,
            )
            self.frame_dense = None
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=policy)
        # Float32 logits: a softmax over few classes is cheap, and bf16 logits round.
        self.heads = {
            kind: keras.layers.Dense(len(names), name=f"head_{kind}", dtype="float32")
            for kind, names in class_names.items()
        }
        self.clip_heads = {
            kind: keras.layers.Dense(len(names), name=f"clip_head_{kind}", dtype="float32")
            for kind, names in clip_class_names.items()
        }

        # === Config ===
        self.class_names = class_names
        self.clip_class_names = clip_class_names
        self.frame_encoder_spec = encoder_spec
        self.encoder_from_scratch = bool(fine_tune_encoder) and isinstance(encoder_spec, str) and (
            encoder_spec in _UNTRAINED_ENCODERS
        )
        self.frame_size = frame_size
        self.frame_filters = frame_filters
        self.frame_normalization = frame_normalization
        self.fine_tune_encoder = bool(fine_tune_encoder)
        self.grid_shape = tuple(int(d) for d in grid_shape)
        self.feature_size = self.grid_shape[-1]
        self.cell = cell
        self.units = units
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.direction = direction
        self.dropout = float(dropout)
        self.dtype_policy_name = policy

    def build(self, input_shape=None):
        features = (None, None, self.feature_size)
        if self.recurrent is not None:
            self.recurrent.build(features)
            width = self.recurrent.output_size
        else:
            self.frame_dense.build(features)
            width = self.units
        for head in self.heads.values():
            head.build((None, None, width))
        for head in self.clip_heads.values():
            head.build((None, width))
        self.built = True

    @property
    def label_kinds(self):
        return tuple(self.class_names)

    @property
    def clip_label_kinds(self):
        """The clip label kinds (their outputs are `clip_<kind>`), in the order of `clip_class_names`."""
        return tuple(self.clip_class_names)

    # --- The pieces ---------------------------------------------------------------------------

    def frame_features(self, frames, training=None):
        """Float pixels `[batch, time, S, S, 1 or 3]` -> features `[batch, time, feature_size]`
        (the encoder's grid, averaged over its cells)."""
        frames = tf.convert_to_tensor(frames)
        if frames.shape.rank != 5 or frames.shape[-1] not in (1, 3):
            raise ValueError(
                "`frames` must be [batch, time, size, size, channels] with 1 or 3 channels; "
                f"received shape {frames.shape}."
            )
        shape = tf.shape(frames)
        flat = tf.reshape(tf.cast(frames, tf.float32), tf.concat([[-1], shape[2:]], axis=0))
        if frames.shape[-1] == 1:
            flat = tf.tile(flat, [1, 1, 1, 3])
        learns_statistics = bool(training) and self.encoder_from_scratch
        grid = self.frame_encoder(flat, training=learns_statistics)
        pooled = ops.mean(ops.cast(grid, self.compute_dtype), axis=[1, 2])
        return tf.reshape(pooled, [shape[0], shape[1], self.feature_size])

    def logits_from_features(self, features, mask=None, training=None, initial_state=None, return_state=False):
        """Frame features `[batch, time, feature_size]` (from `frame_features`) -> `{kind:
        logits}` (and `clip_<kind>` logits over the real frames of `mask`); with
        `return_state`, also the recurrent stack's final state. The exported model calls
        it on features the CNN computed in chunks."""
        hidden, state = self._frame_outputs(features, mask=mask, training=training, initial_state=initial_state)
        logits = self._frame_logits(hidden)
        if self.clip_heads:
            logits.update(self._clip_logits(self.clip_summary(hidden, mask)))
        return (logits, state) if return_state else logits

    def _frame_outputs(self, features, mask=None, training=None, initial_state=None):
        """Frame features -> `(per-frame outputs [batch, time, width], recurrent state or None)`."""
        features = self.feature_dropout(features, training=training)
        state = None
        if self.recurrent is None:
            hidden = self.frame_dense(features)
        else:
            hidden, state = self.recurrent(
                features, initial_state=initial_state, mask=mask, training=training, return_state=True
            )
        return self.output_dropout(hidden, training=training), state

    def _frame_logits(self, hidden):
        # The recurrent output carries a Keras mask, which the loss would apply on top of
        # its own padding mask (and with per-clip losses, in the wrong shape): the masked
        # losses see padding in the labels (-1) instead.
        return {kind: tf.identity(head(hidden)) for kind, head in self.heads.items()}

    def _clip_logits(self, summary):
        return {CLIP_PREFIX + kind: head(summary) for kind, head in self.clip_heads.items()}

    def clip_summary(self, hidden, mask=None):
        """Per-frame outputs `[batch, time, width]` -> float32 `[batch, width]`: what the
        clip heads read, over the real frames of `mask` (None: all).

        A causal model takes its output at the last real frame: it has read the whole
        clip there (the lecture's many-to-one), and the same output at any earlier frame
        is the clip label of a stream so far. A bidirectional or frame-only model takes the
        mean over the real frames: a bidirectional output at the last frame has seen
        that frame alone backwards, and a frame-only one nothing but that frame.
        """
        hidden = tf.cast(hidden, tf.float32)  # a sum over thousands of frames in 16 bits would round
        if mask is None:
            mask = tf.ones(tf.shape(hidden)[:2], tf.bool)
        if self.direction == "causal":
            last = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) - 1, 0)
            return tf.gather(hidden, last, batch_dims=1)
        valid = tf.cast(mask, tf.float32)[..., tf.newaxis]
        return tf.reduce_sum(hidden * valid, axis=1) / tf.maximum(tf.reduce_sum(valid, axis=1), 1.0)

    def call(self, inputs, training=None):
        """`{kind: float32 logits [batch, time, classes]}` for `{"frames", "lengths"}` (or
        frames alone: every frame of every clip is real)."""
        frames, lengths = _frames_and_lengths(inputs)
        features = self.frame_features(frames, training=training)
        mask = None
        if lengths is not None:
            mask = tf.sequence_mask(lengths, tf.shape(features)[1])
        return self.logits_from_features(features, mask=mask, training=training)

    def compute_mask(self, inputs, mask=None):
        return None

    # --- Streaming ----------------------------------------------------------------------------

    def initial_state(self, batch_size):
        """The state of streams that have seen no frame yet (causal and frame-only models):
        the recurrent stack's, or for a frame-only model with clip heads the sum and count
        of its frame outputs so far (`[[float32 [batch, units], float32 [batch, 1]]]`)."""
        if self.direction == "bidirectional":
            raise ValueError("A bidirectional frame labeller reads whole clips; it cannot stream.")
        if self.recurrent is None:
            if not self.clip_heads:
                return []
            return [[tf.zeros([batch_size, self.units]), tf.zeros([batch_size, 1])]]
        return self.recurrent.get_initial_state(batch_size)

    def step(self, frames, state):
        """One frame per stream: float pixels `[batch, S, S, 1 or 3]` and the state ->
        `({kind: float32 logits [batch, classes]}, new state)`; the labels equal the
        offline pass's on the same frames, and `clip_<kind>` the offline clip label of
        the frames so far."""
        if self.direction == "bidirectional":
            raise ValueError("A bidirectional frame labeller reads whole clips; it cannot stream.")
        features = self.frame_features(tf.convert_to_tensor(frames)[:, tf.newaxis])[:, 0]
        if self.recurrent is None:
            hidden, new_state = self.frame_dense(features), []
            summary = None
            if self.clip_heads:
                total, count = state[0]
                total, count = total + tf.cast(hidden, tf.float32), count + 1.0
                summary, new_state = total / count, [[total, count]]
        else:
            hidden, new_state = self.recurrent.step(features, state)
            summary = tf.cast(hidden, tf.float32)
        logits = {kind: head(hidden) for kind, head in self.heads.items()}
        if self.clip_heads:
            logits.update(self._clip_logits(summary))
        return logits, new_state

    def label_stream(self, frames, state=None):
        """Labels a chunk of a stream `[batch, time, S, S, C]`, continuing from `state`
        (None: a new stream) -> `({kind: logits [batch, time, classes]}, new state)`. Long
        clips go through in chunks with the state carried, in bounded memory. With clip
        heads, `clip_<kind>` holds logits `[batch, time, classes]`: at each frame, the
        offline clip label of the stream up to that frame."""
        if self.direction == "bidirectional":
            raise ValueError("A bidirectional frame labeller reads whole clips; it cannot stream.")
        features = self.frame_features(frames)
        if state is None:
            state = self.initial_state(tf.shape(features)[0])
        if self.recurrent is None:
            hidden, _ = self._frame_outputs(features)
            new_state = []
            if self.clip_heads:
                # Running means: the sums and counts carry across chunks.
                total, count = state[0]
                sums = total[:, tf.newaxis] + tf.cumsum(tf.cast(hidden, tf.float32), axis=1)
                counts = count[:, tf.newaxis] + tf.cast(tf.range(1, tf.shape(hidden)[1] + 1), tf.float32)[:, tf.newaxis]
                running = sums / counts
                new_state = [[total + tf.reduce_sum(tf.cast(hidden, tf.float32), axis=1),
                              count + tf.cast(tf.shape(hidden)[1], tf.float32)]]
        else:
            hidden, new_state = self._frame_outputs(features, initial_state=state)
            running = tf.cast(hidden, tf.float32)
        logits = self._frame_logits(hidden)
        if self.clip_heads:
            logits.update(self._clip_logits(running))
        return logits, new_state

    # --- Config -------------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        encoder = self.frame_encoder_spec
        if isinstance(encoder, keras.Model):
            encoder = keras.saving.serialize_keras_object(encoder)
        config.update(
            class_names={kind: list(names) for kind, names in self.class_names.items()},
            frame_encoder=encoder,
            frame_size=self.frame_size,
            frame_filters=list(self.frame_filters),
            frame_normalization=self.frame_normalization,
            fine_tune_encoder=self.fine_tune_encoder,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            direction=self.direction,
            dropout=self.dropout,
            dtype_policy=self.dtype_policy_name,
            clip_class_names={kind: list(names) for kind, names in self.clip_class_names.items()} or None,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("frame_encoder"), dict):
            config["frame_encoder"] = keras.saving.deserialize_keras_object(config["frame_encoder"])
        config["pretrained"] = False  # the saved weights replace the pretrained ones
        return cls(**config)


def _frames_and_lengths(inputs):
    if isinstance(inputs, dict):
        if "frames" not in inputs:
            raise ValueError(f"The inputs must hold 'frames'; received keys {sorted(inputs)}.")
        return inputs["frames"], inputs.get("lengths")
    return inputs, None


def build_frame_labeller(
    class_names,
    *,
    frame_encoder="small_cnn",
    frame_size=64,
    frame_filters=(16, 32, 64, 128),
    frame_normalization="none",
    fine_tune_encoder=None,
    cell="lstm",
    units=128,
    num_layers=1,
    direction="causal",
    dropout=0.2,
    pretrained=True,
    learning_rate=1e-3,
    optimizer=None,
    clip_norm=1.0,
    dtype_policy="auto",
    clip_class_names=None,
    name="frame_labeller",
):
    """Builds and compiles a frame labeller (see `FrameLabeller` for the arguments).

    The loss is, per label kind, the cross-entropy of every real frame's label (padded
    frames, labelled -1, count for nothing), summed over the kinds; the metric
    `<kind>_accuracy` is the share of real frames labelled right. Each clip label kind
    adds the cross-entropy of its clip labels (targets `clip_<kind>`, int `[batch]`) to
    the sum, and the metric `clip_<kind>_accuracy`.

    Returns:
        A compiled `FrameLabeller`.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> model = rnn_toolkit.build_frame_labeller(
    ...     {"digit": list("0123456789"), "direction": ["left", "right"]},
    ...     frame_size=32, units=8, direction="causal",
    ... )
    >>> logits = model({"frames": np.zeros((2, 5, 32, 32, 1), "float32"), "lengths": np.array([5, 3])})
    >>> {kind: tuple(value.shape) for kind, value in logits.items()}
    {'digit': (2, 5, 10), 'direction': (2, 5, 2)}
    >>> model.recurrent.cudnn_eligible
    True

    One label per clip as well (many-to-one from the same parts):

    >>> model = rnn_toolkit.build_frame_labeller(
    ...     {"digit": list("0123456789"), "direction": ["left", "right"]},
    ...     clip_class_names={"digit": list("0123456789")}, frame_size=32, units=8,
    ... )
    >>> logits = model({"frames": np.zeros((2, 5, 32, 32, 1), "float32"), "lengths": np.array([5, 3])})
    >>> tuple(logits["clip_digit"].shape)
    (2, 10)
    """
    model = FrameLabeller(
        class_names,
        frame_encoder=frame_encoder,
        frame_size=frame_size,
        frame_filters=frame_filters,
        frame_normalization=frame_normalization,
        fine_tune_encoder=fine_tune_encoder,
        cell=cell,
        units=units,
        num_layers=num_layers,
        direction=direction,
        dropout=dropout,
        pretrained=pretrained,
        dtype_policy=dtype_policy,
        clip_norm=clip_norm,
        clip_class_names=clip_class_names,
        name=name,
    )
    model.build()
    loss = {kind: MaskedSequenceCrossentropy(padding_id=PADDING_LABEL) for kind in model.label_kinds}
    metrics = {kind: [TokenAccuracy(name="accuracy", padding_id=PADDING_LABEL)] for kind in model.label_kinds}
    for kind in model.clip_label_kinds:
        loss[CLIP_PREFIX + kind] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics[CLIP_PREFIX + kind] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate) if optimizer is None else optimizer,
        loss=loss,
        metrics=metrics,
    )
    return model
