"""What every command shares: argument types, the train options of shared config fields,
one-line usage errors, and reading inputs from arguments or stdin.

A task's command-line registration (`rnn_toolkit.tasks.<task>.cli`) builds on these. The
train options of a task are generated from its run-config dataclass: a field that
`SHARED_TRAIN_OPTIONS` knows gets that option (with the task's wording of the help,
if it gives one), and the task adds options for its own fields. Every option parses to
None when it is not given, so the dataclass supplies the default (and the help shows it).

Imports from rnn_toolkit: runs (never a task: no task name appears in this package
outside `rnn_toolkit.cli.tasks`).
"""

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

from rnn_toolkit.runs import config_from_settings

PROG = "rnn-toolkit"

SAMPLERS = ("greedy", "temperature", "top_k", "top_p")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
CELLS = ("rnn", "lstm", "gru")

# Texts are shown on one line, shortened to this many characters.
_SHOWN_TEXT_LENGTH = 70


class UsageError(Exception):
    """A command-line mistake: reported as one line naming `option`, exit status 2."""

    def __init__(self, option, message):
        super().__init__(message)
        self.option = option


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


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


def int_in_range(low, high):
    """An argument type for integers in `[low, high]`."""

    def parse(text):
        return _number(int, text, f"an integer in [{low}, {high}]", lambda v: low <= v <= high)

    return parse


