"""Flare: the enemies of the Flare RPG, real pre-rendered 3-D characters, chained into
sequences with an action per frame.

Debian's `flare-game` package (art CC-BY-SA-3.0+, 123 MB, downloaded once with
`apt-get download`, sha256-checked, never installed) draws every enemy of the game in 8
view directions: a sprite sheet PNG and an INI file per enemy under
`mods/<mod>/animations/enemies/`, with a section per action (`[swing] frames=4
duration=400ms type=play_once`) and a line per drawn frame
(`frame=index,direction,x,y,w,h,offset_x,offset_y`: the frame's rectangle in the sheet and
where the character's anchor, the point it stands on, lies in that rectangle). The
campaign's two mods are read as the game reads them, `fantasycore` then
`empyrean_campaign`: a later mod's file replaces an earlier one's, or adds to it when it
starts with `APPEND` (the skeleton's `shield_bash`), and `INCLUDE path` reads another file
in its place (the tinted variants such as `zombie_ghost`: `zombie.txt` with a `color_mod`
and an `alpha_mod`).

`flare_clips()` cuts out the 2,384 clips of the 36 enemies (one per character, action and
direction: 12,688 drawn frames, 13,440 in playing order, 13 actions) and caches them. A
character seen from one direction is framed on the smallest square that holds all its
frames from that side with its anchor at one place (37 to 245 px at the game's scale),
resized to `size`: the anchor stays fixed in every clip of a sequence.
`flare_sequences()` chains seeded random clips of one character seen from one direction
into sequences whose per-frame label is the action being played, a death only at the end.
`flare()` holds out whole characters: validation and held-out sequences show characters,
and sheets, that no training sequence shows (see `flare`).

Imports from rnn_toolkit: data.
"""

import io
import re

import numpy as np

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import cache
from rnn_toolkit.data.labelled_clips import LabelledClips, chained_actions

FLARE_PACKAGE = ("flare-game", "1.14-1", "4ab6a8298276013d35a0806257e130d992761af1b749041433b409c3dafec508")
FLARE_ROOT = "usr/share/games/flare/mods/"
MODS = ("fantasycore", "empyrean_campaign")  # the campaign's load order: later mods override
ENEMIES = "animations/enemies/"
ACTIONS = ("stance", "run", "swing", "hit", "block", "cast", "shoot", "die", "critdie")
"""The actions most enemies have; `spawn`, `cast_alt`, `dash_attack` and `shield_bash` belong to 1-5."""
DEATH_ACTIONS = ("die", "critdie")  # only ever at the end of a sequence
STATE_ACTIONS = ("stance", "run")  # what an enemy keeps doing: played 1-2 times in a row
PLAY_TYPES = ("play_once", "looped", "back_forth")
UNUSED_CHARACTERS = ("stealth",)
"""Left out of `flare()`: a dark translucent shadow (RGB at most 25, alpha ~120) that no enemy of the game uses."""
_CACHE_VERSION = 1  # bump when the cut-outs change
_SECTION = re.compile(r"\[([^\]]+)\]")


def play_order(kind, count):
    """The order in which an animation of `count` drawn frames shows them, once through.

    `play_once` and `looped` show 0 .. count-1 (a looped one then starts again);
    `back_forth` goes forward and back to its first frame, 0 .. count-1 .. 0.
    """
    if kind not in PLAY_TYPES:
        raise ValueError(f"An animation's `type` must be one of {', '.join(PLAY_TYPES)}; received {kind!r}.")
    forward = list(range(count))
    return forward + forward[-2::-1] if kind == "back_forth" else forward


def _located(files, relative, mods):
    """`(path, mod index)` of a mod file in `files`: the last of `mods` that has it, or None."""
    for number in range(len(mods) - 1, -1, -1):
        path = f"{FLARE_ROOT}{mods[number]}/{relative}"
        if path in files:
            return path, number
    return None


