"""Tests for rnn_toolkit.data.parallel_text: sentence pairs, their readers and splits."""

import io
import struct
import tarfile
import time
import zlib

import numpy as np
import pytest

from rnn_toolkit.data import cache, parallel_text
from rnn_toolkit.data.parallel_text import (
    ParallelTexts,
    bible_verse_pairs,
    gcc_messages,
    gettext_pairs,
    load_parallel,
    parallel_holdout_split,
    read_parallel_table,
    tfds_parallel_texts,
)
from rnn_toolkit.data.sword import read_ztext


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _pairs(n=4, **kwargs):
    return ParallelTexts(
        sources=[f"s{i}" for i in range(n)], targets=[f"t{i}" for i in range(n)], **kwargs
    )


# --- ParallelTexts -------------------------------------------------------------------------


def test_parallel_texts_checks_lengths_and_types():
    with pytest.raises(ValueError, match="2 sources and 1 targets"):
        ParallelTexts(["a", "b"], ["x"])
    with pytest.raises(TypeError, match="`sources` must be a sequence"):
        ParallelTexts("ab", "xy")
    with pytest.raises(TypeError, match="`targets` must hold strings; found a bytes"):
        ParallelTexts(["a"], [b"x"])
    pairs = _pairs(2)
    assert pairs.sources == ("s0", "s1") and isinstance(pairs.targets, tuple)
    with pytest.raises(AttributeError):
        pairs.name = "changed"  # frozen


def test_reversed_subset_filter_and_concatenate():
    pairs = _pairs(4, source_language="en", target_language="es", name="demo")
    back = pairs.reversed()
    assert back.sources == pairs.targets and back.targets == pairs.sources
    assert (back.source_language, back.target_language, back.name) == ("es", "en", "demo")
    assert back.reversed() == pairs
    part = pairs.subset(np.array([3, 0]))
    assert part.sources == ("s3", "s0") and part.targets == ("t3", "t0")
    assert part.source_language == "en" and len(part) == 2
    assert pairs.filter(lambda s, t: s in ("s1", "s2") and t != "t2").sources == ("s1",)
    both = pairs.concatenate(part)
    assert len(both) == 6 and both.targets[-1] == "t0" and both.name == "demo+demo"
    with pytest.raises(ValueError, match=r"en->es pairs with es->en.*reversed"):
        pairs.concatenate(back)


# --- read_parallel_table -------------------------------------------------------------------


def test_anki_file_with_attribution_blank_lines_bom_and_crlf(tmp_path):
    path = tmp_path / "spa.txt"
    path.write_bytes(
        "\ufeffGo.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\r\n"
        "\r\n   \r\n"
        " Who?\t ¿Quién? \tCC-BY\r\n"
        'He said "hi.\tDijo "hola.\r\n'.encode("utf-8")
    )
    pairs = read_parallel_table(path, source_language="en", target_language="es")
    assert pairs.sources == ("Go.", "Who?", 'He said "hi.')
    assert pairs.targets == ("Ve.", "¿Quién?", 'Dijo "hola.')
    assert (pairs.source_language, pairs.target_language, pairs.name) == ("en", "es", str(path))
    unknown = read_parallel_table(path)
    assert unknown.source_language == "" and unknown.target_language == ""


def test_invalid_utf8_is_replaced_and_empty_sides_are_skipped(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"caf\xe9\tcaf\xc3\xa9\nalone\t\n\tsolo\nok\tbien\n")
    pairs = read_parallel_table(path)
    assert pairs.sources == ("caf\ufffd", "ok")
    assert pairs.targets == ("café", "bien")


