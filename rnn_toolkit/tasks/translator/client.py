"""Translates sentences with an exported translator, using TensorFlow alone.

This file imports nothing from rnn_toolkit on purpose: it is what a deployer's code
looks like, and running it in a fresh process proves the SavedModel stands on its own
(the vocabularies and the beam search are in the graph). Run it by path, on a version
folder or on a model folder (its highest numeric version, as TF Serving picks):

    python rnn_toolkit/tasks/translator/client.py saved_models/translator "In the beginning"
    python rnn_toolkit/tasks/translator/client.py saved_models/translator/1 --json < verses.txt

With no sentence arguments (or a single "-") it reads one sentence per line from
standard input; a blank line gives a blank line, so output line i translates input line
i. Each sentence gives one line: its translation, or with `--json` one JSON object
(`translation`, `text`). `--beam-width` (1: greedy search) and `--max-length` are the
inputs of the `translate` signature. Status lines go to standard error, so standard
output holds results only.
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

SIGNATURE = "translate"
EXPECTED_INPUTS = {"text": tf.string, "beam_width": tf.int32, "max_length": tf.int32}
MAX_BEAM_WIDTH = 32  # the signature clamps wider beams to this


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


def load_translator(path):
    """`(loaded object, translate signature)` of the SavedModel at `path`.

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
            f"{str(path)!r} is not a translator: it has no {SIGNATURE!r} signature "
            f"(it has {sorted(loaded.signatures) or 'none'})"
        )
    inputs = signature.structured_input_signature[1]
    found = {name: spec.dtype for name, spec in inputs.items()}
    if found != EXPECTED_INPUTS or "translation" not in signature.structured_outputs:
        raise ClientError(
            f"{str(path)!r}: the {SIGNATURE!r} signature takes {sorted(found)} and returns "
            f"{sorted(signature.structured_outputs)}; expected {sorted(EXPECTED_INPUTS)} -> "
            "'translation'"
        )
    return loaded, signature


def read_sentences(arguments, stdin):
    """Sentences as bytes: the arguments (as the shell passed them), or stdin's lines."""
    if arguments and arguments != ["-"]:
        return [os.fsencode(argument) for argument in arguments]
    # Bytes, not str: the model replaces bytes that are not UTF-8 itself.
    return (line.rstrip(b"\r\n") for line in stdin.buffer)


def translate(signature, sentences, beam_width, max_length):
    """The translations (str) of a list of byte strings; blank sentences stay blank."""
    indices = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    translations = [""] * len(sentences)
    if indices:
        result = signature(
            text=tf.constant([sentences[i] for i in indices], tf.string),
            beam_width=tf.constant(beam_width, tf.int32),
            max_length=tf.constant(max_length, tf.int32),
        )
        for index, translation in zip(indices, result["translation"].numpy().tolist()):
            translations[index] = translation.decode("utf-8", errors="replace")
    return translations


def batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="a version folder (saved_models/translator/1) or a model folder")
    parser.add_argument("sentences", nargs="*", help="sentences to translate (none or '-': one per line from stdin)")
    parser.add_argument("--beam-width", type=int, default=4,
                        help=f"beam search width, 1 to {MAX_BEAM_WIDTH}; 1 is greedy search (default: 4)")
    parser.add_argument("--max-length", type=int, default=0,
                        help="the most words per translation (default: 0, the model's: twice the "
                        "source's words plus 10)")
    parser.add_argument("--json", action="store_true", help="one JSON object per sentence")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per call (default: 64)")
    args = parser.parse_args(argv)
    if not 1 <= args.beam_width <= MAX_BEAM_WIDTH:
        parser.error(f"--beam-width must be in [1, {MAX_BEAM_WIDTH}]")
    if args.max_length < 0:
        parser.error("--max-length must be at least 0")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")

    try:
        path = resolve_version(args.saved_model)
        # The loaded object owns the variables the signature reads: keep it referenced.
        _loaded, signature = load_translator(path)
    except ClientError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"Loaded {path}", file=sys.stderr)
    # A terminal that cannot show a character gets a "?".
    sys.stdout.reconfigure(errors="replace")

    count = 0
    for batch in batches(read_sentences(args.sentences, sys.stdin), args.batch_size):
        for raw, translation in zip(batch, translate(signature, batch, args.beam_width, args.max_length)):
            if args.json:
                text = raw.decode("utf-8", errors="replace")
                print(json.dumps({"translation": translation, "text": text}, ensure_ascii=False))
            else:
                print(translation.replace("\r", " ").replace("\n", " "))
        count += len(batch)
    sys.stdout.flush()
    print(f"{count} sentence(s) translated", file=sys.stderr)
    assert "rnn_toolkit" not in sys.modules, "the client must not need rnn_toolkit"
    print("(rnn_toolkit was not imported in this process)", file=sys.stderr)


if __name__ == "__main__":
    main()
