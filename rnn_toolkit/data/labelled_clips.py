"""Clips of frames with a label for every frame: what a frame labeller trains and is scored on.

`LabelledClips` holds clips of any lengths and sizes, one or several label kinds per frame
(a moving digit's identity and its direction of motion; an animated character's action),
and named frame subsets to score apart (the frames where the digit is hidden). Every
source of the frame labeller (moving digits, Flare and Pingus characters, a user's videos
with a label table) produces one.

Imports from rnn_toolkit: data.
"""

import dataclasses

import numpy as np

from rnn_toolkit.arguments import check_positive_int


@dataclasses.dataclass(frozen=True)
class LabelledClips:
    """Clips with per-frame labels.

    Attributes:
        frames: one uint8 array `[time, height, width, channels]` per clip.
        labels: `{kind: per-clip int32 arrays [time]}`: the class index of each frame,
            one entry per label kind (e.g. `"digit"`, `"direction"`).
        class_names: `{kind: tuple of class names}`, the same kinds as `labels`.
        subsets: `{name: per-clip bool arrays [time]}`: frames scored apart as well
            (e.g. `"hidden"`: the digit is behind the occluder).
        clip_ids: one name per clip (where it came from).
    """

    frames: tuple
    labels: dict
    class_names: dict
    subsets: dict = dataclasses.field(default_factory=dict)
    clip_ids: tuple = ()

    def __post_init__(self):
        count = len(self.frames)
        if set(self.labels) != set(self.class_names):
            raise ValueError(
                f"`labels` and `class_names` must have the same label kinds; received "
                f"{sorted(self.labels)} and {sorted(self.class_names)}."
            )
        if not self.labels:
            raise ValueError("`labels` must hold at least one label kind.")
        lengths = [len(clip) for clip in self.frames]
        for field, table in (("labels", self.labels), ("subsets", self.subsets)):
            for kind, per_clip in table.items():
                if len(per_clip) != count:
                    raise ValueError(f"{field}[{kind!r}] has {len(per_clip)} clips, `frames` {count}.")
                for index, (values, length) in enumerate(zip(per_clip, lengths)):
                    if len(values) != length:
                        raise ValueError(
                            f"{field}[{kind!r}][{index}] has {len(values)} values for {length} frames."
                        )
        for kind, per_clip in self.labels.items():
            classes = len(self.class_names[kind])
            for index, values in enumerate(per_clip):
                if len(values) and (np.min(values) < 0 or np.max(values) >= classes):
                    raise ValueError(
                        f"labels[{kind!r}][{index}] holds a class index outside [0, {classes})."
                    )
        if self.clip_ids and len(self.clip_ids) != count:
            raise ValueError(f"`clip_ids` has {len(self.clip_ids)} names for {count} clips.")

    def __len__(self):
        return len(self.frames)

    @property
    def lengths(self):
        """int32 `[clips]`: the number of frames of each clip."""
        return np.array([len(clip) for clip in self.frames], np.int32)

    @property
    def label_kinds(self):
        """The label kinds, in the order of `class_names`."""
        return tuple(self.class_names)

    def subset(self, indices):
        """The clips at `indices`, in that order."""
        indices = [int(i) for i in indices]
        return LabelledClips(
            frames=tuple(self.frames[i] for i in indices),
            labels={kind: tuple(values[i] for i in indices) for kind, values in self.labels.items()},
            class_names=dict(self.class_names),
            subsets={name: tuple(values[i] for i in indices) for name, values in self.subsets.items()},
            clip_ids=tuple(self.clip_ids[i] for i in indices) if self.clip_ids else (),
        )

    def clip_labels(self, kind):
        """int32 `[clips]`: the label of `kind` of each clip, for a kind that stays the
        same on every frame of a clip (which digit moves; not its direction of motion).

        Raises:
            ValueError: for a kind the clips do not have, a clip without frames, or
                naming the first clip (and frame) where the label changes.
        """
        if kind not in self.labels:
            raise ValueError(f"the clips have no label kind {kind!r} (they have {', '.join(self.label_kinds)})")
        names, values = self.class_names[kind], []
        for index, per_frame in enumerate(self.labels[kind]):
            clip = self.clip_ids[index] if self.clip_ids else index
            if not len(per_frame):
                raise ValueError(f"clip {clip!r} has no frames, so no label {kind!r}")
            per_frame = np.asarray(per_frame)
            changed = np.flatnonzero(per_frame != per_frame[0])
            if changed.size:
                frame = int(changed[0])
                raise ValueError(
                    f"{kind!r} changes within clip {clip!r} ({names[per_frame[0]]!r} at frame 0, "
                    f"{names[per_frame[frame]]!r} at frame {frame}): it is not a label of the whole clip"
                )
            values.append(per_frame[0])
        return np.array(values, np.int32)


