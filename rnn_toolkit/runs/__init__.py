"""Training runs: the run folder, the settings every task shares, and the one driver.

`train_run(task, config, run_dir)` trains any task (a `TaskRun`) in a resumable run
folder; `RunFolder` names its files; `load_run_model` reads a finished one back.
`multi_worker_strategy(Cluster(...))` passed as `strategy=` trains it on several worker
processes (`rnn_toolkit.runs.distributed`).

Imports from rnn_toolkit: arguments, data, training, runs, version. Never a task, the command
line or export: tasks plug into the driver, not the other way round.
"""

from rnn_toolkit.runs.config import TrainingConfig, config_from_settings
from rnn_toolkit.runs.distributed import (
    Cluster,
    ClusterError,
    cluster_from_options,
    fit_on_workers,
    local_gpu_strategy,
    multi_worker_strategy,
)
from rnn_toolkit.runs.driver import FitData, Run, TaskRun, progress_verbosity, train_run
from rnn_toolkit.runs.tables import format_table
from rnn_toolkit.runs.folder import (
    EpochBackupAndRestore,
    RunFolder,
    RunSetupError,
    TrainingClock,
    load_run_model,
    next_free_run_dir,
    prepare_run_folder,
    read_history,
    run_callbacks,
    save_model_atomically,
)

__all__ = [
    "Cluster",
    "ClusterError",
    "cluster_from_options",
    "fit_on_workers",
    "local_gpu_strategy",
    "multi_worker_strategy",
    "EpochBackupAndRestore",
    "FitData",
    "Run",
    "RunFolder",
    "RunSetupError",
    "TaskRun",
    "TrainingClock",
    "TrainingConfig",
    "config_from_settings",
    "format_table",
    "load_run_model",
    "next_free_run_dir",
    "prepare_run_folder",
    "progress_verbosity",
    "read_history",
    "run_callbacks",
    "save_model_atomically",
    "train_run",
]
