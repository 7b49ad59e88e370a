"""Proves that the char LM trains on the fused cuDNN kernels on the local GPUs, and what they buy.

On a machine where TensorFlow sees a GPU, the script builds `build_char_lm` (LSTM and GRU,
512 units, embedding 64, the toolkit's "auto" precision, which is `mixed_float16` on a GPU)
inside `rnn_toolkit.runs.distributed.local_gpu_strategy()` (a `MirroredStrategy` over all
local GPUs, as `python -m rnn_toolkit train ... --gpus all` does) and trains it with Keras'
`fit` on windows of real Shakespeare (batch 64 per replica, window 100), in two variants per
cell:

* `<cell>_cudnn`: the model as the toolkit builds it (`use_cudnn="auto"`);
* `<cell>_generic`: the same model with `use_cudnn=False` set on its Keras LSTM/GRU layers
  before the first step is traced (`build_char_lm` has no `use_cudnn` argument), which
  forces Keras' generic `while` loop.

The evidence: the TensorFlow profiler (`tf.profiler.experimental.start/stop`, into a
temporary log dir) runs around a few steady-state training steps of every variant, and
`profile_ops()` reads the executed op names from the XSpace it writes
(`plugins/profile/<run>/<host>.xplane.pb`, parsed with the `xplane_pb2` protobuf module
shipped inside TensorFlow; tensorboard_plugin_profile is not needed). Keras 3.15's
TensorFlow backend (keras/src/backend/tensorflow/rnn.py, `_cudnn_lstm` and `_cudnn_gru`)
runs the fused kernel as `tf.raw_ops.CudnnRNNV3(..., rnn_mode="lstm"|"gru")`, whose
registered gradient (tensorflow/python/ops/cudnn_rnn_grad.py) is `CudnnRNNBackpropV3`; both
ops have GPU kernels only (a CPU build lists "<no registered kernels>" for them), so an
executed `CudnnRNNV3` is a fused kernel that ran on a GPU. The script exits with status 1
and says why if a `<cell>_cudnn` variant shows no `CudnnRNN*` op (or a `<cell>_generic`
variant shows one). Where the profiler also records the GPU streams (CUPTI), the GPU
kernels attributed to each op are reported per GPU, with the cuDNN kernel names.

Throughput is characters (tokens) per second = global batch x window x steps / wall time
of `--steps` steps inside one `fit` call (after `--block-warmup` untimed steps of that
call, with the clock read when a step's loss is ready), after `--warmup` untimed steps per
variant (tracing). The variants run interleaved, in a shuffled order every round; the
summary is the median over rounds, and the ratio cuDNN / generic per cell.

Where TensorFlow sees no GPU, the script prints one line saying it is skipped and why
(naming the TensorFlow build), writes no result to benchmarks/results/ (a JSON with
"skipped" goes to the temporary folder, or to `--output` if that is outside results/),
and exits 0.

Usage (from the repository root):

    .venv/bin/python benchmarks/gpu_cudnn_kernels.py             # the measurement
    .venv/bin/python benchmarks/gpu_cudnn_kernels.py --gpus 1    # on one GPU
    .venv/bin/python benchmarks/gpu_cudnn_kernels.py --quick     # smoke test

The numbers are written as JSON to `benchmarks/results/gpu_cudnn_kernels.json`.
"""

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import re
import string
import sys
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

NAME = "gpu_cudnn_kernels"
CELLS = ("lstm", "gru")
KERNELS = ("cudnn", "generic")

# The op types of TensorFlow's fused cuDNN RNN kernels. Keras 3.15 runs CudnnRNNV3 (its
# gradient is CudnnRNNBackpropV3); the older versions are listed so that a profile of
# other code is judged the same way.
CUDNN_FORWARD_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3")
CUDNN_BACKWARD_OPS = ("CudnnRNNBackprop", "CudnnRNNBackpropV2", "CudnnRNNBackpropV3")
CUDNN_OPS = CUDNN_FORWARD_OPS + CUDNN_BACKWARD_OPS