def prompt_text(text):
    """A prompt with `\\n`, `\\t` and `\\\\` read as newline, tab and backslash."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    return re.sub(r"\\([nt\\])", lambda match: escapes[match.group(1)], text)


# --- Options ------------------------------------------------------------------------------


def add_option(group, *flags, default=None, help, show_default=True, **kwargs):
    """add_argument, with " (default: ...)" added when there is a default to show."""
    if kwargs.get("action") == "store_true":
        return group.add_argument(*flags, help=help, **kwargs)
    if show_default and default is not None:
        help += " (default: %(default)s)"
    return group.add_argument(*flags, default=default, help=help, **kwargs)


@dataclasses.dataclass(frozen=True)
class Setting:
    """A train option that sets the run-config field `name`."""

    option: str
    dest: str
    name: str


@dataclasses.dataclass(frozen=True)
class TrainOption:
    """A train option for the config field `field`: its flags, argparse keywords and help.

    `default_help` replaces the shown default (`""`: show none); by default the config
    class's default is shown.
    """

    flags: tuple
    field: str
    help: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    default_help: str | None = None


def option(*flags, field=None, help, default_help=None, **kwargs):
    """A `TrainOption`; `field` defaults to the first flag without dashes."""
    field = field or flags[0].lstrip("-").replace("-", "_")
    return TrainOption(tuple(flags), field, help, kwargs, default_help)


SHARED_TRAIN_OPTIONS = (
    # Training: every task.
    option("--epochs", type=positive_int, metavar="N",
           help="epochs to train (at most, for a task that stops early)"),
    option("--batch-size", type=positive_int, metavar="N", help="examples per training step"),
    option("--learning-rate", type=positive_float, metavar="LR", help="Adam learning rate"),
    option("--clip-norm", type=non_negative_float, metavar="X",
           help="clip gradients to this global L2 norm (0: off); the pre-clip norm is logged "
           "as grad_norm"),
    option("--precision", choices=PRECISIONS,
           help="compute precision; auto picks mixed_float16 on a GPU, mixed_bfloat16 on a CPU "
           "with bfloat16 instructions, float32 otherwise"),
    option("--seed", type=int, metavar="N",
           help="seeds Python, NumPy, TensorFlow and the data shuffling"),
    option("--backup-every", type=positive_int, metavar="N",
           help="back up the training state every N steps and at each epoch end; a killed run "
           "rerun with the same command resumes from the last backup"),
    # The recurrent model: most tasks.
    option("--cell", choices=CELLS, help="recurrent cell"),
    option("--units", type=positive_int, metavar="N", help="hidden units per recurrent layer"),
    option("--layers", field="num_layers", type=positive_int, metavar="N",
           help="stacked recurrent layers"),
    option("--embedding-dim", type=positive_int, metavar="N", help="embedding size"),
    option("--dropout", type=dropout_rate, metavar="RATE",
           help="dropout between recurrent layers and before the output layer"),
    option("--bidirectional", action=argparse.BooleanOptionalAction,
           help="read each input sequence in both directions (--no-bidirectional: forwards "
           "only)"),
    # Data, vocabulary, split and early stopping: tasks that have these fields.
    option("--data", metavar="NAME|PATH", help="the data to train on"),
    option("--max-words", type=positive_int, metavar="N",
           help="vocabulary size cap (the most frequent training words)"),
    option("--min-count", type=positive_int, metavar="N",
           help="words seen fewer times in the training texts are unknown"),
    option("--no-bucketing", field="bucketing", action="store_false", default_help="",
           help="batch examples in random order instead of with examples of similar length "
           "(more padding, slower)"),
    option("--patience", type=non_negative_int, metavar="N",
           help="stop after N epochs without a better validation score; the best epoch's "
           "weights are kept"),
    option("--heldout-fraction", type=fraction, metavar="F",
           help="share of the data held out for the final scores"),
    option("--validation-fraction", type=fraction, metavar="F",
           help="share of the rest used for early stopping"),
    option("--split-seed", type=int, metavar="N",
           help="fixes the held-out and validation shares (evaluate recomputes them)"),
    option("--sample-every", type=non_negative_int, metavar="N",
           help="print samples every N epochs during training (0: never)"),
)
"""Options of config fields several tasks share; a task gets those its config has."""


def add_training_options(parser, task, *, run_dir_help, defaults=None):
    """Adds `task`'s train options to `parser`: the shared fields its config has, then
    its own. Sets `settings` (the `Setting`s) in the parsed arguments.

    Args:
        parser: the parser of `train <task>` (or of a task's verb that trains).
        task: the task's `TaskCommands`.
        run_dir_help: the help of `--run-dir`.
        defaults: config field -> a default that replaces the config's (the demo's
            short epochs); shown in the help.
    """
    defaults = defaults or {}
    config_defaults = {field.name: _field_default(field) for field in dataclasses.fields(task.config)}
    settings = []

    def add(group, spec):
        if spec.field not in config_defaults:
            raise ValueError(f"{task.name}: {spec.flags[0]} sets {spec.field!r}, which "
                             f"{task.config.__name__} does not have")
        help = task.option_help.get(spec.field, spec.help)
        default = defaults.get(spec.field)
        shown = spec.default_help
        if default is not None or shown is None:
            value = default if default is not None else config_defaults[spec.field]
            shown = "" if value is None else ("on" if value is True else "off" if value is False else str(value))
        if shown:
            help += f" (default: {shown})"
        action = group.add_argument(*spec.flags, default=default, help=help, **spec.kwargs)
        settings.append(Setting("/".join(action.option_strings), action.dest, spec.field))

    common = parser.add_argument_group("training options")
    add_option(common, "--run-dir", metavar="DIR", help=run_dir_help, show_default=False)
    add_option(common, "--overwrite", action="store_true",
               help="replace a finished or interrupted run in the run folder instead of refusing "
               "(finished) or resuming (interrupted)")
    own = {spec.field for spec in task.train_options}
    shared = [spec for spec in SHARED_TRAIN_OPTIONS if spec.field in config_defaults and spec.field not in own]
    for spec in shared:
        add(common, spec)
    group = parser.add_argument_group(f"{task.name} options")
    for spec in task.train_options:
        add(group, spec)
    parser.set_defaults(settings=tuple(settings))


def _field_default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def config_from_args(args, config_class):
    """The run config of the parsed `args`: the options given, the defaults for the rest."""
    values = {}
    for setting in args.settings:
        value = getattr(args, setting.dest)
        if value is not None:
            values[setting.name] = value
    return config_class(**values)


def option_for_setting(args, setting):
    """The option of a run setting: its train option (--layers for num_layers), else --setting-name."""
    for known in getattr(args, "settings", ()):
        if known.name == setting:
            return known.option
    return "--" + setting.replace("_", "-")


def add_model_source(parser, *, run_dir_help, example):
    """`--run-dir DIR` and `--saved-model DIR`: where a command reads its model from."""
    source = parser.add_argument_group("model (one of)")
    add_option(source, "--run-dir", metavar="DIR", show_default=False, help=run_dir_help)
    add_option(source, "--saved-model", metavar="DIR", show_default=False,
               help=f"an exported SavedModel version folder (e.g. saved_models/{example}/1) or its "
               f"model folder (saved_models/{example}: the highest version), loaded with "
               "tf.saved_model.load; rnn_toolkit's Keras model is not needed")


# --- Inputs and outputs -------------------------------------------------------------------


def print_line(*values):
    print(*values, flush=True)


def read_prompts(prompts):
    """`--prompt` values, with one '-' read as all of stdin."""
    if not prompts:
        return []
    if prompts.count("-") > 1:
        raise UsageError("--prompt", "'-' (read from stdin) may be given only once")
    return [sys.stdin.read() if prompt == "-" else prompt for prompt in prompts]


def read_lines(values, *, noun, argument):
    """The inputs of a command that takes one input per line: the arguments, with '-' (or
    no argument) read as stdin's lines. Blank lines are kept (line i stays line i), and
    bytes that are not UTF-8 are replaced, in the arguments too.

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


