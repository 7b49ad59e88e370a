"""benchmarks/gpu_cudnn_kernels.py on a machine without a GPU: it skips cleanly, and its
profile reader finds the ops a CPU profile executed and no fused cuDNN kernel."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu_cudnn_kernels.py"


@pytest.fixture(scope="module")
def gpu_benchmark():
    """The benchmark script as a module (it imports `benchmark_support` from its folder)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import gpu_cudnn_kernels

        yield gpu_cudnn_kernels


@pytest.fixture(scope="module")
def cpu_profile(tmp_path_factory):
    """The profile log dir of three training steps of a tiny Keras LSTM on the CPU."""
    logdir = tmp_path_factory.mktemp("profile")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 3)), keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(2)]
    )
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).random((12, 6, 3), dtype=np.float32)
    y = np.zeros((12, 6, 2), np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # traced outside the profile
    tf.profiler.experimental.start(str(logdir))
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    finally:
        tf.profiler.experimental.stop()
    return logdir


@pytest.mark.slow
def test_the_script_skips_without_a_gpu(tmp_path):
    output = tmp_path / "skipped.json"
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "skipped" in line]
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("gpu_cudnn_kernels skipped: no GPU visible to TensorFlow")
    assert f"TensorFlow {tf.__version__}" in lines[0]
    record = json.loads(output.read_text())
    assert record["skipped"].startswith("no GPU visible to TensorFlow")
    assert "summary" not in record


def test_a_skip_record_never_lands_in_the_results_folder(gpu_benchmark, monkeypatch, tmp_path):
    support = gpu_benchmark.support
    monkeypatch.setattr(support, "QUICK_RESULTS_DIR", tmp_path)
    asked = support.RESULTS_DIR / "gpu_cudnn_kernels_should_not_exist.json"
    args = gpu_benchmark.parse_args(["--quick", "--output", str(asked)])
    written = gpu_benchmark.write_skipped(args, "no GPU visible to TensorFlow (test)", os.getloadavg())
    assert written == tmp_path / "gpu_cudnn_kernels.json" and not asked.exists()
    assert json.loads(written.read_text())["skipped"] == "no GPU visible to TensorFlow (test)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Call/sequential/lstm/MatMul:MatMul", ("Call/sequential/lstm/MatMul", "MatMul")),
        ("a/b/MatMul:_MklMatMul#id=3,shape=(2,3)#", ("a/b/MatMul", "_MklMatMul")),
        # A GPU kernel's annotation: the stack of ops that launched it, innermost last.
        (
            "StatefulPartitionedCall:StatefulPartitionedCall::replica_1/m/lstm/CudnnRNNV3:CudnnRNNV3",
            ("replica_1/m/lstm/CudnnRNNV3", "CudnnRNNV3"),
        ),
        ("ExecutorState::Process", None),
        ("Iterator::Root::Prefetch::ParallelMapV2", None),
        ("EagerExecute", None),
        ("keras/src/trainers/trainer.py:120 fit", None),
    ],
)
def test_split_op(gpu_benchmark, text, expected):
    assert gpu_benchmark.split_op(text) == expected


def test_a_cpu_profile_shows_cpu_ops_and_no_cudnn_kernel(gpu_benchmark, cpu_profile):
    ops = gpu_benchmark.profile_ops(cpu_profile)
    assert len(ops.files) == 1 and ops.files[0].endswith(".xplane.pb")
    types = ops.op_types()
    # The generic LSTM loop: its matrix products (oneDNN's _MklMatMul, or MatMul) and gates.
    assert types & {"MatMul", "_MklMatMul", "BatchMatMulV2"}, sorted(types)
    assert {"Sigmoid", "Tanh", "SigmoidGrad", "TensorListPushBack"} <= types, sorted(types)
    assert ops.host_ops.most_common(1)[0][1] > 1
    assert ops.device_ops == {}  # no GPU plane on a CPU
    assert not gpu_benchmark.fused_kernel_ran(ops)
    assert gpu_benchmark.cudnn_op_counts(ops) == {}
    evidence = gpu_benchmark.cudnn_evidence(ops)
    assert evidence["fused_kernel_ran"] is False and evidence["cudnn_op_executions"] == {}
    # The same answers from the run folder or the file itself.
    assert gpu_benchmark.profile_ops(ops.files[0]).host_ops == ops.host_ops


