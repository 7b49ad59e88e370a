"""Distribution on the command line: the options of `train` that spread it over workers or
GPUs, and `launch`, which starts the workers of a one-machine cluster and restarts them
after a crash.

    rnn-toolkit train TASK ... --workers H:P,H:P --worker-index I   # one worker of a cluster
    rnn-toolkit train TASK ...            (with TF_CONFIG set)      # the same, the standard way
    rnn-toolkit train TASK ... --gpus all                           # one process, all local GPUs
    rnn-toolkit launch --workers 2 -- train TASK ...                # a 2-worker cluster here

Imports from rnn_toolkit: cli, runs.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

from rnn_toolkit.cli.options import HelpFormatter, UsageError, add_option, non_negative_int, positive_int, print_line
from rnn_toolkit.cli.tasks import DEFAULT_TASK
from rnn_toolkit.runs.distributed import (
    DEFAULT_TIMEOUT,
    ClusterError,
    cluster_from_options,
    free_ports,
    tensorflow_reason,
)

# Exit statuses of a worker that a restart cannot mend: success, and a usage error (a bad
# option or run folder is as bad the second time).
_FINAL_STATUSES = (0, 2)
_STOP_GRACE_SECONDS = 10


def add_distribution_options(parser):
    """Adds --workers, --worker-index, --cluster-timeout and --gpus to a `train` parser."""
    group = parser.add_argument_group(
        "distribution options (see 'rnn-toolkit launch --help' for a cluster on one machine)"
    )
    add_option(group, "--workers", metavar="HOST:PORT,...", show_default=False,
               help="train as one worker of this cluster (every worker's address, worker 0 "
               "first; the same list on every worker): one model trained synchronously with "
               "MultiWorkerMirroredStrategy. --batch-size is the global batch. Worker 0 writes "
               "the run folder; the others write nothing. Without --workers, TF_CONFIG is "
               "read if set")
    add_option(group, "--worker-index", type=non_negative_int, metavar="I", show_default=False,
               help="this worker's position in --workers (0: the chief)")
    add_option(group, "--cluster-timeout", type=positive_int, default=DEFAULT_TIMEOUT, metavar="SECONDS",
               help="give up, with an error, when the other workers have not all joined, or a "
               "worker has stopped answering, for this long")
    add_option(group, "--gpus", metavar="all|N", show_default=False,
               help="one process on this machine's GPUs (MirroredStrategy; the recurrent layers "
               "keep their cuDNN kernels); --batch-size is split among them")


def strategy_from_args(args):
    """The distribution strategy the train options ask for, or None (one device).

    Must run before TensorFlow does anything else in the process.

    Raises:
        UsageError: naming the option (or TF_CONFIG) at fault.
    """
    from rnn_toolkit.runs.distributed import local_gpu_strategy, multi_worker_strategy

    try:
        cluster = cluster_from_options(args.workers, args.worker_index)
        if args.gpus is not None:
            if cluster is not None:
                raise ClusterError("--gpus", "applies to one process; a cluster's workers use every "
                                   "device they have")
            if args.gpus != "all" and not (args.gpus.isdigit() and int(args.gpus) > 0):
                raise ClusterError("--gpus", f"must be 'all' or a positive number; received {args.gpus!r}")
            return local_gpu_strategy(args.gpus)
        if cluster is None:
            return None
        print_line(
            f"Worker {cluster.index} of {cluster.size} ({cluster.address}"
            + (", the chief: it writes the run folder" if cluster.is_chief else "")
            + f"): waiting up to {args.cluster_timeout} s for the other workers to join."
        )
        return multi_worker_strategy(cluster, timeout=args.cluster_timeout)
    except ClusterError as error:
        raise UsageError(error.option, str(error)) from None


# --- launch ---------------------------------------------------------------------------------


def add_launch_command(commands):
    launch = commands.add_parser(
        "launch",
        help="train on a cluster of worker processes on this machine, restarted after a crash",
        description="Starts N worker processes on this machine that train one model together\n"
        "(MultiWorkerMirroredStrategy over 127.0.0.1), each running\n\n"
        "  rnn-toolkit COMMAND ... --workers 127.0.0.1:P0,...,127.0.0.1:PN-1 --worker-index I\n\n"
        "Worker 0's output is shown as it is; the others' lines are prefixed with [worker I].\n"
        "The machine's cores are shared out: each worker's TensorFlow gets cores/N threads\n"
        "(TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, unless they are set).\n"
        "If a worker dies (killed, out of memory, a lost peer), the others are stopped and all\n"
        "are started again: the run resumes from its last backup. Example:\n\n"
        f"  rnn-toolkit launch --workers 2 -- train {DEFAULT_TASK} --epochs 3\n\n"
        "On several machines, run the train command on each machine yourself with the same\n"
        "--workers list and that machine's --worker-index (README: 'Training on several\n"
        "workers or GPUs').",
        formatter_class=HelpFormatter,
    )
    add_option(launch, "--workers", type=positive_int, default=2, metavar="N", help="worker processes")
    add_option(launch, "--port", type=positive_int, metavar="P", show_default=False,
               help="worker I listens on port P+I (default: free ports chosen at start)")
    add_option(launch, "--max-restarts", type=non_negative_int, default=3, metavar="N",
               help="start the cluster again at most N times after a worker died")
    launch.add_argument("worker_command", nargs="*", metavar="-- COMMAND ...",
                        help=f"the rnn-toolkit command every worker runs (e.g. train {DEFAULT_TASK} ...)")
    launch.set_defaults(handler=_launch, prog=launch.prog, trains=True)


def _launch(args):
    command = list(args.worker_command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command or command[0] != "train":
        raise UsageError("COMMAND", "give the train command the workers run after '--', e.g. "
                         f"'launch --workers 2 -- train {DEFAULT_TASK} --epochs 3'")
    for option in ("--workers", "--worker-index", "--gpus"):
        if any(part == option or part.startswith(option + "=") for part in command):
            raise UsageError(option, "is set by launch for each worker; leave it out of the command")
    ports = _ports(args.port, args.workers)
    workers = ",".join(f"127.0.0.1:{port}" for port in ports)
    restarts = 0
    while True:
        status = _run_cluster(command, workers, args.workers)
        if status in _FINAL_STATUSES or restarts >= args.max_restarts:
            if status not in _FINAL_STATUSES:
                print_line(f"launch: giving up after {restarts} restart(s); rerun the same command to "
                           "resume from the last backup")
            return status
        restarts += 1
        print_line(f"launch: starting the {args.workers} workers again (restart {restarts} of "
                   f"{args.max_restarts}); the run resumes from its last backup")


def _ports(first, count):
    if first is not None:
        if first + count - 1 > 65535:
            raise UsageError("--port", f"{first} + {count} workers runs past port 65535")
        return [first + i for i in range(count)]
    return free_ports(count)


def _run_cluster(command, workers, count):
    """Runs the workers until all end; returns the chief's exit status, or the status of
    the worker that ended the cluster by dying (after stopping the others)."""
    processes = []
    environment = _worker_environment(count)
    for index in range(count):
        argv = [sys.executable, "-m", "rnn_toolkit", *command, "--workers", workers, "--worker-index", str(index)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1, env=environment)
        prefix = "" if index == 0 else f"[worker {index}] "
        threading.Thread(target=_relay, args=(process.stdout, prefix), daemon=True).start()
        processes.append(process)
    try:
        while True:
            for index, process in enumerate(processes):
                status = process.poll()
                if status is not None and status not in _FINAL_STATUSES:
                    print_line(f"launch: worker {index} stopped ({_describe_status(status)}); "
                               "stopping the others")
                    _stop(processes)
                    return status
            if all(process.poll() is not None for process in processes):
                statuses = [process.returncode for process in processes]
                return next((s for s in statuses if s != 0), 0)
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(processes)
        raise


def _worker_environment(count):
    """The workers' environment: unbuffered output, and this machine's cores shared out
    among them. Left alone, each worker's TensorFlow sizes its thread pools for all the
    cores, and N workers oversubscribe them N times (measured on 2 cores with 2 workers:
    1.5x slower steps than with one thread each). Thread counts the user set are kept."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        environment.setdefault(variable, str(max(1, cores // count)))
    return environment


