"""Training runs of the encoder-decoder translator, scored with BLEU and chrF on held-out pairs.

`train_translator_run` is the story `rnn-toolkit train translator` tells: load sentence
pairs, hold out a seeded share of ALL pairs (long ones included: that is where a
summary-vector decoder breaks down), carve a validation share out of the rest for early
stopping, drop training pairs longer than `max_source_length` / `max_target_length`
tokens, build both vocabularies on the training pairs only, train with teacher forcing on
length-bucketed batches while `SampleText` prints the translations of fixed held-out
sentences after every epoch, then translate the held-out share with greedy search and
with beam search and score both with sacreBLEU (overall and by source length). With
`ood_data` the model is also scored on an out-of-domain source (by default the gcc
compiler's messages: technical text the Bible never saw).

Besides the files of every run folder (see `rnn_toolkit.runs.folder`) it writes
`best.weights.h5` (+ `.json`): the best epoch by validation loss, so early stopping
survives a killed run, and `translations.tsv`: each held-out source with its reference,
greedy and beam translations.
"""

import csv
import dataclasses
import io
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from rnn_toolkit.data import (
    WordVocabulary,
    encode_texts,
    load_parallel,
    padding_share,
    parallel_holdout_split,
    translation_batches,
)
from rnn_toolkit.data.cache import write_atomically
from rnn_toolkit.metrics import bleu_by_source_length, corpus_scores
from rnn_toolkit.tasks.translator.model import build_translator
from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, format_table, train_run
from rnn_toolkit.training import KeepBestWeights, SampleText

TASK = "translator"
BEST_WEIGHTS_FILE = "best.weights.h5"
TRANSLATIONS_FILE = "translations.tsv"

# A resumed run must rebuild the same data split, vocabularies and model.
_RESUME_SETTINGS = (
    "data", "max_pairs", "heldout_fraction", "validation_fraction", "split_seed", "max_source_length",
    "max_target_length", "max_words", "min_count", "lowercase", "cell", "units",
    "encoder_layers", "decoder_layers", "bidirectional", "embedding_dim", "attention",
    "bridge", "dropout", "batch_size", "bucketing", "learning_rate", "clip_norm",
    "label_smoothing", "precision", "seed",
)


@dataclasses.dataclass
class TranslatorRunConfig(TrainingConfig):
    """Everything that defines a translator training run (stored in `run.json`)."""

    epochs: int = 12  # at most; early stopping usually ends sooner
    batch_size: int = 64  # sentence pairs per step
    data: str = "bible"  # "bible" (en->es), "bible:es-en", "gcc", "tfds:NAME[:SPLIT]", or a TSV file
    max_pairs: int = 0  # use a seeded sample of this many pairs (0: all; for quick trials)
    heldout_fraction: float = 0.05  # share of all pairs held out for BLEU / chrF (1,554 Bible verses)
    validation_fraction: float = 0.05  # share of the rest used for early stopping
    split_seed: int = 0  # fixes the held-out and validation shares
    max_source_length: int = 30  # training pairs with more source tokens are dropped
    max_target_length: int = 30  # ... or more target tokens (held-out pairs are all kept)
    max_words: int = 20_000  # vocabulary size cap per language
    min_count: int = 3  # rarer words are unknown (Bible, en: 6,941 words kept of 12,544)
    lowercase: bool = True  # lower-case both sides (smaller vocabularies; output is lower-case)
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    units: int = 256  # hidden units per layer (and encoder direction)
    encoder_layers: int = 1  # stacked encoder layers
    decoder_layers: int = 1  # stacked decoder layers
    bidirectional: bool = True  # bidirectional encoder
    embedding_dim: int = 256  # word embedding size (both languages, trained from scratch)
    attention: str = "additive"  # "none", "additive" (Bahdanau) or "multiplicative" (Luong)
    bridge: str = "dense"  # encoder final state -> decoder initial state: "dense" or "zeros"
    dropout: float = 0.2  # on embeddings, between layers and before the output
    bucketing: bool = True  # batch pairs of similar length together
    patience: int = 2  # epochs without validation-loss improvement before stopping
    label_smoothing: float = 0.1  # share of each target's probability spread over the vocabulary
    beam_width: int = 4  # beam search width of the held-out evaluation (and serving default)
    length_penalty: float = 0.6  # GNMT length-penalty exponent of the beam search
    sample_every: int = 1  # epochs between printed translations of fixed sentences (0: never)
    ood_data: str = "auto"  # out-of-domain evaluation: "auto" (gcc messages for en->es), "none", or a source
    ood_sentences: int = 500  # pairs of it scored (a seeded sample)


