"""Measures multi-worker training of the char LM (`rnn_toolkit.runs.distributed`) on this machine.

One model trained by several worker processes with `MultiWorkerMirroredStrategy` (MWMS,
ring all-reduce over gRPC), driven by the toolkit's custom loop `fit_on_workers`, against
one process with Keras' own `fit`. The model is `build_char_lm` (LSTM, 256 units, 1 layer,
embedding 64, float32, Adam, global-norm clipping) on real Shakespeare windows (sequence
100, global batch 64) held in memory (`benchmark_support.training_batches`, fed through
`tf.data.Dataset.from_tensor_slices(...).batch(B)`), so the input pipeline is not timed.
Every worker reads the same global batches and keeps its half (the toolkit's sharding).

Variants (each runs as fresh subprocesses: the strategy must be created at process start):

* `fit`: one process, `model.fit`, TensorFlow's default thread pools (here one intra-op
  thread per core: 2).
* `fit_1thread`: the same with 1 intra-op and 1 inter-op thread: what one core does.
* `loop_1worker`: one process, MWMS on a 1-worker cluster, `fit_on_workers`: the same
  computation as `fit`, so the difference is the custom loop's (and the strategy's)
  overhead.
* `loop_2workers`: 2 worker processes on 127.0.0.1, `fit_on_workers`, same global batch
  (32 examples per worker), default thread pools in each.
* `loop_2workers_1thread`: the same with 1 intra-op and 1 inter-op thread per worker.

Why these thread settings. This machine has 2 cores. With the defaults, each of two
workers starts an intra-op pool of 2 threads (and an inter-op pool of 2), so 4 compute
threads fight over 2 cores: that oversubscription is what a user gets from
`rnn-toolkit launch --workers 2` here. With 1+1 threads per worker, each worker has about
one core, the same compute budget as `fit` with its 2 intra-op threads, so
`loop_2workers_1thread / fit` compares data parallelism over processes with intra-op
parallelism in one process at equal core count, and `loop_2workers_1thread /
fit_1thread` is the 2-worker scaling on one core per worker (two 1-core machines on an
infinitely fast network would approach 2x).

Timing. Each training variant runs one epoch of `--warmup + --steps` steps with a
callback that records `time.perf_counter()` at every batch end; only the last `--steps`
steps count (tracing and first steps excluded). Steps/s = steps / (end of the last step -
end of the last warm-up step) on worker 0 (the workers step in lock-step); examples/s =
steps/s x global batch; characters/s = examples/s x sequence length. The variants run
interleaved over `--rounds` rounds, in a new shuffled order every round
(`benchmark_support.interleaved_rounds`); the summary is the median over rounds.

Also measured:

* Compute alone (`fit` and `fit_1thread` processes, after their timed epoch): one
  `train_on_batch` step at batch B, B/2, B/4, B/8, median of `--compute-steps` steps
  after 2 warm-up steps per shape.
* The collectives of one training step as `fit_on_workers` runs it (in the first round's
  first 2-worker process, after everything else): the collective ops of the function it
  traces per step (`_distributed_step`: with the dataset's cardinality known, `next` of
  the distributed iterator inside it, whose partial-batch check is one small all-reduce
  across the workers, then `strategy.run(model.train_step)` and the logs averaged in one
  collective; with unknown cardinality, only the latter, after an eager
  `get_next_as_optional` check whose collectives are then counted too). The cardinality
  is that of the dataset fed here. `classify_collectives` counts them: k_dense packed
  gradient all-reduces, k_sparse IndexedSlices all-gathers, small all-reduces.
* The all-reduce (in both 2-worker variants, after training, in the same processes):
  `strategy.run(lambda: get_replica_context().all_reduce("sum", grads))` inside a
  `tf.function`, median of `--allreduce-reps` calls after warm-up, for
  - `dense`: float tensors shaped exactly like the model's trainable variables: the
    gradients the current step sums (`GradientClippingModel.train_step` all-reduces them
    once, an embedding's `tf.IndexedSlices` gradient made dense when its table is small);
  - `sparse`: the same, except for the embedding, whose gradient is a `tf.IndexedSlices`
    with one row per token of the worker's batch (B/2 x T rows), which MWMS all-gathers
    (values, indices) instead of all-reducing (the step's way for a table above 2**20
    elements);
  - `dense2`, `sparse2`: two chained all-reduces, for reference: `sparse2` is what the
    old step sent (the model's all-reduce, then the Keras optimizer's);
  - `scalar`: one float, the per-collective latency.
  Implied bandwidth = dense bytes / dense time; latency-corrected loopback bandwidth =
  dense bytes / (dense time - scalar time) (with 2 workers a ring all-reduce is 2
  sequential messages of bytes/2, whose latency the scalar all-reduce measures).
* The compute of B/2 in both 2-worker variants with both workers computing at once (a
  copy of the model outside the strategy, `train_on_batch`, started together): on this
  machine the workers share the 2 cores, so the check `t_step(2 workers) ~ t_compute(B/2)
  + t_collectives`, with t_collectives = k_sparse sparse + (k_dense - k_sparse) dense +
  small scalar all-reduces (the counts of the step above), holds with this compute, not
  with compute alone.
* Interference: the CPU seconds that other processes used while each variant ran
  (/proc/stat busy time minus this benchmark's own), besides the load averages.

And a MODEL (not a measurement) of N machines (N = 1, 2, 4, 8) with ring collectives:

    t_step(N) = t_compute(B/N)
                + k_dense (2(N-1)/N dense_bytes / bw + 2(N-1) alpha)      packed dense gradients
                + k_sparse (N-1) (B/N T row_bytes) / bw + gathers (N-1) alpha   embedding rows
                + small 2(N-1) alpha                    partial-batch check, averaged logs

with the counts k_dense, k_sparse, gathers and small of the step above; alpha = half the
measured loopback scalar all-reduce (TensorFlow's per-collective overhead) +
`--network-latency-us`, or the network latency alone (an optimistic bound); bandwidth
`--network-gbits` (10 Gbit/s), or the measured loopback figure; t_compute(B/N) measured
directly at B/N (the faster of 2 and 1 threads: each machine like this one) or scaled
linearly t_compute(B)/N (optimistic: small batches use the cores badly). The model is
checked against the 2-worker loopback measurements (`self_check`).

Every subprocess writes its measurements as JSON to a temporary file that this process
reads; each variant is bounded by `--child-timeout` seconds, and its processes (their
process groups) are killed if it fails or runs over. Ports are free ports found by
binding to port 0.

Usage (from the repository root):

    .venv/bin/python benchmarks/multi_worker_throughput.py           # ~6 minutes on 2 cores
    .venv/bin/python benchmarks/multi_worker_throughput.py --quick   # smoke test, ~40 s

The numbers are written as JSON to `benchmarks/results/multi_worker_throughput.json`
(`--quick`: to the temporary folder).
"""