def test_columns_delimiter_and_header(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id;en;es\n1;Yes.;Sí.\n2;No.;No.\n", encoding="utf-8")
    pairs = read_parallel_table(path, delimiter=";", source_column=2, target_column=1, header=True)
    assert pairs.sources == ("Sí.", "No.") and pairs.targets == ("Yes.", "No.")
    assert (pairs.source_language, pairs.target_language) == ("es", "en")
    named = read_parallel_table(
        path, delimiter=";", source_column=1, target_column=2, header=True, target_language="spa"
    )
    assert (named.source_language, named.target_language) == ("en", "spa")


def test_table_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "short.tsv"
    path.write_text("a\tb\n\nonly one column\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short\.tsv' line 3: expected at least 2 fields"):
        read_parallel_table(path)
    with pytest.raises(ValueError, match="line 1: expected at least 4 fields"):
        read_parallel_table(path, target_column=3)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_parallel_table(tmp_path / "missing.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="holds no sentence pairs"):
        read_parallel_table(empty)
    for bad in ({"source_column": -1}, {"target_column": "es"}, {"target_column": 0}):
        with pytest.raises(ValueError, match="column"):
            read_parallel_table(path, **bad)


# --- gettext catalogues ----------------------------------------------------------------------


def write_mo(path, messages, language="es"):
    """Writes a GNU .mo catalogue: `messages` maps msgid (a str, or a (singular, plural)
    tuple) to msgstr (a str, or a list of plural forms); `\\x04` separates a msgctxt."""
    header = "Content-Type: text/plain; charset=UTF-8\n"
    if language:
        header += f"Language: {language}\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
    entries = {"": header}
    for msgid, msgstr in messages.items():
        key = "\x00".join(msgid) if isinstance(msgid, tuple) else msgid
        entries[key] = "\x00".join(msgstr) if isinstance(msgstr, list) else msgstr
    keys = sorted(entries, key=lambda k: k.encode("utf-8"))
    ids = [k.encode("utf-8") for k in keys]
    strs = [entries[k].encode("utf-8") for k in keys]
    n = len(keys)
    data_start = 28 + 16 * n
    originals, translations, blob = b"", b"", b""
    for table, values in (("o", ids), ("t", strs)):
        for value in values:
            entry = struct.pack("<II", len(value), data_start + len(blob))
            blob += value + b"\x00"
            if table == "o":
                originals += entry
            else:
                translations += entry
    path.write_bytes(
        struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, data_start)
        + originals + translations + blob
    )
    return path


def test_gettext_pairs_skip_header_untranslated_and_identical(tmp_path):
    mo = write_mo(tmp_path / "gcc.mo", {
        "%qs is not a function": "%qs no es una función",
        "expected %<;%> before %qE": "se esperaba %<;%> antes de %qE",
        "untranslated": "",
        "%s": "%s",
        "menu\x04Open": "Abrir",
        ("%d error", "%d errors"): ["%d error", "%d errores"],
        ("%d warning", "%d warnings"): ["%d aviso", "%d avisos"],
    })
    pairs = gettext_pairs(mo)
    assert dict(zip(pairs.sources, pairs.targets)) == {
        "%qs is not a function": "%qs no es una función",
        "expected %<;%> before %qE": "se esperaba %<;%> antes de %qE",
        "Open": "Abrir",
        "%d warning": "%d aviso",
    }
    assert (pairs.source_language, pairs.target_language) == ("en", "es")
    assert pairs.name == str(mo)


def test_gettext_pairs_deduplicate_on_the_message_first_file_wins(tmp_path):
    first = write_mo(tmp_path / "a.mo", {"File": "Archivo", "Edit": "Editar"})
    second = write_mo(tmp_path / "b.mo", {"File": "Fichero", "Quit": "Salir"})
    pairs = gettext_pairs([first, second])
    assert dict(zip(pairs.sources, pairs.targets)) == {
        "File": "Archivo", "Edit": "Editar", "Quit": "Salir"
    }
    assert len(pairs) == 3


def test_gettext_language_comes_from_the_header_or_the_argument(tmp_path):
    anonymous = write_mo(tmp_path / "x.mo", {"Yes": "Oui"}, language=None)
    with pytest.raises(ValueError, match="Pass `target_language`"):
        gettext_pairs(anonymous)
    assert gettext_pairs(anonymous, target_language="fr").target_language == "fr"
    spanish = write_mo(tmp_path / "es.mo", {"No": "No."})
    with pytest.raises(ValueError, match=r"\['es', 'fr'\]"):
        gettext_pairs([spanish, write_mo(tmp_path / "fr.mo", {"No": "Non"}, language="fr")])
    not_mo = tmp_path / "bad.mo"
    not_mo.write_bytes(b"not a catalogue at all")
    with pytest.raises(ValueError, match="not a readable gettext"):
        gettext_pairs(not_mo)
    with pytest.raises(FileNotFoundError, match="missing.mo"):
        gettext_pairs(tmp_path / "missing.mo")


# --- Built-in corpora from small fake Debian packages ---------------------------------------


def _testament(verses):
    """(bzs, bzv, bzz) of one testament in a single block; None marks an empty slot."""
    plain, bzv = b"", b""
    for verse in verses:
        encoded = b"" if verse is None else verse.encode("utf-8")
        bzv += struct.pack("<IIH", 0, len(plain) if encoded else 0, len(encoded))
        plain += encoded
    compressed = zlib.compress(plain)
    return struct.pack("<III", 0, len(compressed), len(plain)), bzv, compressed


def _ar_member(name, data):
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode("ascii")
    return header + data + (b"\n" if len(data) % 2 else b"")


def write_deb(path, files):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    path.write_bytes(
        b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", b"x") + _ar_member("data.tar.xz", data.getvalue())
    )
    return path


def _module_files(module, verses):
    bzs, bzv, bzz = _testament(verses)
    folder = f"usr/share/sword/modules/texts/ztext/{module}/"
    return {folder + "ot.bzs": bzs, folder + "ot.bzv": bzv, folder + "ot.bzz": bzz,
            f"usr/share/sword/mods.d/{module.lower()}.conf": b"[x]\n"}


ENGLISH_SLOTS = [
    None,
    '<milestone type="x-importer"/>',
    '<div canonical="true" osisID="Gen" sID="b1" type="book"/> <title>The First Book of Moses</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> ',
    'In the <w lemma="strong:H7225">beginning</w> God created the heaven and the earth.',
    "\u00b6 And the earth was without form.",
    "Only in English.",
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/> <title>ALEPH.</title>',
    'Thus the heavens were finished. <chapter eID="Gen.2"/> <div eID="b1" osisID="Gen" type="book"/>',
]
SPANISH_SLOTS = [
    None,
    '<milestone type="x-importer"/>',
    '<div canonical="true" osisID="Gen" sID="b1" type="book"/> <title>Génesis</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>',
    "<w>EN el principio</w> crió Dios los cielos y la tierra.",
    "Y la tierra estaba desordenada.",
    None,
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/> <title>ALEF.</title>',
    "Y fueron acabados los cielos.",
]


@pytest.fixture
def fake_debs(tmp_path, monkeypatch):
    """Fake Bible and gcc-locales packages served by a fake `fetch_debian_package`."""
    folder = tmp_path / "debs"
    folder.mkdir()
    write_mo(folder / "gcc-es.mo", {"%qs is not a function": "%qs no es una función",
                                    "unterminated comment": "comentario sin terminar"})
    write_mo(folder / "cpplib-es.mo", {"unterminated comment": "comentario no terminado",
                                       "missing %<)%>": "falta un %<)%>"})
    write_mo(folder / "gcc-fr.mo", {"unterminated comment": "commentaire non terminé"}, "fr")
    locale = "usr/share/locale/{}/LC_MESSAGES/{}"
    debs = {
        "sword-text-kjv": write_deb(
            folder / "kjv.deb", _module_files("engKJV2006eb", ENGLISH_SLOTS)),
        "sword-text-sparv": write_deb(
            folder / "sparv.deb", _module_files("spaRV1909eb", SPANISH_SLOTS)),
        "gcc-12-locales": write_deb(folder / "gcc.deb", {
            locale.format("es", "cpplib-12.mo"): (folder / "cpplib-es.mo").read_bytes(),
            locale.format("es", "gcc-12.mo"): (folder / "gcc-es.mo").read_bytes(),
            locale.format("fr", "gcc-12.mo"): (folder / "gcc-fr.mo").read_bytes(),
            "usr/share/doc/gcc-12-locales/copyright": b"GPL",
        }),
    }
    calls = []

    def fetch(package, version, sha256):
        calls.append(package)
        return debs[package]

    monkeypatch.setattr(cache, "fetch_debian_package", fetch)
    return calls


def test_bible_pairs_align_slots_drop_headings_and_one_sided_verses(tmp_cache, fake_debs):
    pairs = bible_verse_pairs()
    assert pairs.sources == (
        "In the beginning God created the heaven and the earth.",
        "And the earth was without form.",
        "Thus the heavens were finished.",
    )
    assert pairs.targets == (
        "EN el principio crió Dios los cielos y la tierra.",
        "Y la tierra estaba desordenada.",
        "Y fueron acabados los cielos.",
    )
    assert (pairs.source_language, pairs.target_language, pairs.name) == ("en", "es", "bible:en-es")
    assert sorted(fake_debs) == ["sword-text-kjv", "sword-text-sparv"]


def test_bible_pairs_are_cached_and_either_direction(tmp_cache, fake_debs):
    forward = bible_verse_pairs("en", "es")
    backward = bible_verse_pairs("es", "en")
    assert backward.sources == forward.targets and backward.name == "bible:es-en"
    assert load_parallel("bible:es-en") == backward
    assert len(fake_debs) == 2  # later calls read the cached verse lists
    assert len(list((tmp_cache / "parallel" / "bible").glob("*.json"))) == 2


def test_bible_language_errors_list_the_available_ones(tmp_cache, fake_debs):
    with pytest.raises(ValueError, match=r"\['en', 'es'\]; received target_language='fr'"):
        bible_verse_pairs("en", "fr")
    with pytest.raises(ValueError, match="must differ"):
        bible_verse_pairs("es", "es")
    with pytest.raises(ValueError, match="bible:SRC-TGT"):
        load_parallel("bible:en")
    assert fake_debs == []


def test_gcc_messages_read_both_catalogues_compiler_first(tmp_cache, fake_debs):
    pairs = gcc_messages()
    assert dict(zip(pairs.sources, pairs.targets)) == {
        "%qs is not a function": "%qs no es una función",
        "unterminated comment": "comentario sin terminar",  # gcc-12.mo wins over cpplib
        "missing %<)%>": "falta un %<)%>",
    }
    assert (pairs.source_language, pairs.target_language, pairs.name) == ("en", "es", "gcc:es")
    assert load_parallel("gcc:fr").targets == ("commentaire non terminé",)
    with pytest.raises(ValueError, match=r"\['es', 'fr'\]; received target_language='de'"):
        gcc_messages("de")


def test_sword_headings_can_be_left_out(tmp_path):
    folder = tmp_path / "module"
    folder.mkdir()
    for suffix, data in zip(("bzs", "bzv", "bzz"), _testament(ENGLISH_SLOTS)):
        (folder / f"ot.{suffix}").write_bytes(data)
    with_headings = read_ztext(folder)
    without = read_ztext(folder, headings=False)
    assert len(with_headings) == len(without) == len(ENGLISH_SLOTS)
    assert with_headings[2] == "The First Book of Moses" and without[2] == ""
    assert with_headings[7] == "ALEPH." and without[7] == ""
    # A verse that closes a chapter and a book is still a verse; the pilcrow is layout.
    assert without[8] == "Thus the heavens were finished."
    assert without[5] == "And the earth was without form."


# --- load_parallel ---------------------------------------------------------------------------


def test_load_parallel_dispatches_on_names_and_files(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(parallel_text, "bible_verse_pairs", lambda *a, **k: calls.append(("bible", a)))
    monkeypatch.setattr(parallel_text, "gcc_messages", lambda *a, **k: calls.append(("gcc", a)))
    monkeypatch.setattr(
        parallel_text, "tfds_parallel_texts", lambda name, **k: calls.append(("tfds", name, k))
    )
    load_parallel("bible")
    load_parallel("bible:es-en")
    load_parallel("gcc")
    load_parallel("gcc:fr")
    load_parallel("tfds:ted_hrlr_translate/pt_to_en")
    load_parallel("tfds:wmt14_translate/de-en:validation", data_dir="/data")
    assert calls == [
        ("bible", ()), ("bible", ("es", "en")), ("gcc", ()), ("gcc", ("fr",)),
        ("tfds", "ted_hrlr_translate/pt_to_en", {"split": "train"}),
        ("tfds", "wmt14_translate/de-en", {"split": "validation", "data_dir": "/data"}),
    ]
    table = tmp_path / "pairs.tsv"
    table.write_text("Hi.\tHola.\n", encoding="utf-8")
    assert load_parallel(str(table), source_language="en").source_language == "en"
    assert load_parallel(table).targets == ("Hola.",)
    mo = write_mo(tmp_path / "django.mo", {"Save": "Guardar"})
    assert load_parallel(str(mo)).targets == ("Guardar",)


def test_load_parallel_errors_list_the_accepted_forms(tmp_path):
    for bad in (None, "", 3, "europarl"):
        with pytest.raises(ValueError, match=r"`source` must be 'bible'.*'tfds:NAME\[:SPLIT\]'"):
            load_parallel(bad)
    with pytest.raises(ValueError, match="names no TFDS dataset"):
        load_parallel("tfds:")
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        load_parallel(str(tmp_path / "missing.tsv"))


# --- TensorFlow Datasets (offline, with tfds' mock data) ------------------------------------


def test_tfds_translation_with_mock_data_follows_supervised_keys():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        pairs = tfds_parallel_texts("ted_hrlr_translate/pt_to_en")
        validation = load_parallel("tfds:ted_hrlr_translate/pt_to_en:validation")
        swapped = tfds_parallel_texts(
            "ted_hrlr_translate/pt_to_en", source_key="en", target_key="pt"
        )
        with pytest.raises(ValueError, match=r"`target_key`='es'.*\['en', 'pt'\]"):
            tfds_parallel_texts("ted_hrlr_translate/pt_to_en", target_key="es")
    assert (pairs.source_language, pairs.target_language) == ("pt", "en")
    assert len(pairs) == 5 and all(isinstance(s, str) for s in pairs.sources + pairs.targets)
    assert pairs.name == "tfds:ted_hrlr_translate/pt_to_en:train"
    assert validation.name.endswith(":validation") and len(validation) == 5
    assert swapped.sources == pairs.targets and swapped.source_language == "en"


def test_tfds_direction_falls_back_to_the_config_name():
    class Info:
        supervised_keys = None
        features = None

    assert parallel_text._tfds_direction("ted_hrlr_translate/pt_to_en", Info) == ("pt", "en")
    assert parallel_text._tfds_direction("wmt14_translate/de-en:1.0.0", Info) == ("de", "en")
    assert parallel_text._tfds_direction("para_crawl/enmt", Info) is None


def test_tfds_not_prepared_fails_fast_and_unknown_names_are_value_errors(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="not prepared"):
        tfds_parallel_texts("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10.0, "must not retry a download"
    with pytest.raises(ValueError, match="not a TFDS dataset"):
        tfds_parallel_texts("no_such_translation_dataset")


# --- Splits --------------------------------------------------------------------------------


def test_holdout_split_is_seeded_disjoint_and_complete():
    train, heldout = parallel_holdout_split(200, fraction=0.1, seed=5)
    assert len(heldout) == 20 and heldout.dtype == np.int64
    assert sorted(np.concatenate([train, heldout]).tolist()) == list(range(200))
    assert train.tolist() == sorted(train.tolist())
    again = parallel_holdout_split(200, fraction=0.1, seed=5)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], heldout)
    assert not np.array_equal(parallel_holdout_split(200, fraction=0.1, seed=6)[1], heldout)
    assert len(parallel_holdout_split(3, fraction=0.01)[1]) == 1  # at least one held out


def test_holdout_split_checks_its_arguments():
    for bad in (0, 1, 2.5, None):
        with pytest.raises(ValueError, match="`count`"):
            parallel_holdout_split(bad)
    with pytest.raises(ValueError, match="`fraction`"):
        parallel_holdout_split(10, fraction=1.0)


# --- Real corpora (downloaded once from the Debian registry into the cache) -----------------


@pytest.mark.slow
def test_real_bible_and_gcc_pairs():
    pairs = bible_verse_pairs()
    assert len(pairs) == 31_084
    assert pairs.sources[0] == "In the beginning God created the heaven and the earth."
    assert pairs.targets[0] == "EN el principio crió Dios los cielos y la tierra."
    assert pairs.targets[-1].startswith("La gracia de nuestro Señor Jesucristo")
    assert not any("<" in text or "\u00b6" in text for text in pairs.sources + pairs.targets)
    messages = gcc_messages("es")
    assert len(messages) == 8_653
    assert any("%qs" in source for source in messages.sources)
