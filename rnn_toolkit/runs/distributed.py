"""Training on several workers with `tf.distribute`, and on the local GPUs.

One model trained synchronously by N worker processes (on one machine or several):
`tf.distribute.MultiWorkerMirroredStrategy` keeps a copy of every variable on each worker
and all-reduces the gradients at every step, so the copies stay equal. Nothing here
re-implements distribution; this module supplies what the toolkit's runs need around it:

* **The cluster** (`Cluster`): from `--workers host:port,... --worker-index i` or the
  standard `TF_CONFIG`, checked before TensorFlow starts (an index outside the cluster, a
  malformed address, a port already in use), with bounded waits: a peer that never joins
  or stops answering ends every worker with an error after `timeout` seconds instead of
  hanging.
* **The training loop** (`fit_on_workers`): Keras 3.15's `Model.fit` fails under
  `MultiWorkerMirroredStrategy` (keras-team/keras#20585: before the first step it
  all-reduces a batch of *data* eagerly, which the collective cannot convert). This loop
  does what `fit` does, with the model's own `train_step` run by `strategy.run`, so
  everything a model's step does carries over unchanged: gradient clipping with the
  pre-clip norm logged (`GradientClippingModel`), mixed precision and its loss scale,
  the compiled metrics. Callbacks see the same calls as under `fit` (epochs, batches,
  validation as `on_test_*`, `stop_training`), so the backup, history, TensorBoard,
  sampling and early-stopping callbacks work as they do in one process. Each step makes
  three collectives: the gradients' all-reduce, one for the averaged logs, and
  TensorFlow's check that every worker still has a batch (for a finite dataset; for one
  whose number of batches is unknown, that check is made eagerly before the step).
* **Sharding**: every worker reads the same seeded pipeline and keeps its share of each
  global batch (`tf.data.experimental.AutoShardPolicy.DATA`, then tf.distribute's
  rebatching): the batch size the user asked for is the global batch, no example is
  seen twice in an epoch and none is dropped. A fingerprint of the first global batch is
  compared across workers, so a pipeline that is not deterministic across processes fails
  loudly instead of silently duplicating examples.
* **One writer**: worker 0 (the chief) writes the run folder, the logs and the model,
  and scores the model alone after training (reloaded outside the strategy) while the
  others wait for it; they train in a private temporary folder deleted at the end. After
  the chief's callbacks have restored a backup, its variables and its epoch are broadcast
  to every worker, so a resumed run starts from the same state everywhere; its
  `stop_training` is broadcast after every epoch, so early stopping ends every worker at
  the same epoch.

With one process, `MirroredStrategy` over the local GPUs (`local_gpu_strategy`) keeps
Keras' own `fit`; the recurrent layers stay on the cuDNN kernels.

Imports from rnn_toolkit: nothing (this module is used by `rnn_toolkit.runs.driver`).
"""

import dataclasses
import errno
import json
import os
import re
import socket

import keras
import numpy as np
import tensorflow as tf

DEFAULT_TIMEOUT = 120
"""Seconds a worker waits for its peers to join, and for a peer that stopped answering,
before it gives up with an error."""

__all__ = [
    "Cluster",
    "ClusterError",
    "DEFAULT_TIMEOUT",
    "check_port_free",
    "cluster_from_options",
    "fit_on_workers",
    "free_ports",
    "is_chief",
    "is_multi_worker",
    "local_gpu_strategy",
    "multi_worker_strategy",
    "release_workers",
    "report_failure",
    "shard_by_data",
    "tensorflow_reason",
    "wait_for_chief",
    "worker_description",
]

_FINISHED_BARRIER = "rnn_toolkit/run_finished"
_A_DAY_MS = 24 * 3600 * 1000


