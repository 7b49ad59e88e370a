"""Exporting a frame labeller as a SavedModel that takes raw frames and returns a label per frame.

Signatures (`K` = the first label kind, the model's primary one; every kind `k` also has
its own `k_labels` and `k_probabilities` outputs):

- `serving_default`: `frames` (uint8 `[batch, time, height, width, channels]`, any size,
  1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels; alpha is dropped; resized in
  the graph to the model's frame size) -> `labels` (string `[batch, time]`) and
  `probabilities` (float32 `[batch, time, classes]`) of kind `K`;
- `label_clips`: `frames` and `lengths` (int32 `[batch]`: the real frames of each
  right-padded clip; the padded frames get "" and zeros) -> the same outputs;
- `video`: `encoded_frames` (string `[batch, time]`: PNG, JPEG, GIF or BMP bytes per frame)
  -> the same outputs and `error` (string `[batch]`: empty, or why a frame of that clip
  could not be decoded; its undecodable frames get "");
- `step` (causal and frame-only models): `frame` (uint8 `[batch, height, width,
  channels]`, one frame per stream) and `state` (float32 `[batch, state_size]`: zeros for
  a new stream) -> the frame's `labels` (string `[batch]`), `probabilities` and the new
  `state`, so a live stream is labelled one frame at a time with the labels of the
  offline pass.

A model with clip labels (`clip_class_names`) adds, for every clip label kind `k`,
`clip_k` (string `[batch]`: the clip's label; "" for a clip of zero frames) and
`clip_k_probabilities` (float32 `[batch, classes]`) to every signature's outputs; `step`
gives the clip label of the stream so far (the offline clip label of the frames seen),
and a frame-only model's `state` then carries the sum and count of its frame outputs.
`video` reads undecodable frames as black for the clip label.

Long clips are read in chunks of `CHUNK_FRAMES` frames by the CNN (the memory a call needs
grows with the clip only through its small per-frame features), so a 10,000-frame clip
runs in bounded memory; a clip of zero frames and a batch of zero clips return empty
outputs. The recurrent stack and the clip summary (last real frame or mean) then read
the whole clip's features at once. The class names are also written as
`assets/labels.json` (`label_kinds`, `class_names`, and with clip labels
`clip_label_kinds`, `clip_class_names`).
"""

import json
import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data.clip_batches import resize_square
from rnn_toolkit.data.images import decode_image_batch
from rnn_toolkit.saved_model import version_dir, write_saved_model
from rnn_toolkit.tasks.frame_labeller.model import CLIP_PREFIX

CHUNK_FRAMES = 256
"""Frames the CNN reads at once in a served call."""


def as_rgb(frames):
    """uint8 frames `[..., channels]` with 1-4 channels -> float32 `[..., 3]`: grey is
    repeated, an alpha channel is dropped; other channel counts fail with a clear error."""
    channels = tf.shape(frames)[-1]
    check = tf.debugging.assert_less_equal(
        channels, 4, message="frames must have 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels"
    )
    with tf.control_dependencies([check, tf.debugging.assert_positive(channels, message="frames have no channels")]):
        pixels = tf.cast(frames, tf.float32)
    grey = tf.repeat(pixels[..., :1], 3, axis=-1)
    rgb = tf.cond(channels >= 3, lambda: pixels[..., :3], lambda: grey)
    rgb.set_shape(frames.shape[:-1].concatenate([3]))
    return rgb


