"""Image-captioning metrics: corpus BLEU-1 to 4 and CIDEr-D, as the COCO caption evaluation computes them.

The scorers are those of `pycocoevalcap`, the pip distribution of the COCO caption
evaluation code (`coco-caption`) that captioning papers report: BLEU with every
reference of an image (n-grams clipped by their largest count in any one reference,
the brevity penalty from the reference length closest to each hypothesis, summed over
the corpus), and its `Cider` scorer, which is CIDEr-D (clipped n-gram counts and a
Gaussian length penalty, sigma 6). Both are plain Python.

Tokenization differs from the COCO pipeline in one respect: there, captions pass through
the Stanford PTB tokenizer, which needs Java. Here they are tokenized in Python the way
that tokenizer and COCO's punctuation filter leave them: lower-cased, punctuation
dropped, clitics split ("dog's" -> "dog 's", "don't" -> "do n't"), hyphenated words,
decimals and inner apostrophes kept ("black-and-white", "3.5", "o'clock"). Rare
constructions (brackets, abbreviations such as "st.") can come out differently, so
scores may differ from COCO-server numbers in the last digits.

CIDEr-D weighs n-grams by their inverse document frequency in the references of the
evaluated images themselves: scores on a small or different set of images are not
comparable with numbers reported on the COCO test split, and with a single image every
n-gram occurs in every image's references, so CIDEr-D is 0.

`pycocoevalcap` is imported when a score is asked for, not with `rnn_toolkit`.

Imports from rnn_toolkit: metrics.
"""

import re

_CONTRACTION = re.compile(r"(?<=\w)(n't)\b")
_CLITIC = re.compile(r"(?<=\w)('(?:s|re|ve|ll|m|d))\b")
# A clitic, a number with thousands separators, a word (letters, digits and inner
# hyphens, dots, slashes or apostrophes), or any other single non-space character.
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|m|d)\b|\d+(?:,\d{3})+\b|\w+(?:[-./']\w+)*|[^\w\s]")
# The punctuation COCO removes after PTB tokenization (its -LRB-, -RCB-, ... are brackets);
# square brackets too, which the PTB tokenizer would write as -lsb- / -rsb-.
_PUNCTUATION = set("'`\".?!,:;-()[]{}") | {"...", "--"}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def caption_scores(hypotheses, references):
    """Corpus BLEU-1 to 4 and CIDEr-D of one caption per image against all its references.

    Args:
        hypotheses: list of generated captions (str), one per image.
        references: list, one entry per image, of lists of reference captions (str);
            images may have different numbers of references.

    Returns:
        A dict: `bleu_1`, `bleu_2`, `bleu_3`, `bleu_4` and `cider_d`, each multiplied
        by 100 as captioning papers print them (`pycocoevalcap` returns fractions:
        BLEU-4 0.362 and CIDEr-D 1.135 here are 36.2 and 113.5), and `images`.

    Raises:
        ValueError: for lists of different lengths, no images, an image without
            references, or a reference with no words.
        TypeError: for a string where a list was expected (e.g. one reference string
            per image instead of a list of references).

    Example:

    >>> from rnn_toolkit.metrics.captioning import caption_scores
    >>> scores = caption_scores(
    ...     ["A dog runs on the grass.", "Two cats sleep on a sofa.", "a man riding a bike"],
    ...     [["A dog runs on the grass", "a brown dog running outside"],
    ...      ["two cats sleeping on a sofa", "Two cats asleep on a couch."],
    ...      ["A man rides a bicycle down the street.", "a person riding a bike"]],
    ... )
    >>> round(scores["bleu_1"], 1), round(scores["bleu_4"], 1), round(scores["cider_d"], 1)
    (94.1, 62.4, 362.0)
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    hypotheses, references = _check_captions(hypotheses, references)
    candidates = {image: [" ".join(caption_tokens(caption))] for image, caption in enumerate(hypotheses)}
    truths = {}
    for image, captions in enumerate(references):
        truths[image] = []
        for number, caption in enumerate(captions):
            tokens = caption_tokens(caption)
            if not tokens:
                raise ValueError(f"references[{image}][{number}] has no words: {caption!r}.")
            truths[image].append(" ".join(tokens))
    bleu, _ = Bleu(4).compute_score(truths, candidates, verbose=0)
    cider, _ = Cider().compute_score(truths, candidates)
    scores = {f"bleu_{n}": 100.0 * float(value) for n, value in enumerate(bleu, start=1)}
    scores["cider_d"] = 100.0 * float(cider)
    scores["images"] = len(hypotheses)
    return scores


def caption_tokens(caption):
    """The words of `caption` as the scores see them: as COCO's PTB tokenization and
    punctuation filter leave them (see the module docstring).

    >>> caption_tokens("A dog's ball, black-and-white.")
    ['a', 'dog', "'s", 'ball', 'black-and-white']
    """
    text = caption.translate(_QUOTES).lower()
    text = _CLITIC.sub(r" \1", _CONTRACTION.sub(r" \1", text))
    return [token for token in _TOKEN.findall(text) if token not in _PUNCTUATION]


def _check_captions(hypotheses, references):
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("`hypotheses` and `references` must be lists (one entry per image), not strings.")
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"`hypotheses` and `references` must have one entry per image: {len(hypotheses)} hypotheses "
            f"vs {len(references)} reference lists."
        )
    if not hypotheses:
        raise ValueError("`hypotheses` is empty: nothing to score.")
    for image, (hypothesis, captions) in enumerate(zip(hypotheses, references)):
        if not isinstance(hypothesis, str):
            raise TypeError(f"hypotheses[{image}] must be a str; received {type(hypothesis).__name__}.")
        if isinstance(captions, str):
            raise TypeError(
                f"references[{image}] must be a list of reference captions, not a str: "
                "wrap a single reference in a list."
            )
        if not captions:
            raise ValueError(f"references[{image}] is empty: every image needs at least one reference.")
        for number, caption in enumerate(captions):
            if not isinstance(caption, str):
                raise TypeError(f"references[{image}][{number}] must be a str; received {type(caption).__name__}.")
    return hypotheses, [list(captions) for captions in references]
