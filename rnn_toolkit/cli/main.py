"""The `rnn-toolkit` command line (also `python -m rnn_toolkit`).

    rnn-toolkit train [TASK] [options]       train a task's model in a run folder (resumable);
                                             without TASK, the default task
    rnn-toolkit export [options]             write a run's model as a versioned SavedModel
    rnn-toolkit evaluate [MODEL] [options]   score a run's model or a SavedModel
    rnn-toolkit launch --workers N -- train ...   train on N worker processes of this machine
    rnn-toolkit COMMAND ...                  each task's own commands (sample, predict,
                                             translate, demo, ...)

`export` and `evaluate` follow the task their run folder's run.json records (or, for a
SavedModel, its signatures). The tasks come from the registry (`rnn_toolkit.cli.tasks`);
nothing here names one.

Mistakes in the command line (a bad number, a missing corpus or run folder, an option of
another task) end with one line on stderr naming the option, and exit status 2.

Imports from rnn_toolkit: cli, runs.
"""

import os

# Before anything imports TensorFlow: hide its C++ INFO and WARNING lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from rnn_toolkit.cli import loading  # noqa: E402
from rnn_toolkit.cli.distribution import (  # noqa: E402
    ClusterLost,
    add_distribution_options,
    add_launch_command,
    strategy_from_args,
    train_on_cluster,
)
from rnn_toolkit.cli.options import (  # noqa: E402
    PROG,
    HelpFormatter,
    Parser,
    UsageError,
    add_model_source,
    add_option,
    add_training_options,
    config_from_args,
    option_for_setting,
    positive_int,
    print_line,
)
from rnn_toolkit.cli.registration import ModelSource  # noqa: E402
from rnn_toolkit.cli.tasks import DEFAULT_TASK, all_tasks, get_task, task_names  # noqa: E402
from rnn_toolkit.runs import RunSetupError  # noqa: E402


