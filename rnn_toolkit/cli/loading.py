"""Reading models for the command line: run folders, SavedModels, and which task each is;
a SavedModel's beam-search signature called like the Keras model's decoding method.

Imports from rnn_toolkit: runs, cli (the registry finds a SavedModel's task by asking
each task whether it recognises the export).
"""

import sys
from pathlib import Path

from rnn_toolkit.cli.options import UsageError, print_line
from rnn_toolkit.cli.tasks import DEFAULT_TASK, all_tasks, get_task, task_names
from rnn_toolkit.runs import RunFolder, RunSetupError, load_run_model


def run_task(info):
    """The task of a run.json (runs from before the "task" field: the default task)."""
    return (info or {}).get("task", DEFAULT_TASK)


def existing_folder(path, option):
    path = Path(path)
    if not path.is_dir():
        raise UsageError(option, f"no such folder: {str(path)!r}")
    return path


def holds_saved_model(path):
    """Whether `path` is a SavedModel version folder or a model folder of numbered versions."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return True
    return any(p.name.isdigit() and (p / "saved_model.pb").is_file() for p in path.iterdir())


def read_run_info(run_dir, option="--run-dir"):
    info = RunFolder(run_dir).read_run_info()
    if info is None:
        raise UsageError(option, f"{str(run_dir)!r} holds no run.json")
    return info


def load_run(run_dir, *, task=None, command, option="--run-dir"):
    """`(model, run_info)` of a finished run; a run of another task than `task` is refused."""
    try:
        model, info = load_run_model(run_dir)
    except RunSetupError as error:
        raise UsageError(option, str(error)) from None
    found = run_task(info)
    if task is not None and found != task:
        raise UsageError(
            option, f"{str(run_dir)!r} holds a {found} run; '{command}' needs a {task} run "
            f"(train one with 'rnn-toolkit train {task}')",
        )
    return model, info


def signature_takes(loaded, name, input_key):
    """Whether the loaded SavedModel has the signature `name` and it takes `input_key`."""
    if name not in loaded.signatures:
        return False
    _, inputs = loaded.signatures[name].structured_input_signature
    return input_key in inputs


def saved_model_task(loaded):
    """The name of the task whose export `loaded` is, or None."""
    for task in all_tasks():
        if task.recognizes(loaded):
            return task.name
    return None


def load_saved_model(path, *, task=None, command, option="--saved-model"):
    """Loads a SavedModel version folder, or the highest version inside a model folder.

    Returns:
        `(version_path, loaded, task_name)`; an export of another task than `task` is
        refused.
    """
    import tensorflow as tf

    path = existing_folder(path, option)
    if not (path / "saved_model.pb").is_file():
        versions = sorted(
            int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
        )
        if not versions:
            raise UsageError(
                option,
                f"{str(path)!r} is neither a SavedModel folder (with saved_model.pb) nor a "
                "model folder holding numbered versions",
            )
        path = path / str(versions[-1])
        # Status on stderr: stdout holds only a command's results (e.g. JSON lines).
        print(f"Using the highest version, {path}", file=sys.stderr, flush=True)
    loaded = tf.saved_model.load(str(path))
    found = saved_model_task(loaded)
    if found is None:
        known = [f"a {name} export ({get_task(name).signatures})" for name in task_names()]
        raise UsageError(
            option,
            f"{str(path)!r} has signatures {sorted(loaded.signatures)}: neither "
            + ", ".join(known[:-1]) + " nor " + known[-1],
        )
    if task is not None and found != task:
        raise UsageError(option, f"{str(path)!r} is a {found} export; '{command}' needs a {task} export")
    return path, loaded, found


def print_signatures(path):
    """Lists a SavedModel's signatures, inputs and outputs (like `saved_model_cli show`)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    print_line(f"Signatures of {path}:")
    for name in sorted(loaded.signatures):
        function = loaded.signatures[name]
        _, inputs = function.structured_input_signature
        print_line(f"  {name}")
        for label, specs in (("input ", inputs), ("output", function.structured_outputs)):
            for key in sorted(specs):
                spec = specs[key]
                shape = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
                print_line(f"    {label} {key}: {spec.dtype.name} {shape}")


def beam_search_signature(loaded, name, *, input_key, output_key, batch_size, default_beam_width, read=None):
    """A function like a sequence model's decoding method (`translate`, `caption`) that calls
    the SavedModel's signature `name`: `input_key` (strings), `beam_width` and `max_length`
    in, `output_key` strings out, `batch_size` inputs per call.

    The function takes the inputs, `beam_width` (default: `default_beam_width`),
    `max_length` (None: the model's default) and `sampler`: "greedy" is beam search of
    width 1, the signature's only other search; further keywords are ignored. `read`, if
    given, turns each input into the string the signature takes (e.g. a path into its bytes).
    """
    import tensorflow as tf

    signature = loaded.signatures[name]

    def decode(inputs, *, beam_width=default_beam_width, max_length=None, sampler=None, **_):
        width = 1 if sampler == "greedy" else beam_width
        outputs = []
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            if read is not None:
                batch = [read(item) for item in batch]
            result = signature(
                **{input_key: tf.constant(batch, tf.string)},
                beam_width=tf.constant(width, tf.int32),
                max_length=tf.constant(max_length or 0, tf.int32),
            )
            texts = result[output_key].numpy().tolist()
            outputs += [text.decode("utf-8", errors="replace") for text in texts]
        return outputs

    return decode
