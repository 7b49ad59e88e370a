"""Tests for rnn_toolkit.metrics.captioning: COCO-style BLEU-1..4 and CIDEr-D."""

import math
import subprocess

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from rnn_toolkit.metrics.captioning import caption_scores, caption_tokens

# Raw captions, and the same captions tokenized by hand as COCO's evaluation leaves them.
HYPOTHESES = [
    "A man riding a wave on top of a surfboard.",
    "Two dogs playing in the snow!",
    "A plate of food with broccoli.",
    "A red double-decker bus on a street.",
    "A cat sitting on a laptop's keyboard.",
]
REFERENCES = [
    ["A surfer rides a large wave.", "A man on a surfboard riding a wave", "Man surfing, on a big wave."],
    ["Two dogs play in the snow.", "A pair of dogs running through snow", "Dogs playing outside in the snow"],
    ["A plate with broccoli, rice and chicken.", "Food on a white plate"],
    ["A red bus driving down a city street.", "A double-decker bus on the road", "Red bus.", "A bus in London"],
    ["A cat lying on a keyboard.", "The cat's sitting on the laptop", "A cat on a computer"],
]
TOKENIZED_HYPOTHESES = [
    "a man riding a wave on top of a surfboard",
    "two dogs playing in the snow",
    "a plate of food with broccoli",
    "a red double-decker bus on a street",
    "a cat sitting on a laptop 's keyboard",
]
TOKENIZED_REFERENCES = [
    ["a surfer rides a large wave", "a man on a surfboard riding a wave", "man surfing on a big wave"],
    ["two dogs play in the snow", "a pair of dogs running through snow", "dogs playing outside in the snow"],
    ["a plate with broccoli rice and chicken", "food on a white plate"],
    ["a red bus driving down a city street", "a double-decker bus on the road", "red bus", "a bus in london"],
    ["a cat lying on a keyboard", "the cat 's sitting on the laptop", "a cat on a computer"],
]


def test_same_numbers_as_pycocoevalcap_on_tokenized_captions():
    truths = dict(enumerate(TOKENIZED_REFERENCES))
    candidates = {image: [caption] for image, caption in enumerate(TOKENIZED_HYPOTHESES)}
    bleu, _ = Bleu(4).compute_score(truths, candidates, verbose=0)
    cider, _ = Cider().compute_score(truths, candidates)

    scores = caption_scores(HYPOTHESES, REFERENCES)
    assert [scores[f"bleu_{n}"] for n in (1, 2, 3, 4)] == pytest.approx([100 * b for b in bleu], abs=1e-9)
    assert scores["cider_d"] == pytest.approx(100 * cider, abs=1e-9)
    assert scores["images"] == 5
    assert 0 < scores["bleu_4"] < scores["bleu_1"] < 100 and scores["cider_d"] > 0


def test_bleu_by_hand_with_two_references():
    # Hypothesis "the cat sat on the mat" (6 words); the reference closest in length has 6
    # words, so no brevity penalty. Clipped matches against either reference:
    # 1-grams the x2 (a reference has two), cat, on, mat: 5/6; 2-grams the cat, on the,
    # the mat: 3/5; 3-grams on the mat: 1/4; 4-grams none: 0/3.
    scores = caption_scores(["The cat sat on the mat."], [["the cat is on the mat", "there is a cat on the mat"]])
    assert scores["bleu_1"] == pytest.approx(100 * 5 / 6)
    assert scores["bleu_2"] == pytest.approx(100 * math.sqrt(5 / 6 * 3 / 5))
    assert scores["bleu_3"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))  # 50
    assert scores["bleu_4"] == pytest.approx(0, abs=0.01)  # pycocoevalcap's smoothing: 1e-15, not 0


def test_corpus_brevity_penalty_sums_the_closest_reference_lengths():
    # Every n-gram matches, but the hypotheses have 3 + 3 words and the closest
    # references 4 + 3 (not the shortest, 3 + 3, nor the longest): BP = exp(1 - 7/6).
    scores = caption_scores(
        ["a dog runs", "a red car"],
        [["a dog runs fast", "the dog is running on the grass"], ["a red car", "a small red car parked"]],
    )
    for n in (1, 2, 3):
        assert scores[f"bleu_{n}"] == pytest.approx(100 * math.exp(1 - 7 / 6))


@pytest.mark.parametrize(
    "caption, tokens",
    [
        ("A man's dog, running!", ["a", "man", "'s", "dog", "running"]),
        ("Don't stop; it can’t", ["do", "n't", "stop", "it", "ca", "n't"]),
        ("A black-and-white photo of 3.5 cats (maybe) -- \"quoted\" ...", [
            "a", "black-and-white", "photo", "of", "3.5", "cats", "maybe", "quoted",
        ]),
        ("The students' bus at 5 o'clock.", ["the", "students", "bus", "at", "5", "o'clock"]),
        ("", []),
    ],
)
def test_tokenization_as_coco_leaves_captions(caption, tokens):
    assert caption_tokens(caption) == tokens


def test_punctuation_and_case_do_not_change_scores():
    plain = caption_scores(TOKENIZED_HYPOTHESES, TOKENIZED_REFERENCES)
    assert caption_scores(HYPOTHESES, REFERENCES) == pytest.approx(plain)


def test_no_java_or_subprocess_is_needed(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert caption_scores(HYPOTHESES[:2], REFERENCES[:2])["bleu_1"] > 0


def test_an_empty_hypothesis_scores_zero_but_counts():
    scores = caption_scores(["", "two dogs play in the snow"], REFERENCES[:2])
    assert scores["images"] == 2 and 0 < scores["bleu_1"] < 100


def test_cider_d_of_a_single_image_is_zero():
    # Its IDF comes from the evaluated set: with one image every n-gram has IDF 0.
    assert caption_scores(["a cat"], [["a cat"]])["cider_d"] == 0.0


@pytest.mark.parametrize(
    "hypotheses, references, error, message",
    [
        (["a", "b"], [["a"]], ValueError, "one entry per image: 2 hypotheses vs 1"),
        ([], [], ValueError, "empty: nothing to score"),
        (["a"], [[]], ValueError, r"references\[0\] is empty"),
        (["a", "b"], ["a", "b"], TypeError, r"references\[0\] must be a list of reference captions"),
        ("a cat", [["a cat"]], TypeError, "not strings"),
        (["a"], [["a cat", " ... "]], ValueError, r"references\[0\]\[1\] has no words"),
        ([None], [["a cat"]], TypeError, r"hypotheses\[0\] must be a str"),
    ],
)
def test_clear_errors(hypotheses, references, error, message):
    with pytest.raises(error, match=message):
        caption_scores(hypotheses, references)
