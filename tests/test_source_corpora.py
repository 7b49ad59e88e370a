"""The Linux, glibc and pari-doc corpora, read from small fabricated Debian packages.

The real packages (139 MB, 20 MB, 8 MB) are never downloaded here: each test builds a tiny
`.deb` with the real package's layout, puts it in a temporary cache and pins its sha256.
"""

import hashlib
import io
import re
import tarfile

import pytest

from rnn_toolkit.data import cache, load_corpus, source_corpora, sword
from rnn_toolkit.data.source_corpora import (
    glibc_source_text,
    linux_source_text,
    pari_tex_text,
    parse_source_corpus,
    source_corpus_text,
)

# Ordinary C (few numbers), a register table (a number in every other word) and one file
# just over the 1 MB limit.
C_FILE = b"static int answer(void)\n{\n\treturn 42;\n}\n"
TABLE = b"".join(b"#define REG_%d 0x%08x\n" % (i, i * 16) for i in range(1200))
HUGE = b"/* padding */\n" * 80_000

LINUX_FILES = {
    "include/linux/list.h": b"#ifndef _LINUX_LIST_H\n#define _LINUX_LIST_H\n#endif\n",
    "include/linux/mfd/regs.h": TABLE,
    "include/uapi/linux/types.h": b"typedef int __s32;\n",
    "kernel/fork.c": C_FILE,
    "kernel/sched/fair.c": b"/* CFS */\r\nvoid tick(void) {}\r\n",
    "kernel/Makefile": b"obj-y = fork.o\n",
    "mm/slab.c": b"\n\nvoid *kmalloc(size_t n);\n\n\n",
    "mm/huge.c": HUGE,
    "fs/ext4/inode.c": b"int ext4_iget(void);\n",
    "fs/ext4/README": b"ext4\n",
    "drivers/gpu/amd/asic_reg/mask.h": TABLE,
    "drivers/net/e1000.c": b"int e1000_probe(void);\n",
    "Documentation/process/howto.rst": b"How to\n",
    "README": b"Linux kernel\n",
}
GLIBC_FILES = {
    "malloc/malloc.c": b"void *\nmalloc (size_t n)\n{\n}\n",
    "malloc/arena.c": b"static int\narena_get (void)\n{\n}\n",
    "iconvdata/big5.c": TABLE,
    "localedata/tst-latin1.c": b"char *s = \"caf\xe9\";\n",
    "stdio-common/printf.c": b"int\nprintf (const char *f, ...)\n{\n}\n",
    "manual/intro.texi": b"@node Introduction\n",
}
PARI_FILES = {
    "usr/share/pari/doc/usersch1.tex": b"\\chapter{Overview}\n",
    "usr/share/pari/doc/users.tex": b"\\def\\TITLE{User's Guide}\n",
    "usr/share/pari/doc/appb.tex": b"\\appendix{Makefile}\n",
    "usr/share/pari/doc/parimacro.tex": b"\\def\\kbd#1{{\\tt #1}}\n",
    "usr/share/pari/doc/tutorial.tex": b"\\section{Tutorial}\n\\bprog\n? 1+1\n@eprog\n",
    "usr/share/pari/doc/zzz-extra.tex": b"\\bye\n",
    "usr/share/pari/doc/users.pdf": b"%PDF-1.4",
    "usr/share/pari/doc/examples/gp.tex": b"not a manual\n",
}


