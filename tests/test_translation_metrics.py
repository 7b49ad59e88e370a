"""Tests for rnn_toolkit.metrics: corpus BLEU / chrF and BLEU by source length."""

import pytest

from rnn_toolkit.metrics import bleu_by_source_length, corpus_scores


def test_perfect_match_scores_100_whatever_the_spacing_of_punctuation():
    scores = corpus_scores(["la casa es roja .", "¿qué?"], ["la casa es roja.", "¿qué?"])
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)
    assert scores["sentences"] == 2
    assert "tok:13a" in scores["bleu_signature"] and "case:lc" in scores["bleu_signature"]
    assert "case:lc" in scores["chrf_signature"]


def test_lowercase_flag():
    hypotheses, references = ["La Casa es roja."], ["la casa es roja."]
    assert corpus_scores(hypotheses, references)["bleu"] == pytest.approx(100.0)
    cased = corpus_scores(hypotheses, references, lowercase=False)
    assert cased["bleu"] < 100.0 and cased["chrf"] < 100.0
    assert "case:mixed" in cased["bleu_signature"]


def test_wrong_translations_score_low():
    scores = corpus_scores(["el perro duerme"], ["la casa es roja y grande"])
    assert scores["bleu"] == pytest.approx(0.0) and scores["chrf"] < 20.0


def test_bleu_by_source_length_buckets():
    sources = ["a " * 5, "a " * 15, "a " * 10, "a " * 11, "a " * 50, "a"]
    hypotheses = ["one two three four five"] * 6
    references = list(hypotheses)
    references[4] = "six seven eight nine ten"  # the long sentence is wrong
    rows = bleu_by_source_length(sources, hypotheses, references)
    # Empty buckets are left out; 10 words are "1-10", 11 are "11-20".
    assert [(row["bucket"], row["sentences"]) for row in rows] == [("1-10", 3), ("11-20", 2), ("41+", 1)]
    assert rows[0]["bleu"] == pytest.approx(100.0) and rows[0]["chrf"] == pytest.approx(100.0)
    assert rows[2]["bleu"] == pytest.approx(0.0)
    custom = bleu_by_source_length(sources, hypotheses, references, buckets=(1, 12))
    assert [(row["bucket"], row["sentences"]) for row in custom] == [("1-1", 1), ("2-12", 3), ("13+", 2)]


@pytest.mark.parametrize("buckets", [(), (0, 10), (20, 10), (10, 10)])
def test_bad_buckets(buckets):
    with pytest.raises(ValueError, match="`buckets`"):
        bleu_by_source_length(["a"], ["x"], ["x"], buckets=buckets)


def test_mismatched_and_empty_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        corpus_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        corpus_scores([], [])
    with pytest.raises(ValueError, match="`sources`"):
        bleu_by_source_length(["a", "b"], ["x"], ["x"])
    with pytest.raises(ValueError, match="same length"):
        bleu_by_source_length(["a"], ["x"], ["x", "y"])
    with pytest.raises(ValueError, match="empty"):
        bleu_by_source_length([], [], [])
