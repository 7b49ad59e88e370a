"""Labelled clips from a TensorFlow Datasets video dataset prepared on this machine.

A frame labeller needs a video and a label for every frame. TFDS stores a video as a
`Video` feature (or a `Sequence` of `Image`s, or a uint8 tensor `[time, h, w, c]`) and
per-frame labels as a `Sequence` of `ClassLabel` (names in the dataset's info) or an
integer tensor `[time]` (class names `"0"`, `"1"`, ...). Both are found by themselves
when the dataset has one video and its per-frame labels are of those kinds; other
datasets name them (`video_feature`, `label_features`). A dataset with only a clip-level
`ClassLabel` (an action per clip) gets that class repeated at every frame, with a
warning; one with no label at all (the real `moving_mnist`: only `image_sequence`) is
refused with an error that names its features.

Nothing is downloaded (see `rnn_toolkit.data.tfds_prepared`); the clips are read into
memory, at most `max_clips` of each split.

Imports from rnn_toolkit: data.
"""

import warnings

import numpy as np

from rnn_toolkit.data.dataset_options import pipeline_options
from rnn_toolkit.data.labelled_clips import LabelledClips
from rnn_toolkit.data.tfds_prepared import load_prepared

TFDS_PREFIX = "tfds:"

_NEEDED = (
    "a frame labeller needs a video (a Video feature, a Sequence of Image or a uint8 tensor "
    "[time, height, width, channels]) and a label for every frame (a Sequence of ClassLabel or an "
    "integer tensor [time]; a clip-level ClassLabel is repeated for every frame)"
)


def _walk(feature, path="", in_sequence=False):
    """`(path, role, feature)` of every leaf feature; role is "video", "frame_label"
    (ClassLabel per frame), "frame_ints" (integers per frame), "clip_label" or None."""
    import tensorflow_datasets as tfds

    features = tfds.features
    if isinstance(feature, features.FeaturesDict):
        for key, inner in feature.items():
            yield from _walk(inner, f"{path}/{key}" if path else key, in_sequence)
        return
    if isinstance(feature, features.Video):
        yield path, "video", feature
        return
    if isinstance(feature, features.Sequence):  # of one feature or of a FeaturesDict
        yield from _walk(feature.feature, path, in_sequence=True)
        return
    dtype = np.dtype(feature.np_dtype)
    rank = len(feature.shape)
    if in_sequence:  # one value per frame: the leaf's own shape is a frame's
        if isinstance(feature, features.Image) or (dtype == np.uint8 and rank == 3):
            yield path, "video", feature
        elif isinstance(feature, features.ClassLabel):
            yield path, "frame_label", feature
        elif np.issubdtype(dtype, np.integer) and rank == 0:
            yield path, "frame_ints", feature
        else:
            yield path, None, feature
    elif isinstance(feature, features.ClassLabel):
        yield path, "clip_label", feature
    elif dtype == np.uint8 and rank == 4:
        yield path, "video", feature
    elif np.issubdtype(dtype, np.integer) and rank == 1 and not isinstance(feature, features.Image):
        yield path, "frame_ints", feature
    else:
        yield path, None, feature


def _describe(found):
    parts = []
    for path, role, feature in found:
        if role in ("frame_label", "clip_label"):
            what = f"ClassLabel of {feature.num_classes} classes" + (" per frame" if role == "frame_label" else "")
        else:
            shape = ", ".join("None" if size is None else str(size) for size in feature.shape)
            what = f"{type(feature).__name__} {np.dtype(feature.np_dtype).name} [{shape}]"
        parts.append(f"{path} ({what})")
    return ", ".join(parts) or "none"


def _choose_features(name, info, video_feature, label_features):
    """`(video path, [(label path, role, feature)])`, checked against the dataset's features."""
    found = list(_walk(info.features))
    roles = {path: (role, feature) for path, role, feature in found}
    listing = f"TFDS dataset {name!r} has the features {_describe(found)}"
    if video_feature is None:
        videos = [path for path, role, _ in found if role == "video"]
        if len(videos) != 1:
            if videos:
                raise ValueError(f"{listing}: several videos ({', '.join(videos)}); name the one to label "
                                 "with `video_feature` (--video-feature).")
            raise ValueError(f"{listing}: no video; {_NEEDED}.")
        video_feature = videos[0]
    elif roles.get(video_feature, (None,))[0] != "video":
        raise ValueError(f"`video_feature` {video_feature!r}: {listing}; the video must be one of the video kinds ({_NEEDED}).")
    label_roles = ("frame_label", "frame_ints", "clip_label")
    if label_features:
        for path in label_features:
            if roles.get(path, (None,))[0] not in label_roles:
                raise ValueError(f"`label_features` names {path!r}, which is no label: {listing}; {_NEEDED}.")
        chosen = [(path, *roles[path]) for path in label_features]
    else:
        chosen = []
        for role in label_roles:  # per-frame labels first, integers only if no ClassLabel
            chosen = [(path, r, feature) for path, r, feature in found if r == role]
            if chosen:
                break
        if not chosen:
            raise ValueError(
                f"{listing}: no label, neither per frame nor per clip; {_NEEDED}. For moving MNIST "
                "digits with their labels, use the data 'moving_digits'."
            )
    clip_level = [path for path, role, _ in chosen if role == "clip_label"]
    if clip_level:
        warnings.warn(
            f"TFDS dataset {name!r} gives {', '.join(clip_level)} once per clip, not per frame: each clip's "
            "class is repeated for every frame of the clip.",
            stacklevel=4,
        )
    return video_feature, chosen