# --- Reading a profile ---------------------------------------------------------------------
#
# The TensorFlow 2.x profiler writes one XSpace protobuf per host:
#     <logdir>/plugins/profile/<YYYY_MM_DD_HH_MM_SS>/<host>.xplane.pb
# Its planes: "/host:CPU" (every thread's TraceMe events; the executor names each op
# kernel it runs "<node name>:<op type>", possibly followed by "#key=value,...#"; eager
# ops are "EagerExecute" events with an "eager_op" stat), and with CUPTI one plane per GPU
# ("/device:GPU:<n>") whose events are the GPU kernels, named by their (CUDA) function
# name, with an "annotation" stat: the stack of TensorFlow ops that launched them,
# "outer:Type::inner/name:Type".

_OP_TYPE = re.compile(r"_?[A-Z][A-Za-z0-9_]*")
_ANNOTATION_STATS = frozenset({"annotation", "kernel_annotation", "tf_op", "level 0"})
_RNN_KERNEL = re.compile(r"rnn|lstm|gru|cudnn", re.IGNORECASE)
_REPLICA = re.compile(r"(?:^|/)replica_(\d+)/")


def _xplane_pb2():
    """TensorFlow's own copy of the XSpace protobuf module (its path moved across versions)."""
    import importlib

    for module in (
        "tensorflow.tsl.profiler.protobuf.xplane_pb2",
        "tsl.profiler.protobuf.xplane_pb2",
        "tensorflow.core.profiler.protobuf.xplane_pb2",
    ):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise ImportError(
        f"no xplane_pb2 module in TensorFlow {tf.__version__} (looked for "
        "tensorflow.tsl.profiler.protobuf.xplane_pb2 and its older locations)"
    )


def split_op(text):
    """`(node name, op type)` of a TraceMe name or an annotation, else None.

    "a/b/MatMul:MatMul", "a/b/MatMul:MatMul#id=3,shape=(2,3)#" and the annotation stack
    "StatefulPartitionedCall:StatefulPartitionedCall::a/b/CudnnRNNV3:CudnnRNNV3" (whose
    innermost op is the one that launched a GPU kernel) give ("a/b/...", "<type>");
    "ExecutorState::Process" and other trace events that are not ops give None.
    """
    segment = text.rsplit("::", 1)[-1].split("#", 1)[0]
    name, colon, op_type = segment.rpartition(":")
    if colon and name and _OP_TYPE.fullmatch(op_type):
        return name, op_type
    return None


@dataclasses.dataclass
class ProfileOps:
    """The ops a profile recorded.

    Attributes:
        files: the `.xplane.pb` files read.
        host_ops: op type -> executions recorded by the host (every op kernel the
            executor ran, whatever its device, and the eager ops).
        host_nodes: (node name, op type) -> executions (eager ops have node name "").
        device_ops: device plane name (e.g. "/device:GPU:0") -> op type -> device kernels
            attributed to it (empty without device tracing, e.g. without CUPTI).
        device_kernels: device plane name -> kernel name -> count.
    """

    files: list
    host_ops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    host_nodes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    device_ops: dict = dataclasses.field(default_factory=dict)
    device_kernels: dict = dataclasses.field(default_factory=dict)

    def op_types(self):
        """Every op type seen executing, on the host or attributed to a device kernel."""
        types = set(self.host_ops)
        for counts in self.device_ops.values():
            types.update(counts)
        return types


def profile_files(logdir):
    """The `.xplane.pb` files of the newest profiling run under `logdir` (a log dir as given
    to `tf.profiler.experimental.start`, a run folder, or one `.xplane.pb` file)."""
    path = pathlib.Path(logdir)
    if path.is_file():
        return [path]
    files = sorted(path.glob("**/*.xplane.pb"))
    if not files:
        raise FileNotFoundError(
            f"no *.xplane.pb under {path}: not a profile log dir (the TensorFlow profiler "
            "writes plugins/profile/<run>/<host>.xplane.pb)"
        )
    # Run folders are named by their start time (YYYY_MM_DD_HH_MM_SS): the newest sorts last.
    runs = {file.parent for file in files}
    newest = max(runs, key=lambda folder: (folder.name, folder.stat().st_mtime))
    return [file for file in files if file.parent == newest]


