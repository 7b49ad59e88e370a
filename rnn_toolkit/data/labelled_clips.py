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