def build_parser():
    """The `rnn-toolkit` argument parser with all its subcommands."""
    tasks = all_tasks()
    listing = "; ".join(f"{task.name} ({task.summary})" for task in tasks)
    parser = Parser(
        prog=PROG,
        description="Recurrent neural networks with Keras 3 and TensorFlow: train, export and "
        f"evaluate models from the command line, and use them. Tasks: {listing}.",
        epilog="Run 'rnn-toolkit COMMAND --help' for a command's options, and "
        "'rnn-toolkit train TASK --help' for a task's training options.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(commands, tasks)
    _add_export(commands, tasks)
    _add_evaluate(commands, tasks)
    add_launch_command(commands)
    for task in tasks:
        for verb in task.verbs:
            sub = commands.add_parser(
                verb.name, help=verb.help, description=verb.description, formatter_class=HelpFormatter
            )
            verb.add_arguments(sub)
            sub.set_defaults(handler=verb.handler, prog=sub.prog, trains=verb.trains)
            sub.set_defaults(task=task.name)
    return parser


def _add_train(commands, tasks):
    names = ", ".join(task.name for task in tasks)
    train = commands.add_parser(
        "train",
        help=f"train a model in a run folder (resumable): {names}",
        description="Trains a model and saves it with its settings, history and held-out "
        "results in a run folder:\n\n"
        "  model.keras  run.json  history.csv  history.json  logs/ (TensorBoard)\n\n"
        "plus each task's own files. The training state is backed up every --backup-every\n"
        "steps: if the run is killed, the same command resumes it. A folder holding a\n"
        "finished run is never replaced without --overwrite. Progress shows as bars on a\n"
        "terminal and as one line per epoch in a file or a pipe.\n\n"
        f"Without TASK, 'train' trains {DEFAULT_TASK} ('rnn-toolkit train --corpus FILE' is\n"
        f"'rnn-toolkit train {DEFAULT_TASK} --corpus FILE'). Each task's options:\n"
        "'rnn-toolkit train TASK --help'.",
        formatter_class=HelpFormatter,
    )
    by_task = train.add_subparsers(
        dest="task", metavar="TASK", required=True, help=f"what to train (default: {DEFAULT_TASK})"
    )
    for task in tasks:
        sub = by_task.add_parser(
            task.name, help=task.summary, description=task.description,
            formatter_class=HelpFormatter,
        )
        add_training_options(sub, task, run_dir_help=f"run folder (default: runs/{task.name})")
        add_distribution_options(sub)
        sub.set_defaults(handler=_train, prog=sub.prog, trains=True)


def _add_export(commands, tasks):
    export = commands.add_parser(
        "export",
        help="export a run's model as a SavedModel",
        description="Writes a run's model as a SavedModel in the TF Serving layout "
        "<base-dir>/<name>/<version>/, taking raw inputs and returning raw outputs, and "
        "lists its signatures:\n" + "\n".join(f"  {task.name}: {task.export_help}" for task in tasks),
        formatter_class=HelpFormatter,
    )
    add_option(export, "--run-dir", default=f"runs/{DEFAULT_TASK}", metavar="DIR",
               help="the run folder holding model.keras (its run.json says the task; each task "
               "trains in runs/<task> by default)")
    add_option(export, "--base-dir", default="saved_models", metavar="DIR", help="model base folder")
    add_option(export, "--name", show_default=False,
               help="the model's folder name (default: the run's task)")
    add_option(export, "--version", type=positive_int, metavar="N", show_default=False,
               help="version number (default: one more than the highest existing)")
    add_option(export, "--overwrite", action="store_true", help="replace an existing version")
    _add_task_options(export, tasks, "export_options")
    export.set_defaults(handler=_export, prog=export.prog)


def _add_evaluate(commands, tasks):
    evaluate = commands.add_parser(
        "evaluate",
        help="score a model on held-out data, with its task's measures",
        description="Scores a model on held-out data, following the task of its run (run.json) "
        "or SavedModel (signatures).\n\n"
        + "\n\n".join(f"{task.name}: {task.evaluate_help}" for task in tasks),
        formatter_class=HelpFormatter,
    )
    evaluate.add_argument(
        "model", nargs="?", metavar="MODEL",
        help="a run folder (as --run-dir) or an exported SavedModel (as --saved-model), told "
        "apart by what the folder holds",
    )
    add_model_source(
        evaluate,
        run_dir_help="a run folder: its model.keras is scored unless --saved-model is given, and "
        "its run.json supplies the data and split (default: runs/"
        f"{DEFAULT_TASK} without --saved-model)",
        example=DEFAULT_TASK,
    )
    options = evaluate.add_argument_group("data options (every task)")
    add_option(options, "--split", choices=("heldout", "all"), show_default=False,
               help="score the held-out split made as in training or all of the data (default: "
               "heldout for the run's own data)")
    add_option(options, "--batch-size", type=positive_int, metavar="N", show_default=False,
               help="examples per batch (default: the run's, or the task's)")
    _add_task_options(evaluate, tasks, "evaluate_options")
    evaluate.set_defaults(handler=_evaluate, prog=evaluate.prog)


def _add_task_options(parser, tasks, kind):
    """Adds the `kind` options ("export_options", "evaluate_options") of every task, once
    per flag; records which tasks read each (`task_options` in the parsed arguments)."""
    declared = {}
    for task in tasks:
        for spec in getattr(task, kind):
            declared.setdefault(spec.flags, []).append((task, spec))
    readers = {}
    for flags, entries in declared.items():
        names = [task.name for task, _ in entries]
        if len(entries) == 1:
            help = f"{names[0]}: {entries[0][1].help}"
        else:
            help = "; ".join(f"{task.name}: {spec.help}" for task, spec in entries)
        group = parser.add_argument_group(f"{' and '.join(names)} options")
        group.add_argument(*flags, help=help, **entries[0][1].kwargs)
        readers[flags[0]] = (entries[0][1].dest, tuple(names))
    parser.set_defaults(task_options=readers)


def _refuse_other_tasks_options(args, task):
    for option, (dest, tasks) in args.task_options.items():
        if task not in tasks and getattr(args, dest) not in (None, False):
            raise UsageError(option, f"applies to {' and '.join(tasks)} models; this is a {task} model")


def parse_args(argv):
    """`(parser, args, extras)`: `argv` parsed, with `train` without a task read as the
    default task's (`train --corpus FILE` trains the char LM, as it always has)."""
    argv = list(argv)
    parser = build_parser()
    if argv[:1] == ["train"] and (len(argv) == 1 or argv[1] not in task_names() + ("-h", "--help")):
        argv.insert(1, DEFAULT_TASK)
    args, extras = parser.parse_known_args(argv)
    return parser, args, extras


def main(argv=None):
    """Runs the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"] and len(argv) > 1 and not argv[1].startswith("-") and argv[1] not in task_names():
        return _usage_failure(
            f"{PROG} train", "TASK", f"unknown task {argv[1]!r}; the tasks are {', '.join(task_names())}"
        )
    parser, args, extras = parse_args(argv)
    if extras:
        return _unknown_arguments(parser, args, extras)
    try:
        return args.handler(args) or 0
    except UsageError as error:
        return _usage_failure(args.prog, error.option, str(error))
    except RunSetupError as error:
        return _usage_failure(args.prog, option_for_setting(args, error.setting), str(error))
    except ClusterLost as error:
        print(f"{args.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume from the last backup" if getattr(args, "trains", False) else ""
        print(f"\n{args.prog}: interrupted{hint}", file=sys.stderr)
        return 130


def _unknown_arguments(parser, args, extras):
    """An unknown option; for `train`, say which task takes it if another one does."""
    flag = next((extra.split("=")[0] for extra in extras if extra.startswith("-")), None)
    if args.command == "train" and flag:
        takers = {}
        for task in all_tasks():
            if task.name != args.task and (strings := _option_strings(task, flag)):
                takers[task.name] = strings
        if takers:
            return _usage_failure(
                args.prog, "/".join(next(iter(takers.values()))),
                f"is a {' and '.join(takers)} option; 'train {args.task}' does not take it "
                f"(see '{PROG} train {next(iter(takers))} --help')",
            )
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def _option_strings(task, flag):
    """All spellings of `task`'s train option `flag` (e.g. --bidirectional/--no-bidirectional)."""
    probe = Parser(prog="probe", add_help=False)
    add_training_options(probe, task, run_dir_help="")
    for action in probe._actions:
        if flag in action.option_strings:
            return action.option_strings
    return None


def _usage_failure(prog, option, message):
    print(f"{prog}: error: {option}: {message}", file=sys.stderr)
    return 2


# --- The generic verbs ----------------------------------------------------------------------


def _train(args):
    task = get_task(args.task)
    config = config_from_args(args, task.config)
    if task.prepare_config is not None:
        config = task.prepare_config(config)
    # Before TensorFlow runs anything: a cluster's strategy configures the runtime.
    strategy = strategy_from_args(args)
    with train_on_cluster(strategy):
        task.train(config, args.run_dir or f"runs/{task.name}", overwrite=args.overwrite,
                   print_fn=print_line, strategy=strategy)


def _export(args):
    model, info = loading.load_run(args.run_dir, command="export")
    task = get_task(loading.run_task(info))
    _refuse_other_tasks_options(args, task.name)
    args.name = args.name or task.name
    try:
        path = task.export(model, info, args)
    except FileExistsError:
        raise UsageError(
            "--version",
            f"{str(Path(args.base_dir) / args.name / str(args.version))!r} already exists; "
            "pass --overwrite to replace it or choose another version",
        ) from None
    print_line(f"Exported {path}")
    loading.print_signatures(path)


def _evaluate(args):
    _model_argument(args)
    source = ModelSource()
    if args.saved_model:
        source.saved_path, source.loaded, task = loading.load_saved_model(args.saved_model, command="evaluate")
        if args.run_dir:
            source.info = loading.read_run_info(args.run_dir)
            if loading.run_task(source.info) != task:
                raise UsageError(
                    "--run-dir",
                    f"{args.run_dir!r} holds a {loading.run_task(source.info)} run, but the "
                    f"SavedModel is a {task} model",
                )
    else:
        # A scoring that trains its own models (cross-validation) needs a run's settings at most.
        without_model = [t.name for t in all_tasks() if t.evaluates_without_model and t.evaluates_without_model(args)]
        if without_model:
            source.info = loading.read_run_info(args.run_dir) if args.run_dir else None
            task = loading.run_task(source.info) if source.info else without_model[0]
        else:
            source.model, source.info = loading.load_run(args.run_dir or f"runs/{DEFAULT_TASK}", command="evaluate")
            task = loading.run_task(source.info)
    _refuse_other_tasks_options(args, task)
    get_task(task).evaluate(args, source)


def _model_argument(args):
    """Takes evaluate's MODEL argument as --saved-model or --run-dir, by what it holds."""
    if args.model is None:
        return
    path = loading.existing_folder(args.model, "MODEL")
    dest = "saved_model" if loading.holds_saved_model(path) else "run_dir"
    if getattr(args, dest):
        option = "--" + dest.replace("_", "-")
        kind = "SavedModel" if dest == "saved_model" else "run folder"
        raise UsageError("MODEL", f"{args.model!r} is a {kind}, and {option} names another; give one of them")
    setattr(args, dest, args.model)


__all__ = ["build_parser", "main", "parse_args"]
