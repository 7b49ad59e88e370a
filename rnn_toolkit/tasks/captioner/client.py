"""Captions image files with an exported captioner, using TensorFlow alone.

This file imports nothing from rnn_toolkit on purpose: it is what a deployer's code
looks like, and running it in a fresh process proves the SavedModel stands on its own
(image decoding, the vocabulary and the beam search are in the graph). Run it by path, on
a version folder or on a model folder (its highest numeric version, as TF Serving picks):

    python rnn_toolkit/tasks/captioner/client.py saved_models/captioner cat.jpg dog.png
    python rnn_toolkit/tasks/captioner/client.py saved_models/captioner/1 --json photos/

Each image (a folder stands for the image files directly inside it, in name order) gives
one line: `PATH<TAB>caption`, or with `--json` one JSON object (`image`, `caption`,
`error`). A file the model cannot read (not an image, truncated, empty) gets an empty
caption and its error; the other images are captioned all the same. `--beam-width`
(1: greedy search) and `--max-length` are the inputs of the `caption` signature. Status
lines go to standard error, so standard output holds results only.
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

SIGNATURE = "caption"
EXPECTED_INPUTS = {"image": tf.string, "beam_width": tf.int32, "max_length": tf.int32}
MAX_BEAM_WIDTH = 16  # the signature clamps wider beams to this
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


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


def load_captioner(path):
    """`(loaded object, caption signature)` of the SavedModel at `path`.

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
            f"{str(path)!r} is not a captioner: it has no {SIGNATURE!r} signature "
            f"(it has {sorted(loaded.signatures) or 'none'})"
        )
    inputs = signature.structured_input_signature[1]
    found = {name: spec.dtype for name, spec in inputs.items()}
    if found != EXPECTED_INPUTS or "caption" not in signature.structured_outputs:
        raise ClientError(
            f"{str(path)!r}: the {SIGNATURE!r} signature takes {sorted(found)} and returns "
            f"{sorted(signature.structured_outputs)}; expected {sorted(EXPECTED_INPUTS)} -> 'caption'"
        )
    return loaded, signature


def image_paths(arguments):
    """The image files named by the arguments (a folder: its image files, in name order)."""
    paths = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths.append(path)
        else:
            raise ClientError(f"no such image file or folder: {argument!r}")
    return paths


def caption(signature, paths, beam_width, max_length):
    """`(caption, error)` per image file."""
    result = signature(
        image=tf.constant([path.read_bytes() for path in paths], tf.string),
        beam_width=tf.constant(beam_width, tf.int32),
        max_length=tf.constant(max_length, tf.int32),
    )
    captions = [c.decode("utf-8", errors="replace") for c in result["caption"].numpy().tolist()]
    errors = [e.decode("utf-8", errors="replace") for e in result["error"].numpy().tolist()]
    return list(zip(captions, errors))


def batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="a version folder (saved_models/captioner/1) or a model folder")
    parser.add_argument("images", nargs="+", help="image files or folders of them")
    parser.add_argument("--beam-width", type=int, default=3,
                        help=f"beam search width, 1 to {MAX_BEAM_WIDTH}; 1 is greedy search (default: 3)")
    parser.add_argument("--max-length", type=int, default=0,
                        help="the most words per caption (default: 0, the model's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("--batch-size", type=int, default=16, help="images per call (default: 16)")
    args = parser.parse_args(argv)
    if not 1 <= args.beam_width <= MAX_BEAM_WIDTH:
        parser.error(f"--beam-width must be in [1, {MAX_BEAM_WIDTH}]")
    if args.max_length < 0:
        parser.error("--max-length must be at least 0")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")

    try:
        paths = image_paths(args.images)
        path = resolve_version(args.saved_model)
        # The loaded object owns the variables the signature reads: keep it referenced.
        _loaded, signature = load_captioner(path)
    except ClientError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"Loaded {path}", file=sys.stderr)
    # A terminal that cannot show a character gets a "?".
    sys.stdout.reconfigure(errors="replace")

    failed = 0
    for batch in batches(paths, args.batch_size):
        for image, (text, error) in zip(batch, caption(signature, batch, args.beam_width, args.max_length)):
            failed += bool(error)
            if args.json:
                print(json.dumps({"image": str(image), "caption": text, "error": error}, ensure_ascii=False))
            else:
                print(f"{image}\t{text if not error else '(' + error + ')'}")
    sys.stdout.flush()
    print(f"{len(paths)} image(s) captioned, {failed} unreadable", file=sys.stderr)
    assert "rnn_toolkit" not in sys.modules, "the client must not need rnn_toolkit"
    print("(rnn_toolkit was not imported in this process)", file=sys.stderr)


if __name__ == "__main__":
    main()