import argparse
import contextlib
import inspect
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout. It
# imports TensorFlow but runs no op, so a child can still create its strategy.
import benchmark_support as support

import keras
import numpy as np
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.runs import distributed
from rnn_toolkit.runs.driver import FitData

VARIANTS = ("fit", "fit_1thread", "loop_1worker", "loop_2workers", "loop_2workers_1thread")
# variant -> (worker processes: 0 for plain fit, threads per process: 0 for the defaults)
VARIANT_SETUP = {
    "fit": (0, 0),
    "fit_1thread": (0, 1),
    "loop_1worker": (1, 0),
    "loop_2workers": (2, 0),
    "loop_2workers_1thread": (2, 1),
}
MACHINE_COUNTS = (1, 2, 4, 8)


# --- The subprocesses -------------------------------------------------------------------


class BatchEndTimes(keras.callbacks.Callback):
    """Records `time.perf_counter()` at every training batch end."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def child_main(spec_path):
    """One variant's process: trains, times, writes its JSON to `spec["output"]`."""
    phases = {"start": time.perf_counter()}
    spec = json.loads(pathlib.Path(spec_path).read_text())
    threads = spec["threads"]
    if threads:  # before the first op: the thread pools are created once
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    strategy = None
    if spec["workers"]:
        cluster = distributed.Cluster(tuple(spec["workers"]), spec["index"])
        strategy = distributed.multi_worker_strategy(cluster, timeout=spec["cluster_timeout"])
    phases["strategy"] = time.perf_counter()
    try:
        record = _child_measurements(spec, strategy, phases)
    except BaseException as error:
        if strategy is not None:
            distributed.report_failure(strategy, error)
        raise
    names = list(phases)
    record["phase_seconds"] = {b: phases[b] - phases[a] for a, b in zip(names, names[1:])}
    pathlib.Path(spec["output"]).write_text(json.dumps(record))
    if strategy is not None and len(spec["workers"]) > 1:
        # All workers leave together (a worker that exits early is a failure for the others).
        distributed.release_workers(strategy)


def _child_measurements(spec, strategy, phases):
    batch = spec["batch_size"]
    total_steps = spec["warmup"] + spec["steps"]
    # The parent's batches (`benchmark_support.training_batches`): the same global batches,
    # in the same order, in every process.
    with np.load(spec["data"]) as arrays:
        inputs, targets, characters = arrays["inputs"], arrays["targets"], str(arrays["characters"])
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch, drop_remainder=True)

    keras.utils.set_random_seed(spec["seed"])
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = rnn_toolkit.build_char_lm(
            characters, embedding_dim=spec["embedding_dim"], cell=spec["cell"],
            units=spec["units"], num_layers=spec["num_layers"], dropout=0.0,
            dtype_policy=spec["dtype_policy"],
        )
    phases["data_and_model"] = time.perf_counter()
    timer = BatchEndTimes()
    if strategy is None:
        history = model.fit(dataset, epochs=1, steps_per_epoch=total_steps, callbacks=[timer], verbose=0)
    else:
        history = distributed.fit_on_workers(
            model, strategy, FitData(dataset, steps_per_epoch=total_steps),
            epochs=1, callbacks=[timer], verbose=0,
        )
    phases["training"] = time.perf_counter()
    times = timer.times
    if len(times) != total_steps:
        raise RuntimeError(f"{len(times)} batch ends recorded; {total_steps} expected")
    steady = times[-1] - times[spec["warmup"] - 1]
    variables = model.trainable_variables
    record = {
        "variant": spec["variant"],
        "index": spec["index"],
        "round": spec["round"],
        "pid": os.getpid(),
        "thread_pools": support.thread_pool_sizes(),
        "dtype_policy": model.dtype_policy_name,
        "parameters": int(model.count_params()),
        "trainable_variables": [
            {"name": v.path, "shape": list(v.shape), "dtype": str(v.dtype)} for v in variables
        ],
        "trainable_bytes": int(sum(np.prod(v.shape) * np.dtype(str(v.dtype)).itemsize for v in variables)),
        "replicas_in_sync": strategy.num_replicas_in_sync if strategy is not None else 1,
        "steps": spec["steps"],
        "steady_seconds": steady,
        "steps_per_s": spec["steps"] / steady,
        "step_seconds": [float(x) for x in np.diff(times[spec["warmup"] - 1 :])],
        "final_loss": float(history.history["loss"][-1]),
        # Equal on every worker if they trained one model together.
        "weights_checksum": float(sum(np.abs(np.asarray(w, np.float64)).sum() for w in model.get_weights())),
    }
    if spec["compute_batches"]:
        record["compute"] = _time_compute(model, inputs, targets, spec)
        phases["compute"] = time.perf_counter()
    if strategy is not None and len(spec["workers"]) > 1:
        record["allreduce"] = _time_allreduce(strategy, model, spec)
        phases["allreduce"] = time.perf_counter()
        record["concurrent_compute"] = _time_concurrent_compute(strategy, characters, inputs, targets, spec)
        phases["concurrent_compute"] = time.perf_counter()
        if spec["count_collectives"]:
            # Last: tracing collectives on one worker only would put the workers' collective
            # keys out of step for any collective after it.
            record["collectives_in_step"] = _collectives_in_step(strategy, model, dataset)
            phases["collectives"] = time.perf_counter()
    return record


def _time_compute(model, inputs, targets, spec, sizes=None, before_timing=None):
    """Median seconds of one `train_on_batch` step at each batch size (one process)."""
    results = {}
    for size in sizes or spec["compute_batches"]:
        x, y = tf.constant(inputs[:size]), tf.constant(targets[:size])
        for _ in range(2):  # tracing for this shape, first-call allocations
            model.train_on_batch(x, y)
        if before_timing is not None:
            before_timing()
        seconds = []
        for _ in range(spec["compute_steps"]):
            start = time.perf_counter()
            model.train_on_batch(x, y)  # returns NumPy logs: the step has finished
            seconds.append(time.perf_counter() - start)
        results[str(size)] = {"median_step_s": statistics.median(seconds), "step_seconds": seconds}
    return results


