"""Corpus BLEU and chrF with sacreBLEU, overall and by source-sentence length.

sacreBLEU's scores are the field's reference implementation: its own tokenizer (`13a`)
on detokenized text, so numbers compare across systems and papers. rnn_toolkit's
translator writes lower-case text when its target vocabulary lower-cases, so both
metrics here are case-insensitive by default (`lowercase=True`); say so next to any
number you report.

sacreBLEU is imported when a score is asked for, not with `rnn_toolkit`.
"""

DEFAULT_LENGTH_BUCKETS = (10, 20, 30, 40)
"""Upper bounds (in source words) of the length buckets; a last bucket takes the rest."""


def corpus_scores(hypotheses, references, *, lowercase=True):
    """Corpus-level BLEU and chrF of `hypotheses` against one reference each.

    Args:
        hypotheses: list of translated strings.
        references: list of reference strings, same length.
        lowercase: compare case-insensitively.

    Returns:
        A dict: `bleu` and `chrf` (0-100), `bleu_signature` and `chrf_signature`
        (sacreBLEU's reproducibility strings), `sentences`.

    Example:

    >>> from rnn_toolkit.metrics import corpus_scores
    >>> scores = corpus_scores(["la casa es roja ."], ["La casa es roja."])
    >>> round(scores["bleu"], 1), round(scores["chrf"], 1)
    (100.0, 100.0)
    """
    import sacrebleu

    hypotheses, references = _check_pairs(hypotheses, references)
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


def bleu_by_source_length(sources, hypotheses, references, *, buckets=DEFAULT_LENGTH_BUCKETS, lowercase=True):
    """Corpus BLEU and chrF per bucket of source length (whitespace words).

    Long sentences are where a fixed-size summary vector runs out of room; this is the
    table that shows what attention buys, and where.

    Args:
        sources: the source sentences (their lengths pick the bucket).
        hypotheses: the translations.
        references: the reference translations.
        buckets: increasing upper bounds; bucket i holds lengths in
            `(buckets[i-1], buckets[i]]`, and a last bucket holds longer ones.
        lowercase: compare case-insensitively.

    Returns:
        A list of dicts, one per non-empty bucket: `bucket` (e.g. `"11-20"`),
        `sentences`, `bleu`, `chrf`.
    """
    hypotheses, references = _check_pairs(hypotheses, references)
    if len(sources) != len(hypotheses):
        raise ValueError(f"`sources` has {len(sources)} sentences for {len(hypotheses)} hypotheses.")
    bounds = list(buckets)
    if bounds != sorted(set(bounds)) or not bounds or bounds[0] < 1:
        raise ValueError(f"`buckets` must be increasing positive lengths; received {buckets!r}.")
    names = []
    lower = 1
    for bound in bounds:
        names.append(f"{lower}-{bound}")
        lower = bound + 1
    names.append(f"{lower}+")
    members = [[] for _ in names]
    for index, source in enumerate(sources):
        length = len(source.split())
        bucket = next((i for i, bound in enumerate(bounds) if length <= bound), len(bounds))
        members[bucket].append(index)
    rows = []
    for name, indices in zip(names, members):
        if not indices:
            continue
        scores = corpus_scores(
            [hypotheses[i] for i in indices], [references[i] for i in indices], lowercase=lowercase
        )
        rows.append({"bucket": name, "sentences": len(indices), "bleu": scores["bleu"], "chrf": scores["chrf"]})
    return rows


def _check_pairs(hypotheses, references):
    hypotheses = [str(h) for h in hypotheses]
    references = [str(r) for r in references]
    if len(hypotheses) != len(references):
        raise ValueError(
            f"`hypotheses` and `references` must have the same length: {len(hypotheses)} vs "
            f"{len(references)}."
        )
    if not hypotheses:
        raise ValueError("`hypotheses` is empty: nothing to score.")
    return hypotheses, references
