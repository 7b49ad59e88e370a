"""Training on several workers (`rnn_toolkit.runs.distributed`, `train --workers`, `launch`).

The cluster tests start real worker processes on 127.0.0.1, each bounded in time.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_usage_error, run_cli
from tiny_data import write_tiny_corpus

from rnn_toolkit.runs.distributed import Cluster, ClusterError, check_port_free, cluster_from_options, free_ports

TESTS = Path(__file__).parent
WORKER_SCRIPT = TESTS / "distributed_worker.py"


def worker_environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


_STARTED = []


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """Kills what a test started (with the workers a launcher started) if it failed midway."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start(argv, log):
    # A session of its own: the teardown kills a launcher's workers with it.
    process = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
                               env=worker_environment(), start_new_session=True)
    _STARTED.append(process)
    return process


def finish(processes, timeout=240):
    deadline = time.monotonic() + timeout
    return [process.wait(max(1, deadline - time.monotonic())) for process in processes]


# --- The cluster, from the options or TF_CONFIG ---------------------------------------------


def test_the_cluster_from_the_options():
    cluster = cluster_from_options("127.0.0.1:2000,node2:2001", 1, environ={})
    assert cluster == Cluster(("127.0.0.1:2000", "node2:2001"), 1)
    assert not cluster.is_chief and cluster.size == 2 and cluster.address == "node2:2001"
    assert cluster.tf_config() == {"cluster": {"worker": ["127.0.0.1:2000", "node2:2001"]},
                                   "task": {"type": "worker", "index": 1}}
    assert cluster_from_options(environ={}) is None


def test_the_cluster_from_tf_config_puts_the_chief_first():
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 1}}
    cluster = cluster_from_options(environ={"TF_CONFIG": json.dumps(config)})
    assert cluster == Cluster(("a:1", "b:2", "c:3"), 2)
    config["task"] = {"type": "chief", "index": 0}
    assert cluster_from_options(environ={"TF_CONFIG": json.dumps(config)}).is_chief
    # The options win over TF_CONFIG.
    assert cluster_from_options("x:1,y:2", 0, environ={"TF_CONFIG": json.dumps(config)}).workers == ("x:1", "y:2")


@pytest.mark.parametrize(
    "workers, index, option, words",
    [
        ("127.0.0.1:2000,127.0.0.1:2001", 2, "--worker-index", "expected 0 to 1"),
        ("127.0.0.1:2000,127.0.0.1:2001", None, "--worker-index", "is needed with --workers"),
        (None, 0, "--worker-index", "needs --workers"),
        ("127.0.0.1,127.0.0.1:2001", 0, "--workers", "is not host:port"),
        ("127.0.0.1:2000,127.0.0.1:99999", 0, "--workers", "is not host:port"),
        ("127.0.0.1:2000,127.0.0.1:2000", 0, "--workers", "more than once"),
    ],
)
def test_a_misdescribed_cluster_names_its_option(workers, index, option, words):
    with pytest.raises(ClusterError, match=words) as caught:
        cluster_from_options(workers, index, environ={})
    assert caught.value.option == option


@pytest.mark.parametrize(
    "tf_config, words",
    [
        ("{not json", "could not read it"),
        ('{"cluster": {"worker": ["a:1"]}}', "could not read it"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
         "no parameter servers"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}', "is not 'chief' or 'worker'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "expected 0 to 0"),
    ],
)
def test_a_bad_tf_config_is_refused(tf_config, words):
    with pytest.raises(ClusterError, match=words) as caught:
        cluster_from_options(environ={"TF_CONFIG": tf_config})
    assert caught.value.option == "TF_CONFIG"


def test_a_port_in_use_is_found_before_tensorflow_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ClusterError, match=f"port {port} of worker 0 .* is in use"):
            check_port_free(Cluster((f"127.0.0.1:{port}", "127.0.0.1:1"), 0))
    check_port_free(Cluster((f"127.0.0.1:{port}", "127.0.0.1:1"), 0))  # free again


