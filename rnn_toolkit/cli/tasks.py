"""The registry: the tasks the command line knows, one line per task.

Adding a task means adding its folder (`rnn_toolkit/tasks/<task>/` with a `cli.py` that
defines `TASK`, a `TaskCommands`) and one line here; no other file of the command line
changes. This is the only module of `rnn_toolkit.cli` that names a task.
"""

import importlib

TASK_MODULES = {
    "char_lm": "rnn_toolkit.tasks.char_lm.cli",
    "sentiment": "rnn_toolkit.tasks.sentiment.cli",
    "translator": "rnn_toolkit.tasks.translator.cli",
    "captioner": "rnn_toolkit.tasks.captioner.cli",
    "frame_labeller": "rnn_toolkit.tasks.frame_labeller.cli",
}

DEFAULT_TASK = "char_lm"
"""What `train` trains when no task is named (`train --corpus ...` is the char LM's), and
the task of run folders written before run.json recorded one."""


def task_names():
    return tuple(TASK_MODULES)


def get_task(name):
    """The `TaskCommands` of task `name`."""
    return importlib.import_module(TASK_MODULES[name]).TASK


def all_tasks():
    return [get_task(name) for name in TASK_MODULES]
