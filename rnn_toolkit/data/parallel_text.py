"""Sentence pairs for translation (sequence to sequence).

Two real parallel corpora arrive without any internet beyond the Debian registry:

* `"bible"`: the King James Version (English, `sword-text-kjv`) and the Reina-Valera 1909
  (Spanish, `sword-text-sparv`), public-domain Bibles packaged as SWORD modules. Both use
  the KJV versification, so verse slot i of one is verse slot i of the other: 31,084
  verse pairs. Book titles ("The First Book of Moses, called Genesis" / "Génesis") are
  left out, being names rather than translations. Where the two traditions number verses
  differently (Job 39-41) osis2mod keeps the Spanish numbering, so a few dozen pairs there
  are neighbouring verses rather than translations.
* `"gcc"`: the messages of GCC 12 and its preprocessor with their Spanish (or other)
  translations, read from the gettext catalogues of `gcc-12-locales`: 8,653 short technical
  sentences full of format directives (`%qs`, `%<...%>`), an out-of-domain test for a
  model trained on the Bible.

A user's own data loads the same way through `load_parallel`: a tab-separated file of
pairs (the Anki / Tatoeba format `source<TAB>target<TAB>attribution`), gettext `.mo`
catalogues, or a TensorFlow Datasets translation dataset such as
`tfds:ted_hrlr_translate/pt_to_en` once prepared on the machine.
"""

import dataclasses
import gettext
import io
import json
import pathlib
import re
import struct
import tempfile

import numpy as np

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import cache
from rnn_toolkit.data.reviews import TFDS_PREFIX, holdout_split
from rnn_toolkit.data.sword import read_deb_members, read_ztext
from rnn_toolkit.data.tfds_prepared import load_prepared

# Language code -> (Debian package, version, sha256 of the .deb, SWORD module).
BIBLES = {
    "en": (
        "sword-text-kjv", "14.3-1",
        "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57", "engKJV2006eb",
    ),
    "es": (
        "sword-text-sparv", "2.60-1",
        "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf", "spaRV1909eb",
    ),
}
"""The Bible translations `bible_verse_pairs` can pair, by language code."""

GCC_LOCALES_PACKAGE = (
    "gcc-12-locales", "12.2.0-14+deb12u1",
    "a701516b5e34086f478b0a329dfd9dd8e1695e8bac5917a6b162a87719abe28f",
)
"""Debian package, version and sha256 of the GCC 12 message catalogues."""

_SWORD_MODULES = "usr/share/sword/modules/texts/ztext/"
_LOCALE = "usr/share/locale/"
# Bump when the verse text extracted from a module changes (markup rules, headings), so a
# stale cached verse list is never mistaken for the new one.
_VERSE_CACHE_REVISION = 1
# `ted_hrlr_translate/pt_to_en`, `wmt14_translate/de-en`: the config name gives the direction.
_CONFIG_DIRECTION = re.compile(r"^([A-Za-z_]+?)(?:_to_|-)([A-Za-z_]+)$")

_SOURCE_FORMS = (
    "'bible' or 'bible:SRC-TGT' (e.g. 'bible:es-en'), 'gcc' or 'gcc:LANG', "
    "'tfds:NAME[:SPLIT]', a .tsv/.txt file of pairs or a .mo catalogue"
)


