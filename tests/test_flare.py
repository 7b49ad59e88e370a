"""Tests for rnn_toolkit.data.flare: the Flare enemies' clips, sequences and split by character.

The 123 MB flare-game package is never downloaded here: its layout is rebuilt in miniature
(two mods, INI files with APPEND and INCLUDE, small PNG sheets). Only the slow test reads the
real package, and only when it is already in the cache.
"""

import importlib
import io
import re
import tarfile

import numpy as np
import pytest
from PIL import Image

from rnn_toolkit.data import cache
from rnn_toolkit.data.flare import (
    FLARE_ROOT,
    cut_flare_clips,
    flare,
    flare_clips,
    flare_sequences,
    play_order,
    read_flare_enemies,
    split_flare_characters,
)

# The package `rnn_toolkit.data` exports the function `flare` under the module's name.
flare_module = importlib.import_module("rnn_toolkit.data.flare")
BASE, CAMPAIGN = (f"{FLARE_ROOT}{mod}/" for mod in flare_module.MODS)
ACTION_RED = {"stance": 20, "run": 50, "swing": 80, "die": 110, "block": 140, "spawn": 170}
RED_ACTION = {red: action for action, red in ACTION_RED.items()}
CHARACTER_BLUE = {"orc": 200, "bat": 150, "imp": 100, "rock": 60}
SIZE = 16  # every fake character's box is a 16 px square: no resampling, exact colours


def _colour(action, index, direction, character):
    """A frame's body colour says what it is; its anchor pixel is white."""
    return ACTION_RED[action], 40 + 60 * direction + 20 * index, CHARACTER_BLUE[character]


