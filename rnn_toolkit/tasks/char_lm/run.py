"""Training runs of the character language model: one folder per run, resumable.

`train_char_lm_run` is the whole story the `rnn-toolkit train char_lm` command tells:
load a corpus, split it, build the vocabulary on the training pieces, train with samples
printed every epoch, then score the held-out pieces and save everything in one folder:

    <run_dir>/
        run.json        settings, corpus, split, vocabulary size, results, timings
        model.keras     the trained model (written when training has finished)
        heldout.txt     the validation pieces joined with "\\n" (for the plain-TF client)
        history.csv     one row per epoch (CSVLogger); history.json: the same as lists
        logs/           TensorBoard event files
        backup/         the BackupAndRestore checkpoint; present only while a run is
                        unfinished, so a killed run resumes from its last backup

A folder is *finished* when it holds `model.keras` and no `backup/`, *interrupted* when it
holds `backup/`, and *empty* otherwise.
"""

import dataclasses
import math
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data import (
    CharVocabulary,
    char_windows,
    consecutive_char_batches,
    load_corpus,
    parse_source_corpus,
    split_text,
)
from rnn_toolkit.data.cache import write_atomically
from rnn_toolkit.runs import FitData, RunSetupError, TaskRun, TrainingConfig, progress_verbosity, train_run
from rnn_toolkit.tasks.char_lm.model import build_char_lm
from rnn_toolkit.training import ResetCarriedState, SampleText

TASK = "char_lm"

CORPUS_NAMES = ("shakespeare", "python", "linux", "glibc", "tex")
"""Corpora known by name (`linux` and `glibc` also as `NAME:SUBTREES` or `NAME:all`, see
`rnn_toolkit.data.parse_source_corpus`); anything else given as a corpus is a path."""

_SUBTREE_CORPORA = ("linux", "glibc")

DEFAULT_PROMPTS = {
    # This edition names speakers as "Romeo." on a line of their own.
    "shakespeare": ["Romeo.\n", "Juliet.\n"],
    "python": ["def "],
    "linux": ["static int ", "#include <"],
    # GNU style puts a function's name at the start of the line after its type.
    "glibc": ["static int\n", "#include <"],
    # pari-doc's entries: one \subsec per function, GP sessions between \bprog and @eprog.
    "tex": ["\\subsec{", "\\bprog\n"],
}
"""Sampling prompts that suit each named corpus (and its subtrees); other corpora start
after a newline."""


def _corpus_name(corpus):
    """The name of a named corpus (`"linux"` for `"linux:kernel,mm"`), else `corpus` itself."""
    name, colon, _ = corpus.partition(":")
    return name if colon and name in _SUBTREE_CORPORA else corpus

# A resumed run must rebuild the same model and data, or the backup's weights and
# optimizer state would not fit (or would silently mean something else).
_RESUME_SETTINGS = (
    "corpus", "max_chars", "validation_fraction", "num_chunks", "cell", "units",
    "num_layers", "embedding_dim", "dropout", "sequence_length", "batch_size",
    "learning_rate", "clip_norm", "precision", "tbptt", "seed", "validation_steps",
)


@dataclasses.dataclass
class CharLMRunConfig(TrainingConfig):
    """Everything that defines a char-LM training run (stored in `run.json`)."""

    corpus: str = "shakespeare"  # a CORPUS_NAMES name ("linux:kernel,mm" ...), "tfds:NAME[:SPLIT]", or a file / folder
    max_chars: int | None = None  # use only the first N characters (quick tests)
    validation_fraction: float = 0.1  # held-out share of each block (see split_text)
    num_chunks: int = 10  # blocks the held-out text is drawn from
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    units: int = 512  # hidden units per recurrent layer
    num_layers: int = 1  # stacked recurrent layers
    embedding_dim: int = 64  # character embedding size
    dropout: float = 0.0  # between layers and before the output layer
    sequence_length: int = 100  # characters per training window (BPTT length)
    steps_per_epoch: int | None = None  # None: one pass over the training windows
    validation_steps: int = 10  # held-out batches scored after each epoch (0: none)
    tbptt: bool = False  # consecutive batches with the recurrent state carried over
    sample_every: int = 1  # print samples every N epochs (0: never)
    prompts: list[str] | None = None  # None: DEFAULT_PROMPTS for the corpus
    sample_length: int = 200  # characters generated per sample
    temperature: float = 0.8  # sampling temperature of the samples

    def resolved_prompts(self):
        """The prompts to sample from: the given ones, or the corpus' defaults."""
        if self.prompts:
            return list(self.prompts)
        return list(DEFAULT_PROMPTS.get(_corpus_name(self.corpus), ["\n"]))