class ClusterError(ValueError):
    """The cluster is misdescribed or unreachable.

    Attributes:
        option: the command-line option at fault (`"--workers"`, `"--worker-index"`,
            `"TF_CONFIG"`, ...), so that a command line can name it.
    """

    def __init__(self, option, message):
        super().__init__(message)
        self.option = option


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The workers of one training job and which of them this process is.

    Attributes:
        workers: `"host:port"` of every worker, worker 0 (the chief) first.
        index: this process's position in `workers`.
    """

    workers: tuple
    index: int

    @property
    def size(self):
        return len(self.workers)

    @property
    def is_chief(self):
        return self.index == 0

    @property
    def address(self):
        return self.workers[self.index]

    def tf_config(self):
        """The cluster as the standard `TF_CONFIG` dictionary."""
        return {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}}

    def command_options(self):
        """The command-line options that describe this worker (`--workers ... --worker-index i`)."""
        return ["--workers", ",".join(self.workers), "--worker-index", str(self.index)]


def cluster_from_options(workers=None, worker_index=None, environ=None):
    """The `Cluster` from the command-line options, else from `TF_CONFIG`, else None.

    Args:
        workers: `"host:port,host:port,..."` (or a list of them), worker 0 first; the same
            on every worker.
        worker_index: this worker's position in `workers` (0 is the chief).
        environ: where to read `TF_CONFIG` (default `os.environ`).

    Returns:
        A `Cluster`, or None when neither the options nor `TF_CONFIG` describe one (one
        process, no cluster).

    Raises:
        ClusterError: naming the option at fault, for a malformed address, a repeated
            address, an index outside the cluster, or a `TF_CONFIG` this toolkit cannot run
            (a parameter server or an evaluator job).
    """
    environ = os.environ if environ is None else environ
    if workers is None and worker_index is not None:
        raise ClusterError("--worker-index", "needs --workers (the addresses of every worker)")
    if workers is not None:
        if worker_index is None:
            raise ClusterError(
                "--worker-index", "is needed with --workers: this worker's position in the list "
                "(0 for the first, the chief)"
            )
        addresses = workers.split(",") if isinstance(workers, str) else list(workers)
        return _checked_cluster(addresses, worker_index, "--workers", "--worker-index")
    if not environ.get("TF_CONFIG"):
        return None
    return _cluster_from_tf_config(environ["TF_CONFIG"])


def _cluster_from_tf_config(text):
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, task_index = task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ClusterError(
            "TF_CONFIG",
            'must be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
            f'"worker", "index": 0}}; could not read it ({type(error).__name__}: {error})',
        ) from None
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise ClusterError(
            "TF_CONFIG",
            f"has jobs {unknown}; training runs on 'chief' and 'worker' jobs only "
            "(MultiWorkerMirroredStrategy: no parameter servers, no evaluator)",
        )
    chief = list(cluster.get("chief", []))
    if len(chief) > 1:
        raise ClusterError("TF_CONFIG", f"has {len(chief)} chiefs; a cluster has at most one")
    addresses = chief + list(cluster.get("worker", []))
    if task_type not in ("chief", "worker"):
        raise ClusterError("TF_CONFIG", f"task type {task_type!r} is not 'chief' or 'worker'")
    # The chief (if any) comes first, so "worker" index i is position i + 1.
    position = task_index if task_type == "chief" else task_index + len(chief)
    if task_type == "chief" and task_index != 0:
        raise ClusterError("TF_CONFIG", f"the chief's task index must be 0; received {task_index!r}")
    return _checked_cluster(addresses, position, "TF_CONFIG", "TF_CONFIG")


def _checked_cluster(addresses, index, workers_option, index_option):
    addresses = [str(address).strip() for address in addresses]
    if not addresses or not all(addresses):
        raise ClusterError(workers_option, "must list one host:port per worker, separated by commas")
    for address in addresses:
        _split_address(address, workers_option)
    repeated = sorted({a for a in addresses if addresses.count(a) > 1})
    if repeated:
        raise ClusterError(workers_option, f"lists {', '.join(repeated)} more than once; each worker needs its own port")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(addresses):
        raise ClusterError(
            index_option,
            f"{index!r} is not a worker of this {len(addresses)}-worker cluster "
            f"(expected 0 to {len(addresses) - 1})",
        )
    return Cluster(tuple(addresses), index)


def _split_address(address, option):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(option, f"{address!r} is not host:port (e.g. 127.0.0.1:23456 or node1:23456)")
    return host.strip("[]"), int(port)


def check_port_free(cluster):
    """Raises `ClusterError` if this worker's port is taken (say, by a worker of an earlier
    job still running), instead of letting TensorFlow's server fail later."""
    _, port = _split_address(cluster.address, "--workers")
    for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        with probe:
            # SO_REUSEADDR: a port a finished worker left in TIME_WAIT is free; one that a
            # process listens on is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise ClusterError(
                        "--workers",
                        f"port {port} of worker {cluster.index} ({cluster.address}) is in use by "
                        "another process (a worker of an earlier job still running?); free it or "
                        "choose another port",
                    ) from None
                continue
            return


