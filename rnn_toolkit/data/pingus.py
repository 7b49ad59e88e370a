"""Pingus: the animated penguin's real sprite clips, chained into sequences with an action per frame.

Debian's `pingus-data` package (GPL-2+, 11 MB, downloaded once with `apt-get download`,
sha256-checked, never installed) draws the player's penguin in 43 clips of 23 actions
(walker, digger, bomber, floater, ...), most facing left and right: a sheet PNG per action
and a `.sprite` S-expression per clip saying where its frames are (`(position x y)`,
`(array columns rows)`, `(size w h)`). `pingus_clips()` cuts them out; `pingus_sequences()`
chains seeded random clips (each played once or looped) into sequences whose per-frame label
is the action being played. The default split holds out whole clips: training sequences use
the right-facing clips (and the clips without a facing), held-out ones the left-facing
clips that training never shows (see `pingus`).

Imports from rnn_toolkit: data.
"""

import io
import posixpath
import re

import numpy as np

from rnn_toolkit.data import cache
from rnn_toolkit.data.labelled_clips import LabelledClips, chained_actions

PINGUS_PACKAGE = ("pingus-data", "0.7.6-5.1", "db503fdc34a7f86a02f2f1a77219b5cf4d813224cd4b13b5f0aad3af3d213805")
_PREFIX = "usr/share/games/pingus/data/images/pingus/player0/"
CANVAS = 48  # every frame is centred on a black square this big (the largest sprite is 46 x 30)
_FIELD = re.compile(r"\((image|position|array|size)\s+([^)]*)\)")


def _sprite_fields(text):
    fields = {name: value.strip() for name, value in _FIELD.findall(text)}
    numbers = {name: [int(v) for v in value.split()] for name, value in fields.items() if name != "image"}
    return fields["image"].strip('"'), numbers.get("position", [0, 0]), numbers.get("array", [1, 1]), numbers["size"]


def pingus_clips():
    """The 43 sprite clips of the player's penguin.

    Returns:
        A list of dicts: `action` (the sprite's folder or file name: "walker", "splat"),
        `facing` ("left", "right" or "" for a clip without one) and `frames` (uint8
        `[n, 48, 48, 3]`: each frame composited on black, centred), sorted by action and facing.
    """
    from PIL import Image

    from rnn_toolkit.data.sword import read_deb_members

    deb = cache.fetch_debian_package(*PINGUS_PACKAGE)
    files = read_deb_members(deb, _PREFIX)
    sheets = {}
    clips = []
    for path in sorted(p for p in files if p.endswith(".sprite")):
        relative = path[len(_PREFIX):]
        folder, _, name = relative.rpartition("/")
        image, (x, y), (columns, rows), (width, height) = _sprite_fields(files[path].decode("utf-8"))
        sheet_path = posixpath.normpath(posixpath.join(_PREFIX, folder, image))
        if sheet_path not in sheets:
            with Image.open(io.BytesIO(files[sheet_path])) as sheet:
                sheets[sheet_path] = np.asarray(sheet.convert("RGBA"))
        sheet = sheets[sheet_path]
        frames = []
        for index in range(columns * rows):
            left, top = x + (index % columns) * width, y + (index // columns) * height
            frame = sheet[top:top + height, left:left + width].astype(np.float32)
            canvas = np.zeros((CANVAS, CANVAS, 3), np.float32)
            row, column = (CANVAS - frame.shape[0]) // 2, (CANVAS - frame.shape[1]) // 2
            alpha = frame[..., 3:] / 255.0
            canvas[row:row + frame.shape[0], column:column + frame.shape[1]] = frame[..., :3] * alpha
            frames.append(np.round(canvas).astype(np.uint8))
        action = folder or name[: -len(".sprite")]
        facing = name[: -len(".sprite")] if folder else ""
        clips.append({"action": action, "facing": facing, "frames": np.stack(frames)})
    return clips


def pingus_sequences(clips, count, *, min_frames=12, max_frames=24, actions=None, seed=0, id_prefix="sequence"):
    """Sequences of chained clips with the action of every frame (seeded).

    Args:
        clips: the clips to chain (from `pingus_clips`).
        count: number of sequences.
        min_frames, max_frames: each sequence's length is drawn from this range; clips are
            appended (each played once, or twice when it loops in 4 frames or fewer) and the
            last one is cut.
        actions: the class names (default: the clips' actions, sorted); every clip's action
            must be among them.
        seed: fixes the sequences.
        id_prefix: sequence ids are `"<id_prefix>-<i>"`.

    Returns:
        `LabelledClips` with uint8 frames `[time, 48, 48, 3]` and the label `action`.
    """
    count, actions, index = chained_actions(clips, actions, count=count, min_frames=min_frames, max_frames=max_frames)
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for _ in range(count):
        length = int(rng.integers(min_frames, max_frames + 1))
        parts, part_labels = [], []
        while sum(len(p) for p in parts) < length:
            clip = clips[int(rng.integers(len(clips)))]
            repeats = 2 if len(clip["frames"]) <= 4 else 1
            played = np.concatenate([clip["frames"]] * repeats)
            parts.append(played)
            part_labels.append(np.full(len(played), index[clip["action"]], np.int32))
        frames.append(np.concatenate(parts)[:length])
        labels.append(np.concatenate(part_labels)[:length])
    return LabelledClips(
        frames=tuple(frames), labels={"action": tuple(labels)}, class_names={"action": actions},
        clip_ids=tuple(f"{id_prefix}-{i}" for i in range(count)),
    )


def pingus(clips=(600, 100, 200), *, min_frames=12, max_frames=24, seed=0):
    """Training, validation and held-out Pingus sequences; the held-out ones chain only
    clips that no training or validation sequence shows.

    Those are the 12 left-facing clips that differ from every other clip: 8 actions
    (blocker, bomber, digger, faller, floater, jumper, tumbler, waiter) draw both facings
    with the same pixels, so their clips train only, and the held-out sequences hold 12 of
    the 23 actions.

    Returns:
        `{"train": LabelledClips, "validation": ..., "test": ...}` with the same 23 actions.
    """
    every = pingus_clips()
    actions = tuple(sorted({clip["action"] for clip in every}))
    seen = [clip for clip in every if clip["facing"] != "left"]

    def shown(clip):
        return any(c["frames"].shape == clip["frames"].shape and (c["frames"] == clip["frames"]).all() for c in seen)

    held_out = [clip for clip in every if clip["facing"] == "left" and not shown(clip)]
    parts = {"train": seen, "validation": seen, "test": held_out}
    return {
        name: pingus_sequences(parts[name], count, min_frames=min_frames, max_frames=max_frames, actions=actions,
                               seed=seed * 10 + number, id_prefix=name)
        for number, (name, count) in enumerate(zip(parts, clips))
    }
