"""The tasks: one folder each, holding everything that is the task's own.

    tasks/<task>/
        model.py    the Keras model and its `build_<task>()` (compiled, ready for `fit`)
        run.py      its run config and `TaskRun` (data, model, callbacks, scoring) for the
                    shared training driver, `rnn_toolkit.runs.train_run`
        export.py   `export_<task>()`: the SavedModel that takes raw inputs, returns raw outputs
        client.py   a deployer's client of that SavedModel, using TensorFlow alone
        cli.py      its registration with the command line (`TASK`, a `TaskCommands`)

A new task is a new folder plus one line in `rnn_toolkit.cli.tasks`.

Imports from rnn_toolkit: arguments, precision, version, data, layers, decoding, training,
metrics, runs, saved_model, cli (and the task's own folder). A task never imports another
task; only its `cli.py` imports `rnn_toolkit.cli`; its `client.py` imports nothing from
rnn_toolkit (a deployer copies that one file).
"""