def free_ports(count, host="127.0.0.1"):
    """`count` distinct TCP ports free on `host` now (the system's choice), for a cluster
    on one machine. Another process may take one before the worker binds it: a worker then
    fails with "port ... in use" (`check_port_free`)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind((host, 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def multi_worker_strategy(cluster, *, timeout=DEFAULT_TIMEOUT):
    """A `MultiWorkerMirroredStrategy` for `cluster`, with bounded waits.

    Must be called before TensorFlow runs anything else in the process (it configures the
    runtime's collectives). This worker blocks until every worker has joined, for at most
    `timeout` seconds; afterwards, a worker that stops answering for `timeout` seconds
    makes the others fail instead of waiting forever.

    Raises:
        ClusterError: if this worker's port is in use, or the cluster did not assemble in
            `timeout` seconds (naming the workers that did not join, when known).
    """
    from tensorflow.python.eager import context  # the only way to set the coordination timeouts

    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2

    check_port_free(cluster)
    timeout_ms = int(timeout * 1000)
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader="/job:worker/replica:0/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=cluster.size)],
        cluster_register_timeout_in_ms=timeout_ms,
        heartbeat_timeout_in_ms=timeout_ms,
        shutdown_barrier_timeout_in_ms=timeout_ms,
    )
    # Registration as a barrier: the chief, too, gives up when a worker does not join in
    # time (without it, the chief waits forever for a worker that never comes).
    context.context().coordination_service.cluster_register_with_barrier = True
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": list(cluster.workers)}),
        task_type="worker",
        task_id=cluster.index,
        rpc_layer="grpc",
    )
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING
            ),
        )
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError) as error:
        raise ClusterError("--workers", _join_failure(cluster, timeout, error)) from None


def _join_failure(cluster, timeout, error):
    others = ", ".join(f"worker {i} ({a})" for i, a in enumerate(cluster.workers) if i != cluster.index)
    return (
        f"the cluster did not assemble (waiting at most {timeout:g} s): worker {cluster.index} "
        f"({cluster.address}) could not reach every other worker: {others}; start the same "
        "command on each of them, with its own --worker-index, and check the addresses and "
        f"firewalls (TensorFlow said: {tensorflow_reason(error)})"
    )


def tensorflow_reason(error):
    """The informative line of a TensorFlow runtime error (its message starts with lines
    such as "Graph execution error:" and a traceback of graph nodes)."""
    text = getattr(error, "message", None) or str(error)
    # A failure another worker reported (`report_failure`) says what went wrong there.
    reported = re.search(r"Error reported from /job:\w+/(?:replica:\d+/)?task:\d+: (.+)", text)
    if reported:
        return reported.group(1).strip()[:300]
    boilerplate = ("Graph execution error", "Detected at node", "File ", "{{function_node", "Additional GRPC",
                   "The error could be from a previous operation")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(boilerplate):
            return line[:300]
    return type(error).__name__


def local_gpu_strategy(gpus="all"):
    """`MirroredStrategy` over this machine's GPUs (one process; Keras' `fit` works).

    Args:
        gpus: `"all"` or how many of the visible GPUs to use.

    Raises:
        ClusterError: (option `--gpus`) if TensorFlow sees no GPU, or fewer than asked.
    """
    visible = tf.config.list_logical_devices("GPU")
    if not visible:
        raise ClusterError(
            "--gpus",
            "TensorFlow sees no GPU on this machine (this needs a GPU build of TensorFlow and "
            "a CUDA driver); leave --gpus out to train on the CPU",
        )
    count = len(visible) if gpus == "all" else int(gpus)
    if not 0 < count <= len(visible):
        raise ClusterError("--gpus", f"asks for {gpus} GPUs; TensorFlow sees {len(visible)}")
    return tf.distribute.MirroredStrategy([device.name for device in visible[:count]])


def is_multi_worker(strategy):
    """Whether `strategy` spans several processes (needs `fit_on_workers`, not `fit`)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.cluster_resolver and strategy.cluster_resolver.cluster_spec().jobs
    )