def chained_actions(clips, actions=None, *, count, min_frames, max_frames):
    """Checks the arguments of a function that chains sprite clips into sequences.

    Args:
        clips: dicts with an `"action"` each (Pingus or Flare clips).
        actions: the action class names (None: the clips' actions, sorted).
        count, min_frames, max_frames: the sequences asked for.

    Returns:
        `(count, actions, {action: class index})`.
    """
    count = check_positive_int("count", count)
    if not clips:
        raise ValueError("`clips` is empty: nothing to chain.")
    if not 1 <= min_frames <= max_frames:
        raise ValueError(f"Need 1 <= min_frames <= max_frames; received {min_frames} and {max_frames}.")
    actions = tuple(sorted({clip["action"] for clip in clips})) if actions is None else tuple(actions)
    index = {action: i for i, action in enumerate(actions)}
    unknown = sorted({clip["action"] for clip in clips} - set(index))
    if unknown:
        raise ValueError(f"Clips of actions {unknown} are not in `actions`.")
    return count, actions, index


FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def read_frame_folder(folder):
    """uint8 RGB frames `[time, h, w, 3]` of the images in `folder`, in name order.

    Raises:
        FileNotFoundError: if `folder` is not a folder.
        ValueError: if it holds no PNG, JPEG, GIF or BMP file, one of them is not a
            readable image, or the frames differ in size.
    """
    import pathlib

    from PIL import Image

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder of frames: {str(folder)!r}.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ValueError(f"The folder {str(folder)!r} holds no PNG, JPEG, GIF or BMP frame.")
    frames = []
    for file in files:
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as error:
            raise ValueError(f"{str(file)!r} is not a readable image ({error}).") from None
    if len({frame.shape for frame in frames}) != 1:
        raise ValueError(f"The frames in {str(folder)!r} differ in size.")
    return np.stack(frames)


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")

OPENCV_REQUIREMENT = "opencv-python-headless==5.0.0.93"
"""What `read_video_file` needs (the pin of requirements.txt)."""


def read_video_file(path, *, max_frames=None):
    """uint8 RGB frames `[time, h, w, 3]` of a video file, decoded with OpenCV.

    Args:
        path: the video file (any container and codec OpenCV's FFmpeg reads: MP4, AVI,
            MKV, WebM, MOV...).
        max_frames: decode at most this many frames from the start (the rest of a long
            video is never decoded); None: all of them.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ImportError: if OpenCV is not installed (the message says what to install).
        ValueError: if OpenCV cannot open the file, decodes no frame from it, or its
            frames differ in size.
    """
    import pathlib

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such video file: {str(path)!r}.")
    try:
        import cv2
    except ImportError:
        raise ImportError(
            f"Reading the video file {str(path)!r} needs OpenCV: pip install {OPENCV_REQUIREMENT} "
            "(or extract its frames into a folder of images)."
        ) from None
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        if not capture.isOpened():
            raise ValueError(f"OpenCV cannot open {str(path)!r} as a video.")
        while max_frames is None or len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"OpenCV decodes no frame from {str(path)!r}.")
    if len({frame.shape for frame in frames}) != 1:
        raise ValueError(f"The frames of {str(path)!r} differ in size.")
    return np.stack(frames)