@dataclasses.dataclass
class CharLMData:
    """A loaded corpus, its training and held-out pieces, and the training vocabulary."""

    text: str
    train_pieces: list
    validation_pieces: list
    vocabulary: CharVocabulary

    @property
    def train_characters(self):
        return sum(map(len, self.train_pieces))

    @property
    def validation_characters(self):
        return sum(map(len, self.validation_pieces))


def corpus_source(corpus):
    """How `run.json` records a corpus: its name, or the absolute path of a file.

    A source corpus is recorded in its canonical form (`"linux:mm,kernel/"` as
    `"linux:kernel,mm"`), so that equal selections compare equal.
    """
    if corpus in CORPUS_NAMES or corpus.startswith("tfds:"):
        return corpus
    if _corpus_name(corpus) in _SUBTREE_CORPORA:
        try:
            return parse_source_corpus(corpus).spec
        except ValueError:
            return corpus  # loading it reports what is wrong
    return str(Path(corpus).expanduser().resolve())


def load_split(corpus, *, max_chars=None, validation_fraction=0.1, num_chunks=10):
    """Loads a corpus (optionally its first `max_chars` characters) and splits it.

    Returns:
        `(text, train_pieces, validation_pieces)`.

    Raises:
        RunSetupError: for a missing or empty corpus, or one too short to split
            (`setting` is `"corpus"` or `"max_chars"`).
    """
    try:
        text = load_corpus(corpus)
    except FileNotFoundError as error:
        raise RunSetupError("corpus", f"no such file or folder: {str(corpus)!r}") from error
    except (ValueError, RuntimeError) as error:
        # ValueError: an empty corpus or bad subtrees; RuntimeError: a download failed.
        raise RunSetupError("corpus", str(error)) from error
    if max_chars is not None:
        text = text[:max_chars]
    if len(text) < 2 * num_chunks:
        raise RunSetupError(
            "max_chars" if max_chars is not None else "corpus",
            f"the text has {len(text)} characters; at least {2 * num_chunks} are needed "
            "to hold some of it out",
        )
    train_pieces, validation_pieces = split_text(
        text, validation_fraction=validation_fraction, num_chunks=num_chunks
    )
    return text, train_pieces, validation_pieces


def heldout_windows(validation_pieces, vocabulary, *, sequence_length, batch_size):
    """The held-out pieces as un-shuffled windows, the last batch kept even if short.

    Raises:
        RunSetupError: if no piece holds one window of `sequence_length + 1` characters.
    """
    try:
        return char_windows(
            validation_pieces,
            vocabulary,
            sequence_length=sequence_length,
            batch_size=batch_size,
            shuffle=False,
            drop_remainder=False,
        )
    except ValueError as error:
        longest = max((len(piece) for piece in validation_pieces), default=0)
        raise RunSetupError(
            "sequence_length",
            f"the held-out pieces (longest: {longest} characters) are shorter than one "
            f"window of sequence length + 1 = {sequence_length + 1} characters; use a "
            "shorter sequence length or more text",
        ) from error