@dataclasses.dataclass(frozen=True)
class ParallelTexts:
    """Sentence pairs: `sources[i]` translates to `targets[i]`.

    Attributes:
        sources: tuple of `n` source-language strings.
        targets: tuple of `n` target-language strings.
        source_language, target_language: language codes such as `"en"` (empty if unknown).
        name: where the pairs came from, for run records.

    Example:

    >>> from rnn_toolkit.data.parallel_text import ParallelTexts
    >>> pairs = ParallelTexts(("Hello.", "Thank you."), ("Hola.", "Gracias."), "en", "es", "demo")
    >>> len(pairs), pairs.reversed().sources, pairs.reversed().target_language
    (2, ('Hola.', 'Gracias.'), 'en')
    >>> pairs.subset([1]).targets
    ('Gracias.',)
    """

    sources: tuple
    targets: tuple
    source_language: str = ""
    target_language: str = ""
    name: str = ""

    def __post_init__(self):
        # Frozen: conversion to tuples goes through object.__setattr__.
        for field in ("sources", "targets"):
            value = getattr(self, field)
            if isinstance(value, (str, bytes)):
                raise TypeError(f"`{field}` must be a sequence of strings, not one {type(value).__name__}.")
            value = tuple(value)
            bad = next((s for s in value if not isinstance(s, str)), None)
            if bad is not None:
                raise TypeError(
                    f"`{field}` must hold strings; found a {type(bad).__name__}: {bad!r:.60}."
                )
            object.__setattr__(self, field, value)
        if len(self.sources) != len(self.targets):
            raise ValueError(
                f"`sources` and `targets` must have the same length; got {len(self.sources)} "
                f"sources and {len(self.targets)} targets."
            )
        for field in ("source_language", "target_language", "name"):
            if not isinstance(getattr(self, field), str):
                raise TypeError(f"`{field}` must be a string; received {getattr(self, field)!r}.")

    def __len__(self):
        return len(self.sources)

    def subset(self, indices):
        """The pairs at `indices` (an int array), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(
            self,
            sources=tuple(self.sources[i] for i in indices),
            targets=tuple(self.targets[i] for i in indices),
        )

    def reversed(self):
        """The same pairs translated the other way (targets become sources)."""
        return dataclasses.replace(
            self,
            sources=self.targets,
            targets=self.sources,
            source_language=self.target_language,
            target_language=self.source_language,
        )

    def filter(self, predicate):
        """The pairs for which `predicate(source, target)` is true, in order.

        Example:

        >>> from rnn_toolkit.data.parallel_text import ParallelTexts
        >>> pairs = ParallelTexts(("Go.", "I am at home now."), ("Ve.", "Ahora estoy en casa."))
        >>> pairs.filter(lambda source, target: len(source.split()) <= 3).sources
        ('Go.',)
        """
        keep = [i for i, pair in enumerate(zip(self.sources, self.targets)) if predicate(*pair)]
        return self.subset(keep)

    def concatenate(self, other):
        """These pairs followed by `other`'s, which must have the same languages."""
        if (self.source_language, self.target_language) != (
            other.source_language, other.target_language
        ):
            raise ValueError(
                f"Cannot concatenate {self.source_language or '?'}->{self.target_language or '?'} "
                f"pairs with {other.source_language or '?'}->{other.target_language or '?'} "
                "pairs; call `.reversed()` on one if only the direction differs."
            )
        return dataclasses.replace(
            self,
            sources=self.sources + other.sources,
            targets=self.targets + other.targets,
            name=f"{self.name}+{other.name}",
        )


# --- The two built-in corpora ------------------------------------------------------------


def _bible_verses(language):
    """Every verse slot of one Bible (headings blank), cached as JSON after the first read."""
    package, version, sha256, module = BIBLES[language]
    path = cache.cached_path(
        f"parallel/bible/{module}-{sha256[:12]}-r{_VERSE_CACHE_REVISION}.json"
    )
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    deb = cache.fetch_debian_package(package, version, sha256)
    members = read_deb_members(deb, f"{_SWORD_MODULES}{module}/")
    if not members:
        raise ValueError(f"{deb.name} holds no SWORD module {module!r} under {_SWORD_MODULES}.")
    with tempfile.TemporaryDirectory() as folder:
        for member, data in members.items():
            (pathlib.Path(folder) / pathlib.PurePosixPath(member).name).write_bytes(data)
        verses = read_ztext(folder, headings=False)
    cache.write_atomically(path, json.dumps(verses, ensure_ascii=False))
    return verses