class FrameLabellerServing(tf.Module):
    """The exported module: the frame labeller and its serve functions."""

    def __init__(self, model, asset_files):
        super().__init__(name="frame_labeller_serving")
        self.model = model
        self.assets = [tf.saved_model.Asset(str(path)) for path in asset_files]
        self.kinds = model.label_kinds
        self.names = {kind: tf.constant(list(model.class_names[kind])) for kind in self.kinds}
        self.clip_kinds = model.clip_label_kinds
        self.clip_names = {kind: tf.constant(list(model.clip_class_names[kind])) for kind in self.clip_kinds}

    def _features(self, pixels):
        """float32 frames `[batch, time, S, S, 3]` -> features `[batch, time, F]`, CHUNK_FRAMES at a time."""
        batch, time = tf.shape(pixels)[0], tf.shape(pixels)[1]
        chunks = (time + CHUNK_FRAMES - 1) // CHUNK_FRAMES
        features = tf.TensorArray(self.model.compute_dtype, size=chunks, infer_shape=False)

        def body(index, features):
            start = index * CHUNK_FRAMES
            chunk = pixels[:, start:start + CHUNK_FRAMES]
            return index + 1, features.write(index, tf.transpose(self.model.frame_features(chunk), [1, 0, 2]))

        _, features = tf.while_loop(lambda i, _: i < chunks, body, [0, features])
        stacked = tf.transpose(features.concat(), [1, 0, 2])  # [batch, time, F]
        return tf.reshape(stacked, [batch, time, self.model.feature_size])

    def _label(self, pixels, lengths):
        """Outputs for float32 frames `[batch, time, S, S, 3]` and int32 `lengths`."""
        batch, time = tf.shape(pixels)[0], tf.shape(pixels)[1]
        valid = tf.sequence_mask(lengths, time)

        def run():
            features = self._features(pixels)
            # Keras' recurrent layers need at least one real frame per row: rows with
            # none are read as one frame long and blanked below.
            logits = self.model.logits_from_features(features, mask=tf.sequence_mask(tf.maximum(lengths, 1), time))
            return [tf.nn.softmax(logits[kind]) for kind in self.kinds] + [
                tf.nn.softmax(logits[CLIP_PREFIX + kind]) for kind in self.clip_kinds
            ]

        def empty():
            return [tf.zeros([batch, time, len(self.model.class_names[kind])]) for kind in self.kinds] + [
                tf.zeros([batch, len(self.model.clip_class_names[kind])]) for kind in self.clip_kinds
            ]

        probabilities = tf.cond(tf.logical_and(batch > 0, time > 0), run, empty)
        outputs = {}
        for kind, probs in zip(self.kinds, probabilities):
            probs = probs * tf.cast(valid, tf.float32)[..., tf.newaxis]
            labels = tf.where(valid, tf.gather(self.names[kind], tf.argmax(probs, axis=-1)), "")
            outputs[f"{kind}_labels"], outputs[f"{kind}_probabilities"] = labels, probs
        primary = self.kinds[0]
        outputs["labels"], outputs["probabilities"] = outputs[f"{primary}_labels"], outputs[f"{primary}_probabilities"]
        has_frames = lengths > 0
        for kind, probs in zip(self.clip_kinds, probabilities[len(self.kinds):]):
            probs = probs * tf.cast(has_frames, tf.float32)[:, tf.newaxis]
            labels = tf.where(has_frames, tf.gather(self.clip_names[kind], tf.argmax(probs, axis=-1)), "")
            outputs[CLIP_PREFIX + kind], outputs[f"{CLIP_PREFIX}{kind}_probabilities"] = labels, probs
        return outputs

    def _pixels(self, frames):
        """uint8 `[batch, time, h, w, c]` -> float32 `[batch, time, S, S, 3]`."""
        shape = tf.shape(frames)
        flat = as_rgb(tf.reshape(frames, tf.concat([[-1], shape[2:]], axis=0)))
        size = self.model.frame_size
        flat = tf.cond(tf.shape(flat)[0] > 0, lambda: resize_square(flat, size), lambda: tf.zeros([0, size, size, 3]))
        return tf.reshape(flat, [shape[0], shape[1], size, size, 3])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, None], tf.uint8, name="frames")], autograph=False)
    def serve(self, frames):
        lengths = tf.fill(tf.shape(frames)[:1], tf.shape(frames)[1])
        return self._label(self._pixels(frames), lengths)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, None, None], tf.uint8, name="frames"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
        ],
        autograph=False,
    )
    def label_clips(self, frames, lengths):
        check = tf.debugging.assert_equal(
            tf.shape(lengths)[0], tf.shape(frames)[0], message="lengths must have one entry per clip"
        )
        with tf.control_dependencies([check]):
            lengths = tf.clip_by_value(lengths, 0, tf.shape(frames)[1])
        return self._label(self._pixels(frames), lengths)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="encoded_frames")], autograph=False)
    def video(self, encoded_frames):
        batch, time = tf.shape(encoded_frames)[0], tf.shape(encoded_frames)[1]
        size = self.model.frame_size
        # Frames are stretched to the square as `serving_default` and the training
        # pipeline do (not padded to keep their aspect, as the captioner's images are).
        pixels, ok, error = decode_image_batch(
            tf.reshape(encoded_frames, [-1]), size, background=0,
            resize=lambda image: resize_square(image[tf.newaxis], size)[0],
        )
        pixels = tf.reshape(pixels, [batch, time, size, size, 3])
        outputs = self._label(pixels, tf.fill([batch], time))
        ok = tf.reshape(ok, [batch, time])
        for kind in self.kinds:
            outputs[f"{kind}_labels"] = tf.where(ok, outputs[f"{kind}_labels"], "")
        outputs["labels"] = outputs[f"{self.kinds[0]}_labels"]
        errors = tf.reshape(error, [batch, time])
        # The first error of each clip, with the frame it came from.
        first = tf.argmax(tf.cast(tf.logical_not(ok), tf.int32), axis=1, output_type=tf.int32)
        message = tf.gather(errors, first, batch_dims=1)
        described = tf.strings.join(["frame ", tf.strings.as_string(first), ": ", message])
        outputs["error"] = tf.where(tf.reduce_all(ok, axis=1), "", described)
        return outputs

    def step(self, frame, state):
        pixels = resize_square(as_rgb(frame), self.model.frame_size)
        states = self._unflatten(state)
        logits, new_states = self.model.step(pixels, states)
        outputs = {}
        for kind in self.kinds:
            probs = tf.nn.softmax(logits[kind])
            outputs[f"{kind}_labels"] = tf.gather(self.names[kind], tf.argmax(probs, axis=-1))
            outputs[f"{kind}_probabilities"] = probs
        outputs["labels"], outputs["probabilities"] = outputs[f"{self.kinds[0]}_labels"], outputs[f"{self.kinds[0]}_probabilities"]
        for kind in self.clip_kinds:
            probs = tf.nn.softmax(logits[CLIP_PREFIX + kind])
            outputs[CLIP_PREFIX + kind] = tf.gather(self.clip_names[kind], tf.argmax(probs, axis=-1))
            outputs[f"{CLIP_PREFIX}{kind}_probabilities"] = probs
        outputs["state"] = self._flatten(new_states)
        return outputs

    @property
    def state_size(self):
        if self.model.recurrent is None:
            # With clip labels: the sum of the frame outputs so far and their count.
            return self.model.units + 1 if self.clip_kinds else 0
        stack = self.model.recurrent
        return stack.units * stack.state_size * stack.num_layers

    def _unflatten(self, state):
        if self.model.recurrent is None:
            if self.clip_kinds:
                return [tf.split(state, [self.model.units, 1], axis=-1)]
            return []
        stack, dtype = self.model.recurrent, self.model.compute_dtype
        parts = tf.split(tf.cast(state, dtype), stack.state_size * stack.num_layers, axis=-1)
        return [parts[layer * stack.state_size:(layer + 1) * stack.state_size] for layer in range(stack.num_layers)]

    def _flatten(self, states):
        if not states:
            return tf.zeros([0, 0])
        return tf.cast(tf.concat([s for layer in states for s in layer], axis=-1), tf.float32)