def one_line(text, limit=_SHOWN_TEXT_LENGTH):
    """`text` on one line, its whitespace collapsed, shortened to `limit` characters."""
    text = " ".join(text.split())
    if not text:
        return "(empty)"
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def absolute_data(data, names):
    """A --data-like value with an existing file or folder made absolute, so that a run
    resumed or evaluated from another folder finds it. Built-in names (`names`, also
    with a ":..." suffix such as "bible:es-en") stay names, even if a file of that name
    happens to exist here."""
    if not data or data.split(":")[0] in names:
        return data
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else data


def evaluation_config(args, info, config_class, data_names, *, example, sample_field):
    """The run config `evaluate` scores a generator with, and the part of the data to score.

    The run's settings (or the train defaults for a SavedModel without a run), with the
    options applied: `--data` (made absolute; a run's sample of its data, `sample_field`,
    belongs to that data only), `--split-seed` and `--beam-width`. The part is `--split`,
    else the held-out share when the data is the run's own (or no run is known: the
    SavedModel was most likely trained on the data's default split), else all of it.

    Args:
        args: the parsed `evaluate` arguments.
        info: the run's run.json, or None.
        config_class: the task's run config.
        data_names: the task's built-in data names (see `absolute_data`).
        example: a `--data` value for the message when one is needed.
        sample_field: the config field that samples the data (`max_pairs`, `max_images`).

    Returns:
        `(config, part)`: the config and `"heldout"` or `"all"`.
    """
    config = config_from_settings(config_class, info)
    if info is None and not args.data:
        raise UsageError(
            "--data", f"needed with a SavedModel unless --run-dir names its run (e.g. --data "
            f"{example}: the held-out share of its default split)",
        )
    recorded = (info or {}).get("settings", {}).get("data")
    if args.data:
        data = absolute_data(args.data, data_names)
        sample = getattr(config, sample_field) if data == recorded else 0
        config = dataclasses.replace(config, data=data, **{sample_field: sample})
    if args.split_seed is not None:
        config = dataclasses.replace(config, split_seed=args.split_seed)
    if args.beam_width is not None:
        config = dataclasses.replace(config, beam_width=args.beam_width)
    own_data = info is None or config.data == recorded
    return config, args.split or ("heldout" if own_data else "all")