@dataclasses.dataclass
class TranslationSplit:
    """The shares of one split, the vocabularies built on `train`, and cached word ids."""

    train: object
    validation: object
    heldout: object
    source_vocabulary: WordVocabulary
    target_vocabulary: WordVocabulary
    dropped_long: int = 0  # training + validation pairs dropped by the length filter

    _ids: dict = dataclasses.field(default_factory=dict, repr=False)

    def ids(self, part):
        """`(source_ids, target_ids)` of `part` ("train" or "validation"), encoded once."""
        if part not in self._ids:
            texts = getattr(self, part)
            self._ids[part] = (
                encode_texts(texts.sources, self.source_vocabulary),
                encode_texts(texts.targets, self.target_vocabulary),
            )
        return self._ids[part]


def load_data(config):
    """Loads `config.data` as `ParallelTexts`, raising `RunSetupError` on bad input."""
    try:
        data = load_parallel(config.data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise RunSetupError("data", str(error)) from error
    if config.max_pairs and config.max_pairs < len(data):
        keep = np.random.default_rng(config.split_seed).permutation(len(data))[: config.max_pairs]
        data = data.subset(np.sort(keep))
    if len(data) < 20:
        raise RunSetupError("data", f"{config.data!r} has only {len(data)} sentence pairs; need at least 20")
    return data


def token_counts(texts, lowercase=True, batch_size=4096):
    """Tokens per text under `WordVocabulary`'s tokenizer, as a NumPy int array."""
    counts = [
        WordVocabulary.tokenize(tf.constant(texts[start : start + batch_size], tf.string), lowercase)
        .row_lengths()
        .numpy()
        for start in range(0, len(texts), batch_size)
    ]
    return np.concatenate(counts) if counts else np.zeros([0], np.int64)


def split_data(data, config):
    """Held-out, validation and (length-filtered) training shares, and the vocabularies.

    The held-out share is drawn from all pairs, so BLEU by source length covers long
    sentences too; training and validation pairs longer than the configured limits are
    dropped (on either side). Vocabularies come from the training pairs only.
    """
    rest, heldout = parallel_holdout_split(len(data), fraction=config.heldout_fraction, seed=config.split_seed)
    rest_data = data.subset(rest)
    train, validation = parallel_holdout_split(
        len(rest_data), fraction=config.validation_fraction, seed=config.split_seed + 1
    )
    train, validation = rest_data.subset(train), rest_data.subset(validation)
    dropped = 0
    shares = []
    source_fits = target_fits = 0
    for part in (train, validation):
        fits_source = token_counts(list(part.sources), config.lowercase) <= config.max_source_length
        fits_target = token_counts(list(part.targets), config.lowercase) <= config.max_target_length
        source_fits, target_fits = source_fits + fits_source.sum(), target_fits + fits_target.sum()
        keep = np.nonzero(fits_source & fits_target)[0]
        dropped += len(part) - len(keep)
        shares.append(part.subset(keep))
    train, validation = shares
    if len(train) < 10 or len(validation) < 1:
        raise RunSetupError(
            "max_source_length" if source_fits <= target_fits else "max_target_length",
            f"only {len(train)} training and {len(validation)} validation pairs are within "
            f"{config.max_source_length} source / {config.max_target_length} target tokens; "
            "raise the limits or use more data",
        )
    vocabularies = []
    for texts, markers, length in (
        (train.sources, False, config.max_source_length),
        (train.targets, True, config.max_target_length),
    ):
        vocabularies.append(
            WordVocabulary.from_texts(
                list(texts),
                max_words=config.max_words,
                min_count=config.min_count,
                # Serving reads sources up to 4x the training limit (longer ones are
                # cut); the target side's limit bounds what `attention_map` re-reads.
                max_length=4 * length,
                lowercase=config.lowercase,
                sequence_markers=markers,
            )
        )
    return TranslationSplit(train, validation, data.subset(heldout), *vocabularies, dropped_long=dropped)


def training_batches(split, config):
    """The bucketed training pipeline and the validation pipeline."""
    markers = dict(start_id=split.target_vocabulary.start_id, end_id=split.target_vocabulary.end_id)
    train = translation_batches(
        *split.ids("train"), batch_size=config.batch_size, bucketing=config.bucketing,
        seed=config.seed, **markers,
    )
    validation = translation_batches(
        *split.ids("validation"), batch_size=256, bucketing=config.bucketing, shuffle=False,
        **markers,
    )
    return train, validation


def build_model(split, config):
    return build_translator(
        split.source_vocabulary,
        split.target_vocabulary,
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=config.units,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        bidirectional=config.bidirectional,
        attention=config.attention,
        bridge=config.bridge,
        dropout=config.dropout,
        max_output_length=max(2 * config.max_target_length, 100),
        learning_rate=config.learning_rate,
        clip_norm=config.clip_norm,
        label_smoothing=config.label_smoothing,
        dtype_policy=config.precision,
    )


def decoding_settings(config):
    """The decodings every evaluation reports: greedy search and beam search."""
    return {
        "greedy": dict(sampler="greedy"),
        f"beam{config.beam_width}": dict(beam_width=config.beam_width, length_penalty=config.length_penalty),
    }


def score_translations(translate, pairs, decodings):
    """Translates `pairs.sources` with each decoding and scores it against `pairs.targets`.

    Args:
        translate: a function `(list of str, **decoding) -> list of str`, e.g.
            `model.translate` or a wrapper around a reloaded SavedModel.
        pairs: `ParallelTexts`.
        decodings: dict name -> keyword arguments for `translate` (see `decoding_settings`).

    Returns:
        `(results, translations)`: per decoding a dict with `bleu`, `chrf`, signatures,
        `by_length` and `seconds`/`sentences_per_second`; and per decoding the list of
        translations.
    """
    sources, references = list(pairs.sources), list(pairs.targets)
    results, translations = {}, {}
    for name, settings in decodings.items():
        start = time.perf_counter()
        hypotheses = translate(sources, **settings)
        seconds = time.perf_counter() - start
        scores = corpus_scores(hypotheses, references)
        scores["by_length"] = bleu_by_source_length(sources, hypotheses, references)
        scores.update(seconds=seconds, sentences_per_second=len(sources) / seconds)
        results[name], translations[name] = scores, hypotheses
    return results, translations


def out_of_domain_pairs(config, data):
    """A seeded sample of `config.ood_sentences` pairs of `config.ood_data`, or None.

    `"auto"` picks the gcc compiler messages in the data's target language when the
    model translates from English into Spanish or French, and nothing otherwise.
    """
    source = config.ood_data
    if source == "auto":
        # gcc's catalogues have English messages; Spanish is the default pair's target.
        pair = (data.source_language, data.target_language)
        source = f"gcc:{pair[1]}" if pair[0] == "en" and pair[1] in ("es", "fr") else "none"
    if source in (None, "", "none"):
        return None
    try:
        extra = load_parallel(source)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise RunSetupError("ood_data", str(error)) from error
    if (extra.source_language, extra.target_language) != (data.source_language, data.target_language):
        raise RunSetupError(
            "ood_data",
            f"{source!r} is {extra.source_language}->{extra.target_language} but the "
            f"model translates {data.source_language}->{data.target_language}; pass another "
            "source or 'none'",
        )
    count = min(config.ood_sentences, len(extra))
    order = np.random.default_rng(config.split_seed).permutation(len(extra))[:count]
    return extra.subset(np.sort(order))


class TranslatorRunData(NamedTuple):
    """What a translator run loads: all pairs, their split, and the out-of-domain pairs."""

    data: object  # ParallelTexts
    split: TranslationSplit
    out_of_domain: object  # ParallelTexts or None


class TranslatorRun(TaskRun):
    """The translator's part of a training run (see `rnn_toolkit.runs.train_run`)."""

    name = TASK
    resume_settings = _RESUME_SETTINGS
    extra_files = (BEST_WEIGHTS_FILE, BEST_WEIGHTS_FILE + ".json", TRANSLATIONS_FILE)

    def prepare(self, run):
        config = run.config
        if config.bridge == "zeros" and config.attention == "none":
            raise RunSetupError(
                "bridge", "'zeros' with attention 'none' leaves the decoder no way to see the "
                "source; use bridge 'dense' or an attention",
            )
        run.print_fn(f"Loading {config.data!r} ...")
        data = load_data(config)
        split = split_data(data, config)
        run.data = TranslatorRunData(data, split, out_of_domain_pairs(config, data))
        run.print_fn(
            f"{len(data):,} {data.source_language}->{data.target_language} pairs: "
            f"{len(split.train):,} train, {len(split.validation):,} validation (early stopping), "
            f"{len(split.heldout):,} held out (seed {config.split_seed}); {split.dropped_long:,} "
            f"training/validation pairs over {config.max_source_length}/{config.max_target_length} "
            f"tokens dropped; vocabularies of {split.source_vocabulary.size:,} / "
            f"{split.target_vocabulary.size:,} ids from the training pairs"
        )

    def datasets(self, run):
        return FitData(*training_batches(run.data.split, run.config))

    def build_model(self, run):
        return build_model(run.data.split, run.config)

    def describe(self, run):
        config, (data, split, _) = run.config, run.data
        return {
            "data": {
                "source": data.name,
                "pairs": len(data),
                "source_language": data.source_language,
                "target_language": data.target_language,
            },
            "split": {
                "train": len(split.train),
                "validation": len(split.validation),
                "heldout": len(split.heldout),
                "dropped_long": split.dropped_long,
            },
            "vocabulary_sizes": {
                "source": split.source_vocabulary.size,
                "target": split.target_vocabulary.size,
            },
            "train_target_tokens": int(np.sum(split.ids("train")[1].row_lengths().numpy() + 1)),
            # Measured on a twin pipeline, so training sees the batches a fresh one does.
            "padding_share": padding_share(training_batches(split, config)[0]),
            "cudnn_eligible": bool(run.model.encoder.cudnn_eligible and run.model.decoder.cudnn_eligible),
        }

    def before_fit(self, run):
        config, info = run.config, run.info
        run.print_fn(
            f"{describe_model(config)}: {info['parameters']:,} parameters, "
            f"{run.model.dtype_policy_name}; source padding {info['padding_share']:.1%} "
            f"({'length-bucketed' if config.bucketing else 'unbucketed'} batches of "
            f"{config.batch_size})"
        )

    def callbacks(self, run):
        config = run.config
        run.state["best"] = KeepBestWeights(
            run.folder.path / BEST_WEIGHTS_FILE, monitor="val_loss", mode="min",
            patience=config.patience,
        )
        callbacks = [run.state["best"]]
        if config.sample_every:
            # Fixed held-out sentences, translated greedily after every `sample_every` epochs.
            callbacks.append(
                SampleText(
                    _sample_sentences(run.data.split.heldout),
                    every=config.sample_every,
                    max_length=None,
                    sampler="greedy",
                    print_fn=run.print_fn,
                    input_name="source",
                )
            )
        return callbacks

    def score(self, run):
        config, (_, split, ood), best = run.config, run.data, run.state["best"]
        run.print_fn(
            f"Best epoch {best.best_epoch + 1}: val_loss {best.best:.4f}; translating the "
            f"{len(split.heldout):,} held-out sentences (greedy and beam {config.beam_width}) ..."
        )
        decodings = decoding_settings(config)
        results, translations = score_translations(run.model.translate, split.heldout, decodings)
        write_atomically(
            run.folder.path / TRANSLATIONS_FILE, _translations_table(split.heldout, translations)
        )
        ood_results = None
        if ood is not None:
            run.print_fn(f"Translating {len(ood):,} out-of-domain pairs of {ood.name!r} ...")
            ood_results, _ = score_translations(run.model.translate, ood, decodings)
        return {
            "best_epoch": best.best_epoch + 1,
            "best_val_loss": float(best.best),
            "heldout": results,
            "out_of_domain": None if ood is None else {"source": ood.name, "pairs": len(ood), **ood_results},
        }

    def report(self, run):
        return format_results(run.info)


def train_translator_run(config, run_dir, **options):
    """Trains a translator and scores it in `run_dir`, resuming an interrupted run there.

    `train_run(TranslatorRun(), config, run_dir, **options)`: see `rnn_toolkit.runs.train_run` for
    the options (`overwrite`, `verbose`, `print_fn`, `strategy`), what it returns and raises.
    """
    return train_run(TranslatorRun(), config, run_dir, **options)


def _sample_sentences(heldout, count=3):
    """Up to `count` short held-out sources (the samples stay readable)."""
    sources = [s for s in heldout.sources if 4 <= len(s.split()) <= 14]
    return (sources or list(heldout.sources))[:count]


def _translations_table(pairs, translations):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    names = list(translations)
    writer.writerow(["source", "reference", *names])
    for index, (source, reference) in enumerate(zip(pairs.sources, pairs.targets)):
        writer.writerow([source, reference, *(translations[name][index] for name in names)])
    return buffer.getvalue()


def describe_model(config):
    direction = "bidirectional " if config.bidirectional else ""
    attention = "no attention" if config.attention == "none" else f"{config.attention} attention"
    return (
        f"{direction}{config.cell.upper()} {config.encoder_layers}x{config.units} encoder -> "
        f"{config.cell.upper()} {config.decoder_layers}x{config.units} decoder, {attention}"
    )


def format_results(info):
    """The held-out (and out-of-domain) scores of a finished run as a text table."""
    lines = []
    for title, results in (("held-out", info.get("heldout")), ("out-of-domain", info.get("out_of_domain"))):
        if not results:
            continue
        decodings = [name for name in results if isinstance(results[name], dict) and "bleu" in results[name]]
        source = f" ({results['source']}, {results['pairs']} pairs)" if "source" in results else ""
        lines.append(f"{title}{source}: case-insensitive sacreBLEU")
        rows = [("decoding", "BLEU", "chrF", "sentences/s")]
        rows += [
            (name, f"{results[name]['bleu']:.2f}", f"{results[name]['chrf']:.2f}", f"{results[name]['sentences_per_second']:.1f}")
            for name in decodings
        ]
        lines.append(format_table(rows))
        if title == "held-out":
            buckets = [row["bucket"] for row in results[decodings[0]]["by_length"]]
            rows = [("BLEU by source words", *buckets)]
            rows.append(("sentences", *(str(row["sentences"]) for row in results[decodings[0]]["by_length"])))
            for name in decodings:
                rows.append((name, *(f"{row['bleu']:.2f}" for row in results[name]["by_length"])))
            lines.append(format_table(rows))
    if "train_seconds" in info:
        lines.append(f"training: {info['train_seconds']:.0f} s, {info.get('epochs_completed', '?')} epochs (best {info.get('best_epoch', '?')})")
    return "\n".join(lines)