def export_frame_labeller(model, base_dir="saved_models", *, name="frame_labeller", version=None, overwrite=False):
    """Exports a `FrameLabeller` to `<base_dir>/<name>/<version>/`.

    The result loads with `tf.saved_model.load` in a process that has TensorFlow only,
    and with TF Serving (`--model_base_path=<base_dir>/<name>`).

    Args:
        model: a `rnn_toolkit.models.FrameLabeller` (from `build_frame_labeller`).
        base_dir: the model base folder.
        name: the model's folder name.
        version: version number; None takes the next free one.
        overwrite: replace an existing version (otherwise `FileExistsError`).

    Returns:
        The `pathlib.Path` of the written version folder.
    """
    if not hasattr(model, "label_kinds") or not hasattr(model, "frame_features"):
        raise TypeError(f"`model` must be a rnn_toolkit FrameLabeller; received {type(model).__name__}.")
    target = version_dir(base_dir, name, version)
    with tempfile.TemporaryDirectory() as scratch:
        labels_file = Path(scratch) / "labels.json"
        assets = {"label_kinds": list(model.label_kinds), "class_names": {k: list(v) for k, v in model.class_names.items()},
                  "frame_size": model.frame_size, "direction": model.direction}
        if model.clip_label_kinds:
            assets.update(clip_label_kinds=list(model.clip_label_kinds),
                          clip_class_names={k: list(v) for k, v in model.clip_class_names.items()})
        labels_file.write_text(json.dumps(assets, indent=1))
        module = FrameLabellerServing(model, [labels_file])
        signatures = {"serving_default": module.serve, "label_clips": module.label_clips, "video": module.video}
        if model.direction != "bidirectional":
            step = tf.function(
                module.step,
                input_signature=[
                    tf.TensorSpec([None, None, None, None], tf.uint8, name="frame"),
                    tf.TensorSpec([None, module.state_size], tf.float32, name="state"),
                ],
                autograph=False,
            )
            module.step_function = step
            signatures["step"] = step
        return write_saved_model(module, target, signatures=signatures, overwrite=overwrite)
