"""Reading SWORD Bible modules (zText format): verse-aligned parallel text.

Debian packages SWORD modules of public-domain Bibles (`sword-text-kjv`: English King James,
`sword-text-sparv`: Spanish Reina-Valera 1909). Modules with the same versification list
their verses in the same slot order, so slot i of one translation is slot i of the other:
a real parallel corpus of ~31,000 sentence pairs for sequence-to-sequence models.

The zText format, per testament (`ot`, `nt`):

* `.bzs`: 12-byte little-endian records `(offset, compressed_size, uncompressed_size)`, one
  per zlib-compressed block of `.bzz`;
* `.bzv`: 10-byte records `(block_index: u32, offset_in_block: u32, size: u16)`, one per
  verse slot (size 0: an empty slot, such as a chapter heading slot);
* the verse text carries markup (`<w lemma=...>`, `<note>...</note>`, ...) to strip.

Besides verses, a testament has heading slots: one per book (holding the book's title, e.g.
"The First Book of Moses, called Genesis" / "Génesis") and one per chapter (mostly empty;
Psalm 119's "א ALEPH." sits there in the KJV). `read_ztext(..., headings=False)` reads them
as empty, so that only verse text remains and the slot order is kept.

`read_ztext` reads a module folder; `read_deb_members` takes files out of a `.deb` without
`dpkg`, so a downloaded package need not be installed (`deb_files` and `deb_file_streams`
walk all of its files, the latter as file objects for members too large to hold).
"""

import io
import pathlib
import re
import struct
import tarfile
import zlib

TESTAMENTS = ("ot", "nt")

_BLOCK = struct.Struct("<III")
_VERSE = struct.Struct("<IIH")
# Footnotes and cross-references are not part of the verse's wording.
_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
# OSIS start milestones of a book or a chapter mark a heading slot (end milestones use eID;
# `\b` keeps `osisID=` from passing for `sID=`).
_HEADING_START = re.compile(
    r"<chapter\b[^>]*\bsID=|<div\b(?=[^>]*\btype=\"book\")[^>]*\bsID="
)
# The KJV marks paragraph starts with a pilcrow: layout, not wording.
_PILCROW = "\u00b6"
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([,.;:!?)\]»’”])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[«¿¡‘“]) ")


def strip_markup(text):
    """Verse text without notes, tags and extra whitespace."""
    text = _NOTE.sub(" ", text).replace(_PILCROW, " ")
    # A tag may be the only thing between two words, so it becomes a space; the spaces
    # that leaves before punctuation ("earth ." from "<w>earth</w>.") are then removed.
    text = _SPACE.sub(" ", _TAG.sub(" ", text))
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _SPACE_AFTER_OPENING.sub(r"\1", text).strip()


def read_ztext(module_dir, *, encoding="utf-8", headings=True):
    """Every verse slot of a zText module, Old Testament then New.

    Args:
        module_dir: the folder holding `ot.bzs`, `ot.bzv`, `ot.bzz` and the `nt.*` files
            (either testament may be missing).
        encoding: the module's text encoding (UTF-8 for the Debian modules; the module's
            `.conf` says `Encoding=UTF-8`). Undecodable bytes become U+FFFD.
        headings: if False, book and chapter heading slots (those opening a book or a
            chapter with an OSIS start milestone) read as `""`, leaving verse text only.

    Returns:
        A list of strings, one per slot, markup stripped; empty slots are `""`.

    Raises:
        FileNotFoundError: if the folder holds no testament.
        ValueError: if an index points outside its data file (a damaged module).
    """
    folder = pathlib.Path(module_dir)
    verses = []
    found = False
    for testament in TESTAMENTS:
        paths = [folder / f"{testament}.{suffix}" for suffix in ("bzs", "bzv", "bzz")]
        if not all(path.is_file() for path in paths):
            continue
        found = True
        blocks_index, verses_index, data = (path.read_bytes() for path in paths)
        verses.extend(
            _testament_verses(blocks_index, verses_index, data, encoding, testament, headings)
        )
    if not found:
        raise FileNotFoundError(
            f"{str(folder)!r} holds no zText testament (ot.bzs/.bzv/.bzz or nt.*)."
        )
    return verses