def is_chief(strategy):
    """Whether this process writes the run's files: always, except for workers 1, 2, ...
    of a multi-worker strategy."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def worker_description(strategy):
    """E.g. `"worker 1 of 2"`, or None in one process."""
    if not is_multi_worker(strategy):
        return None
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    size = len(jobs.get("chief", [])) + len(jobs.get("worker", []))
    # Numbered as `Cluster` numbers them: the chief (if a job of its own) first.
    index = resolver.task_id + (len(jobs.get("chief", [])) if resolver.task_type == "worker" else 0)
    return f"worker {index} of {size}"


def shard_by_data(dataset):
    """`dataset` with the sharding every worker applies: each keeps its share of every
    batch (`AutoShardPolicy.DATA`), so all workers must read the same batches in the same
    order (a seeded pipeline)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# --- The training loop ------------------------------------------------------------------


def fit_on_workers(model, strategy, fit_data, *, epochs, callbacks, verbose):
    """`model.fit` for a `MultiWorkerMirroredStrategy` (see the module docstring).

    Every worker calls this with the same arguments (the chief with its run's callbacks,
    the others with theirs). `model` must be built and compiled inside `strategy.scope()`.

    Args:
        model: the compiled Keras model.
        strategy: the `MultiWorkerMirroredStrategy`.
        fit_data: a `rnn_toolkit.runs.FitData` whose `train` (and `validation`) datasets
            yield GLOBAL batches, the same on every worker.
        epochs: the epoch to stop at (a resumed run starts at its backup's).
        callbacks: Keras callbacks, called as `fit` calls them.
        verbose: Keras' verbosity (progress bar 1, one line per epoch 2, silent 0).

    Returns:
        The `keras.callbacks.History`.
    """
    train = strategy.experimental_distribute_dataset(shard_by_data(fit_data.train))
    validation = None
    if fit_data.validation is not None:
        validation = strategy.experimental_distribute_dataset(shard_by_data(fit_data.validation))
    # One look at the first batch, as `fit` takes under any distribution strategy (so a
    # pipeline that reshuffles at each pass gives the batches it gives under `fit` then).
    first_batch = next(iter(fit_data.train), None)
    if first_batch is None:
        raise ValueError("the training dataset yields no batch")
    gather = _gatherer(strategy)
    _check_same_batches(gather, first_batch)
    with strategy.scope():
        _build_for_training(model, first_batch)
    train_step = _distributed_step(strategy, model.train_step)
    test_step = _distributed_step(strategy, model.test_step)

    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
        epochs=epochs, steps=fit_data.steps_per_epoch, model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    # The chief's callbacks may have restored a backup (weights, optimizer, epoch): every
    # worker continues from that state.
    initial_epoch = _broadcast_from_chief(strategy, model, epoch=model._initial_epoch or 0)
    model._initial_epoch = None

    logs, training_logs = {}, None
    batches = _Batches(train, int(fit_data.train.cardinality()), fit_data.steps_per_epoch)
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step, logs in batches.epoch(train_step, callback_list.on_train_batch_begin):
            callback_list.on_train_batch_end(step, logs)
        epoch_logs = _as_floats(logs)
        if validation is not None:
            val_logs = _evaluate(model, test_step, validation, int(fit_data.validation.cardinality()),
                                 fit_data.validation_steps, callback_list)
            epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        training_logs = epoch_logs
        # Early stopping is the chief's decision (its callbacks hold the best-epoch record).
        model.stop_training = bool(gather(float(bool(model.stop_training)))[0])
        if model.stop_training:
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)  # as fit (EMA weights)
    callback_list.on_train_end(logs=training_logs)
    return model.history