def _relay(stream, prefix):
    for line in stream:
        if _TENSORFLOW_CHATTER.match(line):
            continue
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


# TensorFlow's C++ start-up lines (printed before its log level applies): info and
# warnings go; errors stay.
_TENSORFLOW_CHATTER = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


def _stop(processes):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _describe_status(status):
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class ClusterLost(Exception):
    """Training stopped because the cluster broke (a worker died or stopped answering)."""


@contextlib.contextmanager
def train_on_cluster(strategy):
    """Turns the errors of a broken cluster into `ClusterLost` with what to do next."""
    from rnn_toolkit.runs.distributed import is_chief, is_multi_worker, worker_description

    if strategy is None or not is_multi_worker(strategy):
        yield
        return
    import tensorflow as tf

    from rnn_toolkit.runs.distributed import report_failure

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.InternalError, tf.errors.UnknownError) as error:
        who = worker_description(strategy)
        hint = "" if is_chief(strategy) else " (if worker 0 stopped with an error, its output says why)"
        raise ClusterLost(
            f"{who}: lost the cluster: another worker failed, died or stopped answering{hint}. Start the same "
            "command again on every worker ('rnn-toolkit launch' does this by itself): the run "
            f"resumes from its last backup. TensorFlow said: {tensorflow_reason(error)}"
        ) from None
    except BaseException as error:
        # A bad run folder or option on the chief, a crash anywhere: the others stop now.
        report_failure(strategy, error)
        raise

