"""The lecture's corpora for character models, from pinned Debian source packages.

The lecture trained character models on the C of the Linux kernel and on the LaTeX of the
Stacks project. The kernel, another large body of C and the nearest thing to mathematical
LaTeX that can be had here arrive through the Debian registry only (downloaded once with
`apt-get download`, sha256-checked, never installed), as three named corpora:

* `"linux"`: the `.c` and `.h` files of Linux 6.1 (`linux-source-6.1`, GPL-2, a 139 MB
  package holding one 138 MB `linux-source-6.1.tar.xz`). The whole tree has 55,444 such
  files, 1.18 GB, 77% of it under `drivers/`: far more than a 2-core machine trains on. The
  default is the core kernel, `include/linux`, `kernel` and `mm`: 3,249 files, 33.4 million
  characters (131 distinct) after the filters below. `linux:kernel,mm,fs/ext4` picks
  folders (or files) of the tree, `linux:all` takes everything: 54,153 files, 722 million
  characters after the filters, a 2.8 GB Python string (a few emoji in comments make every
  character 4 bytes wide) that needs 6-8 GB of memory to load.
* `"glibc"`: the `.c` and `.h` files of the GNU C library 2.36 (`glibc-source`, LGPL, a
  20.5 MB package holding `glibc-2.36.tar.xz`): 14,349 files, 56.5 MB, of which 19.5 MB
  are the character-set tables of `iconvdata/`. The default is the whole tree, which the
  filters bring to 14,274 files and 36.2 million characters; `glibc:malloc,stdio-common`
  picks folders. It holds 471 distinct non-ASCII characters (797 occurrences in all, in
  locale test strings and comments), so the vocabulary of the whole corpus has 569
  characters, most of them seen once or twice.
* `"tex"`: the plain-TeX sources of the PARI/GP manuals (`pari-doc` 2.15.2-1, GPL-2+,
  8.2 MB package): all 18 `usr/share/pari/doc/*.tex` files, 2.95 MB, ASCII.

`"tex"` is not the lecture's corpus. The Stacks project is 16 MB of LaTeX algebraic geometry
written as a book of `\\begin{lemma}` ... `\\end{lemma}`, `\\begin{proof}` environments and
`\\ref`s; neither registry carries it, nor any other sizeable body of mathematical LaTeX.
pari-doc is the nearest thing: a software manual (number theory, ~3 MB) in *plain* TeX,
with `\\def` macros instead of environments, `\\subsec{name$(x,\\{flag\\})$}` entries for
every function, and GP sessions between `\\bprog` and `@eprog` (code and its output, not
proofs). Only `tutorial-mf.tex` (the modular forms tutorial, 86 kB) is LaTeX. The files
are kept whole and in reading order rather than by name, so that a slice from the start
(`--max-chars`) is prose, not macro definitions: the User's Guide (`users.tex`, its
chapters `usersch1` ... `usersch8`, appendices `appb`, `appd`), the two tutorials, the
developer's guide, the reference card, then the macro files (`parimacro`, `pdfmacs`,
`paricfg`).

The C sources are read as the other corpora are: files in sorted order of their path
inside the tree, decoded as UTF-8 with `\\n` newlines, joined with one blank line. Three
kinds of file are left out, because a character model would spend its capacity on them:

* files that are not valid UTF-8: none in Linux 6.1; in glibc 11 test files (40 kB) of
  EUC-JP or Latin-1 test strings, which would decode to U+FFFD noise;
* files over 1 MB, judged by their size alone (they are never decompressed into memory):
  85 in Linux, 352 MB, almost all generated AMD GPU register headers (`*_sh_mask.h`, up
  to 24 MB each) plus crypto test vectors; 3 character-set tables in glibc, 5.6 MB;
* tables: files over 16 kB in which numbers are more than a quarter of the
  whitespace-separated words (register maps, character-set and math tables, test
  vectors). Ordinary C has 1-8% numbers, register headers 30% and more. 1,206 files in
  Linux (103 MB), 61 in glibc (14.6 MB).

Together they drop 39% of the kernel's C bytes (23 files, 3.5%, of the default selection)
and 36% of glibc's.

Each assembled text is cached (`cache_dir()/corpora/`), so only the first call reads the
package: 30 s for the default Linux selection and 1-2 minutes for `linux:all` (the whole
1.4 GB tarball is decompressed whatever the selection), 3-8 s for glibc, under a second
for pari-doc. Later calls read the text file: under a second (25-35 s for `linux:all`).

Imports from rnn_toolkit: data.
"""

