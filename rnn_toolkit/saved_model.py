"""Writing SavedModels into the TF Serving layout, atomically.

TF Serving watches `<base>/<name>/` and loads the highest numeric sub-folder. A version
must therefore appear whole or not at all: it is written into a hidden temporary folder
beside its final place (same file system) and renamed into place, so a crash mid-export
leaves at most a `.tmp` folder that Serving ignores, never a half-written version.

Imports from rnn_toolkit: arguments.
"""

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int


def version_dir(base_dir, name, version=None):
    """The folder `<base_dir>/<name>/<version>`; `version=None` picks the next free number.

    Args:
        base_dir: the model base folder (e.g. `"saved_models"`).
        name: the model's name (e.g. `"char_lm"`).
        version: a positive integer, or None for one more than the highest existing.

    Returns:
        A `pathlib.Path` (not created).
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain folder name; received name={name!r}.")
    root = Path(base_dir) / name
    if version is None:
        existing = [int(p.name) for p in root.glob("*") if p.is_dir() and p.name.isdigit()]
        version = max(existing, default=0) + 1
    return root / str(check_positive_int("version", version))


def write_saved_model(module, target, *, signatures, overwrite=False, options=None):
    """Saves `module` to `target` atomically.

    Args:
        module: the `tf.Module` to save.
        target: final folder (see `version_dir`).
        signatures: the signatures dict for `tf.saved_model.save`.
        overwrite: replace an existing version. Without it an existing version raises
            `FileExistsError`: a served version is never replaced silently.
        options: optional `tf.saved_model.SaveOptions`.

    Returns:
        `target` as a `pathlib.Path`.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"SavedModel version folder {str(target)!r} already exists; pass overwrite=True "
            "to replace it or choose another version."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with _quiet_tensorflow_info():
            tf.saved_model.save(module, str(staging), signatures=signatures, options=options)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def _quiet_tensorflow_info():
    """Hides TensorFlow's INFO lines while saving ("Assets written to: <staging folder>"
    names a temporary folder the caller never sees); warnings still show."""
    logger = tf.get_logger()
    previous = logger.level
    logger.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(previous)