def _time_concurrent_compute(strategy, characters, inputs, targets, spec):
    """The compute of one worker's share (B/2) while the other worker computes too: a
    copy of the model outside the strategy (no collective), trained by `train_on_batch`
    in every worker at once (they start together after a scalar all-reduce). On this
    machine the workers share the cores, so this is the compute a 2-worker step really
    gets, which `fit`'s compute alone at B/2 overstates."""
    model = rnn_toolkit.build_char_lm(
        characters, embedding_dim=spec["embedding_dim"], cell=spec["cell"], units=spec["units"],
        num_layers=spec["num_layers"], dropout=0.0, dtype_policy=spec["dtype_policy"],
    )
    one = tf.constant(1.0)
    barrier = tf.function(lambda: strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", one)))
    share = spec["batch_size"] // len(spec["workers"])
    return _time_compute(
        model, inputs, targets, spec, sizes=[share], before_timing=lambda: _finished(strategy, barrier())
    )[str(share)]


def _time_allreduce(strategy, model, spec):
    """Times all-reduces of gradients of the model's trainable variables, as a training
    step does them: in a `tf.function`, `strategy.run` of the replica context's
    `all_reduce("sum", ...)`.

    Two kinds of gradients: `dense` (a dense tensor per variable, shaped and typed like
    it: what the current step sums, the embedding's gradient made dense) and `sparse` (the
    same, except that the embedding's gradient is what the tape gives for a lookup:
    `tf.IndexedSlices` with one row per token of this worker's batch, which MWMS
    all-gathers instead of all-reducing); each once, and twice chained (`*_twice`: the
    old step, which all-reduced in the model and again in the optimizer).
    """
    variables = model.trainable_variables
    embedding = model.embedding.embeddings
    tokens = spec["batch_size"] // len(spec["workers"]) * spec["sequence_length"]
    dense = [tf.ones(v.shape, dtype=str(v.dtype)) * 1e-3 for v in variables]
    sparse_parts = {
        "values": tf.ones([tokens, embedding.shape[1]], dtype=str(embedding.dtype)) * 1e-3,
        "indices": tf.random.stateless_uniform([tokens], [spec["seed"], 1], 0, embedding.shape[0], tf.int32),
        "dense_shape": tf.constant(list(embedding.shape), tf.int32),
    }
    scalar = tf.constant(1.0)

    def with_sparse_embedding():
        return [
            tf.IndexedSlices(**sparse_parts) if v.path == embedding.path else g for v, g in zip(variables, dense)
        ]

    def replica_reduce(make, times):
        def replica_fn():
            context = tf.distribute.get_replica_context()
            values = make()
            for _ in range(times):
                values = context.all_reduce("sum", values)
            return values

        return tf.function(lambda: strategy.run(replica_fn))

    kinds = {
        "dense_once": replica_reduce(lambda: dense, 1),
        "dense_twice": replica_reduce(lambda: dense, 2),
        "sparse_once": replica_reduce(with_sparse_embedding, 1),
        "sparse_twice": replica_reduce(with_sparse_embedding, 2),
        "scalar": replica_reduce(lambda: scalar, 1),
    }
    dense_bytes = int(sum(int(np.prod(g.shape)) * g.dtype.size for g in dense))
    embedding_bytes = int(np.prod(embedding.shape)) * np.dtype(str(embedding.dtype)).itemsize
    sparse_bytes = sum(
        int(np.prod(t.shape)) * t.dtype.size for t in (sparse_parts["values"], sparse_parts["indices"])
    )
    result = {
        "dense_bytes": dense_bytes,
        "tensors": len(dense),
        "dtypes": sorted({g.dtype.name for g in dense}),
        "embedding_bytes": embedding_bytes,
        "embedding_gradient_rows_per_worker": tokens,
        "sparse_total_bytes_per_worker": dense_bytes - embedding_bytes + sparse_bytes,
        "sparse_bytes_per_worker": sparse_bytes,
    }
    for function in kinds.values():  # tracing, first collectives
        for _ in range(spec["allreduce_warmup"]):
            _finished(strategy, function())
    seconds = {name: [] for name in kinds}
    # Round robin over the kinds, so a load change hits all alike.
    for _ in range(spec["allreduce_reps"]):
        for name, function in kinds.items():
            start = time.perf_counter()
            _finished(strategy, function())
            seconds[name].append(time.perf_counter() - start)
    for name, values in seconds.items():
        result[f"{name}_median_s"] = statistics.median(values)
        result[f"{name}_seconds"] = values
    return result


def _finished(strategy, outputs):
    """Waits for `outputs` (fetches one small value of the last tensor)."""
    last = tf.nest.flatten(outputs, expand_composites=True)[-1]
    local = strategy.experimental_local_results(last)[0]
    np.asarray(tf.reshape(local, [-1])[:1])


def _collectives_in_step(strategy, model, dataset):
    """The collective ops of one training step as `fit_on_workers` runs it on `dataset`,
    with the shape and dtype of their first input where known.

    With the dataset's number of batches known (`cardinality()` not UNKNOWN), the loop
    calls, per step, a traced function that takes the next batch itself (`next` of the
    distributed iterator) and runs `step.on_batch` (`strategy.run(model.train_step)`,
    the logs averaged); that function is traced here. Otherwise it calls `step.on_batch`
    after an eager `get_next_as_optional` check across the workers, whose collectives
    (traced here the same way) then count too ("eager").
    """
    cardinality = int(dataset.cardinality())
    batch_in_step = cardinality != tf.data.UNKNOWN_CARDINALITY  # as fit_on_workers decides
    distributed_dataset = strategy.experimental_distribute_dataset(distributed.shard_by_data(dataset))
    iterator = iter(distributed_dataset)
    step = distributed._distributed_step(strategy, model.train_step)
    if batch_in_step:
        # `step(iterator, known=True)` calls the traced `on_next_batch(iterator)`.
        on_next_batch = inspect.getclosurevars(step).nonlocals.get("on_next_batch")
        if on_next_batch is None:
            raise RuntimeError("distributed._distributed_step has no on_next_batch: update this benchmark")
        traced, traced_name = on_next_batch.get_concrete_function(iterator), "on_next_batch"
    else:
        traced, traced_name = step.on_batch.get_concrete_function(distributed_dataset.element_spec), "on_batch"
    on_batch = step.on_batch.get_concrete_function(distributed_dataset.element_spec)

    @tf.function(autograph=False)
    def end_of_data_check(iterator):
        return iterator.get_next_as_optional().has_value()

    check_ops = _collective_ops(end_of_data_check.get_concrete_function(iterator).graph)
    return {
        "dataset_cardinality": cardinality,
        "batch_taken_in_traced_step": batch_in_step,
        "traced_function": traced_name,
        "traced": _collective_ops(traced.graph),
        "on_batch": _collective_ops(on_batch.graph),  # train_step and the logs alone
        "end_of_data_check": check_ops,  # what get_next_as_optional adds when run eagerly
        "eager": [] if batch_in_step else check_ops,
    }


def _collective_ops(graph):
    """The collective ops of `graph` and of the functions it calls."""
    found = []

    def visit(graph):
        for op in graph.get_operations():
            if op.type.startswith("Collective"):
                first = op.inputs[0] if op.inputs else None
                known = first is not None and first.shape.rank is not None
                found.append({
                    "type": op.type,
                    "name": op.name,
                    "input_shape": first.shape.as_list() if known else None,
                    "dtype": first.dtype.name if first is not None else None,
                })
        for function in getattr(graph, "_functions", {}).values():
            inner = getattr(function, "graph", None)
            if inner is not None:
                visit(inner)

    visit(graph)
    return found


# --- The parent: launching, bounding, reading -------------------------------------------


def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1 (bound to port 0, then released)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def write_batches(args, path):
    """The training batches every process reads (real Shakespeare windows, seeded)."""
    corpus = support.load_char_corpus("shakespeare")
    batches = support.training_batches(
        corpus, args.warmup + args.steps, sequence_length=args.sequence_length,
        batch_size=args.batch_size, seed=args.seed,
    )
    np.savez(
        path, inputs=np.concatenate([x.numpy() for x, _ in batches]),
        targets=np.concatenate([y.numpy() for _, y in batches]),
        characters=np.array("".join(corpus.vocabulary.characters)),
    )


def cpu_times():
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def own_cpu_seconds():
    """CPU seconds of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OtherLoad:
    """How much CPU the machine's other processes used while a variant ran (busy CPU
    seconds of the machine minus this process's and its children's): the interference
    that the load average only hints at."""

    def __enter__(self):
        self.start = (time.perf_counter(), *cpu_times(), own_cpu_seconds())
        return self

    def __exit__(self, *exc):
        end = (time.perf_counter(), *cpu_times(), own_cpu_seconds())
        wall, busy, steal, own = (b - a for a, b in zip(self.start, end))
        self.result = {
            "wall_seconds": wall,
            "benchmark_cpu_seconds": own,
            "other_processes_cpu_seconds": max(busy - own, 0.0),
            "other_processes_share_of_cpus": max(busy - own, 0.0) / (wall * os.cpu_count()),
            "steal_cpu_seconds": steal,
        }
        return False


def run_variant(variant, round_index, args, workdir, first_of_kind):
    """Runs `variant`'s process(es) to the end, bounded in time; returns their records."""
    workers, threads = VARIANT_SETUP[variant]
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)] if workers else []
    b = args.batch_size
    compute_batches = [b // n for n in MACHINE_COUNTS if b % n == 0] if not workers else []
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    processes, outputs, logs = [], [], []
    try:
        for index in range(max(workers, 1)):
            stem = workdir / f"round{round_index}-{variant}-{index}"
            spec = {
                "variant": variant, "round": round_index, "index": index, "workers": addresses,
                "threads": threads, "cluster_timeout": args.cluster_timeout,
                "batch_size": b, "sequence_length": args.sequence_length, "units": args.units,
                "num_layers": args.num_layers, "embedding_dim": args.embedding_dim, "cell": args.cell,
                "dtype_policy": args.dtype_policy, "seed": args.seed, "warmup": args.warmup,
                "steps": args.steps, "compute_batches": compute_batches,
                "compute_steps": args.compute_steps, "allreduce_reps": args.allreduce_reps,
                "allreduce_warmup": args.allreduce_warmup,
                "count_collectives": first_of_kind and index == 0,
                "data": str(workdir / "batches.npz"),
                "output": str(stem.with_suffix(".json")),
            }
            stem.with_suffix(".spec").write_text(json.dumps(spec))
            log = open(stem.with_suffix(".log"), "w")
            logs.append(stem.with_suffix(".log"))
            outputs.append(stem.with_suffix(".json"))
            processes.append(subprocess.Popen(
                [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", str(stem.with_suffix(".spec"))],
                stdout=log, stderr=subprocess.STDOUT, cwd=support.REPOSITORY_ROOT, env=environment,
                start_new_session=True,  # its own process group: killed as a whole on failure
            ))
            log.close()
        deadline = time.monotonic() + args.child_timeout
        while any(p.poll() is None for p in processes):
            failed = [p for p in processes if p.returncode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        codes = [p.returncode for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if any(code != 0 for code in codes) or not all(o.exists() for o in outputs):
        for log in logs:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            print(f"\n--- {log.name} (last lines) ---\n{tail}", file=sys.stderr)
        reason = "timed out" if None in codes else f"exit statuses {codes}"
        raise SystemExit(f"variant {variant} (round {round_index + 1}) failed: {reason}; logs in {workdir}")
    return [json.loads(o.read_text()) for o in outputs]


# --- Summary and model ------------------------------------------------------------------

ALLREDUCE_KINDS = ("dense_once", "dense_twice", "sparse_once", "sparse_twice", "scalar")


def summarise(per_round, args):
    """Medians over rounds of every variant's rates, compute and all-reduce times."""
    b, t = args.batch_size, args.sequence_length
    summary = {}
    for variant, rounds in per_round.items():
        rates = [records[0]["steps_per_s"] for records in rounds]
        entry = {
            "worker_processes": VARIANT_SETUP[variant][0] or 1,
            "threads_per_process": rounds[0][0]["thread_pools"],
            **support.median_min_max(rates, "steps_per_s"),
            "median_examples_per_s": statistics.median(rates) * b,
            "median_chars_per_s": statistics.median(rates) * b * t,
            "median_step_ms": 1000 / statistics.median(rates),
            # The median single step (the rate above is steps / total time).
            "median_of_step_ms": 1000 * statistics.median(
                s for records in rounds for s in records[0]["step_seconds"]
            ),
        }
        if len(rounds[0]) > 1:
            entry["steps_per_s_per_worker_median"] = [
                statistics.median(records[i]["steps_per_s"] for records in rounds) for i in range(len(rounds[0]))
            ]
            checksums = [[r["weights_checksum"] for r in records] for records in rounds]
            entry["workers_weights_equal"] = bool(all(np.allclose(c, c[0], rtol=1e-6) for c in checksums))
        if "compute" in rounds[0][0]:
            entry["compute_ms"] = {
                size: 1000 * statistics.median(records[0]["compute"][size]["median_step_s"] for records in rounds)
                for size in rounds[0][0]["compute"]
            }
        if "allreduce" in rounds[0][0]:
            first = rounds[0][0]["allreduce"]
            reduce = {key: first[key] for key in (
                "dense_bytes", "tensors", "dtypes", "embedding_bytes", "embedding_gradient_rows_per_worker",
                "sparse_bytes_per_worker", "sparse_total_bytes_per_worker",
            )}
            for kind in ALLREDUCE_KINDS:
                # Per round, the slower worker's median (a collective ends for both together).
                values = [max(r["allreduce"][f"{kind}_median_s"] for r in records) for records in rounds]
                reduce[f"{kind}_ms"] = 1000 * statistics.median(values)
            reduce["dense_algorithm_bandwidth_gbit_s"] = gbits(reduce["dense_bytes"], reduce["dense_once_ms"])
            # 2 workers: a ring all-reduce sends bytes/2 twice, i.e. bytes in all, in 2
            # sequential messages whose latency the scalar all-reduce measures.
            latency_free = reduce["dense_once_ms"] - reduce["scalar_ms"]
            reduce["dense_latency_corrected_bandwidth_gbit_s"] = (
                gbits(reduce["dense_bytes"], latency_free) if latency_free > 0 else None
            )
            entry["allreduce"] = reduce
        if "concurrent_compute" in rounds[0][0]:
            # Per round, the slower worker's median: the workers step together.
            entry["concurrent_compute_half_batch_ms"] = 1000 * statistics.median(
                max(r["concurrent_compute"]["median_step_s"] for r in records) for records in rounds
            )
        summary[variant] = entry
    return summary


def gbits(nbytes, milliseconds):
    return nbytes * 8 / (milliseconds / 1000) / 1e9


def ratios_of(summary):
    ratios = {}

    def ratio(numerator, denominator):
        if numerator in summary and denominator in summary:
            ratios[f"{numerator} / {denominator}"] = support.median_ratio(
                summary[numerator], summary[denominator], "steps_per_s"
            )

    ratio("loop_2workers", "fit")
    ratio("loop_2workers_1thread", "fit")
    ratio("loop_1worker", "fit")
    ratio("loop_2workers_1thread", "fit_1thread")
    ratio("loop_2workers", "loop_1worker")
    ratio("loop_2workers_1thread", "loop_2workers")
    ratio("fit", "fit_1thread")
    return ratios


def classify_collectives(collectives):
    """Counts collective ops: packed gradient all-reduces (a rank-1 float input of unknown
    or large size), all-gathers (of IndexedSlices: their values, indices and sizes) and
    small all-reduces (the logs, the end-of-data checks)."""
    counts = {"gradient_allreduces": 0, "sparse_allreduces": 0, "gathers": 0, "small_allreduces": 0}
    for op in collectives or []:
        shape = op["input_shape"]
        if op["type"].startswith("CollectiveGather"):
            counts["gathers"] += 1
            if shape is not None and len(shape) == 2 and op["dtype"].startswith(("float", "bfloat")):
                counts["sparse_allreduces"] += 1  # one values gather per IndexedSlices all-reduce
        elif op["type"].startswith("CollectiveReduce"):
            large = shape is not None and len(shape) >= 1 and (None in shape or int(np.prod(shape)) >= 1024)
            counts["gradient_allreduces" if large else "small_allreduces"] += 1
    return counts


def step_collective_counts(step):
    """The collectives of one training step (`_collectives_in_step`'s record): those of
    the traced step function, plus those of the eager end-of-data check when the loop
    makes it (unknown cardinality); `next_in_step`: what taking the batch inside the
    traced step adds to `on_batch` (train_step and the logs)."""
    parts = {
        "traced": classify_collectives(step["traced"]),
        "eager": classify_collectives(step["eager"]),
        "on_batch": classify_collectives(step["on_batch"]),
    }
    per_step = {key: parts["traced"][key] + parts["eager"][key] for key in parts["traced"]}
    return {
        "dataset_cardinality": step["dataset_cardinality"],
        "batch_taken_in_traced_step": step["batch_taken_in_traced_step"],
        "traced_function": step["traced_function"],
        **parts,
        "next_in_step": (
            {key: parts["traced"][key] - parts["on_batch"][key] for key in per_step}
            if step["batch_taken_in_traced_step"] else None
        ),
        "per_step": per_step,
    }


def collectives_ms(reduce, per_step):
    """The step's collectives timed by the measured all-reduces: each IndexedSlices
    all-reduce as `sparse` (the packed dense all-reduce plus the gathers), each other
    packed gradient all-reduce as `dense`, each small one as `scalar`."""
    k_dense, k_sparse = per_step["gradient_allreduces"], per_step["sparse_allreduces"]
    gradients = k_sparse * reduce["sparse_once_ms"] + max(k_dense - k_sparse, 0) * reduce["dense_once_ms"]
    small = per_step["small_allreduces"] * reduce["scalar_ms"]
    return {"gradients_ms": gradients, "small_ms": small, "total_ms": gradients + small}


def best_compute(summary):
    """{batch: (seconds, variant)}: the faster of `fit` (default threads) and
    `fit_1thread` at each batch size, i.e. the thread setting a user would pick."""
    best = {}
    for variant in ("fit", "fit_1thread"):
        for size, ms in summary.get(variant, {}).get("compute_ms", {}).items():
            if int(size) not in best or ms / 1000 < best[int(size)][0]:
                best[int(size)] = (ms / 1000, variant)
    return best


def communication_seconds(n, p):
    """The modelled communication of one step on n machines (see `predictions`), as
    (seconds moving bytes, seconds of per-message latency)."""
    bandwidth, alpha = p["bandwidth"], p["alpha"]
    # A ring all-reduce: 2(n-1) sequential messages of bytes/n each.
    dense_bytes = p["k_dense"] * 2 * (n - 1) / n * p["dense_bytes"] / bandwidth
    # A ring all-gather: each machine receives the other n-1 machines' rows.
    rows = p["batch"] / n * p["sequence_length"]
    sparse_bytes = p["k_sparse"] * (n - 1) * rows * p["sparse_row_bytes"] / bandwidth
    messages = (p["k_dense"] + p["small"]) * 2 * (n - 1) + p["gathers"] * (n - 1)
    return dense_bytes + sparse_bytes, messages * alpha


def predictions(summary, counts, args):
    """The N-machine ring model (see the module docstring); None without its inputs.
    `counts`: `step_collective_counts` of the traced step."""
    compute = best_compute(summary)
    reduce_variant = next((v for v in ("loop_2workers_1thread", "loop_2workers") if v in summary), None)
    if args.batch_size not in compute or reduce_variant is None or counts is None:
        return None
    reduce = summary[reduce_variant]["allreduce"]
    per_step = counts["per_step"]
    sparse = per_step["sparse_allreduces"] > 0
    rows = reduce["embedding_gradient_rows_per_worker"]
    params = {
        "k_dense": per_step["gradient_allreduces"],
        "k_sparse": per_step["sparse_allreduces"],
        "gathers": per_step["gathers"],
        "small": per_step["small_allreduces"],
        "dense_bytes": reduce["dense_bytes"] - (reduce["embedding_bytes"] if sparse else 0),
        "sparse_row_bytes": reduce["sparse_bytes_per_worker"] / rows if sparse else 0.0,
        "batch": args.batch_size,
        "sequence_length": args.sequence_length,
    }
    alpha_loopback = reduce["scalar_ms"] / 1000 / 2  # a 2-machine ring: 2 sequential messages
    loopback_gbit = reduce["dense_latency_corrected_bandwidth_gbit_s"]
    networks = {
        # TensorFlow's per-collective overhead as measured here, plus the network's latency.
        f"{args.network_gbits:g} Gbit/s": (args.network_gbits, alpha_loopback + args.network_latency_us * 1e-6),
        # The same network if a message cost only its network latency (an optimistic bound).
        f"{args.network_gbits:g}G, net. latency only": (args.network_gbits, args.network_latency_us * 1e-6),
    }
    if loopback_gbit:
        networks["loopback (measured)"] = (loopback_gbit, alpha_loopback)
    b = args.batch_size
    table = []
    for label, (gbit, alpha) in networks.items():
        p = dict(params, bandwidth=gbit * 1e9 / 8, alpha=alpha)
        for n in MACHINE_COUNTS:
            if b % n:
                continue
            moving, latency = communication_seconds(n, p)
            communication = moving + latency
            for basis, t_compute in (("measured", compute.get(b // n, (None,))[0]), ("linear", compute[b][0] / n)):
                if t_compute is None or (n == 1 and basis == "linear"):
                    continue
                t_step = t_compute + communication
                table.append({
                    "network": label, "machines": n, "compute_basis": basis,
                    "alpha_us": 1e6 * alpha, "bandwidth_gbit_s": gbit,
                    "compute_ms": 1000 * t_compute, "communication_ms": 1000 * communication,
                    "communication_bytes_ms": 1000 * moving, "communication_latency_ms": 1000 * latency,
                    "step_ms": 1000 * t_step, "examples_per_s": b / t_step,
                    "speedup_vs_1": compute[b][0] / t_step,
                })
    # The model's own check: its 2-machine loopback communication against the measured
    # all-reduces of the 2-worker cluster.
    self_check = None
    if loopback_gbit:
        p = dict(params, bandwidth=loopback_gbit * 1e9 / 8, alpha=alpha_loopback)
        gradients_only = dict(p, small=0)
        self_check = {
            "modelled_gradient_allreduces_ms (k_dense dense + k_sparse sparse, 2 machines, loopback)":
                1000 * sum(communication_seconds(2, gradients_only)),
            "measured_gradient_allreduces_ms (k_sparse sparse + (k_dense - k_sparse) dense)":
                collectives_ms(reduce, per_step)["gradients_ms"],
        }
    return {
        "is_a_model": True,
        "formula": (
            "t_step(N) = t_compute(B/N) + k_dense*(2(N-1)/N*dense_bytes/bw + 2(N-1)*alpha) "
            "+ k_sparse*(N-1)*(B/N*T*row_bytes)/bw + gathers*(N-1)*alpha + small*2(N-1)*alpha"
        ),
        "assumptions": [
            "every machine is like this one (2 cores); t_compute(B/N) = train_on_batch at batch B/N in one "
            "process here, the faster of 2 and 1 intra-op threads ('measured'), or t_compute(B)/N ('linear': the "
            "optimistic assumption); speedup is against t_compute(B) of one machine",
            f"k_dense = {params['k_dense']} all-reduce(s) of the packed dense gradients "
            f"({params['dense_bytes']:,} bytes) per step, counted in the traced step "
            f"({counts['traced_function']}); the embedding's gradient "
            + ("is all-gathered" if sparse else "is dense, inside them"),
            (f"k_sparse = {params['k_sparse']} all-gathers of an embedding's IndexedSlices gradient per step "
             f"(B/N*T rows of {params['sparse_row_bytes']:.0f} bytes from each machine), "
             f"{params['gathers']} gather ops in all (values, indices, sizes)") if sparse
            else f"k_sparse = 0: no IndexedSlices gradient is all-gathered ({params['gathers']} gather ops)",
            f"small = {params['small']} latency-only all-reduces per step: "
            f"{counts['traced']['small_allreduces']} in the traced step ({counts['traced_function']}"
            + (f"; {counts['next_in_step']['small_allreduces']} of them from taking the batch inside it, "
               f"next(iterator)'s partial-batch check" if counts["next_in_step"] else "")
            + f") + {counts['eager']['small_allreduces']} in the eager end-of-data check "
            f"(dataset cardinality {counts['dataset_cardinality']}: "
            + ("known, so the loop makes none)" if counts["batch_taken_in_traced_step"]
               else "unknown, so the loop makes it before every step)"),
            f"alpha = {1e6 * alpha_loopback:.0f} us per message measured on loopback (half the 2-worker "
            "scalar all-reduce: TensorFlow's collective executor + gRPC, on this loaded 2-core machine), "
            f"+ {args.network_latency_us:g} us on a network; the 'net. latency only' rows drop the measured part "
            "(an optimistic bound: a message costs only the network's latency)",
            "flat ring; no overlap of communication with computation; no stragglers; no input pipeline",
        ],
        "parameters": params,
        "compute_used_ms": {
            size: {"ms": 1000 * seconds, "from": variant} for size, (seconds, variant) in sorted(compute.items())
        },
        "alpha_loopback_us": 1e6 * alpha_loopback,
        "loopback_bandwidth_gbit_s": loopback_gbit,
        "self_check_2_machines_loopback": self_check,
        "rows": table,
    }


def decomposition_checks(summary, counts):
    """t_step(2 workers) against t_compute(B/2) + the step's collectives (`counts`:
    `step_collective_counts`, timed by `collectives_ms`), per thread setting."""
    checks = {}
    if counts is None:
        return checks
    per_step = counts["per_step"]
    for variant, compute_variant in (("loop_2workers", "fit"), ("loop_2workers_1thread", "fit_1thread")):
        if variant not in summary or compute_variant not in summary:
            continue
        compute = summary[compute_variant].get("compute_ms", {})
        sizes = sorted(int(size) for size in compute)
        if not sizes or str(sizes[-1] // 2) not in compute:
            continue
        half = compute[str(sizes[-1] // 2)]
        concurrent = summary[variant].get("concurrent_compute_half_batch_ms")
        reduce = summary[variant]["allreduce"]
        collectives = collectives_ms(reduce, per_step)
        loop_overhead = None
        if "loop_1worker" in summary and "fit" in summary:
            loop_overhead = summary["loop_1worker"]["median_step_ms"] - summary["fit"]["median_step_ms"]
        checks[variant] = {
            "measured_step_ms": summary[variant]["median_step_ms"],
            "compute_half_batch_ms": half,
            "compute_threads": compute_variant,
            "gradient_allreduces": per_step["gradient_allreduces"],
            "sparse_allreduces": per_step["sparse_allreduces"],
            "small_allreduces": per_step["small_allreduces"],
            "dense_allreduce_once_ms": reduce["dense_once_ms"],
            "sparse_allreduce_once_ms": reduce["sparse_once_ms"],
            "scalar_allreduce_ms": reduce["scalar_ms"],
            "collectives_gradients_ms": collectives["gradients_ms"],
            "collectives_small_ms": collectives["small_ms"],
            "collectives_ms": collectives["total_ms"],
            "compute_plus_collectives_ms": half + collectives["total_ms"],
            "concurrent_compute_half_batch_ms": concurrent,
            "concurrent_compute_plus_collectives_ms": concurrent + collectives["total_ms"] if concurrent else None,
            "loop_overhead_one_worker_ms": loop_overhead,
        }
    return checks


def print_report(summary, ratios, checks, counts, model, args):
    b, t = args.batch_size, args.sequence_length
    support.print_table(
        f"training throughput, char LM ({args.cell} {args.units} x {args.num_layers}, {args.dtype_policy}), "
        f"global batch {b} x sequence {t}; median of {args.rounds} interleaved rounds of {args.steps} steps",
        f"{'variant':<23} {'procs':>5} {'threads':>8} {'steps/s':>8} {'min':>7} {'max':>7} "
        f"{'examples/s':>10} {'chars/s':>9} {'ms/step':>8} {'med.step':>8} {'other CPU':>9}",
        [
            f"{v:<23} {s['worker_processes']:>5} "
            f"{s['threads_per_process']['intra_op_threads'] or 'default':>8} "
            f"{s['median_steps_per_s']:>8.2f} {s['min_steps_per_s']:>7.2f} {s['max_steps_per_s']:>7.2f} "
            f"{s['median_examples_per_s']:>10.0f} {s['median_chars_per_s']:>9.0f} {s['median_step_ms']:>8.1f} "
            f"{s['median_of_step_ms']:>8.1f} "
            f"{'/'.join(f'{100 * x:.0f}' for x in s.get('other_processes_share_of_cpus_per_round', [])):>8}%"
            for v, s in summary.items()
        ],
    )
    print("(ms/step = 1000 / median steps/s; med.step = median single step over all rounds; other CPU = share of "
          "the machine's CPUs other processes used during each round's run of the variant)")
    support.print_ratios(ratios, name_width=44, value_format="6.2f")
    compute_rows = [
        f"{v:<23} " + "  ".join(f"B={size}: {ms:6.1f}" for size, ms in s["compute_ms"].items())
        for v, s in summary.items() if "compute_ms" in s
    ]
    if compute_rows:
        support.print_table(
            "compute alone: one train_on_batch step in one process, ms (median)", "process, batch: ms",
            compute_rows,
        )
    reduce_rows = [
        f"{v:<23} {s['allreduce']['dense_bytes']:>9,} {s['allreduce']['dense_once_ms']:>7.2f} "
        f"{s['allreduce']['dense_twice_ms']:>7.2f} {s['allreduce']['sparse_once_ms']:>7.2f} "
        f"{s['allreduce']['sparse_twice_ms']:>7.2f} {s['allreduce']['scalar_ms']:>7.2f} "
        f"{s['allreduce']['dense_algorithm_bandwidth_gbit_s']:>7.2f} "
        f"{s['allreduce']['dense_latency_corrected_bandwidth_gbit_s'] or float('nan'):>7.2f}"
        for v, s in summary.items() if "allreduce" in s
    ]
    if reduce_rows:
        first = next(s["allreduce"] for s in summary.values() if "allreduce" in s)
        support.print_table(
            f"all-reduce in the 2-worker cluster on 127.0.0.1, ms (median of {args.allreduce_reps} calls, slower "
            f"worker, median over rounds); 'sparse': the embedding gradient as IndexedSlices of "
            f"{first['embedding_gradient_rows_per_worker']} rows per worker "
            f"({first['sparse_total_bytes_per_worker']:,} bytes per worker)",
            f"{'variant':<23} {'bytes':>9} {'dense':>7} {'dense2':>7} {'sparse':>7} {'sparse2':>7} {'scalar':>7} "
            f"{'Gbit/s':>7} {'corr.':>7}",
            reduce_rows,
        )
        print("(dense: every gradient dense, all-reduced once; dense2, sparse2: two chained all-reduces, for "
              "reference: sparse2 is the old step's (the model's all-reduce, then the optimizer's); "
              "Gbit/s = dense bytes / dense time; corr. = dense bytes / (dense - scalar))")
    if counts:
        per_step = counts["per_step"]
        taken = ("inside the traced step" if counts["batch_taken_in_traced_step"]
                 else "after an eager end-of-data check")
        print(
            f"\ncollectives per training step (traced {counts['traced_function']}, dataset cardinality "
            f"{counts['dataset_cardinality']}: batch taken {taken}): "
            f"k_dense {per_step['gradient_allreduces']} gradient all-reduce(s), k_sparse "
            f"{per_step['sparse_allreduces']} IndexedSlices all-reduce(s) ({per_step['gathers']} gathers), "
            f"{per_step['small_allreduces']} small all-reduce(s) "
            f"[traced {counts['traced']}, eager {counts['eager']}"
            + (f", of the traced: next(iterator) {counts['next_in_step']}" if counts["next_in_step"] else "")
            + "]"
        )
    for variant, c in checks.items():
        terms = [
            (c["sparse_allreduces"], "sparse", c["sparse_allreduce_once_ms"]),
            (c["gradient_allreduces"] - c["sparse_allreduces"], "dense", c["dense_allreduce_once_ms"]),
            (c["small_allreduces"], "scalar", c["scalar_allreduce_ms"]),
        ]
        collectives = " + ".join(f"{k} x {name} {ms:.1f}" for k, name, ms in terms if k > 0)
        collectives += f" = {c['collectives_ms']:.1f} ms"
        print(
            f"\n{variant}: measured {c['measured_step_ms']:.1f} ms/step\n"
            f"  the step's collectives: {collectives}\n"
            f"  compute(B/2) alone ({c['compute_threads']}) {c['compute_half_batch_ms']:.1f} + collectives "
            f"{c['collectives_ms']:.1f} = {c['compute_plus_collectives_ms']:.1f} ms"
            + (f"\n  compute(B/2) with both workers computing at once "
               f"{c['concurrent_compute_half_batch_ms']:.1f} + collectives {c['collectives_ms']:.1f} = "
               f"{c['concurrent_compute_plus_collectives_ms']:.1f} ms"
               if c["concurrent_compute_half_batch_ms"] else "")
            + (f"\n  (the loop's own overhead in one process, loop_1worker - fit: "
               f"{c['loop_overhead_one_worker_ms']:+.1f} ms)"
               if c["loop_overhead_one_worker_ms"] is not None else "")
        )
    if model:
        print(f"\nMODEL (not a measurement): {model['formula']}")
        for assumption in model["assumptions"]:
            print(f"  - {assumption}")
        if model["self_check_2_machines_loopback"]:
            modelled, measured = model["self_check_2_machines_loopback"].values()
            print(f"  self-check, 2 machines on loopback: modelled gradient all-reduces {modelled:.1f} ms, "
                  f"measured {measured:.1f} ms")
        support.print_table(
            "predicted step time and throughput on N machines (speedup: against t_compute(B) on one machine)",
            f"{'network':<25} {'N':>2} {'compute':>9} {'compute ms':>10} {'comm ms':>8} {'(bytes':>7} "
            f"{'latency)':>8} {'step ms':>8} {'examples/s':>10} {'speedup':>8}",
            [
                f"{r['network']:<25} {r['machines']:>2} {r['compute_basis']:>9} {r['compute_ms']:>10.1f} "
                f"{r['communication_ms']:>8.1f} {r['communication_bytes_ms']:>7.1f} "
                f"{r['communication_latency_ms']:>8.1f} "
                f"{r['step_ms']:>8.1f} {r['examples_per_s']:>10.0f} {r['speedup_vs_1']:>7.2f}x"
                for r in model["rows"]
            ],
        )


# --- Main -------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration, for smoke testing")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each runs every variant)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per variant and round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps before them")
    parser.add_argument("--compute-steps", type=int, default=10, help="timed train_on_batch steps per batch size")
    parser.add_argument("--allreduce-reps", type=int, default=50, help="timed all-reduces of each kind")
    parser.add_argument("--allreduce-warmup", type=int, default=5, help="untimed all-reduces of each kind")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="the GLOBAL batch")
    parser.add_argument("--sequence-length", type=int, default=100)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--cell", default="lstm", choices=("rnn", "lstm", "gru"))
    parser.add_argument("--dtype-policy", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--network-gbits", type=float, default=10.0, help="network bandwidth of the model")
    parser.add_argument(
        "--network-latency-us", type=float, default=50.0,
        help="per-message network latency the model adds to the measured loopback one",
    )
    parser.add_argument("--cluster-timeout", type=int, default=60, help="seconds a worker waits for its peers")
    parser.add_argument("--child-timeout", type=int, default=300, help="seconds a variant's processes may run")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    parser.add_argument("--keep-logs", action="store_true", help="keep the subprocesses' logs and JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup, args.compute_steps = 1, 5, 2, 3
        args.allreduce_reps, args.allreduce_warmup = 5, 2
        args.units, args.sequence_length, args.batch_size, args.embedding_dim = 32, 20, 8, 16
        args.child_timeout = min(args.child_timeout, 120)
    if args.batch_size % 2:
        parser.error("--batch-size must be even (it is split between 2 workers)")
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    variants = support.chosen_subset(args.variants, VARIANTS, "variants")
    load_before = os.getloadavg()
    started = time.perf_counter()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="multi_worker_throughput-"))
    per_round = {v: [] for v in variants}
    runs = []
    write_batches(args, workdir / "batches.npz")
    for round_index, order in support.interleaved_rounds(variants, args.rounds, args.seed):
        for variant in order:
            load = os.getloadavg()
            with OtherLoad() as other:
                records = run_variant(variant, round_index, args, workdir, first_of_kind=round_index == 0)
            per_round[variant].append(records)
            runs.append({
                "round": round_index, "variant": variant, "load_average_at_start": load,
                **other.result, "workers": records,
            })
            print(f"round {round_index + 1}/{args.rounds} {variant:<23} "
                  f"{records[0]['steps_per_s']:6.2f} steps/s  ({other.result['wall_seconds']:.0f} s, "
                  f"load {load[0]:.2f}, other processes {other.result['other_processes_cpu_seconds']:.1f} "
                  f"CPU s)", flush=True)

    # Kept after a failure (run_variant names the folder), and with --keep-logs.
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(per_round, args)
    for variant, entry in summary.items():
        # Interference: CPU the machine's other processes used while this variant ran.
        entry["other_processes_share_of_cpus_per_round"] = [
            run["other_processes_share_of_cpus"] for run in runs if run["variant"] == variant
        ]
    ratios = ratios_of(summary)
    two_worker_records = per_round.get("loop_2workers_1thread", []) + per_round.get("loop_2workers", [])
    step_collectives = next(
        (r["collectives_in_step"] for records in two_worker_records for r in records
         if "collectives_in_step" in r),
        None,
    )
    counts = step_collective_counts(step_collectives) if step_collectives is not None else None
    model = predictions(summary, counts, args)
    checks = decomposition_checks(summary, counts)
    print_report(summary, ratios, checks, counts, model, args)

    first = next(iter(per_round.values()))[0][0]
    record = {
        **support.run_metadata(
            "multi_worker_throughput", args, load_before, started=started, cpu_model=support.cpu_model(),
        ),
        "model": {
            "cell": args.cell, "units": args.units, "num_layers": args.num_layers,
            "embedding_dim": args.embedding_dim, "dtype_policy": first["dtype_policy"],
            "parameters": first["parameters"], "trainable_bytes": first["trainable_bytes"],
            "trainable_variables": first["trainable_variables"],
        },
        "global_batch": args.batch_size,
        "sequence_length": args.sequence_length,
        "summary": summary,
        "ratios": ratios,
        "decomposition_checks": checks,
        "collectives_in_step": step_collectives,
        "collective_counts": counts,
        "n_machine_model": model,
        "runs": runs,
    }
    print(f"\nload average before {load_before}, after {record['load_average_after']}")
    support.write_results(record, args.output or support.results_path("multi_worker_throughput", args.quick))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        main()