import hashlib
import re
import tarfile
import typing

from rnn_toolkit.data import cache, sword
from rnn_toolkit.data.corpora import _decode, _join_documents

LINUX_PACKAGE = (
    "linux-source-6.1", "6.1.176-1", "9305d1a151b8e83dcb88aa11361e7b9513f0c252bdf7f5647e4542762d99c094"
)
"""Debian package, version and sha256 of the Linux source (139,131,140 bytes)."""

GLIBC_PACKAGE = (
    "glibc-source", "2.36-9+deb12u14", "8e9f57b1df23396b05cf5b1561fd83bd53dc01b86432fd2dc75ab7b48645c3b2"
)
"""Debian package, version and sha256 of the GNU C library source (20,486,104 bytes)."""

PARI_DOC_PACKAGE = (
    "pari-doc", "2.15.2-1", "6806e4ab123811d7234dd3330941a0ab777562708109ccbce7fc8907226deddc"
)
"""Debian package, version and sha256 of the PARI/GP documentation (8,226,444 bytes)."""

SOURCE_CORPUS_NAMES = ("linux", "glibc", "tex")
"""The corpora of this module, as `load_corpus` names them."""

LINUX_DEFAULT_SUBTREES = ("include/linux", "kernel", "mm")
"""The folders of the kernel tree that `"linux"` means: 33.4 MB of C after the filters."""

ALL = "all"
"""The subtree selection meaning the whole tree: `"linux:all"`."""

# Where each package keeps its source tarball, and the one folder every path inside it
# starts with.
_LINUX_TARBALL = ("usr/src/linux-source-6.1.tar.xz", "linux-source-6.1")
_GLIBC_TARBALL = ("usr/src/glibc/glibc-2.36.tar.xz", "glibc-2.36")
_PARI_DOC_FOLDER = "usr/share/pari/doc/"
# Reading order of pari-doc's files (see the module docstring); others follow by name.
_PARI_READING_ORDER = (
    "users.tex", *(f"usersch{chapter}.tex" for chapter in range(1, 9)), "appb.tex", "appd.tex",
    "tutorial.tex", "tutorial-mf.tex", "develop.tex", "refcard.tex",
    "parimacro.tex", "pdfmacs.tex", "paricfg.tex",
)

# Bump when the selection or assembly of a text changes, so that a stale cached text is
# never mistaken for the new one.
_TEXT_REVISION = 1
_C_SUFFIXES = (".c", ".h")
_MAX_FILE_BYTES = 1_000_000
_TABLE_MIN_BYTES = 16_000
_TABLE_NUMBER_SHARE = 0.25
_NUMBER = re.compile(rb"0[xX][0-9a-fA-F]+|\b[0-9]+\b")
_SUBTREE_PART = re.compile(r"[A-Za-z0-9_.+@=-]+")


class SourceCorpus(typing.NamedTuple):
    """A parsed source corpus name: `name` and its `subtrees`.

    `subtrees` is None for the corpus' default selection, `"all"` for the whole tree, or a
    sorted tuple of folders (or files) inside the tree, none inside another.
    """

    name: str
    subtrees: typing.Union[None, str, tuple]

    @property
    def spec(self):
        """The canonical way to write the corpus, e.g. `"linux:fs/ext4,kernel"`."""
        if self.subtrees is None:
            return self.name
        if self.subtrees == ALL:
            return f"{self.name}:{ALL}"
        return f"{self.name}:{','.join(self.subtrees)}"