def profile_ops(logdir):
    """Reads the executed op names of a TensorFlow profile (see `ProfileOps`)."""
    xplane_pb2 = _xplane_pb2()
    ops = ProfileOps(files=[str(file) for file in profile_files(logdir)])
    for file in ops.files:
        space = xplane_pb2.XSpace()
        space.ParseFromString(pathlib.Path(file).read_bytes())
        for plane in space.planes:
            if plane.name.startswith("/device:"):
                _read_device_plane(plane, ops)
            else:
                _read_host_plane(plane, ops)
    return ops


def _occurrences(event):
    return event.num_occurrences if event.WhichOneof("data") == "num_occurrences" else 1


def _stat_items(plane, stats):
    """(name, text) of the string-valued stats (a `ref_value` names a stat metadata)."""
    for stat in stats:
        kind = stat.WhichOneof("value")
        if kind == "str_value":
            text = stat.str_value
        elif kind == "ref_value" and stat.ref_value in plane.stat_metadata:
            text = plane.stat_metadata[stat.ref_value].name
        else:
            continue
        yield plane.stat_metadata[stat.metadata_id].name, text


def _read_host_plane(plane, ops):
    for line in plane.lines:
        for event in line.events:
            metadata = plane.event_metadata[event.metadata_id]
            count = _occurrences(event)
            op = split_op(metadata.name)
            if op is None and metadata.name == "EagerExecute":
                op = next(
                    (("", text) for name, text in _stat_items(plane, event.stats)
                     if name == "eager_op" and _OP_TYPE.fullmatch(text)),
                    None,
                )
            if op is not None:
                ops.host_ops[op[1]] += count
                ops.host_nodes[op] += count


def _read_device_plane(plane, ops):
    op_counts = ops.device_ops.setdefault(plane.name, collections.Counter())
    kernels = ops.device_kernels.setdefault(plane.name, collections.Counter())
    for line in plane.lines:
        for event in line.events:
            metadata = plane.event_metadata[event.metadata_id]
            count = _occurrences(event)
            kernels[metadata.display_name or metadata.name] += count
            for name, text in _stat_items(plane, list(event.stats) + list(metadata.stats)):
                op = split_op(text) if name in _ANNOTATION_STATS else None
                if op is not None:
                    op_counts[op[1]] += count
                    break


def cudnn_op_counts(ops):
    """{op type: host executions} of the fused cuDNN RNN ops in `ops` (empty: none ran)."""
    counts = {op: ops.host_ops[op] for op in CUDNN_OPS if ops.host_ops[op]}
    for device_counts in ops.device_ops.values():  # a profile with device events only
        for op in CUDNN_OPS:
            if device_counts[op] and op not in counts:
                counts[op] = 0
    return counts


def fused_kernel_ran(ops):
    """Whether a fused cuDNN RNN forward op (`CudnnRNN`, `CudnnRNNV2`, `CudnnRNNV3`) ran.

    These ops have GPU kernels only, so one that executed ran on a GPU.
    """
    return any(op in ops.op_types() for op in CUDNN_FORWARD_OPS)