class _Batches:
    """The distributed batches of each epoch, the way `fit` takes them: with
    `steps_per_epoch`, one iterator runs on across epochs (restarted when a finite dataset
    is used up); without it, each epoch is one full pass.

    Every worker reads the same global batches, so all of them reach the end of the data at
    the same step. When the number of batches per pass is known (`cardinality`), the
    next batch is taken inside the traced step and the end is never reached by asking;
    otherwise each step first asks, eagerly and across the workers, whether a batch is
    left (one more collective per step)."""

    def __init__(self, dataset, cardinality, steps_per_epoch, *, wrap=True):
        self.dataset, self.steps_per_epoch, self.wrap = dataset, steps_per_epoch, wrap
        self.per_pass = None if cardinality == tf.data.UNKNOWN_CARDINALITY else cardinality
        self.iterator, self.left = None, None

    def _new_pass(self):
        self.iterator = iter(self.dataset)
        # Batches left in this pass: a count, or None (unknown; INFINITE never ends).
        self.left = self.per_pass

    def epoch(self, step, before_step):
        """Runs `before_step(i)` and `step(iterator, known_to_have_a_batch)` per step;
        yields `(i, the step's logs)`."""
        fresh = self.steps_per_epoch is None or self.iterator is None
        if fresh:
            self._new_pass()
        i = 0
        while self.steps_per_epoch is None or i < self.steps_per_epoch:
            try:
                if self.left == 0:
                    raise StopIteration
                before_step(i)
                logs = step(self.iterator, self.left is not None)
            except StopIteration:
                if self.steps_per_epoch is None or not self.wrap:
                    self.iterator = None
                    return
                if fresh:
                    raise ValueError("the training dataset yields no batch") from None
                # A finite dataset used up within an epoch of `steps_per_epoch`: next pass.
                self._new_pass()
                fresh = True
                continue
            if self.left is not None and self.left != tf.data.INFINITE_CARDINALITY:
                self.left -= 1
            fresh = False
            yield i, logs
            i += 1


def _evaluate(model, test_step, dataset, cardinality, steps, callback_list):
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = {}
    # At most `steps` batches, fewer if the data ends first (as `evaluate`).
    batches = _Batches(dataset, cardinality, steps, wrap=False)
    for i, logs in batches.epoch(test_step, callback_list.on_test_batch_begin):
        callback_list.on_test_batch_end(i, logs)
    logs = _as_floats(logs)
    callback_list.on_test_end(logs)
    return logs


def _as_floats(logs):
    # As fit: the logs of the last step, which hold the metrics' running results.
    return {name: float(value) for name, value in logs.items()}


def _distributed_step(strategy, step_fn):
    """`step(iterator, known)`: `step_fn` on each replica's share of the next distributed
    batch, its logs averaged over the replicas (as Keras' `fit` reports them); raises
    StopIteration at the end of the data. `known`: a batch is known to be left, so it is
    taken inside the traced step; otherwise the workers first agree eagerly that one is."""

    @tf.function(reduce_retracing=True)
    def on_batch(data):
        logs = strategy.run(step_fn, args=(data,))
        # The logs are float scalars: one collective averages them all.
        names = list(logs)
        stacked = strategy.run(lambda *values: tf.stack([tf.cast(v, tf.float32) for v in values]),
                               args=tuple(logs[name] for name in names))
        means = strategy.reduce(tf.distribute.ReduceOp.MEAN, stacked, axis=None)
        return dict(zip(names, tf.unstack(means, num=len(names))))

    @tf.function(reduce_retracing=True)
    def on_next_batch(iterator):
        return on_batch(next(iterator))

    def step(iterator, known):
        if known:
            return on_next_batch(iterator)
        optional = iterator.get_next_as_optional()
        if not optional.has_value():
            raise StopIteration
        return on_batch(optional.get_value())

    step.on_batch = on_batch  # the traced step itself, for inspection (its collectives)
    return step