def _character(character, sections, directions=(0, 1)):
    """`(ini text, png bytes)`: each section `(action, frames, type)` drawn in every direction,
    frames of 10 or 12 x 16 px standing on their anchor (the bottom row), laid side by side."""
    lines, pieces, x = [f"image=images/enemies/{character}.png", "# a comment", ""], [], 0
    for action, count, kind in sections:
        lines += [f"[{action}]", f"frames={count}", "duration=400ms", f"type={kind}", "active_frame=1"]
        for index in range(count):
            for direction in directions:
                if action == "spawn":  # the game leaves some frames empty
                    lines.append(f"frame={index},{direction},0,0,0,0,0,0")
                    continue
                width, offset_x = (12, 7) if (index + direction) % 2 else (10, 5)
                piece = np.zeros((16, width, 4), np.uint8)
                piece[...] = (*_colour(action, index, direction, character), 255)
                piece[15, offset_x] = (255, 255, 255, 255)
                pieces.append(piece)
                lines.append(f"frame={index},{direction},{x},0,{width},16,{offset_x},15")
                x += width
        lines += [f"# frame=0,0,{x},0,99,99,0,0", ""]
    sheet = np.concatenate(pieces, axis=1) if pieces else np.zeros((16, 4, 4), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(sheet, "RGBA").save(buffer, format="PNG")
    return "\n".join(lines), buffer.getvalue()


def fake_flare_files():
    """A tiny Flare tree: `{path in the package: bytes}`."""
    files = {}
    fighter = [("stance", 3, "back_forth"), ("run", 2, "looped"), ("swing", 2, "play_once"), ("die", 3, "play_once"),
               ("spawn", 1, "play_once")]
    for character, sections in (("orc", fighter), ("bat", fighter[:4]), ("imp", fighter[:4]),
                                ("rock", [("stance", 1, "looped")])):
        text, png = _character(character, sections)
        files[f"{BASE}animations/enemies/{character}.txt"] = text.encode()
        files[f"{BASE}images/enemies/{character}.png"] = png
    # The campaign adds an action to the orc and a tinted ghost that reads the orc's file.
    block_text, block_png = _character("orc", [("block", 1, "play_once")])
    x = Image.open(io.BytesIO(files[f"{BASE}images/enemies/orc.png"])).width
    files[f"{BASE}images/enemies/orc.png"] = _side_by_side(files[f"{BASE}images/enemies/orc.png"], block_png)
    block_lines = [re.sub(r"^frame=(\d+),(\d+),(\d+),", lambda m: f"frame={m[1]},{m[2]},{int(m[3]) + x},", line)
                   for line in block_text.splitlines()[3:]]
    files[f"{CAMPAIGN}animations/enemies/orc.txt"] = ("APPEND\n\n" + "\n".join(block_lines)).encode()
    files[f"{CAMPAIGN}animations/enemies/orc_ghost.txt"] = (
        b"color_mod=255,0,0\nalpha_mod=128\n\nINCLUDE animations/enemies/orc.txt\n")
    files[f"{BASE}images/other.png"] = b"not wanted"
    return files


def _side_by_side(left_png, right_png):
    left, right = (np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")) for png in (left_png, right_png))
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([left, right], axis=1), "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def _fake_deb(path, files):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))

    def member(name, body):
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode("ascii")
        return header + body + (b"\n" if len(body) % 2 else b"")

    path.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.xz", b"x")
                     + member("data.tar.xz", data.getvalue()))
    return path


@pytest.fixture(scope="module")
def clips():
    return cut_flare_clips(fake_flare_files(), size=SIZE)


def _body(frame):
    """The colour of a frame's body (its most common colour that is neither black nor white)."""
    colours, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    keep = ~np.all(colours == 0, axis=1) & ~np.all(colours == 255, axis=1)
    return tuple(int(v) for v in colours[keep][np.argmax(counts[keep])])


# --- Reading the INI files --------------------------------------------------------------------


def test_the_mods_are_read_as_the_game_reads_them():
    enemies = read_flare_enemies(fake_flare_files())
    assert sorted(enemies) == ["bat", "imp", "orc", "orc_ghost", "rock"]
    orc, ghost = enemies["orc"], enemies["orc_ghost"]
    # APPEND: the campaign's file adds `block` to the base one; the commented frame is ignored.
    assert sorted(orc["actions"]) == ["block", "die", "run", "spawn", "stance", "swing"]
    assert orc["actions"]["stance"]["type"] == "back_forth" and orc["actions"]["stance"]["frames"] == 3
    assert len(orc["actions"]["stance"]["rects"]) == 6 and orc["actions"]["stance"]["rects"][0, 0][2:] == (10, 16, 5, 15)
    # INCLUDE: the ghost is the orc (with the appended block), tinted, on the orc's sheet.
    assert ghost["actions"] == orc["actions"] and ghost["image"] == "images/enemies/orc.png"
    assert (ghost["color_mod"], ghost["alpha_mod"], orc["color_mod"]) == ((255, 0, 0), 128, (255, 255, 255))


def test_broken_files_are_named():
    files = fake_flare_files()
    files[f"{BASE}animations/enemies/bat.txt"] += b"\n[hit]\nframe=0,0,1,2\n"
    with pytest.raises(ValueError, match=r"bat\.txt line \d+ .*index,direction,x,y,w,h"):
        read_flare_enemies(files)
    files = fake_flare_files()
    files[f"{CAMPAIGN}animations/enemies/orc_ghost.txt"] = b"INCLUDE animations/enemies/nobody.txt\n"
    with pytest.raises(ValueError, match="nobody.txt"):
        read_flare_enemies(files)


def test_play_order_follows_the_animation_type():
    assert play_order("play_once", 3) == [0, 1, 2] and play_order("looped", 3) == [0, 1, 2]
    assert play_order("back_forth", 4) == [0, 1, 2, 3, 2, 1, 0] and play_order("back_forth", 1) == [0]
    with pytest.raises(ValueError, match="`type`"):
        play_order("sideways", 3)


# --- Cutting the clips out --------------------------------------------------------------------


def test_clips_keep_the_anchor_fixed_the_whole_character_and_the_playing_order(clips):
    kept = {(c["character"], c["action"], c["direction"]) for c in clips}
    assert len(kept) == len(clips)
    assert not any(c["action"] == "spawn" for c in clips)  # empty frames only: no clip
    assert {(c, a) for c, a, _ in kept} >= {("orc", "block"), ("orc_ghost", "block"), ("rock", "stance")}
    for clip in clips:
        frames = clip["frames"]
        assert frames.dtype == np.uint8 and frames.shape[1:] == (SIZE, SIZE, 3)
        anchors = {tuple(np.argwhere(np.all(frame == 255, axis=-1))[0]) for frame in frames if clip["character"] != "orc_ghost"}
        assert len(anchors) <= 1  # the anchor pixel stays in place
        if clip["character"] in ("orc", "bat", "imp"):  # 10 and 12 px wide frames: the anchor at x 9
            assert anchors == {(15, 9)}
            for frame in frames:  # the whole 10 or 12 x 16 piece is in view
                assert np.any(frame != 0, axis=-1).sum() in (160, 192)
    stance = next(c for c in clips if (c["character"], c["action"], c["direction"]) == ("orc", "stance", 1))
    assert stance["type"] == "back_forth"
    assert [_body(f)[1] for f in stance["frames"]] == [100 + 20 * i for i in (0, 1, 2, 1, 0)]
    assert [_body(f)[0] for f in stance["frames"]] == [ACTION_RED["stance"]] * 5


def test_tinted_variants_share_their_originals_sheet(clips):
    orc = next(c for c in clips if (c["character"], c["action"], c["direction"]) == ("orc", "swing", 0))
    ghost = next(c for c in clips if (c["character"], c["action"], c["direction"]) == ("orc_ghost", "swing", 0))
    assert ghost["sheet"] == orc["sheet"] == f"{BASE}images/enemies/orc.png"
    # color_mod 255,0,0 keeps red only; alpha_mod 128 makes it half transparent on black.
    assert _body(ghost["frames"][0]) == (round(ACTION_RED["swing"] * 128 / 255), 0, 0)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="`size`"):
        cut_flare_clips(fake_flare_files(), size=8)
    with pytest.raises(ValueError, match="`size`"):
        flare_clips(size=0)