def test_a_profile_with_cudnn_ops_is_recognised(gpu_benchmark, tmp_path):
    """A hand-made XSpace shaped like a GPU profile: host op events and a GPU plane whose
    kernels carry the annotation of the op that launched them."""
    xplane_pb2 = gpu_benchmark._xplane_pb2()
    space = xplane_pb2.XSpace(hostnames=["gpu-host"])

    host = space.planes.add(id=1, name="/host:CPU")
    host_events = [
        "StatefulPartitionedCall/char_lm/recurrent/lstm_0/CudnnRNNV3:CudnnRNNV3",
        "StatefulPartitionedCall/replica_1/char_lm/recurrent/lstm_0/CudnnRNNV3:CudnnRNNV3",
        "StatefulPartitionedCall/gradient_tape/char_lm/recurrent/lstm_0/CudnnRNNBackpropV3"
        ":CudnnRNNBackpropV3",
        "StatefulPartitionedCall/char_lm/logits/MatMul:MatMul",
        "ExecutorState::Process",
    ]
    line = host.lines.add(id=1, name="tf_Compute")
    for index, name in enumerate(host_events, start=1):
        host.event_metadata[index].CopyFrom(xplane_pb2.XEventMetadata(id=index, name=name))
        line.events.add(metadata_id=index, offset_ps=index, duration_ps=1)

    gpu = space.planes.add(id=2, name="/device:GPU:0")
    gpu.stat_metadata[1].CopyFrom(xplane_pb2.XStatMetadata(id=1, name="annotation"))
    gpu.event_metadata[1].CopyFrom(xplane_pb2.XEventMetadata(id=1, name="RNN_blockPersist_fp_LSTM<__half>"))
    gpu.event_metadata[2].CopyFrom(xplane_pb2.XEventMetadata(id=2, name="volta_h884gemm_64x64"))
    stream = gpu.lines.add(id=1, name="Stream #14")
    call = "StatefulPartitionedCall:StatefulPartitionedCall::"
    for metadata_id, annotation in [
        (1, call + "char_lm/recurrent/lstm_0/CudnnRNNV3:CudnnRNNV3"),
        (1, call + "char_lm/recurrent/lstm_0/CudnnRNNV3:CudnnRNNV3"),
        (2, call + "char_lm/logits/MatMul:MatMul"),
    ]:
        stream.events.add(
            metadata_id=metadata_id, offset_ps=1, duration_ps=1,
            stats=[xplane_pb2.XStat(metadata_id=1, str_value=annotation)],
        )
    run = tmp_path / "plugins" / "profile" / "2026_01_01_00_00_00"
    run.mkdir(parents=True)
    (run / "gpu-host.xplane.pb").write_bytes(space.SerializeToString())

    ops = gpu_benchmark.profile_ops(tmp_path)
    assert gpu_benchmark.fused_kernel_ran(ops)
    assert gpu_benchmark.cudnn_op_counts(ops) == {"CudnnRNNV3": 2, "CudnnRNNBackpropV3": 1}
    evidence = gpu_benchmark.cudnn_evidence(ops)
    assert evidence["cudnn_forward_ops_by_replica"] == {"replica 0": 1, "replica 1": 1}
    assert evidence["gpu_kernels_by_op"] == {"/device:GPU:0": {"CudnnRNNV3": 2}}
    assert evidence["rnn_gpu_kernel_names"] == {"/device:GPU:0": {"RNN_blockPersist_fp_LSTM<__half>": 2}}


def test_the_checks_name_a_cudnn_variant_that_fell_back(gpu_benchmark, cpu_profile):
    import rnn_toolkit

    vocabulary = rnn_toolkit.data.CharVocabulary("abc\n")
    model = rnn_toolkit.build_char_lm(vocabulary, units=4, embedding_dim=3, dtype_policy="float32")
    cpu_evidence = gpu_benchmark.cudnn_evidence(gpu_benchmark.profile_ops(cpu_profile))
    failure = gpu_benchmark.check_evidence("lstm_cudnn", model, cpu_evidence)
    assert failure and "did NOT run" in failure and "CudnnRNNV3" in failure
    assert gpu_benchmark.check_evidence("lstm_generic", model, cpu_evidence) is None

    assert model.recurrent.cudnn_eligible
    gpu_benchmark.force_generic_loop(model)
    assert not model.recurrent.cudnn_eligible
    assert [layer.use_cudnn for layer in model.recurrent.recurrent_layers] == [False]