def bible_verse_pairs(source_language="en", target_language="es"):
    """The verses of two Bible translations, paired by verse number.

    Downloads the two pinned Debian packages once (sha256-checked) and caches their verse
    lists as JSON, so later calls read two files and take well under a second.

    Args:
        source_language, target_language: two different codes of `BIBLES` (`"en"`: King
            James Version, `"es"`: Reina-Valera 1909); either direction.

    Returns:
        `ParallelTexts` of the verses present in both (31,084 for English-Spanish), in
        canonical order from Genesis 1:1; `name` is e.g. `"bible:en-es"`.

    Example:

    >>> from rnn_toolkit.data.parallel_text import bible_verse_pairs
    >>> pairs = bible_verse_pairs("en", "es")  # doctest: +SKIP
    >>> pairs.sources[0], pairs.targets[0]  # doctest: +SKIP
    ('In the beginning God created the heaven and the earth.', 'EN el principio crió Dios los cielos y la tierra.')
    """
    for argument, language in (("source_language", source_language),
                               ("target_language", target_language)):
        if language not in BIBLES:
            raise ValueError(
                f"`{argument}` must be one of the Bible languages {sorted(BIBLES)}; "
                f"received {argument}={language!r}."
            )
    if source_language == target_language:
        raise ValueError(
            f"`source_language` and `target_language` must differ; both are {source_language!r}."
        )
    source_verses = _bible_verses(source_language)
    target_verses = _bible_verses(target_language)
    if len(source_verses) != len(target_verses):
        raise ValueError(
            f"The {source_language} and {target_language} Bibles have different versifications "
            f"({len(source_verses)} and {len(target_verses)} slots); verses cannot be paired."
        )
    kept = [(s, t) for s, t in zip(source_verses, target_verses) if s and t]
    return ParallelTexts(
        sources=tuple(s for s, _ in kept),
        targets=tuple(t for _, t in kept),
        source_language=source_language,
        target_language=target_language,
        name=f"bible:{source_language}-{target_language}",
    )


def _catalogue_pairs(file, name):
    """(language from the header or None, [(msgid, translation), ...]) of one `.mo` file."""
    try:
        translations = gettext.GNUTranslations(file)
    except (OSError, UnicodeDecodeError, struct.error) as error:
        raise ValueError(f"{name!r} is not a readable gettext .mo catalogue: {error}") from None
    pairs = []
    for key, translation in translations._catalog.items():
        if isinstance(key, tuple):
            # Plural forms: the catalogue keeps the singular msgid with each form's
            # translation (the English plural is not stored); form 0 is the singular.
            key, form = key
            if form != 0:
                continue
        key = key.rpartition("\x04")[2]  # drop a msgctxt
        if key and translation and translation != key:
            pairs.append((key, translation))
    language = translations.info().get("language", "").strip() or None
    return language, pairs


def _gettext_texts(catalogues, source_language, target_language, name):
    """Pairs from `(name, binary file)` catalogues, deduplicated on the source message."""
    sources, targets, seen, languages = [], [], set(), set()
    for catalogue_name, file in catalogues:
        language, pairs = _catalogue_pairs(file, catalogue_name)
        if language:
            languages.add(language)
        for source, target in pairs:
            if source not in seen:
                seen.add(source)
                sources.append(source)
                targets.append(target)
    if target_language is None:
        if len(languages) != 1:
            raise ValueError(
                f"Pass `target_language`: the catalogues' headers name "
                f"{sorted(languages) or 'no language'}."
            )
        target_language = languages.pop()
    return ParallelTexts(tuple(sources), tuple(targets), source_language, target_language, name)