def test_the_command_line_refuses_a_bad_cluster_at_once(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus.txt")
    train = ["train", "char_lm", "--corpus", corpus, "--run-dir", tmp_path / "run"]
    assert_usage_error(run_cli([*train, "--workers", "127.0.0.1:2000,127.0.0.1:2001", "--worker-index", "2"]),
                       "--worker-index")
    assert_usage_error(run_cli([*train, "--workers", "127.0.0.1:2000,127.0.0.1:2001", "--gpus", "all",
                                "--worker-index", "0"]), "--gpus")
    assert not (tmp_path / "run").exists()


def test_gpus_without_a_gpu_says_so(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus.txt")
    status, _, err = run_cli(["train", "char_lm", "--corpus", corpus, "--run-dir", tmp_path / "run", "--gpus", "all"])
    assert status == 2 and "--gpus" in err and "sees no GPU" in err


def test_launch_needs_a_train_command_and_sets_the_cluster_itself():
    assert_usage_error(run_cli(["launch", "--workers", "2"]), "COMMAND")
    assert_usage_error(run_cli(["launch", "--", "evaluate"]), "COMMAND")
    assert_usage_error(run_cli(["launch", "--", "train", "char_lm", "--worker-index", "1"]), "--worker-index")


# --- Real clusters on 127.0.0.1 -------------------------------------------------------------


def test_two_workers_train_the_model_one_process_trains(tmp_path):
    """2 workers with `fit_on_workers` against 1 process with Keras' `fit`, on the same global
    batches (8, the last of each epoch 4), with clipping that bites: the same weights, the
    same history (the pre-clip gradient norm included), whether the number of batches is
    known or not; close in mixed_float16; and each example once per epoch."""
    workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    runs = {
        mode: start([sys.executable, str(WORKER_SCRIPT), str(tmp_path / f"{mode}.json"), mode, workers],
                    tmp_path / f"{mode}.log")
        for mode in ("single", "0", "1")
    }
    statuses = finish(list(runs.values()))
    results = {}
    for mode, status in zip(runs, statuses):
        assert status == 0, (tmp_path / f"{mode}.log").read_text()[-3000:]
        results[mode] = json.loads((tmp_path / f"{mode}.json").read_text())
    single, first, second = results["single"], results["0"], results["1"]
    assert (single["replicas"], first["replicas"]) == (1, 2)

    # Against one process on data whose number of batches is known: on the same data of
    # unknown number, Keras 3.15's `fit` takes one phantom optimizer step at the end of each
    # epoch (the step that finds the end of the data still counts; 12 steps, not 10).
    one = single["known"]
    for cardinality in ("known", "unknown"):  # the number of batches per pass
        workers = (first[cardinality], second[cardinality])
        for a, b, c in zip(one["weights"], workers[0]["weights"], workers[1]["weights"]):
            assert np.array_equal(b, c)  # the workers' copies are the same model
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert one["steps"] == workers[0]["steps"] == 10  # 5 batches a pass, 2 passes
        assert one["history"].keys() == workers[0]["history"].keys() >= {"loss", "grad_norm", "accuracy"}
        for name, values in one["history"].items():
            np.testing.assert_allclose(workers[0]["history"][name], values, rtol=1e-5)
        assert min(one["history"]["grad_norm"]) > 0.05  # clipping at 0.05 did act
    # Mixed precision: the loss-scale optimizer, its scale and its finiteness check. Half
    # batches round differently in float16 than whole ones, and Adam turns tiny gradient
    # differences into step-sized ones: close, not equal.
    one, workers = single["mixed_float16"], (first["mixed_float16"], second["mixed_float16"])
    assert one["steps"] == workers[0]["steps"] == 10  # no step skipped for a non-finite gradient
    for a, b, c in zip(one["weights"], workers[0]["weights"], workers[1]["weights"]):
        assert np.array_equal(b, c)
        np.testing.assert_allclose(a, b, rtol=0, atol=0.05)
    for name in ("loss", "grad_norm"):
        np.testing.assert_allclose(workers[0]["history"][name], one["history"][name], rtol=1e-2)

    # Sharding: each worker keeps its half of every global batch; together they see every
    # example exactly once per epoch, in the order one process sees them.
    for epoch, order in enumerate(single["ids"]):
        mine, theirs = first["ids"][epoch], second["ids"][epoch]
        assert sorted(mine + theirs) == list(range(36)) and not set(mine) & set(theirs)
        batches = [order[start:start + 8] for start in range(0, 36, 8)]
        assert mine == sum((b[:len(b) // 2] for b in batches), [])
        assert theirs == sum((b[len(b) // 2:] for b in batches), [])
    assert single["ids"][0] != single["ids"][1]  # the pipeline did reshuffle between epochs


def _char_lm_command(tmp_path, *extra):
    corpus = write_tiny_corpus(tmp_path / "corpus.txt", lines=600)
    return ["train", "char_lm", "--corpus", str(corpus), "--run-dir", str(tmp_path / "run"),
            "--units", "8", "--embedding-dim", "4", "--sequence-length", "20", "--batch-size", "8",
            "--steps-per-epoch", "30", "--validation-steps", "1", "--sample-every", "0",
            "--precision", "float32", "--backup-every", "10", *extra]


def _wait_for_epochs(history, count, processes, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if history.is_file() and len(history.read_text().strip().splitlines()) > count:
            return
        assert all(p.poll() is None for p in processes), "a worker ended early"
        time.sleep(0.2)
    raise AssertionError(f"no {count} epochs in {timeout} s")


def test_a_killed_worker_stops_the_others_and_the_rerun_resumes_from_the_backup(tmp_path):
    workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    command = [sys.executable, "-m", "rnn_toolkit", *_char_lm_command(tmp_path, "--epochs", "8"),
               "--workers", workers, "--cluster-timeout", "30"]
    logs = [tmp_path / "chief.log", tmp_path / "worker.log"]
    chief, worker = (start([*command, "--worker-index", str(i)], logs[i]) for i in (0, 1))
    history = tmp_path / "run" / "history.csv"
    _wait_for_epochs(history, 2, [chief, worker])
    worker.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert finish([chief], timeout=60) == [1]
    assert time.monotonic() - killed_at < 60
    chief_log = logs[0].read_text()
    assert "worker 0 of 2: lost the cluster: another worker failed, died" in chief_log and "resumes from its last backup" in chief_log
    finished_epochs = len(history.read_text().strip().splitlines()) - 1
    assert (tmp_path / "run" / "backup").is_dir() and not (tmp_path / "run" / "model.keras").exists()

    # The same command on both workers again: the run resumes, no finished epoch is lost.
    processes = [start([*command, "--worker-index", str(i)], tmp_path / f"rerun{i}.log") for i in (0, 1)]
    assert finish(processes) == [0, 0], (tmp_path / "rerun0.log").read_text()[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "finished" and info["epochs_completed"] == 8
    assert info["resumed_from_epoch"] >= finished_epochs >= 2
    assert "Resuming the interrupted run" in (tmp_path / "rerun0.log").read_text()
    epochs = [int(line.split(",")[0]) for line in history.read_text().strip().splitlines()[1:]]
    assert sorted(set(epochs)) == list(range(8))
    assert info["distribution"]["replicas"] == 2 and len(info["distribution"]["workers"]) == 2
    # Only the chief wrote: the run folder holds what one process writes.
    assert not (tmp_path / "run" / "backup").exists()
    assert "model.keras" in os.listdir(tmp_path / "run")


def test_launch_restarts_the_cluster_after_a_worker_is_killed(tmp_path):
    command = [sys.executable, "-m", "rnn_toolkit", "launch", "--workers", "2", "--",
               *_char_lm_command(tmp_path, "--epochs", "4", "--cluster-timeout", "30")]
    launcher = start(command, tmp_path / "launch.log")
    _wait_for_epochs(tmp_path / "run" / "history.csv", 2, [launcher])
    subprocess.run(["pkill", "-9", "-f", "--", f"--run-dir {tmp_path / 'run'} .*--worker-index 1"], check=True)
    assert finish([launcher]) == [0], (tmp_path / "launch.log").read_text()[-3000:]
    log = (tmp_path / "launch.log").read_text()
    assert "launch: worker 1 stopped (killed by SIGKILL)" in log and "restart 1 of 3" in log
    assert "[worker 1] Worker 1 of 2" in log and "[worker 1] I0000" not in log  # TensorFlow's chatter filtered
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "finished" and info["resumed_from_epoch"] >= 2


def test_a_worker_whose_peers_never_come_gives_up_in_bounded_time(tmp_path):
    workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    started = time.monotonic()
    process = start([sys.executable, "-m", "rnn_toolkit", *_char_lm_command(tmp_path), "--workers", workers,
                     "--worker-index", "0", "--cluster-timeout", "3"], tmp_path / "alone.log")
    assert finish([process], timeout=90) == [2]
    assert time.monotonic() - started < 90
    log = (tmp_path / "alone.log").read_text()
    assert "--workers: the cluster did not assemble" in log and "worker 1" in log, log[-2000:]
    assert not (tmp_path / "run").exists()


def test_a_chief_that_cannot_start_stops_the_other_workers_with_its_reason(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes(b"")  # a finished run: the chief refuses it
    workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    command = [sys.executable, "-m", "rnn_toolkit", *_char_lm_command(tmp_path), "--workers", workers]
    processes = [start([*command, "--worker-index", str(i)], tmp_path / f"{i}.log") for i in (0, 1)]
    assert finish(processes, timeout=120) == [2, 1]
    assert "--run-dir: " in (tmp_path / "0.log").read_text()
    worker_log = (tmp_path / "1.log").read_text()
    assert "worker 1 of 2: lost the cluster" in worker_log
    assert "worker 0 of 2 failed: RunSetupError: " in worker_log and "already holds a finished run" in worker_log


MIRRORED_TBPTT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from rnn_toolkit.tasks.char_lm.run import CharLMRunConfig, train_char_lm_run
config = CharLMRunConfig(corpus=sys.argv[1], units=8, embedding_dim=4, sequence_length=20, batch_size=8,
                         steps_per_epoch=3, validation_steps=1, sample_every=0, precision="float32",
                         epochs=2, tbptt=True)
losses = {}
for name, strategy in (("one", None), ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    _, info = train_char_lm_run(config, sys.argv[2] + name, strategy=strategy, verbose=0, print_fn=lambda *a: None)
    losses[name] = json.load(open(sys.argv[2] + name + "/history.json"))["loss"]
    losses[name + "_replicas"] = info.get("distribution", {}).get("replicas", 1)
print(json.dumps(losses))
"""


def test_truncated_bptt_carries_each_replicas_rows_under_mirrored_strategy(tmp_path):
    """Two replicas (logical CPUs, as two GPUs under --gpus) each carry the state of their
    half of every batch: the losses are those of one device."""
    corpus = write_tiny_corpus(tmp_path / "corpus.txt")
    result = subprocess.run([sys.executable, "-c", MIRRORED_TBPTT, str(corpus), str(tmp_path / "run-")],
                            capture_output=True, text=True, timeout=300, env=worker_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert (losses["one_replicas"], losses["mirrored_replicas"]) == (1, 2)
    np.testing.assert_allclose(losses["mirrored"], losses["one"], rtol=1e-5)
