"""Writing SavedModels into the TF Serving layout, atomically.

TF Serving watches `<base>/<name>/` and loads the highest numeric sub-folder. A version
must therefore appear whole or not at all: it is written into a hidden temporary folder
beside its final place (same file system) and renamed into place, so a crash mid-export
leaves at most a `.tmp` folder that Serving ignores, never a half-written version.

Exports whose signatures decode in an XLA-compiled loop also write warm-up requests
(`assets.extra/tf_serving_warmup_requests`, TF Serving's format): one request per
compiled size, which TF Serving replays when it loads the version, so no client waits for
a compilation. `warm_up` replays them in any TensorFlow process.

Imports from rnn_toolkit: arguments.
"""

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

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


WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def _varint(value):
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _fields(data):
    """(number, payload) of a protobuf message's length-delimited fields; others skipped."""
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:
            size, position = _read_varint(data, position)
            yield number, data[position : position + size]
            position += size
        elif wire_type == 0:
            _, position = _read_varint(data, position)
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"Unsupported protobuf wire type {wire_type} in a warm-up request.")


def _read_varint(data, position):
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def encode_warmup_request(signature_name, inputs):
    """One TF Serving `PredictionLog` (a `PredictRequest` for `signature_name`), serialized.

    Written by hand from the public proto definitions (prediction_log.proto,
    predict.proto, model.proto), so neither rnn_toolkit nor its users need the
    tensorflow-serving-api package: `PredictionLog.predict_log` (6) ->
    `PredictLog.request` (1) -> `PredictRequest.model_spec` (1, with `signature_name`,
    3) and `inputs` (2, a map of name -> `TensorProto`).

    Args:
        signature_name: the signature to call.
        inputs: a dict of input name -> value (anything `tf.make_tensor_proto` takes).
    """
    request = _field(1, _field(3, signature_name.encode("utf-8")))
    for name, value in inputs.items():
        proto = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, name.encode("utf-8")) + _field(2, proto))
    return _field(6, _field(1, request))


def decode_warmup_request(record):
    """`(signature_name, {input name: numpy value})` of an `encode_warmup_request` record."""
    predict_log = dict(_fields(record))[6]
    request = dict(_fields(predict_log))[1]
    signature_name, inputs = "serving_default", {}
    for number, payload in _fields(request):
        if number == 1:
            signature_name = dict(_fields(payload)).get(3, b"serving_default").decode("utf-8")
        elif number == 2:
            entry = dict(_fields(payload))
            proto = tensor_pb2.TensorProto.FromString(entry[2])
            inputs[entry[1].decode("utf-8")] = tf.make_ndarray(proto)
    return signature_name, inputs


def read_warmup_requests(saved_model_dir):
    """The `(signature_name, {input name: numpy value})` warm-up requests of a SavedModel
    (`decode_warmup_request` of each record); empty when it has no warm-up file."""
    path = Path(saved_model_dir) / WARMUP_FILE
    if not path.exists():
        return []
    records = tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    return [decode_warmup_request(record) for record in records]


def warm_up(saved_model_dir, loaded=None):
    """Replays a SavedModel's warm-up requests, as TF Serving does when it loads it.

    Compiles every bucket of the decoding signatures before the first real request.

    Args:
        saved_model_dir: the version folder.
        loaded: the result of `tf.saved_model.load(saved_model_dir)` (loaded here if None).

    Returns:
        A list of `(signature_name, {input: shape}, seconds)`, one per request; empty when
        the SavedModel has no warm-up file.
    """
    requests = read_warmup_requests(saved_model_dir)
    if requests and loaded is None:
        loaded = tf.saved_model.load(str(saved_model_dir))
    timings = []
    for signature_name, inputs in requests:
        start = time.perf_counter()
        outputs = loaded.signatures[signature_name](
            **{name: tf.constant(value) for name, value in inputs.items()}
        )
        tf.nest.map_structure(lambda tensor: tensor.numpy(), outputs)
        shapes = {name: tuple(value.shape) for name, value in inputs.items()}
        timings.append((signature_name, shapes, time.perf_counter() - start))
    return timings


def write_saved_model(
    module, target, *, signatures, overwrite=False, options=None, warmup_requests=()
):
    """Saves `module` to `target` atomically.

    Args:
        module: the `tf.Module` to save.
        target: final folder (see `version_dir`).
        signatures: the signatures dict for `tf.saved_model.save`.
        overwrite: replace an existing version. Without it an existing version raises
            `FileExistsError`: a served version is never replaced silently.
        options: optional `tf.saved_model.SaveOptions`.
        warmup_requests: `(signature_name, {input name: value})` pairs, written as
            `assets.extra/tf_serving_warmup_requests` (see `encode_warmup_request`).

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
        warmup_requests = list(warmup_requests)
        if warmup_requests:
            (staging / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
            with tf.io.TFRecordWriter(str(staging / WARMUP_FILE)) as writer:
                for signature_name, inputs in warmup_requests:
                    writer.write(encode_warmup_request(signature_name, inputs))
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