def _tar_xz(files, top=""):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, content in files.items():  # archive order is not path order
            info = tarfile.TarInfo(f"{top}{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return data.getvalue()


def _ar_member(name, body):
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode("ascii")
    return header + body + (b"\n" if len(body) % 2 else b"")


def write_deb(path, files):
    """A Debian package (an `ar` archive with a data.tar.xz) holding `files`."""
    data = _tar_xz({f"./{name}": content for name, content in files.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n") + _ar_member("control.tar.xz", b"x")
        + _ar_member("data.tar.xz", data)
    )
    return path


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Fake linux-source-6.1, glibc-source and pari-doc in a temporary cache, pinned by sha256.

    apt-get is never run: a test that reaches it fails with the message `apt-get ran`.
    """
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))

    def no_apt(package, version, destination, by_hand):
        raise RuntimeError(f"apt-get ran for {package}={version}")

    monkeypatch.setattr(cache, "_run_apt_get_download", no_apt)
    debs = {}
    for constant, files in (
        ("LINUX_PACKAGE", {"usr/src/linux-source-6.1.tar.xz": _tar_xz(LINUX_FILES, "linux-source-6.1/"),
                           "usr/share/doc/linux-source-6.1/copyright": b"GPL-2"}),
        ("GLIBC_PACKAGE", {"usr/src/glibc/glibc-2.36.tar.xz": _tar_xz(GLIBC_FILES, "glibc-2.36/")}),
        ("PARI_DOC_PACKAGE", PARI_FILES),
    ):
        name, version, _ = getattr(source_corpora, constant)
        deb = write_deb(tmp_path / "cache" / "debian" / f"{name}_{version}_all.deb", files)
        monkeypatch.setattr(source_corpora, constant, (name, version, hashlib.sha256(deb.read_bytes()).hexdigest()))
        debs[name] = deb
    return debs


def _joined(*documents):
    return "\n\n".join(document.strip("\n") for document in documents)


# --- Names and subtrees -------------------------------------------------------------------


def test_subtrees_are_normalised_so_equal_selections_compare_equal():
    assert parse_source_corpus("linux") == ("linux", None)
    assert parse_source_corpus("glibc:all") == ("glibc", "all")
    corpus = parse_source_corpus("linux: mm/ ,./kernel,kernel/sched,fs/ext4,mm")
    assert corpus.subtrees == ("fs/ext4", "kernel", "mm")
    assert corpus.spec == "linux:fs/ext4,kernel,mm"
    assert parse_source_corpus(corpus.spec) == corpus
    assert parse_source_corpus("tex").spec == "tex"


@pytest.mark.parametrize("spec, message", [
    ("linux:", "Bad subtree ''"),
    ("linux:kernel,,mm", "Bad subtree ''"),
    ("linux:../etc", "Bad subtree '../etc'"),
    ("linux:kernel/./sched", "Bad subtree"),
    ("glibc:malloc\\arena", "Bad subtree"),
    ("linux:all,kernel", "'all' cannot be combined"),
    ("tex:usersch3", "no subtrees"),
    ("freebsd:kern", "Unknown source corpus 'freebsd'"),
])
def test_bad_names_and_subtrees_are_refused_before_anything_is_read(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_source_corpus(spec)


def test_an_absolute_subtree_reads_as_one_inside_the_tree():
    # "/kernel" means the tree's kernel folder: there is no other root to climb to.
    assert parse_source_corpus("linux:/kernel").subtrees == ("kernel",)


# --- Linux ----------------------------------------------------------------------------------


def test_the_default_linux_corpus_is_the_core_kernel_c_in_sorted_order(packages):
    text = linux_source_text()
    # include/linux, kernel and mm only; the table and the 1 MB file left out; CRLF -> LF;
    # blank lines around a file dropped, one blank line between files.
    assert text == _joined(
        LINUX_FILES["include/linux/list.h"].decode(),
        C_FILE.decode(),
        "/* CFS */\nvoid tick(void) {}\n",
        "void *kmalloc(size_t n);",
    )
    assert text == load_corpus("linux") == source_corpus_text("linux:include/linux,kernel,mm")


def test_subtrees_pick_folders_and_files_of_the_tree(packages):
    assert linux_source_text(["fs/ext4", "drivers"]) == _joined(
        "int e1000_probe(void);", "int ext4_iget(void);"
    )
    assert load_corpus("linux:kernel/fork.c") == C_FILE.decode().strip("\n")
    everything = load_corpus("linux:all")
    for kept in ("typedef int __s32;", "int e1000_probe", "int ext4_iget", "return 42;"):
        assert kept in everything
    for left_out in ("REG_1 ", "padding", "obj-y", "How to", "Linux kernel"):
        assert left_out not in everything
    assert everything.index("int e1000_probe") < everything.index("int ext4_iget") < everything.index("_LINUX_LIST_H")


def test_the_text_is_cached_and_the_package_not_read_again(packages, monkeypatch):
    first = load_corpus("linux:mm,kernel")
    cached = list((cache.cache_dir() / "corpora").glob("linux-source-6.1-6.1.176-1-r*-kernel,mm-*.txt"))
    assert len(cached) == 1

    def refuse(*args):
        raise AssertionError("the package was read again instead of the cached text")

    monkeypatch.setattr(sword, "deb_file_streams", refuse)
    packages["linux-source-6.1"].unlink()
    assert load_corpus("linux:kernel/,mm") == first
    with pytest.raises(RuntimeError, match="apt-get ran"):  # another selection, another text
        load_corpus("linux:kernel,mm/slab.c")


def test_an_unknown_subtree_is_named_with_the_folders_there_are(packages):
    with pytest.raises(ValueError, match=r"'net'.*no \.c or \.h file.*drivers, fs, include, kernel, mm"):
        linux_source_text("kernel,net")
    with pytest.raises(ValueError, match=r"'drivers/gpu'.*1 \.c/\.h files were all left out"):
        load_corpus("linux:drivers/gpu")
    with pytest.raises(ValueError, match="'fs/ext4/README'"):
        load_corpus("linux:fs/ext4/README")
    with pytest.raises(ValueError, match="`subtrees`"):
        linux_source_text([])
    assert not list((cache.cache_dir() / "corpora").glob("linux-*"))


def test_the_tarball_is_streamed_not_read_whole(packages, monkeypatch):
    opened = []
    real = sword.deb_file_streams

    def spy(deb_path):
        for path, open_member in real(deb_path):
            def tracked(open_member=open_member, path=path):
                stream = open_member()
                opened.append((path, hasattr(stream, "read")))
                return stream
            yield path, tracked

    monkeypatch.setattr(sword, "deb_file_streams", spy)
    linux_source_text("kernel")
    assert opened == [("usr/src/linux-source-6.1.tar.xz", True)]  # other members never opened


def test_deb_files_still_reads_whole_members(packages):
    files = dict((path, read()) for path, read in sword.deb_files(packages["pari-doc"]))
    assert files["usr/share/pari/doc/appb.tex"] == PARI_FILES["usr/share/pari/doc/appb.tex"]
    streamed = {path: open_member().read() for path, open_member in sword.deb_file_streams(packages["pari-doc"])}
    assert streamed == files


# --- glibc and pari-doc ---------------------------------------------------------------------


def test_glibc_keeps_the_whole_tree_but_tables_and_files_that_are_not_utf8(packages):
    text = glibc_source_text()
    assert text == _joined(
        GLIBC_FILES["malloc/arena.c"].decode(), GLIBC_FILES["malloc/malloc.c"].decode(),
        GLIBC_FILES["stdio-common/printf.c"].decode(),
    )
    assert "\ufffd" not in text
    assert load_corpus("glibc:all") == load_corpus("glibc") == text
    assert load_corpus("glibc:malloc") == _joined(
        GLIBC_FILES["malloc/arena.c"].decode(), GLIBC_FILES["malloc/malloc.c"].decode()
    )


def test_pari_tex_is_every_tex_file_of_the_doc_folder_in_reading_order(packages):
    text = pari_tex_text()
    assert text == _joined(
        "\\def\\TITLE{User's Guide}", "\\chapter{Overview}", "\\appendix{Makefile}",
        "\\section{Tutorial}\n\\bprog\n? 1+1\n@eprog", "\\def\\kbd#1{{\\tt #1}}", "\\bye",
    )
    assert load_corpus("tex") == text
    packages["pari-doc"].unlink()
    assert pari_tex_text() == text  # from the cache


def test_a_failed_download_says_which_package_the_corpus_needs(packages):
    packages["glibc-source"].unlink()
    with pytest.raises(RuntimeError, match=r"'glibc' corpus needs the Debian package glibc-source=2\.36-9\+deb12u14(.|\n)*apt-get ran"):
        load_corpus("glibc:malloc")


def test_a_package_with_another_checksum_is_not_trusted(packages, monkeypatch):
    name, version, _ = source_corpora.PARI_DOC_PACKAGE
    monkeypatch.setattr(source_corpora, "PARI_DOC_PACKAGE", (name, version, "0" * 64))
    with pytest.raises(RuntimeError, match="apt-get ran for pari-doc"):
        pari_tex_text()


# --- The character language model -----------------------------------------------------------


def test_the_char_lm_knows_the_corpora_their_prompts_and_subtrees(packages, tmp_path):
    from rnn_toolkit.runs import RunSetupError
    from rnn_toolkit.tasks.char_lm.run import CORPUS_NAMES, CharLMRunConfig, corpus_source, load_split

    assert {"linux", "glibc", "tex"} <= set(CORPUS_NAMES)
    assert CharLMRunConfig(corpus="linux:kernel,mm").resolved_prompts() == ["static int ", "#include <"]
    assert CharLMRunConfig(corpus="glibc").resolved_prompts() == ["static int\n", "#include <"]
    assert CharLMRunConfig(corpus="tex").resolved_prompts() == ["\\subsec{", "\\bprog\n"]
    # run.json records a selection in one spelling, whatever the user typed.
    assert corpus_source("linux:mm/,kernel") == corpus_source("linux:kernel,mm") == "linux:kernel,mm"
    assert corpus_source("tex") == "tex"

    text, train, validation = load_split("glibc", max_chars=60, num_chunks=2)
    assert text == glibc_source_text()[:60] and len(validation) == 2
    with pytest.raises(RunSetupError, match="'net'") as error:
        load_split("linux:net")
    assert error.value.setting == "corpus"
    packages["linux-source-6.1"].unlink()
    with pytest.raises(RunSetupError, match="linux-source-6.1=6.1.176-1"):
        load_split("linux")


def test_train_char_lm_takes_a_source_corpus_on_the_command_line(packages):
    from cli_helpers import parse, task_config

    config = task_config(parse(["train", "char_lm", "--corpus", "glibc:malloc", "--max-chars", "200000"]))
    assert config.corpus == "glibc:malloc" and config.max_chars == 200000


# --- The real pari-doc (only when already in the cache: the tests never download it) -------


@pytest.mark.slow
def test_real_pari_doc(tmp_path, monkeypatch):
    # The real package (8 MB, fetched once into the user's cache), read into an empty cache
    # so that the text is assembled from the archive, not taken from a cached text.
    deb = cache.fetch_debian_package(*source_corpora.PARI_DOC_PACKAGE)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path))
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / deb.name).symlink_to(deb)
    text = pari_tex_text()
    assert len(text) == 2_952_953 and len(set(text)) == 96 and text.isascii()
    assert text.startswith("% Copyright (c) 2000  The PARI Group")
    assert text.count("\\subsec{") == 1731 and text.count("\\bprog") == 1941
    assert text.index("\\chapter{Overview") < text.index("\\documentclass") < text.index("\\gdef\\vers")
