"""Tests for rnn_toolkit.data.moving_digits and rnn_toolkit.data.labelled_clips."""

import numpy as np
import pytest

from rnn_toolkit.data.labelled_clips import LabelledClips
from rnn_toolkit.data.moving_digits import (
    DIGIT_SIZE,
    DIRECTIONS,
    OCCLUDER_GREY,
    mnist_digits,
    moving_digit_clips,
    moving_digits,
    split_digit_images,
)


@pytest.fixture(scope="module")
def digits():
    return mnist_digits()


def test_the_wheels_digits_are_mnist(digits):
    images, labels = digits
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    # White ink on black, as MNIST: the border is dark, the centre holds the ink.
    assert images[:, :2, :].mean() < 1 and images[:, 10:18, 10:18].mean() > 60
    # A class's mean image correlates best with its own class' mean on held-apart halves.
    first = np.stack([images[labels == d][:250].mean(0).ravel() for d in range(10)])
    second = np.stack([images[labels == d][250:].mean(0).ravel() for d in range(10)])
    similarity = np.corrcoef(first, second)[:10, 10:]
    assert (similarity.argmax(axis=1) == np.arange(10)).all()


def test_split_is_disjoint_stratified_and_seeded(digits):
    _, labels = digits
    train, validation, test = split_digit_images(labels, seed=3)
    assert len(set(train) | set(validation) | set(test)) == 5000
    assert not set(train) & set(test) and not set(train) & set(validation) and not set(validation) & set(test)
    assert np.bincount(labels[test]).tolist() == [75] * 10
    again = split_digit_images(labels, seed=3)
    assert all((a == b).all() for a, b in zip(again, (train, validation, test)))
    assert not (split_digit_images(labels, seed=4)[2] == test).all()
    with pytest.raises(ValueError, match="fractions"):
        split_digit_images(labels, fractions=(0.5, 0.5, 0.5))


def test_labels_follow_the_motion_and_the_occluder(digits):
    images, labels = digits
    clips = moving_digit_clips(images[:50], labels[:50], 40, frames=24, seed=1)
    assert len(clips) == 40 and clips.label_kinds == ("digit", "direction")
    for frames, digit, direction, hidden, clip_id in zip(
        clips.frames, clips.labels["digit"], clips.labels["direction"], clips.subsets["hidden"], clips.clip_ids
    ):
        image_index = int(clip_id.rsplit("mnist", 1)[1])
        assert (digit == labels[image_index]).all()  # also while hidden
        assert not hidden[0]  # the digit starts in view
        # The ink's centre of mass moves the way the direction says (away from the bar
        # and the edges, where the visible ink is the whole digit).
        ink = (frames[..., 0] > OCCLUDER_GREY).astype(float)  # digit ink brighter than the bar
        rows, columns = np.arange(64)[:, None], np.arange(64)[None, :]
        mass = ink.sum(axis=(1, 2))
        centre = np.stack([(ink * rows).sum((1, 2)), (ink * columns).sum((1, 2))], 1) / np.maximum(mass, 1)[:, None]
        for t in range(1, len(frames)):
            if abs(mass[t] - mass[t - 1]) > 0.02 * max(mass[t], 1) or mass[t] < 20:
                continue  # ink entered or left the bar's shadow: the centre moves for that
            moved = centre[t] - centre[t - 1]
            down, right = divmod(int(direction[t]), 2)
            if abs(moved[0]) > 0.5:
                assert (moved[0] > 0) == bool(down), (clip_id, t, moved, DIRECTIONS[direction[t]])
            if abs(moved[1]) > 0.5:
                assert (moved[1] > 0) == bool(right), (clip_id, t, moved, DIRECTIONS[direction[t]])
        # A hidden frame shows (almost) no ink; the bar is drawn in every frame.
        assert (frames[..., 0] == OCCLUDER_GREY).any(axis=(1, 2)).all()
        assert (mass[hidden] < 0.15 * mass.max()).all()
    shares = np.concatenate(clips.subsets["hidden"]).mean()
    assert 0.1 < shares < 0.5


def test_clips_are_seeded_and_lengths_vary_with_min_frames(digits):
    images, labels = digits
    one = moving_digit_clips(images[:20], labels[:20], 6, frames=10, min_frames=4, seed=5)
    two = moving_digit_clips(images[:20], labels[:20], 6, frames=10, min_frames=4, seed=5)
    assert all((a == b).all() for a, b in zip(one.frames, two.frames))
    assert one.lengths.min() >= 4 and one.lengths.max() <= 10 and len(set(one.lengths)) > 1
    plain = moving_digit_clips(images[:20], labels[:20], 3, frames=5, occluder=False, seed=0)
    assert not np.concatenate(plain.subsets["hidden"]).any()
    assert all((clip > 0).sum() >= (images[:20] > 0).sum(axis=(1, 2)).min() * 0.5 for clip in plain.frames[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(count=0), "count"),
        (dict(count=2, frames=4, min_frames=5), "min_frames"),
        (dict(count=2, size=30), "size"),
        (dict(count=2, speed=(3.0, 1.0)), "speed"),
    ],
)
def test_bad_arguments_are_named(digits, kwargs, message):
    images, labels = digits
    with pytest.raises(ValueError, match=message):
        moving_digit_clips(images[:5], labels[:5], **kwargs)


def test_the_parts_use_disjoint_digit_images():
    parts = moving_digits(clips=(30, 10, 10), frames=4)
    used = {name: {c.rsplit("mnist", 1)[1] for c in part.clip_ids} for name, part in parts.items()}
    assert not used["train"] & used["test"] and not used["train"] & used["validation"]
    assert parts["test"].frames[0].shape == (4, 64, 64, 1)


def test_labelled_clips_checks_its_fields():
    frames = (np.zeros((3, 8, 8, 1), np.uint8), np.zeros((2, 8, 8, 1), np.uint8))
    good = dict(labels={"action": (np.array([0, 1, 1]), np.array([1, 0]))}, class_names={"action": ("a", "b")})
    clips = LabelledClips(frames, **good)
    assert clips.lengths.tolist() == [3, 2] and clips.subset([1]).lengths.tolist() == [2]
    with pytest.raises(ValueError, match="2 values for 3 frames"):
        LabelledClips(frames, labels={"action": (np.array([0, 1]), np.array([1, 0]))}, class_names={"action": ("a", "b")})
    with pytest.raises(ValueError, match="outside"):
        LabelledClips(frames, labels={"action": (np.array([0, 1, 2]), np.array([1, 0]))}, class_names={"action": ("a", "b")})
    with pytest.raises(ValueError, match="same label kinds"):
        LabelledClips(frames, labels=good["labels"], class_names={"other": ("a", "b")})
    assert DIGIT_SIZE == 28