def test_frames_are_resized_to_size():
    resized = cut_flare_clips(fake_flare_files(), size=24)
    assert {c["frames"].shape[1:] for c in resized} == {(24, 24, 3)}


# --- Chaining clips into sequences ------------------------------------------------------------


def test_a_sequence_shows_one_character_from_one_direction_dying_only_at_the_end(clips):
    chained = [c for c in clips if c["character"] != "orc_ghost"]
    sequences = flare_sequences(chained, 40, min_frames=6, max_frames=14, death_share=0.5, seed=3)
    names = sequences.class_names["action"]
    assert names == ("block", "die", "run", "stance", "swing")
    assert all(6 <= n <= 14 for n in sequences.lengths)
    deaths = 0
    for frames, labels, clip_id in zip(sequences.frames, sequences.labels["action"], sequences.clip_ids):
        character, direction = clip_id.split("-")[2], int(clip_id.split("-d")[-1])
        bodies = [_body(frame) for frame in frames]
        assert {b[2] for b in bodies} == {CHARACTER_BLUE[character]}
        assert {(b[1] - 40) // 60 for b in bodies} == {direction}
        assert [names[i] for i in labels] == [RED_ACTION[b[0]] for b in bodies]
        dying = np.flatnonzero(labels == names.index("die"))
        if len(dying):
            deaths += 1
            assert list(dying) == list(range(len(labels) - 3, len(labels)))  # the whole death, last
            assert [b[1] for b in bodies[-3:]] == [40 + 60 * direction + 20 * i for i in range(3)]
    assert 5 < deaths < 35
    never = flare_sequences(chained, 10, min_frames=6, max_frames=14, death_share=0, seed=3)
    assert not any((labels == names.index("die")).any() for labels in never.labels["action"])


def test_sequences_are_seeded(clips):
    first, again, other = (flare_sequences(clips, 5, min_frames=4, max_frames=9, seed=s) for s in (1, 1, 2))
    assert first.clip_ids == again.clip_ids
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, again.frames))
    assert first.clip_ids != other.clip_ids


def test_bad_sequence_arguments_are_named(clips):
    for arguments, name in ((dict(count=0), "`count`"), (dict(min_frames=5, max_frames=4), "min_frames"),
                            (dict(death_share=2.0), "`death_share`"), (dict(actions=("stance",)), "`actions`")):
        with pytest.raises(ValueError, match=name):
            flare_sequences(clips, **{"count": 2, **arguments})
    with pytest.raises(ValueError, match="`clips` is empty"):
        flare_sequences([], 2)


# --- Splitting by character -------------------------------------------------------------------


def test_the_split_keeps_characters_of_one_sheet_together(clips):
    parts = split_flare_characters(clips, seed=0)
    characters = [{c["character"] for c in part} for part in parts]
    assert sorted(characters, key=sorted) == sorted([{"orc", "orc_ghost"}, {"bat"}, {"imp"}], key=sorted)
    assert all(len({c["sheet"] for c in part}) == 1 for part in parts)
    assert split_flare_characters(clips, seed=0) == parts
    with pytest.raises(ValueError, match="`fractions`"):
        split_flare_characters(clips, fractions=(0.5, 0.5))
    with pytest.raises(ValueError, match="at least 3 sheets"):
        split_flare_characters([c for c in clips if c["character"] in ("bat", "imp")])