def cudnn_evidence(ops):
    """What `ops` shows about the cuDNN kernels, for the report and the result file."""
    by_replica = collections.Counter()
    for (node, op_type), count in ops.host_nodes.items():
        if op_type in CUDNN_FORWARD_OPS:
            match = _REPLICA.search(node)
            by_replica[f"replica {int(match.group(1)) if match else 0}"] += count
    return {
        "fused_kernel_ran": fused_kernel_ran(ops),
        "cudnn_op_executions": cudnn_op_counts(ops),
        # Replica k's ops are named "replica_k/..." by MirroredStrategy (replica 0: no prefix).
        "cudnn_forward_ops_by_replica": dict(sorted(by_replica.items())),
        "gpu_kernels_by_op": {
            device: {op: counts[op] for op in CUDNN_OPS if counts[op]}
            for device, counts in sorted(ops.device_ops.items())
        },
        "rnn_gpu_kernel_names": {
            device: dict(collections.Counter(
                {name: n for name, n in kernels.items() if _RNN_KERNEL.search(name)}
            ).most_common(8))
            for device, kernels in sorted(ops.device_kernels.items())
        },
        "distinct_op_types": len(ops.op_types()),
        "most_executed_ops": dict(ops.host_ops.most_common(12)),
        "profile_files": [pathlib.Path(file).name for file in ops.files],
    }


# --- The skipped run ---------------------------------------------------------------------


def tensorflow_build():
    """E.g. "TensorFlow 2.21.0, a CPU-only build: is_cuda_build=False, is_rocm_build=False"."""
    info = tf.sysconfig.get_build_info()
    if info.get("is_cuda_build"):
        kind = f"a CUDA build (CUDA {info.get('cuda_version')}, cuDNN {info.get('cudnn_version')})"
    elif info.get("is_rocm_build"):
        kind = f"a ROCm build (ROCm {info.get('rocm_version')})"
    else:
        kind = "a CPU-only build: is_cuda_build=False, is_rocm_build=False"
    return f"TensorFlow {tf.__version__}, {kind}"


def skip_reason():
    """Why there is nothing to measure here (no GPU visible to TensorFlow)."""
    reason = f"no GPU visible to TensorFlow ({tensorflow_build()})"
    info = tf.sysconfig.get_build_info()
    if info.get("is_cuda_build") or info.get("is_rocm_build"):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            reason += f"; CUDA_VISIBLE_DEVICES={visible!r}"
        else:
            reason += "; no GPU driver or device found"
    return reason


def write_skipped(args, reason, load_before):
    """The skip record goes to `--output` unless that is in benchmarks/results/, else to the
    temporary folder: a skipped run leaves no result beside the real ones."""
    output = args.output
    if output is None or support.RESULTS_DIR in output.resolve().parents:
        output = support.results_path(NAME, quick=True)
    record = {
        **support.run_metadata(NAME, args, load_before, tensorflow_build=tensorflow_build()),
        "skipped": reason,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2))
    return output


# --- The measurement on the GPUs -----------------------------------------------------------


class StepTimer(keras.callbacks.Callback):
    """Times the steps of one `fit` call after its first `skip` steps.

    The clock is read when a step's loss has been computed (`float()` waits for it), at
    the last untimed step and at the last step: the device has then finished them.
    """

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.start = self.seconds = None

    def on_train_batch_end(self, batch, logs=None):
        last = self.params["steps"] - 1
        if batch in (self.skip - 1, last):
            float(logs["loss"])
            if batch == self.skip - 1:
                self.start = time.perf_counter()
            if batch == last:
                self.seconds = time.perf_counter() - self.start


class ProfileSteps(keras.callbacks.Callback):
    """Runs the TensorFlow profiler around steps `first .. first + count - 1` of a `fit` call."""

    def __init__(self, logdir, first, count):
        super().__init__()
        self.logdir, self.first, self.last = str(logdir), first, first + count - 1
        self.running = False

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.first:
            options = tf.profiler.experimental.ProfilerOptions(
                host_tracer_level=2, python_tracer_level=0, device_tracer_level=1
            )
            tf.profiler.experimental.start(self.logdir, options=options)
            self.running = True

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.last and self.running:
            float(logs["loss"])  # the step's GPU work is done: its kernels are in the trace
            self.stop()

    def on_train_end(self, logs=None):
        self.stop()

    def stop(self):
        if self.running:
            tf.profiler.experimental.stop()
            self.running = False