def _read_definition(files, relative, mods, definition, depth=0, upto=None):
    """Reads one mod file into `definition`, as the game does: `APPEND` first reads the
    earlier mods' version of the same file, `INCLUDE` reads another file (found in any
    mod) in place. `upto`: look only in the mods before this index."""
    if depth > 8:
        raise ValueError(f"Flare file {relative!r}: INCLUDE nests more than 8 deep (a cycle?).")
    located = _located(files, relative, mods[:upto])
    if located is None:
        raise ValueError(f"Flare file {relative!r} is in none of the mods {', '.join(mods[:upto])}.")
    path, number = located
    section = None
    for line_number, raw in enumerate(files[path].decode("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "APPEND":
            if _located(files, relative, mods[:number]) is not None:
                _read_definition(files, relative, mods, definition, depth + 1, upto=number)
            continue
        if line.startswith("INCLUDE "):
            _read_definition(files, line[len("INCLUDE "):].strip(), mods, definition, depth + 1)
            continue
        header = _SECTION.fullmatch(line)
        if header:
            section = {"frames": 0, "type": "looped", "rects": {}}
            definition["actions"][header.group(1)] = section
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        try:
            if section is None:
                if key == "image":
                    definition["image"] = value
                elif key == "color_mod":
                    definition["color_mod"] = tuple(int(v) for v in value.split(","))[:3]
                elif key == "alpha_mod":
                    definition["alpha_mod"] = int(value)
            elif key == "frames":
                section["frames"] = int(value)
            elif key == "type":
                play_order(value, 0)  # refuses an unknown type
                section["type"] = value
            elif key == "frame":
                index, direction, *rect = (int(v) for v in value.split(","))
                if len(rect) != 6:
                    raise ValueError("a frame needs index,direction,x,y,w,h,offset_x,offset_y")
                section["rects"][index, direction] = tuple(rect)
        except ValueError as error:
            raise ValueError(f"{path} line {line_number} ({line!r}): {error}") from None


def read_flare_enemies(files, mods=MODS):
    """Every enemy's animations, from the package's files, as the game reads its mods.

    Args:
        files: `{path in the package: bytes}` holding the enemies' INI files
            (`usr/share/games/flare/mods/<mod>/animations/enemies/*.txt`) and what they
            INCLUDE (`read_deb_members` gives such a dict).
        mods: the mods in load order.

    Returns:
        `{character: definition}` (the character is the INI file's name without `.txt`),
        each definition a dict: `image` (the sheet's path inside a mod), `color_mod` (RGB
        multipliers 0-255), `alpha_mod` (0-255) and `actions`: `{action: {"frames": count,
        "type": "play_once" | "looped" | "back_forth", "rects": {(index, direction):
        (x, y, w, h, offset_x, offset_y)}}}`.
    """
    prefixes = tuple(f"{FLARE_ROOT}{mod}/{ENEMIES}" for mod in mods)
    names = sorted({path.rsplit("/", 1)[1] for path in files if path.startswith(prefixes) and path.endswith(".txt")})
    enemies = {}
    for name in names:
        definition = {"image": None, "color_mod": (255, 255, 255), "alpha_mod": 255, "actions": {}}
        _read_definition(files, ENEMIES + name, tuple(mods), definition)
        if definition["image"] is None:
            raise ValueError(f"Flare enemy {name!r} names no `image=` sheet.")
        enemies[name[: -len(".txt")]] = definition
    return enemies


def cut_flare_clips(files, *, size=64, mods=MODS):
    """Every clip of every enemy, composited on black with the character's anchor fixed.

    A character seen from one direction is framed on the smallest square that holds every
    one of its frames from that side, the anchor (`offset_x`, `offset_y` in each frame) at
    one place; `color_mod` and `alpha_mod` tint it as the game does.

    Args:
        files: `{path in the package: bytes}`: the enemies' INI files and sheet PNGs.
        size: the side of the square frames: each square is resized to it.
        mods: the mods in load order.

    Returns:
        A list of dicts, sorted by character, action and direction: `character`, `sheet`
        (the sheet's path: tinted variants share their original's), `action`, `direction`
        (0-7, the game's view directions), `type` (how the game plays it) and `frames`
        (uint8 `[n, size, size, 3]`, in playing order: see `play_order`). Frames the game
        leaves empty (a width or height of 0) are skipped, and a clip with none left too
        (the boulder's and the minecart's deaths).
    """
    from PIL import Image

    size = _check_size(size)
    sheets = {}
    clips = []
    for character, definition in read_flare_enemies(files, mods).items():
        located = _located(files, definition["image"], mods)
        if located is None:
            raise ValueError(f"Flare enemy {character!r}: its sheet {definition['image']!r} is in none of the mods.")
        sheet_path = located[0]
        if sheet_path not in sheets:
            with Image.open(io.BytesIO(files[sheet_path])) as image:
                sheets[sheet_path] = np.asarray(image.convert("RGBA"))
        sheet = sheets[sheet_path]
        tint = np.array([*definition["color_mod"], definition["alpha_mod"]], np.float32) / 255.0
        framing = {}  # direction -> (anchor, side): one per character and direction
        for section in definition["actions"].values():
            for (_, direction), rect in section["rects"].items():
                if rect[2] > 0 and rect[3] > 0:
                    framing.setdefault(direction, []).append(rect)
        for direction, rects in framing.items():
            # The smallest square that holds every frame with the anchor at one place.
            left, right = max(r[4] for r in rects), max(r[2] - r[4] for r in rects)
            up, down = max(r[5] for r in rects), max(r[3] - r[5] for r in rects)
            side = max(left + right, up + down)
            framing[direction] = (((side - left - right) // 2 + left, (side - up - down) // 2 + up), side)
        for action, section in sorted(definition["actions"].items()):
            for direction in sorted({direction for _, direction in section["rects"]} & set(framing)):
                anchor, side = framing[direction]
                drawn = [_composite(sheet, section["rects"].get((index, direction)), anchor, side, tint, size,
                                    where=f"{character} [{action}] frame {index}, direction {direction}")
                         for index in range(section["frames"])]
                frames = [drawn[index] for index in play_order(section["type"], len(drawn))
                          if drawn[index] is not None]
                if frames:
                    clips.append({"character": character, "sheet": sheet_path, "action": action,
                                  "direction": direction, "type": section["type"], "frames": np.stack(frames)})
    return clips


def _composite(sheet, rect, anchor, side, tint, size, where):
    """One drawn frame on a black `side`-square with its anchor at `anchor`, resized to
    `size`; None for a frame the game leaves empty."""
    from PIL import Image

    if rect is None or rect[2] <= 0 or rect[3] <= 0:
        return None
    x, y, width, height, offset_x, offset_y = rect
    if x < 0 or y < 0 or x + width > sheet.shape[1] or y + height > sheet.shape[0]:
        raise ValueError(f"Flare {where}: the rectangle {rect[:4]} lies outside its {sheet.shape[1]}x{sheet.shape[0]} sheet.")
    piece = sheet[y:y + height, x:x + width].astype(np.float32) * tint
    canvas = np.zeros((side, side, 3), np.float32)
    top, start = anchor[1] - offset_y, anchor[0] - offset_x
    canvas[top:top + height, start:start + width] = piece[..., :3] * (piece[..., 3:] / 255.0)
    frame = np.round(canvas).astype(np.uint8)
    if side != size:
        frame = np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.LANCZOS))
    return frame


def _check_size(size):
    size = check_positive_int("size", size)
    if size < 16:
        raise ValueError(f"`size` must be at least 16 pixels; received size={size}.")
    return size


def _wanted(path):
    """The package files the enemies need: their INI files and the enemy sheets."""
    mod_path = path[len(FLARE_ROOT):].partition("/")[2]
    return (mod_path.startswith(ENEMIES) and mod_path.endswith(".txt")) or (
        mod_path.startswith("images/enemies/") and mod_path.endswith(".png"))


def flare_clips(*, size=64):
    """Every clip of the Flare enemies (character, action and direction), cut out once.

    The first call reads the pinned package (downloading it once into the cache), cuts
    the clips out (about 20 s on 2 cores) and stores them as an `.npz` in the cache folder,
    keyed by the package's sha256 and `size`; later calls load that file in about a second.

    Args:
        size: the side of the square frames (see `cut_flare_clips`).

    Returns:
        The list of `cut_flare_clips`: dicts with `character`, `sheet`, `action`,
        `direction`, `type` and uint8 `frames` `[n, size, size, 3]`.
    """
    size = _check_size(size)
    path = cache.cached_path(f"flare/enemies-{FLARE_PACKAGE[2][:16]}-{size}px-v{_CACHE_VERSION}.npz")
    if not path.is_file():
        from rnn_toolkit.data.sword import read_deb_members

        deb = cache.fetch_debian_package(*FLARE_PACKAGE)
        clips = cut_flare_clips(read_deb_members(deb, FLARE_ROOT, select=_wanted), size=size)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, frames=np.concatenate([clip["frames"] for clip in clips]),
            lengths=np.array([len(clip["frames"]) for clip in clips], np.int32),
            direction=np.array([clip["direction"] for clip in clips], np.int32),
            **{key: np.array([clip[key] for clip in clips]) for key in ("character", "sheet", "action", "type")},
        )
        cache.write_atomically(path, buffer.getvalue())
    with np.load(path) as stored:
        parts = np.split(stored["frames"], np.cumsum(stored["lengths"])[:-1])
        return [
            {"character": str(character), "sheet": str(sheet), "action": str(action), "direction": int(direction),
             "type": str(kind), "frames": frames}
            for character, sheet, action, direction, kind, frames in zip(
                stored["character"], stored["sheet"], stored["action"], stored["direction"], stored["type"], parts)
        ]


def flare_sequences(clips, count, *, min_frames=12, max_frames=24, actions=None, death_share=0.5, seed=0,
                    id_prefix="sequence"):
    """Sequences of chained clips of one character seen from one direction, with the
    action of every frame (seeded).

    Each sequence draws a character (uniformly), then one of its directions, then plays
    its actions one after another, never the same twice in a row: `stance` and `run`
    (what an enemy keeps doing) once or twice through, the others once. With probability
    `death_share` (if the character can die and the death fits) it ends with `die` or
    `critdie`, whose last frame is the sequence's last; otherwise the last action is cut
    where the sequence ends.

    Args:
        clips: the clips to chain (from `flare_clips`).
        count: number of sequences.
        min_frames, max_frames: each sequence's length is drawn from this range.
        actions: the class names (default: the clips' actions, sorted); every clip's
            action must be among them.
        death_share: the share of sequences that end with a death, where one fits.
        seed: fixes the sequences.
        id_prefix: sequence ids are `"<id_prefix>-<i>-<character>-d<direction>"`.

    Returns:
        `LabelledClips` with uint8 frames `[time, size, size, 3]` and the label `action`.
    """
    count, actions, index = chained_actions(clips, actions, count=count, min_frames=min_frames, max_frames=max_frames)
    if not 0 <= death_share <= 1:
        raise ValueError(f"`death_share` must be in [0, 1]; received death_share={death_share!r}.")
    views = {}  # (character, direction) -> {action: clip}
    for clip in clips:
        views.setdefault((clip["character"], clip["direction"]), {})[clip["action"]] = clip
    views = {view: by_action for view, by_action in views.items()
             if any(action not in DEATH_ACTIONS for action in by_action)}
    if not views:
        raise ValueError("No clip in `clips` shows an action other than dying: nothing to play before a death.")
    characters = sorted({character for character, _ in views})
    rng = np.random.default_rng(seed)
    frames, labels, ids = [], [], []
    for number in range(count):
        character = characters[int(rng.integers(len(characters)))]
        directions = sorted(direction for name, direction in views if name == character)
        direction = directions[int(rng.integers(len(directions)))]
        by_action = views[character, direction]
        moves = sorted(action for action in by_action if action not in DEATH_ACTIONS)
        deaths = sorted(action for action in by_action if action in DEATH_ACTIONS)
        length = int(rng.integers(min_frames, max_frames + 1))
        ending = None
        if deaths and rng.random() < death_share:
            death = by_action[deaths[int(rng.integers(len(deaths)))]]
            ending = death if len(death["frames"]) < length else None
        room = length - (len(ending["frames"]) if ending else 0)
        parts, part_labels, previous = [], [], None
        while sum(len(part) for part in parts) < room:
            choices = [action for action in moves if action != previous] or moves
            previous = choices[int(rng.integers(len(choices)))]
            plays = int(rng.integers(1, 3)) if previous in STATE_ACTIONS else 1
            played = np.concatenate([by_action[previous]["frames"]] * plays)
            parts.append(played)
            part_labels.append(np.full(len(played), index[previous], np.int32))
        sequence, sequence_labels = [np.concatenate(parts)[:room]], [np.concatenate(part_labels)[:room]]
        if ending is not None:
            sequence.append(ending["frames"])
            sequence_labels.append(np.full(len(ending["frames"]), index[ending["action"]], np.int32))
        frames.append(np.concatenate(sequence))
        labels.append(np.concatenate(sequence_labels))
        ids.append(f"{id_prefix}-{number}-{character}-d{direction}")
    return LabelledClips(frames=tuple(frames), labels={"action": tuple(labels)}, class_names={"action": actions},
                         clip_ids=tuple(ids))


def split_flare_characters(clips, fractions=(0.7, 0.15, 0.15), seed=0):
    """The clips of disjoint sets of characters for training, validation and held-out use.

    Characters drawn on the same sheet (the runners and the tinted variants share their
    original's) go to the same part, so no held-out frame is a training frame recoloured.
    A character needs two actions, one of them not a death, to be chained (the boulder and
    the minecart are not). Whole sheets are shuffled (`seed`) and cut by `fractions`, each
    part getting at least one.

    Returns:
        `(training clips, validation clips, held-out clips)`: three lists.
    """
    fractions = np.asarray(fractions, np.float64)
    if fractions.shape != (3,) or np.any(fractions <= 0) or abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be 3 positive shares that sum to 1; received {tuple(fractions.ravel())}.")
    actions = {}
    for clip in clips:
        actions.setdefault(clip["character"], set()).add(clip["action"])
    usable = {character for character, names in actions.items()
              if len(names) >= 2 and names - set(DEATH_ACTIONS)}
    sheets = sorted({clip["sheet"] for clip in clips if clip["character"] in usable})
    if len(sheets) < 3:
        raise ValueError(f"Splitting by character needs at least 3 sheets of characters with two actions; "
                         f"the clips have {len(sheets)}.")
    order = [sheets[i] for i in np.random.default_rng(seed).permutation(len(sheets))]
    test = max(1, int(round(fractions[2] * len(sheets))))
    validation = max(1, int(round(fractions[1] * len(sheets))))
    if test + validation >= len(sheets):
        raise ValueError(f"{len(sheets)} sheets leave none for training after {validation} validation and {test} held out.")
    groups = (set(order[test + validation:]), set(order[test:test + validation]), set(order[:test]))
    return tuple([clip for clip in clips if clip["sheet"] in group and clip["character"] in usable]
                 for group in groups)


def flare(clips=(600, 100, 200), *, min_frames=12, max_frames=24, seed=0, split_seed=0, size=64, actions=ACTIONS,
          fractions=(0.7, 0.15, 0.15)):
    """Training, validation and held-out Flare sequences of disjoint sets of characters.

    The 33 characters that can be chained (all but the boulder, the minecart and the unused
    `stealth`) are drawn on 25 sheets, split 70 / 15 / 15 % by sheet (`split_seed`, see
    `split_flare_characters`): 17 sheets train, 4 validate and 4 are held out. A held-out
    sequence shows a character, and a sheet, that no training sequence shows; it may still
    be a relative drawn from the same 3-D model in other colours (`fire_ant` and `ice_ant`,
    the wyverns, the skeleton mages), as the game's enemy families are.

    Args:
        clips: the number of (training, validation, held-out) sequences.
        min_frames, max_frames: see `flare_sequences`.
        seed: fixes the sequences.
        split_seed: fixes which characters train, validate and test.
        size: the side of the square frames (see `flare_clips`).
        actions: the class names; clips of other actions are left out.
        fractions: the shares of sheets for (training, validation, held-out).

    Returns:
        `{"train": LabelledClips, "validation": ..., "test": ...}` with the same actions.
    """
    if len(clips) != 3:
        raise ValueError(f"`clips` must be (training, validation, held-out) counts; received {clips!r}.")
    every = flare_clips(size=size)
    actions = tuple(actions)
    missing = sorted(set(actions) - {clip["action"] for clip in every})
    if not actions or missing:
        raise ValueError(f"`actions` must name actions of the Flare enemies; received actions={actions!r}"
                         f"{f' ({missing} are not among them)' if missing else ''}.")
    chosen = [clip for clip in every if clip["action"] in actions and clip["character"] not in UNUSED_CHARACTERS]
    parts = split_flare_characters(chosen, fractions, seed=split_seed)
    names = ("train", "validation", "test")
    return {
        name: flare_sequences(part, count, min_frames=min_frames, max_frames=max_frames, actions=actions,
                              seed=[seed, number], id_prefix=name)
        for number, (name, part, count) in enumerate(zip(names, parts, clips))
    }