def is_source_corpus(spec):
    """Whether `spec` names one of this module's corpora (`"linux"`, `"glibc:malloc"` ...).

    Only the name before `:` is looked at; `parse_source_corpus` checks the rest.
    """
    return isinstance(spec, str) and spec.partition(":")[0] in SOURCE_CORPUS_NAMES


def _normalise_subtree(entry, spec):
    subtree = entry.strip().strip("/")
    if subtree.startswith("./"):
        subtree = subtree[2:]
    parts = subtree.split("/")
    if not subtree or any(part in ("", ".", "..") or not _SUBTREE_PART.fullmatch(part) for part in parts):
        raise ValueError(
            f"Bad subtree {entry!r} in corpus {spec!r}: write folders (or files) of the source "
            "tree relative to its top, separated by commas, e.g. 'linux:kernel,mm,fs/ext4', "
            "or 'linux:all'."
        )
    return subtree


def parse_source_corpus(spec):
    """Parses `NAME[:SUBTREE,SUBTREE...]` for the corpora of this module.

    Args:
        spec: `"linux"`, `"glibc"` or `"tex"`; the first two may add `:all` or `:` and a
            comma-separated list of folders (or files) inside the source tree, such as
            `"linux:kernel,mm,fs/ext4"` or `"glibc:malloc"`.

    Returns:
        A `SourceCorpus`. Subtrees are sorted, duplicates and subtrees inside another one
        dropped, so equal selections give equal `SourceCorpus` values.

    Raises:
        ValueError: for an unknown name, subtrees given to `tex`, an empty or malformed
            subtree (absolute, `..`, empty), or `all` mixed with subtrees.

    Example:

    >>> from rnn_toolkit.data import parse_source_corpus
    >>> parse_source_corpus("linux:mm, kernel/,kernel/sched").spec
    'linux:kernel,mm'
    >>> parse_source_corpus("glibc").subtrees is None
    True
    """
    if not isinstance(spec, str):
        raise TypeError(f"A source corpus is named by a string, got {type(spec).__name__}.")
    name, colon, selection = spec.partition(":")
    if name not in SOURCE_CORPUS_NAMES:
        raise ValueError(f"Unknown source corpus {name!r}; known: {', '.join(SOURCE_CORPUS_NAMES)}.")
    if not colon:
        return SourceCorpus(name, None)
    if name == "tex":
        raise ValueError(f"The 'tex' corpus has no subtrees to choose from; got {spec!r}.")
    entries = selection.split(",")
    if [entry.strip() for entry in entries] == [ALL]:
        return SourceCorpus(name, ALL)
    subtrees = sorted({_normalise_subtree(entry, spec) for entry in entries})
    if ALL in subtrees:
        raise ValueError(f"'{ALL}' cannot be combined with subtrees in corpus {spec!r}.")
    # Sorted, a subtree inside another comes right after it (or after other subtrees
    # inside it), so comparing with the last kept one is enough.
    kept = []
    for subtree in subtrees:
        if not kept or not subtree.startswith(kept[-1] + "/"):
            kept.append(subtree)
    return SourceCorpus(name, tuple(kept))


def _cached_text_path(package, selection):
    """The cache file of one selection of a package's tree: readable, and unambiguous."""
    name, version, _ = package
    canonical = ",".join(selection) if isinstance(selection, tuple) else selection
    readable = canonical.replace("/", "_")[:60]
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]
    return cache.cached_path(f"corpora/{name}-{version}-r{_TEXT_REVISION}-{readable}-{digest}.txt")


def _fetch(package, corpus):
    name, version, _ = package
    try:
        return cache.fetch_debian_package(*package)
    except RuntimeError as error:
        raise RuntimeError(
            f"The {corpus!r} corpus needs the Debian package {name}={version}, which could not "
            f"be downloaded.\n{error}"
        ) from error