def force_generic_loop(model):
    """Sets `use_cudnn=False` on the model's Keras LSTM/GRU layers (before the first trace:
    the layers read it when their call is traced)."""
    for layer in model.recurrent.recurrent_layers:
        bidirectional = hasattr(layer, "forward_layer")
        for inner in (layer.forward_layer, layer.backward_layer) if bidirectional else (layer,):
            inner.use_cudnn = False
    model.recurrent.use_cudnn = False
    if model.recurrent.cudnn_eligible:
        raise RuntimeError("setting use_cudnn=False did not make the layers ineligible for cuDNN")


def synthetic_batches(count, *, sequence_length, batch_size, seed):
    """`count` batches of random printable characters (when the corpus cannot be had)."""
    from rnn_toolkit import data

    vocabulary = data.CharVocabulary(string.printable.strip() + " \n")
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, vocabulary.size, size=(count, batch_size, sequence_length + 1), dtype=np.int32)
    return vocabulary, [(row[:, :-1], row[:, 1:]) for row in ids]


def training_data(args, global_batch):
    """The vocabulary and a repeating dataset of `--batches` distinct global batches, in memory."""
    if args.data == "synthetic":
        vocabulary, batches = synthetic_batches(
            args.batches, sequence_length=args.window, batch_size=global_batch, seed=args.seed
        )
    else:
        corpus = support.load_char_corpus(args.data)
        vocabulary = corpus.vocabulary
        batches = support.training_batches(
            corpus, args.batches, sequence_length=args.window, batch_size=global_batch, seed=args.seed
        )
    inputs = np.concatenate([np.asarray(x) for x, _ in batches])
    targets = np.concatenate([np.asarray(y) for _, y in batches])
    # Batched by tf.data, so that MirroredStrategy splits every global batch between replicas.
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, targets))
        .repeat()
        .batch(global_batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return vocabulary, dataset


def build_variant(variant, vocabulary, args, strategy):
    cell, kernel = variant.split("_")
    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        import rnn_toolkit

        model = rnn_toolkit.build_char_lm(
            vocabulary, embedding_dim=args.embedding_dim, cell=cell, units=args.units,
            dtype_policy=args.precision, name=f"char_lm_{variant}",
        )
        if kernel == "generic":
            force_generic_loop(model)
    return model


def profile_variant(model, dataset, args, logdir):
    """The ops of `--profile-steps` steady-state steps (after 1 untimed step) of `fit`."""
    profiler = ProfileSteps(logdir, first=1, count=args.profile_steps)
    model.fit(dataset, epochs=1, steps_per_epoch=1 + args.profile_steps, callbacks=[profiler], verbose=0)
    return profile_ops(logdir)


def check_evidence(variant, model, evidence):
    """The failure message if `variant`'s kernels are not what its name says, else None."""
    kernel = variant.split("_")[1]
    ran = evidence["fused_kernel_ran"]
    if kernel == "cudnn" and not ran:
        if not evidence["most_executed_ops"]:
            return (
                f"{variant}: the profile holds no executed op (did the profiler record "
                "anything?), so the fused cuDNN kernel cannot be shown to have run"
            )
        failing = {
            layer: [name for name, holds in conditions.items() if not holds]
            for layer, conditions in model.recurrent.cudnn_conditions().items()
        }
        return (
            f"{variant}: the fused cuDNN kernel did NOT run on the GPU: the profiled training "
            f"steps executed no {'/'.join(CUDNN_FORWARD_OPS)} op (most executed ops: "
            f"{', '.join(evidence['most_executed_ops'])}); the layers ran Keras' generic loop. "
            f"cuDNN conditions failing per layer: {failing} (none listed: the configuration is "
            "eligible, so TensorFlow's backend refused the kernel, e.g. a mask that is not "
            "right-padded, or XLA)"
        )
    if kernel == "generic" and ran:
        return (
            f"{variant}: use_cudnn=False was set, yet the profile shows "
            f"{evidence['cudnn_op_executions']}: the comparison would not be cuDNN against the "
            "generic loop"
        )
    return None


def describe_evidence(variant, evidence, steps):
    counts = evidence["cudnn_op_executions"]
    ops = ", ".join(f"{op} x{n}" for op, n in counts.items()) or "no CudnnRNN* op"
    line = f"{variant:<14} {steps} profiled steps: {ops}"
    if evidence["cudnn_forward_ops_by_replica"]:
        line += " (forward by replica: " + ", ".join(
            f"{replica} {n}" for replica, n in evidence["cudnn_forward_ops_by_replica"].items()
        ) + ")"
    print(line)
    for device, ops_on_device in evidence["gpu_kernels_by_op"].items():
        kernels = evidence["rnn_gpu_kernel_names"].get(device, {})
        print(f"    {device}: GPU kernels of cuDNN ops {ops_on_device or 'none'}; "
              f"RNN kernels {list(kernels)[:3] or 'none'}")


def gpu_descriptions():
    details = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            info = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - the name is a nicety
            info = {}
        capability = info.get("compute_capability")
        details.append(
            f"{gpu.name}: {info.get('device_name', 'unknown')}"
            + (f" (compute capability {capability[0]}.{capability[1]})" if capability else "")
        )
    return details


def measure(args, strategy, profile_root):
    """Builds, profiles and times every variant. Returns (results, failures)."""
    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch_per_replica * replicas
    vocabulary, dataset = training_data(args, global_batch)
    cells = support.chosen_subset(args.cells, CELLS, "cells")
    variants = [f"{cell}_{kernel}" for cell in cells for kernel in KERNELS]

    models = {}
    for variant in variants:
        models[variant] = build_variant(variant, vocabulary, args, strategy)
        print(
            f"{variant:<14} policy {models[variant].dtype_policy_name}, "
            f"cuDNN eligible {models[variant].recurrent.cudnn_eligible}, "
            f"{models[variant].count_params():,} parameters", flush=True,
        )

    # Untimed warm-up: tracing, first-call allocations, cuDNN plans.
    for variant in variants:
        models[variant].fit(dataset, epochs=1, steps_per_epoch=args.warmup, verbose=0)

    # The kernel evidence first: a run whose cuDNN variants fell back stops here.
    evidence, failures = {}, []
    print()
    for variant in variants:
        ops = profile_variant(models[variant], dataset, args, profile_root / variant)
        evidence[variant] = cudnn_evidence(ops)
        describe_evidence(variant, evidence[variant], args.profile_steps)
        failure = check_evidence(variant, models[variant], evidence[variant])
        if failure:
            failures.append(failure)
    if failures:
        return {"kernel_evidence": evidence}, failures

    tokens_per_step = global_batch * args.window
    rates = {v: [] for v in variants}
    for round_index, order in support.interleaved_rounds(variants, args.rounds, args.seed):
        for variant in order:
            timer = StepTimer(skip=args.block_warmup)
            models[variant].fit(
                dataset, epochs=1, steps_per_epoch=args.block_warmup + args.steps,
                callbacks=[timer], verbose=0,
            )
            rates[variant].append(tokens_per_step * args.steps / timer.seconds)
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + "  ".join(f"{v}={rates[v][-1]:.0f}" for v in variants), flush=True,
        )

    summary = {}
    for v in variants:
        rate = support.median_min_max(rates[v], "tokens_per_s")
        summary[v] = {
            "cell": v.split("_")[0],
            "kernel": v.split("_")[1],
            "policy": models[v].dtype_policy_name,
            **rate,
            "median_step_s": tokens_per_step / rate["median_tokens_per_s"],
        }
    ratios = {
        f"{cell}_cudnn / {cell}_generic": support.median_ratio(
            summary[f"{cell}_cudnn"], summary[f"{cell}_generic"], "tokens_per_s"
        )
        for cell in cells
    }
    support.print_table(
        f"training characters/s on {replicas} GPU(s) (batch {args.batch_per_replica} per replica x "
        f"window {args.window}), median of {args.rounds} interleaved rounds of {args.steps} steps",
        f"{'variant':<14} {'policy':<15} {'median':>10} {'min':>10} {'max':>10} {'step s':>8}",
        [
            f"{v:<14} {s['policy']:<15} {s['median_tokens_per_s']:>10.0f} "
            f"{s['min_tokens_per_s']:>10.0f} {s['max_tokens_per_s']:>10.0f} {s['median_step_s']:>8.4f}"
            for v, s in summary.items()
        ],
    )
    support.print_ratios(ratios, name_width=28, value_format="6.2f")
    return {
        "replicas": replicas,
        "global_batch": global_batch,
        "summary": summary,
        "ratios": ratios,
        "kernel_evidence": evidence,
        "tokens_per_s_per_round": rates,
    }, []


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--gpus", default="all", help="'all' or how many local GPUs (as train --gpus)")
    parser.add_argument(
        "--cells", default=",".join(CELLS), help=f"comma-separated subset of {','.join(CELLS)}"
    )
    parser.add_argument(
        "--precision", default="auto",
        help="dtype policy of build_char_lm ('auto', as training: mixed_float16 on a GPU)",
    )
    parser.add_argument("--data", default="shakespeare", help="a corpus name for load_corpus, or 'synthetic'")
    parser.add_argument(
        "--batches", type=int, default=32, help="distinct global batches held in memory (repeated)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed blocks per variant")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per block")
    parser.add_argument(
        "--block-warmup", type=int, default=2, help="untimed steps at the start of each block"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps per variant before anything else"
    )
    parser.add_argument(
        "--profile-steps", type=int, default=3, help="training steps under the profiler per variant"
    )
    parser.add_argument(
        "--profile-dir", type=pathlib.Path, default=None,
        help="keep the profiles here, one folder per variant (default: a temporary folder, deleted)",
    )
    parser.add_argument("--batch-per-replica", type=int, default=64)
    parser.add_argument("--window", type=int, default=100, help="characters per training window")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.block_warmup, args.warmup, args.profile_steps = 2, 3, 1, 1, 2
        args.units, args.batch_per_replica, args.window, args.batches = 64, 8, 20, 4
    counts = (args.rounds, args.steps, args.block_warmup, args.warmup, args.profile_steps, args.batches)
    if min(counts) < 1:
        parser.error(
            "--rounds, --steps, --block-warmup, --warmup, --profile-steps and --batches must be >= 1"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    load_before = os.getloadavg()
    started = time.perf_counter()

    if not tf.config.list_logical_devices("GPU"):
        reason = skip_reason()
        output = write_skipped(args, reason, load_before)
        print(f"{NAME} skipped: {reason}; nothing measured, no result in benchmarks/results/ "
              f"(skip record: {output})")
        return 0

    from rnn_toolkit.runs.distributed import ClusterError, local_gpu_strategy

    try:
        strategy = local_gpu_strategy(args.gpus)
    except ClusterError as error:
        print(f"{NAME}: {error.option} {error}", file=sys.stderr)
        return 2
    print(f"{tensorflow_build()}; MirroredStrategy over {strategy.num_replicas_in_sync} GPU(s):")
    for line in gpu_descriptions():
        print(f"  {line}")

    with tempfile.TemporaryDirectory(prefix="gpu_cudnn_profile_") as temporary:
        profile_root = args.profile_dir or pathlib.Path(temporary)
        results, failures = measure(args, strategy, profile_root)

    if failures:
        print()
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    info = tf.sysconfig.get_build_info()
    record = {
        **support.run_metadata(
            NAME, args, load_before, started=started,
            more_versions={"cuda": info.get("cuda_version"), "cudnn": info.get("cudnn_version")},
            gpus=gpu_descriptions(),
        ),
        **results,
    }
    if args.profile_dir:
        record["profile_dir"] = str(args.profile_dir)
    support.write_results(record, args.output or support.results_path(NAME, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
