"""tf.data batches of labelled clips for a frame labeller.

Each element is `({"frames": uint8 [batch, time, S, S, channels], "lengths": int32
[batch]}, {kind: int32 [batch, time]})`: clips right-padded with black frames to the
longest clip of the batch, and their labels padded with -1 (class 0 is a real class),
which the masked losses skip; each clip label kind asked for adds `"clip_<kind>"`: int32
[batch], the label every frame of the clip has. Frames of another size are resized to `frame_size` inside
the pipeline (area averaging when shrinking), in parallel; clips stay in memory as the
`LabelledClips` hold them, and each clip is fetched by index, so an epoch is never a
Python loop over files.

Imports from rnn_toolkit: data.
"""

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.caption_batches import DECODE_PARALLEL_CALLS
from rnn_toolkit.data.dataset_options import finish_pipeline

PADDING_LABEL = -1
CLIP_PREFIX = "clip_"


def clip_batches(clips, *, batch_size, frame_size, shuffle=True, seed=None, clip_kinds=()):
    """Batches of `clips` (a `LabelledClips`) for `fit`, `evaluate` or `predict`.

    Args:
        clips: `LabelledClips` whose frames all have the same channel count (1 or 3).
        batch_size: clips per batch (the last batch may be smaller).
        frame_size: the side of the square frames the model reads.
        shuffle: a new order every epoch (training); False keeps the clips' order.
        seed: fixes the order, epoch after epoch (None: different in every run).
        clip_kinds: label kinds also given once per clip, as `labels["clip_<kind>"]`
            (see `LabelledClips.clip_labels`).

    Returns:
        A `tf.data.Dataset` (see the module docstring).

    Raises:
        ValueError: for no clips, a clip without frames, clips of different channel counts,
            or a clip kind that is not the same on every frame of a clip.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.data.clip_batches import clip_batches
    >>> from rnn_toolkit.data.labelled_clips import LabelledClips
    >>> clips = LabelledClips(
    ...     frames=(np.zeros((3, 40, 40, 1), np.uint8), np.zeros((2, 40, 40, 1), np.uint8)),
    ...     labels={"action": (np.array([0, 1, 1]), np.array([1, 0]))},
    ...     class_names={"action": ("stand", "run")},
    ... )
    >>> inputs, labels = next(iter(clip_batches(clips, batch_size=2, frame_size=32, shuffle=False)))
    >>> tuple(inputs["frames"].shape), inputs["lengths"].numpy().tolist()
    ((2, 3, 32, 32, 1), [3, 2])
    >>> labels["action"].numpy().tolist()
    [[0, 1, 1], [1, 0, -1]]
    >>> clips = LabelledClips(frames=clips.frames, labels={"actor": (np.zeros(3, int), np.ones(2, int))},
    ...                       class_names={"actor": ("cat", "dog")})
    >>> _, labels = next(iter(clip_batches(clips, batch_size=2, frame_size=32, shuffle=False, clip_kinds=["actor"])))
    >>> labels["clip_actor"].numpy().tolist()
    [0, 1]
    """
    batch_size = check_positive_int("batch_size", batch_size)
    frame_size = check_positive_int("frame_size", frame_size)
    if not len(clips):
        raise ValueError("`clips` is empty: nothing to batch.")
    channels = {clip.shape[-1] for clip in clips.frames}
    if len(channels) != 1 or not channels <= {1, 3}:
        raise ValueError(f"Every clip must have 1 or 3 channels, all the same; received {sorted(channels)}.")
    channels = channels.pop()
    if int(clips.lengths.min()) < 1:
        empty = int(np.argmin(clips.lengths))
        raise ValueError(f"Clip {empty} ({clips.clip_ids[empty] if clips.clip_ids else empty}) has no frames.")
    kinds = clips.label_kinds
    frames, labels = clips.frames, clips.labels
    per_clip = {CLIP_PREFIX + kind: tf.constant(clips.clip_labels(kind)) for kind in dict.fromkeys(clip_kinds)}

    def fetch(index):
        index = int(index)
        return frames[index], np.stack([labels[kind][index] for kind in kinds]).astype(np.int32)

    def example(index):
        clip, clip_labels = tf.numpy_function(fetch, [index], (tf.uint8, tf.int32), stateful=False)
        clip.set_shape([None, None, None, channels])
        clip_labels.set_shape([len(kinds), None])
        clip = resize_frames(clip, frame_size)
        inputs = {"frames": clip, "lengths": tf.shape(clip, out_type=tf.int32)[0]}
        targets = {kind: clip_labels[k] for k, kind in enumerate(kinds)}
        targets.update({key: tf.gather(values, index) for key, values in per_clip.items()})
        return inputs, targets

    indices = tf.data.Dataset.range(len(clips))
    if shuffle:
        indices = indices.shuffle(len(clips), seed=seed, reshuffle_each_iteration=True)
    dataset = indices.map(example, num_parallel_calls=DECODE_PARALLEL_CALLS, deterministic=True)
    dataset = dataset.padded_batch(
        batch_size,
        padded_shapes=(
            {"frames": [None, frame_size, frame_size, channels], "lengths": []},
            {**{kind: [None] for kind in kinds}, **{key: [] for key in per_clip}},
        ),
        padding_values=(
            {"frames": tf.constant(0, tf.uint8), "lengths": 0},
            {kind: PADDING_LABEL for kind in [*kinds, *per_clip]},
        ),
    )
    return finish_pipeline(dataset)


def resize_frames(frames, frame_size):
    """uint8 frames `[time, h, w, c]` -> uint8 `[time, frame_size, frame_size, c]`
    (see `resize_square`)."""
    out = tf.cast(tf.clip_by_value(resize_square(frames, frame_size), 0, 255), tf.uint8)
    return tf.ensure_shape(out, [None, frame_size, frame_size, frames.shape[-1]])


def resize_square(frames, frame_size):
    """Frames `[n, h, w, c]` (any dtype) -> float32 `[n, frame_size, frame_size, c]` with
    whole pixel values: unchanged when already that size, area averaging when shrinking,
    bilinear otherwise. The training pipeline and the exported model resize alike."""
    pixels = tf.cast(frames, tf.float32)
    shape = tf.shape(pixels)
    same = tf.logical_and(tf.equal(shape[1], frame_size), tf.equal(shape[2], frame_size))
    shrink = tf.logical_and(shape[1] >= frame_size, shape[2] >= frame_size)

    def resized():
        return tf.round(tf.cond(
            shrink,
            lambda: tf.image.resize(pixels, [frame_size, frame_size], method="area"),
            lambda: tf.image.resize(pixels, [frame_size, frame_size], method="bilinear"),
        ))

    out = tf.cond(same, lambda: pixels, resized)
    return tf.ensure_shape(out, [None, frame_size, frame_size, frames.shape[-1]])