def _skip_reason(data):
    """Why a C file is left out of a corpus, or None to keep it (see the module docstring)."""
    if len(data) > _MAX_FILE_BYTES:
        return "over 1 MB"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if len(data) > _TABLE_MIN_BYTES:
        words = len(data.split())
        if words and len(_NUMBER.findall(data)) > _TABLE_NUMBER_SHARE * words:
            return "a table"
    return None


def _under(path, subtrees):
    return subtrees == ALL or any(path == s or path.startswith(s + "/") for s in subtrees)


def read_source_tree(deb_path, tarball, subtrees):
    """The C files of a source package's tarball, streamed: nothing is extracted to disk.

    Args:
        deb_path: the `.deb` holding the tarball.
        tarball: `(path of the tarball in the package, its top folder)`.
        subtrees: `"all"` or a tuple of folders or files inside the top folder.

    Returns:
        `(documents, skipped, folders)`: a dict from path (inside the top folder) to the
        decoded text of each kept `.c`/`.h` file, a dict from each left-out file's path
        to `(bytes, reason)`, and the sorted top-level folders holding C files.

    Raises:
        ValueError: if the package holds no such tarball, or a subtree holds no kept file
            (the message names it, and the tree's top-level folders).
    """
    inner_path, top = tarball
    documents, skipped, folders = {}, {}, set()
    found = False
    for path, open_member in sword.deb_file_streams(deb_path):
        if path != inner_path:
            continue
        found = True
        with tarfile.open(fileobj=open_member(), mode="r|*") as archive:
            for member in archive:
                head, _, relative = member.name.removeprefix("./").partition("/")
                if not (member.isfile() and head == top and relative.endswith(_C_SUFFIXES)):
                    continue
                if "/" in relative:
                    folders.add(relative.partition("/")[0])
                if not _under(relative, subtrees):
                    continue
                if member.size > _MAX_FILE_BYTES:  # no need to decompress it into memory
                    skipped[relative] = (member.size, "over 1 MB")
                    continue
                data = archive.extractfile(member).read()
                reason = _skip_reason(data)
                if reason is None:
                    documents[relative] = _decode(data)
                else:
                    skipped[relative] = (len(data), reason)
        break
    if not found:
        raise ValueError(f"{str(deb_path)!r} holds no {inner_path}; is it the right package?")
    if subtrees != ALL:
        for subtree in subtrees:
            if not any(_under(path, (subtree,)) for path in documents):
                left_out = [path for path in skipped if _under(path, (subtree,))]
                because = (
                    f"its {len(left_out)} .c/.h files were all left out (tables, over 1 MB or not UTF-8)"
                    if left_out else "it holds no .c or .h file"
                )
                raise ValueError(
                    f"Subtree {subtree!r} of {top}: {because}. Top-level folders with C files: "
                    f"{', '.join(sorted(folders))}."
                )
    return documents, skipped, sorted(folders)


def _source_tree_text(package, tarball, subtrees, corpus):
    path = _cached_text_path(package, subtrees)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    deb = _fetch(package, corpus)
    documents, _, _ = read_source_tree(deb, tarball, subtrees)
    text = _join_documents(documents[name] for name in sorted(documents))
    del documents  # `linux:all`: 0.7 GB that need not outlive the joined text
    if not text:
        raise ValueError(f"The {corpus!r} corpus is empty: {deb} holds no kept .c/.h file.")
    cache.write_atomically(path, text)
    return text


def _selection(name, subtrees):
    if subtrees is None:
        return None
    if isinstance(subtrees, str):
        return parse_source_corpus(f"{name}:{subtrees}").subtrees
    if not subtrees or isinstance(subtrees, (bytes, dict)) or not all(isinstance(s, str) for s in subtrees):
        raise ValueError(f"`subtrees` must be None, 'all' or a non-empty list of paths; got {subtrees!r}.")
    return parse_source_corpus(f"{name}:{','.join(subtrees)}").subtrees


