import io
import struct
import tarfile
import zlib

import pytest

from rnn_toolkit.data.sword import read_deb_members, read_ztext, strip_markup


def write_testament(folder, name, blocks):
    """Writes a zText testament: `blocks` is a list of blocks, each a list of verse texts
    (None for an empty slot)."""
    bzs, bzv, bzz = b"", b"", b""
    for number, verses in enumerate(blocks):
        plain, offsets = b"", []
        for verse in verses:
            encoded = b"" if verse is None else verse.encode("utf-8")
            offsets.append((len(plain), len(encoded)))
            plain += encoded
        compressed = zlib.compress(plain)
        bzs += struct.pack("<III", len(bzz), len(compressed), len(plain))
        bzz += compressed
        for offset, size in offsets:
            bzv += struct.pack("<IIH", number, offset if size else 0, size)
    for suffix, data in (("bzs", bzs), ("bzv", bzv), ("bzz", bzz)):
        (folder / f"{name}.{suffix}").write_bytes(data)


def test_reads_every_slot_in_order_with_markup_stripped(tmp_path):
    write_testament(tmp_path, "ot", [
        ['<w lemma="strong:H7225">In the beginning</w> God.', None],
        ["Then <note type=\"x\">a footnote</note>light<w>s</w> came ( and went ) ."],
    ])
    write_testament(tmp_path, "nt", [["¿ Qué <w>dijo</w><w>Jesús</w> ?"]])
    assert read_ztext(tmp_path) == [
        "In the beginning God.", "", "Then light s came (and went).", "¿Qué dijo Jesús?",
    ]


def test_one_testament_is_enough_and_none_is_an_error(tmp_path):
    write_testament(tmp_path, "nt", [["Amen."]])
    assert read_ztext(tmp_path) == ["Amen."]
    with pytest.raises(FileNotFoundError, match="zText"):
        read_ztext(tmp_path / "missing")


def test_a_damaged_index_is_reported(tmp_path):
    write_testament(tmp_path, "ot", [["A verse."]])
    (tmp_path / "ot.bzv").write_bytes(struct.pack("<IIH", 7, 0, 3))
    with pytest.raises(ValueError, match="block 7"):
        read_ztext(tmp_path)


def test_invalid_utf8_is_replaced(tmp_path):
    write_testament(tmp_path, "ot", [["x"]])
    plain = b"caf\xe9 au lait"
    compressed = zlib.compress(plain)
    (tmp_path / "ot.bzz").write_bytes(compressed)
    (tmp_path / "ot.bzs").write_bytes(struct.pack("<III", 0, len(compressed), len(plain)))
    (tmp_path / "ot.bzv").write_bytes(struct.pack("<IIH", 0, 0, len(plain)))
    assert read_ztext(tmp_path) == ["caf\ufffd au lait"]


def test_strip_markup_folds_whitespace():
    assert strip_markup("  a\n\t<b>b</b>   c  ") == "a b c"


def _ar_member(name, data):
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode("ascii")
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_reads_files_out_of_a_deb_without_dpkg(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for path, content in (("./usr/share/sword/modules/a/ot.bzs", b"abc"),
                              ("./usr/share/doc/x/copyright", b"PD")):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    deb = tmp_path / "x.deb"
    deb.write_bytes(
        b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", b"x") + _ar_member("data.tar.xz", data.getvalue())
    )
    assert read_deb_members(deb, "usr/share/sword/") == {"usr/share/sword/modules/a/ot.bzs": b"abc"}
    not_a_deb = tmp_path / "y.deb"
    not_a_deb.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not a Debian package"):
        read_deb_members(not_a_deb, "usr/")
