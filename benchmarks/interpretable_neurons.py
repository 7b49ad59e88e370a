"""Looks for the char-RNN's interpretable neurons in character LSTMs trained on Shakespeare
and on Python source, and reports how well the best single unit follows each probe.

The lecture's finding (Karpathy et al. 2015): single cells of a character LSTM track the
position in the line, being inside a quotation or a comment, the indentation or bracket
depth. This script checks it on held-out text with `rnn_toolkit.inspection`:

1. **Models.** One character LSTM per corpus, trained with the command line in a run
   folder under `--run-root` (a finished run there is reused; delete it to retrain).
   The training budget is fixed in steps, about 10 minutes each on 2 busy cores:
   `--max-chars 2000000 --units 512 --tbptt` (truncated BPTT carries the state across
   batches, as the recording below reads long texts from one state), Shakespeare
   10 epochs x 120 steps, Python 8 x 100 (see `TRAINING`).
2. **Text.** The first held-out piece of the run's split (20,000 characters, never
   trained on), its first `2 * --chars` characters read in one go from a zero state by
   `record_activations` (every h and c unit). The first `--warmup` characters of each
   half are left out while the state settles.
3. **Selection, then evaluation.** For every probe (`standard_probes`, plus two of our
   own: speaker headings in Shakespeare, comment-or-string in Python) the unit with the largest |correlation| is chosen on
   the first half, and its correlation (and, for two-valued probes, the accuracy of the
   best threshold on it, against always answering the majority value) is reported on
   the second half, which the choice did not see: the best of 1,024 units on one text
   is an optimistic number, its score on the next text is not.
4. **Baseline.** The same architecture untrained (seeded), chosen and evaluated alike:
   what a random LSTM's best unit already correlates with (a counter-like probe such as
   the position in the line is partly followed by any slowly integrating unit).
5. **Speed.** Characters/s of `record_activations` (one traced `tf.scan`) against a
   Python loop calling `model.step` once per character.
6. **Pictures.** For every probe, its best unit over an excerpt of the evaluation half,
   coloured blue (negative) to red (positive), as PNG (and HTML) in `--png-dir`.

Usage (from the repository root):

    .venv/bin/python benchmarks/interpretable_neurons.py --run-root /tmp/neurons --png-dir /tmp/neurons
    .venv/bin/python benchmarks/interpretable_neurons.py --quick   # tiny models, seconds of training

The numbers are written as JSON to `benchmarks/results/interpretable_neurons.json`.
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.inspection import neurons, probes
from rnn_toolkit.runs import load_run_model
from rnn_toolkit.tasks.char_lm.run import load_split

CORPORA = ("shakespeare", "python")

# The training budget of each corpus, as `rnn-toolkit train char_lm` arguments.
COMMON_TRAINING = ["--max-chars", "2000000", "--units", "512", "--layers", "1", "--tbptt",
                   "--validation-steps", "5", "--seed", "0"]
TRAINING = {
    "shakespeare": ["--epochs", "10", "--steps-per-epoch", "120", "--sample-every", "5"],
    "python": ["--epochs", "8", "--steps-per-epoch", "100", "--sample-every", "4"],
}
QUICK_TRAINING = ["--max-chars", "300000", "--units", "64", "--epochs", "1", "--steps-per-epoch", "20",
                  "--validation-steps", "1", "--sample-every", "0", "--seed", "0"]

# Probes whose picture is drawn with a visible newline marker (line-position units
# reset or peak at the newline itself).
LINE_PROBES = {"position_in_line", "line_length_remaining"}

_SPEAKER_HEADING = re.compile(r"^[A-Z][A-Z' -]*\.\n", re.MULTILINE)


def speaker_heading(text):
    """1.0 on the lines that name a speaker in the Gutenberg plays ("CLEOPATRA."), newline included."""
    values = np.zeros(len(text))
    for match in _SPEAKER_HEADING.finditer(text):
        values[match.start():match.end()] = 1.0
    return values


def corpus_probes(corpus, text):
    """The probes of a corpus's text: the standard ones (Python read as code) and two of
    our own: for Python, inside a comment or a string (prose inside code), for
    Shakespeare, the speaker headings."""
    if corpus == "python":
        named = probes.standard_probes(text, language="python")
        named["inside_comment_or_string"] = np.maximum(named["inside_comment"], named["inside_string_literal"])
        return named
    named = probes.standard_probes(text)
    named["speaker_heading"] = speaker_heading(text)
    return named


def ensure_run(corpus, run_dir, quick):
    """Trains the corpus's model in `run_dir` with the command line unless it is finished there."""
    if (run_dir / "model.keras").is_file():
        print(f"{corpus}: reusing the finished run in {run_dir}", flush=True)
        return
    arguments = ["--corpus", corpus, "--run-dir", str(run_dir)]
    arguments += QUICK_TRAINING if quick else COMMON_TRAINING + TRAINING[corpus]
    command = [sys.executable, "-m", "rnn_toolkit", "train", "char_lm", *arguments]
    print(f"{corpus}: training: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, cwd=support.REPOSITORY_ROOT)


def heldout_text(run_info, characters):
    """The first `characters` characters of the run's first held-out piece."""
    settings = run_info["settings"]
    _, _, validation_pieces = load_split(
        settings["corpus"],
        max_chars=settings["max_chars"],
        validation_fraction=settings["validation_fraction"],
        num_chunks=settings["num_chunks"],
    )
    piece = validation_pieces[0]
    if len(piece) < characters:
        raise SystemExit(f"the first held-out piece has {len(piece)} characters; {characters} needed")
    return piece[:characters]


def python_loop_speed(model, text):
    """Characters/s of reading `text` with one eager `model.step` call per character."""
    ids = model.vocabulary.encode(text)
    states = [[tf.zeros([1, model.units]) for _ in layer] for layer in model.recurrent.get_initial_state(1)]
    model.step(ids[:1], states)  # first-call costs out of the timing
    start = time.perf_counter()
    for index in range(len(text)):
        _, states = model.step(ids[index:index + 1], states)
    return len(text) / (time.perf_counter() - start)


def select_and_evaluate(activations, named_probes, halves, warmup):
    """Per probe: the best unit on the first half and its scores on the second
    (`neurons.probe_table` with `select` / `evaluate`)."""
    results = {}
    for probe_name, values in named_probes.items():
        table = neurons.probe_table(
            activations, {probe_name: values}, top=4, select=halves[0], evaluate=halves[1], warmup=warmup
        )
        if not len(table):
            results[probe_name] = {"skipped": "constant on one half of the text"}
            continue
        best = table[0]
        # How optimistic choosing on the scored text itself would have been.
        scored = values[halves[1][0]:halves[1][1]].copy()
        scored[:warmup] = np.nan
        best_on_evaluation = neurons.rank_units(activations.slice(*halves[1]), scored, top=1)[0]
        results[probe_name] = {
            "unit": f"{best.name} {best.unit}",
            "correlation_selection": best.selection_correlation,
            "correlation_evaluation": best.correlation,
            "threshold_accuracy_evaluation": best.threshold_accuracy,
            "majority_accuracy_evaluation": best.majority_accuracy,
            "best_correlation_on_evaluation_itself": best_on_evaluation.correlation,
            "runners_up_selection": [
                {"unit": f"{row.name} {row.unit}", "correlation": row.selection_correlation} for row in table[1:4]
            ],
        }
    return results


def excerpt_start(values, start, end, length, text):
    """Where a picture of `length` characters in [start, end) should begin: a line start
    a few lines before the probe's first change, so the picture shows the unit at work."""
    changes = np.flatnonzero(np.diff(np.nan_to_num(values[start:end]))) + start
    begin = int(changes[0]) - length // 5 if changes.size else start
    begin = min(max(begin, start), max(end - length, start))
    line_start = text.rfind("\n", start, begin) + 1
    return max(line_start, start)


def render(corpus, activations, named_probes, results, halves, args):
    """One PNG (and HTML) per probe of its chosen unit over an excerpt of the evaluation half."""
    pictures = {}
    png_dir = pathlib.Path(args.png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    second_start, second_end = halves[1]
    for probe_name, result in results.items():
        if "unit" not in result:
            continue
        name, unit = result["unit"].split()
        values = activations.unit(name, int(unit))
        begin = excerpt_start(named_probes[probe_name], second_start, second_end, args.png_chars, activations.text)
        end = min(begin + args.png_chars, second_end)
        text = activations.text[begin:end]
        title = (
            f"{corpus}: {name} unit {unit} ~ {probe_name} "
            f"(r = {result['correlation_evaluation']:+.2f} on held-out text)"
        )
        marker = "↵" if probe_name in LINE_PROBES else " "
        path = png_dir / f"{corpus}_{probe_name}.png"
        neurons.activation_png(
            text, values[begin:end], path, line_width=args.png_width, title=title, newline_marker=marker,
            limit=float(np.max(np.abs(values))) or 1.0,
        )
        html_path = path.with_suffix(".html")
        html_path.write_text(
            neurons.activation_html(text, values[begin:end], title=title, newline_marker=marker), encoding="utf-8"
        )
        pictures[probe_name] = {"png": str(path), "html": str(html_path), "characters": [begin, end]}
    return pictures


def measure_corpus(corpus, args):
    run_dir = pathlib.Path(args.run_root) / f"char_lm_{corpus}"
    ensure_run(corpus, run_dir, args.quick)
    model, run_info = load_run_model(run_dir)
    text = heldout_text(run_info, 2 * args.chars)
    halves = [(0, args.chars), (args.chars, 2 * args.chars)]
    named_probes = corpus_probes(corpus, text)

    neurons.record_activations(model, text[:10])  # tracing out of the timing
    start = time.perf_counter()
    activations = neurons.record_activations(model, text)
    record_seconds = time.perf_counter() - start
    loop_chars = min(300, len(text))
    loop_speed = python_loop_speed(model, text[:loop_chars])
    print(
        f"{corpus}: recorded {len(text):,} characters x {sum(v.shape[1] for v in activations.values())} "
        f"units in {record_seconds:.1f} s ({len(text) / record_seconds:,.0f} characters/s; "
        f"a Python loop of model.step: {loop_speed:,.0f} characters/s)",
        flush=True,
    )
    trained = select_and_evaluate(activations, named_probes, halves, args.warmup)

    keras.utils.set_random_seed(0)
    settings = run_info["settings"]
    untrained_model = rnn_toolkit.build_char_lm(
        model.vocabulary.characters, embedding_dim=settings["embedding_dim"], cell=settings["cell"],
        units=settings["units"], num_layers=settings["num_layers"], dtype_policy="float32",
    )
    untrained = select_and_evaluate(
        neurons.record_activations(untrained_model, text), named_probes, halves, args.warmup
    )
    pictures = render(corpus, activations, named_probes, trained, halves, args)

    rows = []
    for probe_name, result in trained.items():
        if "unit" not in result:
            rows.append(f"{probe_name:<24} {'(constant on this text)':>40}")
            continue
        baseline = untrained[probe_name]
        accuracy = result["threshold_accuracy_evaluation"]
        majority = result["majority_accuracy_evaluation"]
        rows.append(
            f"{probe_name:<24} {result['unit']:<14} {result['correlation_selection']:>+7.3f} "
            f"{result['correlation_evaluation']:>+7.3f} "
            f"{'' if accuracy is None else f'{accuracy:.3f}':>6} {'' if majority is None else f'{majority:.3f}':>6} "
            f"{baseline['correlation_evaluation']:>+8.3f}"
        )
    support.print_table(
        f"{corpus}: best unit per probe (chosen on held-out chars 0-{args.chars:,}, "
        f"evaluated on {args.chars:,}-{2 * args.chars:,}); held-out loss "
        f"{run_info['heldout']['loss_nats_per_char']:.3f} nats/char",
        f"{'probe':<24} {'unit':<14} {'r sel':>7} {'r eval':>7} {'acc':>6} {'major':>6} {'untrained':>8}",
        rows,
    )
    return {
        "run_dir": str(run_dir),
        "training": {
            "arguments": QUICK_TRAINING if args.quick else COMMON_TRAINING + TRAINING[corpus],
            "train_seconds": run_info.get("train_seconds"),
            "heldout_loss_nats_per_char": run_info["heldout"]["loss_nats_per_char"],
            "dtype_policy": run_info.get("dtype_policy"),
            "parameters": run_info.get("parameters"),
        },
        "text": {
            "source": "first held-out piece of the run's split",
            "selection_characters": list(halves[0]),
            "evaluation_characters": list(halves[1]),
            "warmup_left_out": args.warmup,
        },
        "recording": {
            "characters": len(text),
            "units": sum(v.shape[1] for v in activations.values()),
            "seconds": record_seconds,
            "characters_per_s": len(text) / record_seconds,
            "python_loop_characters_per_s": loop_speed,
            "python_loop_characters": loop_chars,
            "speedup": len(text) / record_seconds / loop_speed,
        },
        "probes": trained,
        "untrained_probes": untrained,
        "pictures": pictures,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated corpora")
    parser.add_argument("--run-root", default=None,
                        help="folder of the run folders char_lm_<corpus> (default: <tmp>/interpretable_neurons)")
    parser.add_argument("--chars", type=int, default=10_000, help="characters per half (selection, evaluation)")
    parser.add_argument("--warmup", type=int, default=200, help="characters left out at the start of each half")
    parser.add_argument("--png-dir", default=None, help="where the pictures go (default: the run root)")
    parser.add_argument("--png-chars", type=int, default=1500, help="characters per picture")
    parser.add_argument("--png-width", type=int, default=100, help="characters per drawn line")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny models trained for seconds")
    parser.add_argument("--output", default=None, help="result file")
    args = parser.parse_args()
    corpora = support.chosen_subset(args.corpora, CORPORA, "corpora")
    if args.quick:
        args.chars = min(args.chars, 1_000)
        args.warmup = min(args.warmup, 50)
    if args.run_root is None:
        name = "interpretable_neurons_quick" if args.quick else "interpretable_neurons"
        args.run_root = str(pathlib.Path(tempfile.gettempdir()) / name)
    if args.png_dir is None:
        args.png_dir = args.run_root

    started = time.perf_counter()
    load_before = os.getloadavg()
    results = {corpus: measure_corpus(corpus, args) for corpus in corpora}
    record = support.run_metadata("interpretable_neurons", args, load_before, started=started)
    record["corpora"] = results
    output = pathlib.Path(args.output) if args.output else support.results_path("interpretable_neurons", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