def linux_source_text(subtrees=None):
    """The C of Linux 6.1 (`linux-source-6.1`), or of some folders of it, as one string.

    See the module docstring for what is kept. The first call for a selection decompresses
    the whole kernel tarball (30-60 s) and caches the text; later calls read it.

    Args:
        subtrees: None for `LINUX_DEFAULT_SUBTREES`, `"all"` for the whole tree, or folders
            (or files) of the tree such as `["kernel", "fs/ext4"]` (or `"kernel,fs/ext4"`).

    Returns:
        The `.c` and `.h` files in sorted path order, joined with blank lines.

    Raises:
        RuntimeError: if the package cannot be downloaded.
        ValueError: for a malformed subtree, one holding no kept file, or a download whose
            sha256 does not match.
    """
    selection = _selection("linux", subtrees) or LINUX_DEFAULT_SUBTREES
    return _source_tree_text(LINUX_PACKAGE, _LINUX_TARBALL, selection, "linux")


def glibc_source_text(subtrees=None):
    """The C of the GNU C library 2.36 (`glibc-source`), or of some folders of it.

    See the module docstring for what is kept. The first call for a selection takes
    3-8 s and caches the text; later calls read it.

    Args:
        subtrees: None or `"all"` for the whole tree, or folders (or files) such as
            `["malloc", "stdio-common"]` (or `"malloc,stdio-common"`).

    Returns:
        The `.c` and `.h` files in sorted path order, joined with blank lines.

    Raises:
        RuntimeError: if the package cannot be downloaded.
        ValueError: for a malformed subtree, one holding no kept file, or a download whose
            sha256 does not match.
    """
    selection = _selection("glibc", subtrees) or ALL
    return _source_tree_text(GLIBC_PACKAGE, _GLIBC_TARBALL, selection, "glibc")


def _pari_order(filename):
    if filename in _PARI_READING_ORDER:
        return (0, _PARI_READING_ORDER.index(filename), filename)
    return (1, 0, filename)


def pari_tex_text():
    """The plain-TeX sources of the PARI/GP manuals (`pari-doc` 2.15.2-1) as one string.

    All 18 `usr/share/pari/doc/*.tex` files, whole, in reading order (see the module
    docstring for the order and for how this differs from the lecture's LaTeX corpus),
    joined with blank lines: 2.95 million ASCII characters. Cached after the first call.

    Returns:
        The corpus text.

    Raises:
        RuntimeError: if the package cannot be downloaded.
        ValueError: if the package holds no `.tex` file there, or its sha256 does not match.
    """
    path = _cached_text_path(PARI_DOC_PACKAGE, "tex")
    if path.is_file():
        return path.read_text(encoding="utf-8")
    deb = _fetch(PARI_DOC_PACKAGE, "tex")
    files = {}
    for member_path, read in sword.deb_files(deb):
        folder, _, filename = member_path.rpartition("/")
        if folder + "/" == _PARI_DOC_FOLDER and filename.endswith(".tex"):
            files[filename] = read()
    if not files:
        raise ValueError(f"{deb} holds no {_PARI_DOC_FOLDER}*.tex file; is it pari-doc?")
    text = _join_documents(_decode(files[name]) for name in sorted(files, key=_pari_order))
    cache.write_atomically(path, text)
    return text


def source_corpus_text(spec):
    """The text of a corpus named `"linux[:SUBTREES]"`, `"glibc[:SUBTREES]"` or `"tex"`.

    Args:
        spec: see `parse_source_corpus`.

    Returns:
        The corpus text (see `linux_source_text`, `glibc_source_text`, `pari_tex_text`).

    Raises:
        RuntimeError: if the package cannot be downloaded.
        ValueError: for a bad name or subtree, or a subtree holding no kept file.
    """
    corpus = parse_source_corpus(spec)
    if corpus.name == "linux":
        return linux_source_text(corpus.subtrees)
    if corpus.name == "glibc":
        return glibc_source_text(corpus.subtrees)
    return pari_tex_text()