def _build_for_training(model, batch):
    """Creates every variable a training step needs (optimizer slots, metric and loss
    trackers) before the first step is traced: variables cannot be created inside a
    replica function. `fit` does this in `_maybe_symbolic_build`, the part of it that fails
    under this strategy; here it gets one local batch instead of an all-reduced one."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None:  # pragma: no cover - a Keras without it
        raise RuntimeError(
            f"keras {keras.__version__} has no Model._symbolic_build, which multi-worker training "
            "uses to create the optimizer's and metrics' variables; use keras 3.15"
        )
    symbolic_build(data_batch=batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _check_same_batches(gather, batch):
    """Fails if the workers' first global batches differ (an unseeded shuffle, say):
    sharding by data would then duplicate some examples and drop others, silently."""
    digest = 0.0
    for tensor in tf.nest.flatten(batch):
        tensor = tf.convert_to_tensor(tensor)
        if tensor.dtype == tf.string:
            values = tf.strings.to_hash_bucket_fast(tf.reshape(tensor, [-1]), 2**31 - 1)
        else:
            values = tf.reshape(tf.cast(tensor, tf.float64), [-1])
        weights = tf.range(1, tf.size(values, out_type=tf.int64) + 1, dtype=tf.float64)
        digest += float(tf.reduce_sum(tf.math.sin(tf.cast(values, tf.float64) * 1e-3 + weights)))
    digests = gather(digest)
    if not np.allclose(digests, digests[0], rtol=0, atol=1e-9):
        raise RuntimeError(
            "the workers' first training batches differ (fingerprints "
            f"{', '.join(f'{d:.6f}' for d in digests)}): every worker must read the same batches "
            "in the same order (same data, same --seed, a seeded shuffle), or sharding would "
            "give some examples to two workers and none to others"
        )


def _gatherer(strategy):
    """`gather(value)`: a float of each worker, in worker order (a NumPy array); traced once."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.float64)])
    def all_gather(value):
        return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(value[None], axis=0))

    def gather(value):
        return strategy.experimental_local_results(all_gather(tf.constant(value, tf.float64)))[0].numpy()

    return gather


def _broadcast_from_chief(strategy, model, *, epoch):
    """Gives every worker the chief's variables (model, optimizer) and returns its `epoch`."""
    variables = list(model.variables) + list(model.optimizer.variables)
    chief = is_chief(strategy)

    @tf.function
    def broadcast():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            # A sum to which only the chief contributes is a broadcast.
            values = [tf.where(chief, v.value, tf.zeros_like(v)) for v in variables]
            values.append(tf.constant(float(epoch) if chief else 0.0, tf.float64))
            # One collective per tensor: a list of several dtypes cannot be packed in one.
            return [context.all_reduce(tf.distribute.ReduceOp.SUM, value) for value in values]

        return strategy.run(replica_fn)

    reduced = broadcast()
    for variable, value in zip(variables, reduced[:-1]):
        variable.assign(strategy.experimental_local_results(value)[0])
    return int(strategy.experimental_local_results(reduced[-1])[0].numpy())


# --- The end of a run, and failures -------------------------------------------------------
# A worker that leaves while others still run is a failure for the cluster (its heartbeats
# stop): the other workers wait for the chief, which saves and scores after training.


def release_workers(strategy):
    """The chief, at the end of its run: meets the other workers at the finish, so that
    all exit together."""
    _finish(strategy)


def wait_for_chief(strategy):
    """A worker other than the chief, after training: waits until the chief has saved and
    scored the model (an error if the chief dies meanwhile)."""
    _finish(strategy)


def _finish(strategy):
    from tensorflow.python.eager import context

    if is_multi_worker(strategy):
        # No time limit of its own: scoring may take long, and a chief that dies fails
        # the barrier through the heartbeats.
        context.context().wait_at_barrier(_FINISHED_BARRIER, timeout_in_ms=_A_DAY_MS)


def report_failure(strategy, error):
    """Tells every worker that this one failed with `error`, so that they stop at once with
    its message instead of waiting for its heartbeats to time out."""
    from tensorflow.python.eager import context

    if not is_multi_worker(strategy):
        return
    message = f"{worker_description(strategy)} failed: {type(error).__name__}: {tensorflow_reason(error)}"
    try:
        context.context().report_error_to_cluster(tf.errors.ABORTED, message)
    except Exception:  # noqa: BLE001 - the cluster may already be gone; the error is raised anyway
        pass