def _testament_verses(blocks_index, verses_index, data, encoding, testament, headings):
    blocks = [_BLOCK.unpack_from(blocks_index, i) for i in range(0, len(blocks_index) - 11, 12)]
    cache = {}

    def block(number):
        if number not in cache:
            if number >= len(blocks):
                raise ValueError(f"{testament}.bzv names block {number}; .bzs has {len(blocks)}.")
            offset, size, _ = blocks[number]
            if offset + size > len(data):
                raise ValueError(f"{testament}.bzs block {number} ends past the end of .bzz.")
            cache.clear()  # slots are in block order: one block in memory is enough
            cache[number] = zlib.decompress(data[offset : offset + size])
        return cache[number]

    verses = []
    for i in range(0, len(verses_index) - 9, 10):
        number, offset, size = _VERSE.unpack_from(verses_index, i)
        if size == 0:
            verses.append("")
            continue
        text = block(number)[offset : offset + size].decode(encoding, errors="replace")
        if not headings and _HEADING_START.search(text):
            verses.append("")
            continue
        verses.append(strip_markup(text))
    return verses


def read_deb_members(deb_path, prefix, select=None):
    """The files of a Debian package whose path starts with `prefix`, without dpkg.

    A `.deb` is an `ar` archive whose `data.tar.*` member holds the installed files. The
    package is streamed from disk: only the files kept are held in memory.

    Args:
        deb_path: the `.deb` file.
        prefix: a path prefix inside the package, e.g. `"usr/share/sword/modules/"`.
        select: if given, a function of a member's path (without a leading `./`) that says
            whether to keep it; only paths starting with `prefix` are asked.

    Returns:
        A dict from member path (without a leading `./`) to its bytes.
    """
    members = {}
    for path, read in deb_files(deb_path):
        if path.startswith(prefix) and (select is None or select(path)):
            members[path] = read()
    return members


def deb_files(deb_path):
    """Yields `(path, read)` for every regular file of a Debian package, in archive order,
    streaming: `path` has no leading `./`, and `read()` returns the file's bytes (call it
    before the next file; files not read are decompressed and skipped, never held)."""
    for path, open_member in deb_file_streams(deb_path):
        yield path, lambda open_member=open_member: open_member().read()


def deb_file_streams(deb_path):
    """Yields `(path, open)` for every regular file of a Debian package, in archive order.

    Like `deb_files`, but `open()` returns a binary file object that reads the file as it
    is decompressed, for a member too large to hold in memory (such as the kernel tarball
    inside `linux-source-6.1`). Read it before moving to the next file: the package is
    one compressed stream, read once from start to end.
    """
    with open(deb_path, "rb") as file:
        if file.read(8) != b"!<arch>\n":
            raise ValueError(f"{str(deb_path)!r} is not a Debian package (no ar header).")
        while True:
            header = file.read(60)
            if len(header) < 60:
                raise ValueError(f"{str(deb_path)!r} has no data.tar member.")
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if name.startswith("data.tar"):
                break
            file.seek(size + size % 2, io.SEEK_CUR)  # members are 2-byte aligned
        stream = io.BufferedReader(_ArMember(file, size), buffer_size=1 << 20)
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    path = member.name[2:] if member.name.startswith("./") else member.name
                    yield path, lambda member=member: archive.extractfile(member)


class _ArMember(io.RawIOBase):
    """The next `size` bytes of an open file, as a stream: one member of an `ar` archive
    (the compressed tar must not read past its end)."""

    def __init__(self, file, size):
        self._file, self._left = file, size

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._file.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)
