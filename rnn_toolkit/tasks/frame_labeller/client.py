"""Labels every frame of clips with an exported frame labeller, using TensorFlow alone.

This file imports nothing from rnn_toolkit on purpose: it is what a deployer's code
looks like, and running it in a fresh process proves the SavedModel stands on its own.
Run it by path, on a version folder or on a model folder (its highest numeric version,
as TF Serving picks), with folders of frame images (one clip each, frames in name order):

    python rnn_toolkit/tasks/frame_labeller/client.py saved_models/frame_labeller clip_frames/
    python rnn_toolkit/tasks/frame_labeller/client.py saved_models/frame_labeller/1 a/ b/ --json

The frames are sent as their encoded bytes to the `video` signature, which decodes and
resizes them in the graph. Each frame gives one line: the clip, the frame index and its
label of every kind (in the order of the model's `assets/labels.json`); a model with clip
labels adds one line per clip: the clip, `clip` and its label of every clip label kind.
`--json` prints one JSON object per clip instead. Status lines go to standard error.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

SIGNATURE = "video"
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


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


def load_labeller(path):
    """`(loaded object, video signature, label kinds, clip label kinds)` of the SavedModel
    at `path` (a model without clip labels has none).

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
            f"{str(path)!r} is not a frame labeller: it has no {SIGNATURE!r} signature "
            f"(it has {sorted(loaded.signatures) or 'none'})"
        )
    labels_file = Path(path) / "assets" / "labels.json"
    outputs = signature.structured_outputs
    if labels_file.is_file():
        assets = json.loads(labels_file.read_text(encoding="utf-8"))
        kinds, clip_kinds = assets["label_kinds"], assets.get("clip_label_kinds", [])
    else:  # still usable: the kinds from the outputs' names
        kinds = sorted(key[: -len("_labels")] for key in outputs if key.endswith("_labels"))
        clip_kinds = sorted(key[len("clip_"):] for key in outputs
                            if key.startswith("clip_") and f"{key}_probabilities" in outputs)
    return loaded, signature, kinds, clip_kinds


def frame_files(folder):
    """The frame images of a clip folder, in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClientError(f"no such folder of frames: {str(folder)!r}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ClientError(f"the folder {str(folder)!r} holds no PNG, JPEG, GIF or BMP frame")
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="a version folder (saved_models/frame_labeller/1) or a model folder")
    parser.add_argument("clips", nargs="+", help="folders of frame images, one clip each")
    parser.add_argument("--json", action="store_true", help="one JSON object per clip")
    args = parser.parse_args(argv)

    try:
        path = resolve_version(args.saved_model)
        # The loaded object owns the variables the signature reads: keep it referenced.
        _loaded, label_video, kinds, clip_kinds = load_labeller(path)
        clips = [(clip, frame_files(clip)) for clip in args.clips]
    except ClientError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"Loaded {path}; labels: {', '.join(kinds)}"
          + (f"; clip labels: {', '.join(clip_kinds)}" if clip_kinds else ""), file=sys.stderr)

    for clip, files in clips:
        encoded = tf.constant([[file.read_bytes() for file in files]], tf.string)
        result = {key: value.numpy()[0] for key, value in label_video(encoded_frames=encoded).items()}
        labels = {kind: [v.decode("utf-8") for v in result[f"{kind}_labels"]] for kind in kinds}
        clip_labels = {kind: result[f"clip_{kind}"].decode("utf-8") for kind in clip_kinds}
        error = result["error"].decode("utf-8")
        if args.json:
            print(json.dumps({"clip": clip, "frames": len(files), "labels": labels, "error": error,
                              **({"clip_labels": clip_labels} if clip_kinds else {})}))
        else:
            for index in range(len(files)):
                print("\t".join([clip, str(index)] + [labels[kind][index] for kind in kinds]))
            if clip_kinds:
                print("\t".join([clip, "clip"] + [clip_labels[kind] for kind in clip_kinds]))
        if error:
            print(f"{clip}: {error}", file=sys.stderr)
    sys.stdout.flush()
    print(f"{len(clips)} clip(s) labelled", file=sys.stderr)
    assert "rnn_toolkit" not in sys.modules, "the client must not need rnn_toolkit"
    print("(rnn_toolkit was not imported in this process)", file=sys.stderr)


if __name__ == "__main__":
    main()