def heldout_loss(model, validation_pieces, *, sequence_length, batch_size, verbose=None):
    """Mean next-character loss (nats/char) of `model` on the held-out windows.

    Returns:
        `(loss, characters_scored)`.
    """
    dataset = heldout_windows(
        validation_pieces, model.vocabulary, sequence_length=sequence_length, batch_size=batch_size
    )
    verbose = progress_verbosity() if verbose is None else verbose
    results = model.evaluate(dataset, verbose=verbose, return_dict=True)
    windows = sum(len(piece) // (sequence_length + 1) for piece in validation_pieces)
    return float(results["loss"]), windows * sequence_length


def saved_model_heldout_loss(log_prob, validation_pieces, *, sequence_length, batch_size, progress=True):
    """The same held-out loss as `heldout_loss`, through a SavedModel's `log_prob` signature.

    The text is cut into the same windows of `sequence_length + 1` characters; the
    signature scores every character of a window but its first, as training does.

    Args:
        log_prob: the `log_prob` signature of an exported char LM.
        validation_pieces: the held-out pieces.
        sequence_length, batch_size: the windowing of the run that made the model.
        progress: show a tqdm progress bar over the batches.

    Returns:
        `(loss, characters_scored)`.
    """
    from tqdm.auto import tqdm

    window = sequence_length + 1
    windows = [
        piece[start : start + window]
        for piece in validation_pieces
        for start in range(0, len(piece) - window + 1, window)
    ]
    if not windows:
        raise RunSetupError(
            "sequence_length",
            f"the held-out text has no window of {window} characters; use a shorter "
            "sequence length or more text",
        )
    total_log_prob, scored = 0.0, 0
    batches = range(0, len(windows), batch_size)
    for start in tqdm(batches, desc="scoring held-out text", unit="batch", disable=None if progress else True):
        result = log_prob(text=tf.constant(windows[start : start + batch_size]))
        total_log_prob += float(tf.reduce_sum(tf.cast(result["log_prob"], tf.float64)))
        scored += int(tf.reduce_sum(tf.maximum(result["num_chars"] - 1, 0)))
    return -total_log_prob / scored, scored


def loss_summary(loss, characters):
    """A dict of a held-out loss in nats/char, bits/char and as a perplexity."""
    return {
        "loss_nats_per_char": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "characters_scored": characters,
    }


def format_loss(summary):
    """One line for a `loss_summary`."""
    return (
        f"held-out loss {summary['loss_nats_per_char']:.4f} nats/char "
        f"({summary['bits_per_char']:.4f} bits/char), perplexity {summary['perplexity']:.3f} "
        f"over {summary['characters_scored']:,} characters"
    )


class CharLMRun(TaskRun):
    """The char LM's part of a training run (see `rnn_toolkit.runs.train_run`)."""

    name = TASK
    resume_settings = _RESUME_SETTINGS

    def prepare(self, run):
        config = run.config
        run.print_fn(f"Loading corpus {config.corpus!r} ...")
        text, train_pieces, validation_pieces = load_split(
            config.corpus,
            max_chars=config.max_chars,
            validation_fraction=config.validation_fraction,
            num_chunks=config.num_chunks,
        )
        vocabulary = CharVocabulary.from_text(train_pieces)
        run.data = CharLMData(text, train_pieces, validation_pieces, vocabulary)
        run.print_fn(
            f"{len(text):,} characters: {run.data.train_characters:,} for training, "
            f"{run.data.validation_characters:,} held out ({len(validation_pieces)} pieces); "
            f"vocabulary of {vocabulary.size} ids"
        )

    def datasets(self, run):
        config, data = run.config, run.data
        train, batches_per_pass = _training_data(data.train_pieces, data.vocabulary, config)
        validation, validation_steps = _validation_data(data.validation_pieces, data.vocabulary, config)
        run.state["batches_per_pass"] = batches_per_pass
        run.state["steps_per_epoch"] = min(config.steps_per_epoch or batches_per_pass, batches_per_pass)
        return FitData(train, validation, run.state["steps_per_epoch"], validation_steps)

    def build_model(self, run):
        config = run.config
        model = build_char_lm(
            run.data.vocabulary,
            embedding_dim=config.embedding_dim,
            cell=config.cell,
            units=config.units,
            num_layers=config.num_layers,
            dropout=config.dropout,
            learning_rate=config.learning_rate,
            clip_norm=config.clip_norm,
            dtype_policy=config.precision,
        )
        if config.tbptt:
            # Each replica (a GPU, a worker) carries the state of its share of every batch.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            if config.batch_size % replicas:
                raise RunSetupError(
                    "batch_size",
                    f"with --tbptt, each of the {replicas} replicas carries the state of its own "
                    f"rows from batch to batch: the batch size must be a multiple of {replicas}; "
                    f"received {config.batch_size}",
                )
            model.enable_state_carry(config.batch_size // replicas)
        return model

    def describe(self, run):
        config, data = run.config, run.data
        return {
            "corpus": {"source": corpus_source(config.corpus), "characters": len(data.text)},
            "split": {
                "validation_fraction": config.validation_fraction,
                "num_chunks": config.num_chunks,
                "train_characters": data.train_characters,
                "validation_characters": data.validation_characters,
                "validation_pieces": len(data.validation_pieces),
            },
            "vocabulary_size": data.vocabulary.size,
            "steps_per_epoch": run.state["steps_per_epoch"],
        }

    def before_fit(self, run):
        config = run.config
        write_atomically(run.folder.heldout, "\n".join(run.data.validation_pieces))
        run.print_fn(
            f"{config.cell.upper()} {config.num_layers}x{config.units}, {run.info['parameters']:,} "
            f"parameters, {run.model.dtype_policy_name}; {config.epochs} epochs of "
            f"{run.state['steps_per_epoch']} steps ({run.state['batches_per_pass']} per pass over "
            "the training text)"
            + (", truncated BPTT with carried state" if config.tbptt else "")
        )

    def callbacks(self, run):
        config = run.config
        callbacks = [ResetCarriedState()] if config.tbptt else []
        if config.sample_every:
            callbacks.append(
                SampleText(
                    config.resolved_prompts(),
                    every=config.sample_every,
                    max_length=config.sample_length,
                    sampler="temperature",
                    seed=config.seed,
                    temperature=config.temperature,
                    print_fn=run.print_fn,
                )
            )
        return callbacks

    def score(self, run):
        config = run.config
        epochs_done = len(run.history.get("epoch", []))
        tokens = epochs_done * run.state["steps_per_epoch"] * config.batch_size * config.sequence_length
        run.print_fn("Scoring the held-out text ...")
        loss, scored = heldout_loss(
            run.model,
            run.data.validation_pieces,
            sequence_length=config.sequence_length,
            batch_size=config.batch_size,
            verbose=run.verbose,
        )
        return {
            "heldout": loss_summary(loss, scored),
            "tokens_trained": tokens,
            "tokens_per_second": tokens / run.train_seconds if run.train_seconds else None,
        }

    def report(self, run):
        info = run.info
        return (
            format_loss(info["heldout"]) + "\n"
            f"Trained {info['epochs_completed']} epochs in {info['train_seconds']:.0f} s "
            f"({info['tokens_per_second'] or 0:,.0f} characters/s)"
        )


def train_char_lm_run(config, run_dir, **options):
    """Trains a char LM in `run_dir`, resuming an interrupted run there.

    `train_run(CharLMRun(), config, run_dir, **options)`: see `rnn_toolkit.runs.train_run` for
    the options (`overwrite`, `verbose`, `print_fn`, `strategy`), what it returns and raises.
    """
    return train_run(CharLMRun(), config, run_dir, **options)


def _training_data(train_pieces, vocabulary, config):
    """The repeated training pipeline and its number of batches per pass."""
    try:
        if config.tbptt:
            dataset = consecutive_char_batches(
                train_pieces,
                vocabulary,
                sequence_length=config.sequence_length,
                batch_size=config.batch_size,
            )
        else:
            dataset = char_windows(
                train_pieces,
                vocabulary,
                sequence_length=config.sequence_length,
                batch_size=config.batch_size,
                seed=config.seed,
            )
    except ValueError as error:
        raise RunSetupError(
            "batch_size",
            f"the training text ({sum(map(len, train_pieces)):,} characters in "
            f"{len(train_pieces)} pieces) is too short for one batch of {config.batch_size} "
            f"windows of sequence length + 1 = {config.sequence_length + 1} characters; use a "
            "smaller batch size or sequence length, or more text",
        ) from error
    batches = int(dataset.cardinality())
    # Repeating lets `steps_per_epoch` cut passes anywhere without Keras' "ran out of
    # data" stop; with shuffling on, each pass is reshuffled.
    return dataset.repeat(), batches


def _validation_data(validation_pieces, vocabulary, config):
    """The per-epoch validation pipeline and its step count, or `(None, None)`."""
    if not config.validation_steps:
        return None, None
    dataset = heldout_windows(
        validation_pieces,
        vocabulary,
        sequence_length=config.sequence_length,
        batch_size=config.batch_size,
    )
    batches = int(dataset.cardinality())
    if config.validation_steps >= batches:
        return dataset, None
    # A repeated set lets every epoch score the next slice without a "ran out" warning.
    return dataset.repeat(), config.validation_steps