def gettext_pairs(mo_files, *, source_language="en", target_language=None):
    """Message pairs from compiled gettext catalogues (`.mo` files).

    A catalogue maps each original message (English, by convention) to its translation.
    The header entry, untranslated messages and messages translated as themselves are
    skipped; a message found in several catalogues keeps its first translation. Format
    directives (`%s`, `%qs`, `{name}`) and newlines are kept as they are.

    Args:
        mo_files: a `.mo` path or a list of them.
        source_language: the language of the original messages.
        target_language: the translations' language (default: the catalogues'
            `Language:` header).

    Returns:
        `ParallelTexts`, `name` listing the files.
    """
    if isinstance(mo_files, (str, pathlib.PurePath)):
        mo_files = [mo_files]
    paths = [pathlib.Path(p) for p in mo_files]
    if not paths:
        raise ValueError("`mo_files` must name at least one .mo file.")
    catalogues = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"`mo_files`: {str(path)!r} is not a file.")
        catalogues.append((str(path), io.BytesIO(path.read_bytes())))
    return _gettext_texts(
        catalogues, source_language, target_language, ",".join(str(p) for p in paths)
    )


def gcc_messages(target_language="es"):
    """GCC 12's compiler and preprocessor messages, English to `target_language`.

    Downloads the pinned `gcc-12-locales` Debian package once (1.7 MB, sha256-checked,
    cached). Spanish gives 8,653 pairs (8,413 from `gcc-12.mo`, 240 more from `cpplib-12.mo`).

    Args:
        target_language: a locale folder of the package, e.g. `"es"`, `"fr"`, `"pt_BR"`.

    Returns:
        `ParallelTexts` named `"gcc:LANG"`.

    Example:

    >>> from rnn_toolkit.data.parallel_text import gcc_messages
    >>> len(gcc_messages("es"))  # doctest: +SKIP
    8653
    """
    deb = cache.fetch_debian_package(*GCC_LOCALES_PACKAGE)
    members = read_deb_members(deb, _LOCALE)
    by_language = {}
    for member, data in sorted(members.items()):
        parts = pathlib.PurePosixPath(member).relative_to(_LOCALE).parts
        if len(parts) == 3 and parts[1] == "LC_MESSAGES" and parts[2].endswith(".mo"):
            by_language.setdefault(parts[0], []).append((parts[2], data))
    if target_language not in by_language:
        raise ValueError(
            f"`target_language` must be one of the languages of {deb.name}: "
            f"{sorted(by_language)}; received target_language={target_language!r}."
        )
    # The compiler's own catalogue first: its translations win over the preprocessor's.
    files = sorted(by_language[target_language], key=lambda item: not item[0].startswith("gcc"))
    return _gettext_texts(
        [(name, io.BytesIO(data)) for name, data in files],
        "en", target_language, f"gcc:{target_language}",
    )


# --- A user's own data ---------------------------------------------------------------------


