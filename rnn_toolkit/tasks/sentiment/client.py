"""Classifies texts with an exported sentiment classifier, using TensorFlow alone.

This file imports nothing from rnn_toolkit on purpose: it is what a deployer's code
looks like, and running it in a fresh process proves the SavedModel stands on its own.
Run it by path, on a version folder or on a model folder (its highest numeric version,
as TF Serving picks):

    python rnn_toolkit/tasks/sentiment/client.py saved_models/sentiment "a gorgeous film"
    cat reviews.txt | python rnn_toolkit/tasks/sentiment/client.py saved_models/sentiment/1 --json

With no text arguments (or a single "-") it reads one text per line from standard input;
every line is a text, blank ones included, so output line i belongs to input line i.
Each text gives one line: the label, each class's probability (in the order of the
model's `assets/labels.json`), the score for a score-regression model, and the text
shortened; `--json` prints one JSON object per text instead. Status lines go to
standard error, so standard output holds results only.
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

SIGNATURE = "classify"
EXPECTED_OUTPUTS = ("label", "probabilities", "class_id")


class ClientError(Exception):
    """A problem with the command's input, reported as one line and exit status 2."""


def resolve_version(path):
    """The SavedModel folder for `path`: itself, or its highest numeric version."""
    path = Path(path)
    if not path.is_dir():
        raise ClientError(f"no such folder: {str(path)!r}")
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise ClientError(
            f"{str(path)!r} holds neither a SavedModel (saved_model.pb) nor numbered version folders"
        )
    latest = max(versions, key=lambda p: int(p.name))
    if not (latest / "saved_model.pb").is_file():
        raise ClientError(f"the highest version {str(latest)!r} holds no saved_model.pb")
    return latest


def load_classifier(path):
    """`(loaded object, classify signature, class names)` of the SavedModel at `path`.

    Keep the loaded object while calling the signature: it owns the variables.
    """
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # a corrupt or foreign file: say so in one line
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClientError(f"cannot load a SavedModel from {str(path)!r}: {first_line}") from None
    signature = loaded.signatures.get(SIGNATURE)
    if signature is None:
        raise ClientError(
            f"{str(path)!r} is not a sentiment classifier: it has no {SIGNATURE!r} signature "
            f"(it has {sorted(loaded.signatures) or 'none'})"
        )
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if list(inputs) != ["text"] or inputs["text"].dtype != tf.string or any(
        name not in outputs for name in EXPECTED_OUTPUTS
    ):
        raise ClientError(
            f"{str(path)!r}: the {SIGNATURE!r} signature takes {sorted(inputs)} and returns "
            f"{sorted(outputs)}; expected a string 'text' and {list(EXPECTED_OUTPUTS)}"
        )
    labels_file = Path(path) / "assets" / "labels.json"
    if labels_file.is_file():
        class_names = json.loads(labels_file.read_text(encoding="utf-8"))["class_names"]
    else:  # still usable, with numbered classes
        class_names = [f"class_{i}" for i in range(outputs["probabilities"].shape[-1])]
    return loaded, signature, class_names


def read_texts(arguments, stdin):
    """Texts as bytes: the arguments (as the shell passed them), or stdin's lines."""
    if arguments and arguments != ["-"]:
        return [os.fsencode(argument) for argument in arguments]
    # Bytes, not str: the model replaces bytes that are not UTF-8 itself.
    return (line.rstrip(b"\r\n") for line in stdin.buffer)


def shorten(text, width):
    """`text` on one line, at most `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="a version folder (saved_models/sentiment/1) or a model folder")
    parser.add_argument("texts", nargs="*", help="texts to classify (none or '-': one per line from stdin)")
    parser.add_argument("--json", action="store_true", help="one JSON object per text")
    parser.add_argument("--width", type=int, default=60, help="characters of each text to show")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per call")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")

    try:
        path = resolve_version(args.saved_model)
        # The loaded object owns the variables the signature reads: keep it referenced.
        _loaded, classify, class_names = load_classifier(path)
    except ClientError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"Loaded {path}; classes: {', '.join(class_names)}", file=sys.stderr)
    # Texts may hold anything; a terminal that cannot show a character gets a "?".
    sys.stdout.reconfigure(errors="replace")

    count = 0
    for batch in batches(read_texts(args.texts, sys.stdin), args.batch_size):
        result = {key: value.numpy() for key, value in classify(text=tf.constant(batch, tf.string)).items()}
        for row, raw in enumerate(batch):
            text = raw.decode("utf-8", errors="replace")
            label = result["label"][row].decode("utf-8")
            probabilities = [float(p) for p in result["probabilities"][row]]
            score = float(result["score"][row]) if "score" in result else None
            if args.json:
                record = {
                    "label": label,
                    "class_id": int(result["class_id"][row]),
                    "probabilities": dict(zip(class_names, probabilities)),
                    **({"score": score} if score is not None else {}),
                    "text": text,
                }
                print(json.dumps(record, ensure_ascii=False))
            else:
                columns = [f"{label:<{max(map(len, class_names))}}"]
                columns += [f"{name}={p:.3f}" for name, p in zip(class_names, probabilities)]
                if score is not None:
                    columns.append(f"score={score:+.3f}")
                columns.append(shorten(text, args.width))
                print("  ".join(columns))
        count += len(batch)
    sys.stdout.flush()
    print(f"{count} text(s) classified", file=sys.stderr)
    assert "rnn_toolkit" not in sys.modules, "the client must not need rnn_toolkit"
    print("(rnn_toolkit was not imported in this process)", file=sys.stderr)


if __name__ == "__main__":
    main()