def _value(example, path):
    for key in path.split("/"):
        example = example[key]
    return example


def _kind(path):
    return path.replace("/", "_")


def tfds_video_splits(name, *, data_dir=None):
    """The split names of a prepared TFDS dataset, e.g. `("test",)` for `moving_mnist`.

    Raises:
        ValueError: `name` is no TFDS dataset.
        FileNotFoundError: the dataset is not prepared in `data_dir`.
    """
    _, info = load_prepared(name, split="all", data_dir=data_dir)
    return tuple(info.splits)


def tfds_clip_splits(name, splits, *, data_dir=None, video_feature=None, label_features=None):
    """Reads several splits of a prepared TFDS video dataset as `LabelledClips`.

    Args:
        name: the TFDS name with its config, e.g. `"moving_mnist"` or `"ucf101/ucf101_1_256"`.
        splits: `{split: max clips}`, e.g. `{"train": 2000, "test[:10%]": None}`; at most
            that many clips are read from the start of each split (None: all).
        data_dir: the TFDS data folder (default: TFDS's own, `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`).
        video_feature: the video feature, '/'-separated inside nested features (default:
            the dataset's one video feature).
        label_features: the label features, each a label kind named after it ('/' -> '_')
            (default: every per-frame ClassLabel; else every integer tensor `[time]`; else
            every clip-level ClassLabel, repeated for every frame).

    Returns:
        `{split: LabelledClips}`, with the same class names in every split; `clip_ids`
        are `"SPLIT:INDEX"`.

    Raises:
        ValueError: the dataset has no video or no label the frame labeller can use (the
            message lists its features), several videos and no `video_feature`, or a clip
            whose labels do not match its frames.
        FileNotFoundError: the dataset is not prepared in `data_dir`.
    """
    import tensorflow_datasets as tfds  # heavy, and only this reader needs it

    read, chosen = {}, None
    for split, max_clips in splits.items():
        dataset, info = load_prepared(name, split=split, data_dir=data_dir)
        if chosen is None:
            video_feature, chosen = _choose_features(name, info, video_feature, label_features)
        if max_clips is not None:
            dataset = dataset.take(max_clips)
        frames, values = [], {path: [] for path, _, _ in chosen}
        for index, example in enumerate(tfds.as_numpy(dataset.with_options(pipeline_options()))):
            clip = np.asarray(_value(example, video_feature))
            if clip.dtype != np.uint8 or clip.ndim != 4:
                raise ValueError(
                    f"TFDS dataset {name!r} split {split!r} clip {index}: the video {video_feature!r} is "
                    f"{clip.dtype} {list(clip.shape)}, not uint8 [time, height, width, channels]."
                )
            frames.append(clip)
            for path, role, _ in chosen:
                labels = np.asarray(_value(example, path)).astype(np.int64)
                if role == "clip_label":
                    labels = np.full(len(clip), labels.item(), np.int64)
                if labels.shape != (len(clip),):
                    raise ValueError(
                        f"TFDS dataset {name!r} split {split!r} clip {index}: {path!r} holds "
                        f"{list(labels.shape)} labels for {len(clip)} frames."
                    )
                if len(labels) and labels.min() < 0:
                    raise ValueError(f"TFDS dataset {name!r} split {split!r} clip {index}: {path!r} holds a negative label.")
                values[path].append(labels.astype(np.int32))
        if not frames:
            raise ValueError(f"TFDS dataset {name!r} split {split!r} holds no clip.")
        read[split] = (frames, values)
    class_names = {}
    for path, role, feature in chosen:
        if role == "frame_ints":  # no names in the info: "0" to the largest label of any split
            largest = max(int(v.max()) for _, values in read.values() for v in values[path] if len(v))
            class_names[_kind(path)] = tuple(str(i) for i in range(largest + 1))
        else:
            class_names[_kind(path)] = tuple(feature.names)
    return {
        split: LabelledClips(
            frames=tuple(frames),
            labels={_kind(path): tuple(values[path]) for path, _, _ in chosen},
            class_names=class_names,
            clip_ids=tuple(f"{split}:{index}" for index in range(len(frames))),
        )
        for split, (frames, values) in read.items()
    }


def tfds_labelled_clips(name, *, split="train", max_clips=None, **options):
    """One split of a prepared TFDS video dataset as `LabelledClips`:
    `tfds_clip_splits(name, {split: max_clips}, **options)[split]`."""
    return tfds_clip_splits(name, {split: max_clips}, **options)[split]