def read_parallel_table(
    path, *, source_column=0, target_column=1, delimiter="\t", header=False,
    source_language=None, target_language=None,
):
    """Reads sentence pairs from a delimited text file, one pair a line.

    The default fits the Anki / Tatoeba files (`spa.txt` from manythings.org): no header,
    `source<TAB>target<TAB>attribution`. Fields are taken literally (no CSV quoting: such
    files hold unbalanced quotes) and stripped of surrounding spaces. Blank lines and pairs
    with an empty side are skipped.

    Args:
        path: the file, read as UTF-8 (a BOM is ignored, invalid bytes become U+FFFD).
        source_column, target_column: the columns holding the two sides.
        delimiter: the field separator.
        header: whether the first line is a header; its cells in the two columns then name
            the languages unless `source_language` / `target_language` are given.
        source_language, target_language: language codes to record (default: empty).

    Returns:
        `ParallelTexts` named after the file.

    Raises:
        ValueError: naming the file and line if a line has too few columns.

    Example:

    >>> import pathlib, tempfile
    >>> from rnn_toolkit.data.parallel_text import read_parallel_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "spa.txt"
    >>> _ = path.write_text("Go.\\tVe.\\tCC-BY 2.0 (France)\\n\\nHi.\\tHola.\\n", encoding="utf-8")
    >>> pairs = read_parallel_table(path, source_language="en", target_language="es")
    >>> pairs.sources, pairs.targets
    (('Go.', 'Hi.'), ('Ve.', 'Hola.'))
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` must be a file of sentence pairs; {str(path)!r} is not a file.")
    columns = {"source_column": source_column, "target_column": target_column}
    for argument, column in columns.items():
        if isinstance(column, bool) or not isinstance(column, int) or column < 0:
            raise ValueError(f"`{argument}` must be a column number >= 0; received {argument}={column!r}.")
    if source_column == target_column:
        raise ValueError(f"`source_column` and `target_column` are both {source_column}.")
    if not isinstance(delimiter, str) or not delimiter:
        raise ValueError(f"`delimiter` must be a non-empty string; received delimiter={delimiter!r}.")
    width = max(source_column, target_column) + 1
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    sources, targets = [], []
    header_cells = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) < width:
            raise ValueError(
                f"{str(path)!r} line {number}: expected at least {width} fields separated by "
                f"{delimiter!r}, found {len(fields)} (pass `delimiter` or the column numbers "
                "if the file is laid out differently)."
            )
        source, target = fields[source_column].strip(), fields[target_column].strip()
        if header and header_cells is None:
            header_cells = (source, target)
            continue
        if source and target:
            sources.append(source)
            targets.append(target)
    if not sources:
        raise ValueError(f"{str(path)!r} holds no sentence pairs.")
    if header_cells is not None:
        source_language = header_cells[0] if source_language is None else source_language
        target_language = header_cells[1] if target_language is None else target_language
    return ParallelTexts(
        tuple(sources), tuple(targets), source_language or "", target_language or "", str(path)
    )


def _tfds_direction(name, info):
    """The (source, target) features of a TFDS translation dataset, or None."""
    keys = info.supervised_keys
    if isinstance(keys, (tuple, list)) and len(keys) >= 2 and all(
        isinstance(key, str) for key in keys[:2]
    ):
        return tuple(keys[:2])
    config = name.partition("/")[2].partition(":")[0]
    match = _CONFIG_DIRECTION.match(config)
    if match:
        return match.groups()
    languages = getattr(info.features, "languages", None)
    if languages and len(languages) == 2:
        return tuple(languages)
    return None


def tfds_parallel_texts(name, *, split="train", source_key=None, target_key=None, data_dir=None):
    """Reads a TensorFlow Datasets translation dataset prepared on this machine.

    Never downloads (`download=False`): without internet `tfds.load` would retry for
    minutes. Prepare it first where there is internet, or copy its data folder here.

    Args:
        name: the TFDS name with its config, e.g. `"ted_hrlr_translate/pt_to_en"`.
        split: the split, e.g. `"train"` or `"validation[:10%]"`.
        source_key, target_key: the text features of the two sides (default: the dataset's
            `supervised_keys`, else the direction in the config name, `pt_to_en` or `de-en`).
        data_dir: TFDS data folder (default: TFDS's own).

    Returns:
        `ParallelTexts` whose languages are the feature names, named `"tfds:NAME:SPLIT"`.

    Example:

    >>> from rnn_toolkit.data.parallel_text import tfds_parallel_texts
    >>> pairs = tfds_parallel_texts("ted_hrlr_translate/pt_to_en")  # doctest: +SKIP
    >>> pairs.source_language, pairs.target_language  # doctest: +SKIP
    ('pt', 'en')
    """
    import tensorflow_datasets as tfds  # heavy, and only this path needs it

    dataset, info = load_prepared(name, split=split, data_dir=data_dir)
    if source_key is None or target_key is None:
        direction = _tfds_direction(name, info)
        if direction is None:
            raise ValueError(
                f"Cannot tell the translation direction of TFDS dataset {name!r}; pass "
                f"`source_key` and `target_key` (features: {sorted(dataset.element_spec)})."
            )
        source_key = direction[0] if source_key is None else source_key
        target_key = direction[1] if target_key is None else target_key
    for argument, key in (("source_key", source_key), ("target_key", target_key)):
        if key not in dataset.element_spec:
            raise ValueError(
                f"`{argument}`={key!r} is not a feature of TFDS dataset {name!r}; it has "
                f"{sorted(dataset.element_spec)}."
            )
    sources, targets = [], []
    for example in tfds.as_numpy(dataset):
        sources.append(example[source_key].decode("utf-8", errors="replace"))
        targets.append(example[target_key].decode("utf-8", errors="replace"))
    return ParallelTexts(
        tuple(sources), tuple(targets), source_key, target_key, f"{TFDS_PREFIX}{name}:{split}"
    )


def load_parallel(source, **kwargs):
    """Loads sentence pairs by name or path.

    Args:
        source: `"bible"` (31,084 English-Spanish verse pairs; `"bible:es-en"` the other
            way), `"gcc"` (8,653 GCC messages, English to Spanish; `"gcc:fr"` to French),
            `"tfds:NAME[:SPLIT]"` (a prepared TFDS dataset, e.g.
            `"tfds:ted_hrlr_translate/pt_to_en:validation"`), a `.tsv`/`.txt` file of pairs
            or a gettext `.mo` catalogue.
        **kwargs: passed to the reader (`read_parallel_table`, `gettext_pairs` or
            `tfds_parallel_texts`).

    Returns:
        `ParallelTexts`.

    Example:

    >>> import pathlib, tempfile
    >>> from rnn_toolkit.data.parallel_text import load_parallel
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = path.write_text("Thank you.\\tGracias.\\n", encoding="utf-8")
    >>> load_parallel(str(path)).reversed().sources
    ('Gracias.',)
    """
    if not isinstance(source, (str, pathlib.PurePath)) or not str(source):
        raise ValueError(f"`source` must be {_SOURCE_FORMS}; received source={source!r}.")
    if isinstance(source, str):
        kind, _, detail = source.partition(":")
        if kind == "bible":
            if not detail:
                return bible_verse_pairs(**kwargs)
            languages = detail.split("-")
            if len(languages) != 2:
                raise ValueError(f"`source` {source!r} must read 'bible:SRC-TGT', e.g. 'bible:es-en'.")
            return bible_verse_pairs(*languages, **kwargs)
        if kind == "gcc":
            return gcc_messages(detail, **kwargs) if detail else gcc_messages(**kwargs)
        if source.startswith(TFDS_PREFIX):
            name, _, split = source[len(TFDS_PREFIX):].partition(":")
            if not name:
                raise ValueError(f"`source` {source!r} names no TFDS dataset (tfds:NAME[:SPLIT]).")
            return tfds_parallel_texts(name, split=split or "train", **kwargs)
    path = pathlib.Path(source).expanduser()
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".mo":
            return gettext_pairs(path, **kwargs)
        return read_parallel_table(path, **kwargs)
    if suffix in (".tsv", ".txt", ".tab", ".mo") or len(path.parts) > 1:
        raise FileNotFoundError(f"`source` {str(source)!r} is not an existing file.")
    raise ValueError(f"`source` must be {_SOURCE_FORMS}; received source={source!r}.")


# --- Splits ----------------------------------------------------------------------------------


def parallel_holdout_split(count, *, fraction=0.1, seed=0):
    """Indices of a random train / held-out split of `count` pairs, fixed by `seed`.

    Args:
        count: the number of pairs (at least 2).
        fraction: share held out, in (0, 1); at least one pair is held out.
        seed: the same seed always gives the same split.

    Returns:
        `(train_indices, heldout_indices)`, sorted int64 arrays.

    Example:

    >>> from rnn_toolkit.data.parallel_text import parallel_holdout_split
    >>> train, heldout = parallel_holdout_split(10, fraction=0.2, seed=0)
    >>> len(train), len(heldout), sorted(train.tolist() + heldout.tolist()) == list(range(10))
    (8, 2, True)
    """
    count = check_positive_int("count", count)
    if count < 2:
        raise ValueError(f"`count` must be at least 2 to split; received count={count}.")
    # One class: the stratified split is a plain seeded permutation.
    return holdout_split(np.zeros(count, dtype=np.int64), fraction=fraction, seed=seed)