def read_labelled_frames(table):
    """Clips from a label table: one row per frame, `video,frame,<label columns...>`.

    `video` names, relative to the table's folder, a folder of frame images (PNG, JPEG,
    GIF or BMP, in name order) or a video file (`VIDEO_SUFFIXES`, decoded with OpenCV:
    `read_video_file`); `frame` is the 0-based index of the frame in that order; every
    further column is a label kind (its header is the kind's name, its values the class
    names, sorted). Every frame of every named folder needs a row; a video file's clip
    is its frames 0 to the highest labelled one, each needing a row (later frames are
    not decoded, so labelling the start of a long video keeps only that start in memory).

    Args:
        table: the path of the CSV file (with a header row).

    Returns:
        `LabelledClips` with uint8 RGB frames, clips in the table's order of first
        appearance, `clip_ids` the `video` names.

    Raises:
        ValueError: naming the row, video or frame for a missing column, a frame index
            out of range, a frame labelled twice or not at all, frames of different sizes,
            or a video file OpenCV cannot decode.
        FileNotFoundError: for a table, video folder or video file that does not exist.
        ImportError: for a video file without OpenCV installed.
    """
    import csv
    import pathlib

    table = pathlib.Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"No such label table: {str(table)!r}.")
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0]) if rows else []
    if len(header) < 3 or header[:2] != ["video", "frame"]:
        raise ValueError(f"{str(table)!r} must start with the columns video,frame and have a label column; it has {header}.")
    kinds = header[2:]
    videos = {}
    for number, row in enumerate(rows, start=2):
        try:
            frame = int(row["frame"])
        except (TypeError, ValueError):
            raise ValueError(f"{str(table)!r} line {number}: frame must be an integer, got {row['frame']!r}.") from None
        labels = videos.setdefault(row["video"], {})
        if frame in labels:
            raise ValueError(f"{str(table)!r} line {number}: {row['video']!r} frame {frame} is labelled twice.")
        labels[frame] = [row[kind] for kind in kinds]
    class_names = {kind: tuple(sorted({labels[f][k] for labels in videos.values() for f in labels}))
                   for k, kind in enumerate(kinds)}
    index = {kind: {name: i for i, name in enumerate(names)} for kind, names in class_names.items()}
    frames, per_kind = [], {kind: [] for kind in kinds}
    for video, labels in videos.items():
        source = table.parent / video
        try:
            if source.is_dir():
                clip = read_frame_folder(source)
            elif source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
                clip = read_video_file(source, max_frames=max(max(labels) + 1, 1))
            elif source.exists():
                raise ValueError(
                    f"{str(source)!r} is neither a folder of frames nor a video file ({', '.join(VIDEO_SUFFIXES)})."
                )
            else:
                raise FileNotFoundError(
                    f"{str(table)!r}: no folder of frames or video file for video {video!r} ({str(source)!r})."
                )
        except ValueError as error:
            raise ValueError(f"{str(table)!r}: video {video!r}: {error}") from None
        extra = sorted(set(labels) - set(range(len(clip))))
        missing = sorted(set(range(len(clip))) - set(labels))
        if extra:
            raise ValueError(f"{str(table)!r}: video {video!r} has {len(clip)} frames; frame {extra[0]} is out of range.")
        if missing:
            raise ValueError(f"{str(table)!r}: video {video!r} frame {missing[0]} has no label row.")
        frames.append(clip)
        for k, kind in enumerate(kinds):
            per_kind[kind].append(np.array([index[kind][labels[f][k]] for f in range(len(clip))], np.int32))
    return LabelledClips(
        frames=tuple(frames), labels={kind: tuple(v) for kind, v in per_kind.items()}, class_names=class_names,
        clip_ids=tuple(videos),
    )