def test_flare_parts_show_disjoint_characters_with_one_class_list(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    deb = _fake_deb(tmp_path / "flare-game.deb", fake_flare_files())
    monkeypatch.setattr(cache, "fetch_debian_package", lambda *package: deb)
    parts = flare(clips=(6, 3, 4), min_frames=5, max_frames=9, size=SIZE, actions=("stance", "run", "swing", "die"))
    assert [len(parts[name]) for name in ("train", "validation", "test")] == [6, 3, 4]
    assert {p.class_names["action"] for p in parts.values()} == {("stance", "run", "swing", "die")}
    shown = [{clip_id.split("-")[2] for clip_id in p.clip_ids} for p in parts.values()]
    assert not shown[0] & shown[2] and not shown[0] & shown[1] and not shown[1] & shown[2]
    for arguments, name in ((dict(clips=(1, 2)), "`clips`"), (dict(actions=("fly",)), "`actions`")):
        with pytest.raises(ValueError, match=name):
            flare(**arguments, size=SIZE)


def test_the_cut_outs_are_cached_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    deb = _fake_deb(tmp_path / "flare-game.deb", fake_flare_files())
    monkeypatch.setattr(cache, "fetch_debian_package", lambda *package: deb)
    from rnn_toolkit.data.sword import read_deb_members

    wanted = read_deb_members(deb, FLARE_ROOT, select=flare_module._wanted)
    assert set(wanted) == set(fake_flare_files()) - {f"{BASE}images/other.png"}
    first = flare_clips(size=SIZE)
    assert len(list((tmp_path / "cache" / "flare").glob(f"*-{SIZE}px-*.npz"))) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the clips were cut out again instead of read from the cache")

    monkeypatch.setattr(flare_module, "cut_flare_clips", refuse)
    again = flare_clips(size=SIZE)
    assert len(again) == len(first) == len(cut_flare_clips(fake_flare_files(), size=SIZE))
    for a, b in zip(first, again):
        assert {k: v for k, v in a.items() if k != "frames"} == {k: v for k, v in b.items() if k != "frames"}
        assert np.array_equal(a["frames"], b["frames"])


def test_the_frame_labeller_run_loads_flare_with_its_settings(monkeypatch):
    from rnn_toolkit.tasks.frame_labeller import run

    seen = {}
    monkeypatch.setattr(run, "flare", lambda counts, **settings: seen.update(counts=counts, **settings) or "parts")
    config = run.FrameLabellerRunConfig(data="flare", train_clips=5, validation_clips=2, test_clips=3, frames=9,
                                        min_frames=4, frame_size=256, data_seed=7, split_seed=2)
    assert run.load_clips(config) == "parts"
    assert seen == dict(counts=(5, 2, 3), min_frames=4, max_frames=9, seed=7, split_seed=2, size=128)


# --- The real data (only when already in the cache: the tests never download it) ----------


@pytest.mark.slow
def test_real_flare_enemies():
    from rnn_toolkit.data.sword import read_deb_members

    folder = cache.cache_dir() / "debian"
    deb = next(iter(folder.glob("flare-game_1.14-1_*.deb")), None) if folder.is_dir() else None
    if deb is None:
        pytest.skip("the 123 MB flare-game package is not in the cache (run flare_clips() once)")
    files = read_deb_members(deb, FLARE_ROOT, select=flare_module._wanted)
    # Counted file by file, as DATA.md does: the 30 INI files with a sheet of their own.
    own = [files[p].decode() for p in files if p.endswith(".txt") and "\nimage=" in "\n" + files[p].decode()]
    sections = [re.split(r"^\[", text, flags=re.M)[1:] for text in own]
    raw_clips = sum(len({line.split(",")[1] for line in s.splitlines() if line.startswith("frame=")})
                    for file_sections in sections for s in file_sections)
    raw_frames = sum(line.startswith("frame=") for text in own for line in text.splitlines())
    assert (len(own), raw_clips, raw_frames) == (30, 2040, 10768)
    enemies = read_flare_enemies(files)
    assert len(enemies) == 36 and len({e["image"] for e in enemies.values()}) == 28
    drawn = sum(r[2] > 0 for e in enemies.values() for s in e["actions"].values() for r in s["rects"].values())
    assert drawn == 12688
    clips = flare_clips()
    assert len(clips) == 2384 and sum(len(c["frames"]) for c in clips) == 13440
    assert {c["action"] for c in clips} == set(flare_module.ACTIONS) | {"spawn", "cast_alt", "dash_attack", "shield_bash"}
    assert {c["frames"].shape[1:] for c in clips} == {(64, 64, 3)}
    parts = flare(clips=(20, 5, 20))
    test_characters = {clip_id.split("-")[2] for clip_id in parts["test"].clip_ids}
    assert test_characters <= {"fire_ant", "goblin", "goblin_runner", "skeleton_mage_high_boss", "wyvern"}
    assert not test_characters & {clip_id.split("-")[2] for clip_id in parts["train"].clip_ids}
