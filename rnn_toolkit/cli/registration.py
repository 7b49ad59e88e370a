"""What a task registers with the command line: `TaskCommands`.

Each task folder's `cli.py` defines one `TaskCommands` named `TASK`; the registry
(`rnn_toolkit.cli.tasks`) lists those modules, one line per task. The generic verbs
(`train`, `export`, `evaluate`) need nothing else from a task, and a task's own verbs
(`sample`, `predict`, `translate`, ...) come with it.

Imports from rnn_toolkit: nothing (only the standard library).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class VerbOption:
    """An option of a generic verb (`export`, `evaluate`) that only some tasks read.

    Every task's options are added to the verb's parser (an option several tasks declare
    once, with each task's help); once the model's task is known, an option given for a
    task that does not declare it is refused.
    """

    flags: tuple
    help: str
    kwargs: dict = dataclasses.field(default_factory=dict)

    @property
    def dest(self):
        return self.kwargs.get("dest") or self.flags[0].lstrip("-").replace("-", "_")


@dataclasses.dataclass(frozen=True)
class Verb:
    """A task's own command: `add_arguments(parser)` fills its parser, `handler(args)` runs it.

    `trains`: the command trains a run (an interrupt then says how to resume).
    """

    name: str
    help: str
    description: str
    add_arguments: object
    handler: object
    trains: bool = False


@dataclasses.dataclass(frozen=True)
class TaskCommands:
    """A task's registration with the command line.

    Attributes:
        name: the task's name (`train NAME`, run.json's `"task"`, the export folder).
        summary: a few words on what it trains, for the help.
        description: what `train NAME` does and writes, for its help.
        config: the run-config dataclass (a `rnn_toolkit.runs.TrainingConfig`).
        train: `(config, run_dir, *, overwrite, print_fn) -> (model, info)`.
        train_options: `rnn_toolkit.cli.options.TrainOption`s of the task's own fields.
        option_help: config field -> the task's help of a shared train option.
        prepare_config: `(config) -> config` before training (e.g. data paths made
            absolute); raises `UsageError` or `RunSetupError`.
        recognizes: `(loaded SavedModel) -> bool`: whether an export is this task's.
        signatures: how its exports are recognised, for messages ("'classify'").
        export: `(model, run_info, args) -> path`: writes the SavedModel (args has
            base_dir, name, version, overwrite and the task's `export_options`).
        export_options, evaluate_options: `VerbOption`s the task reads.
        export_help: the task's signatures, for `export --help`.
        evaluate: `(args, source) -> None`: scores a model (see `ModelSource`).
        evaluate_help: what `evaluate` reports for this task.
        evaluates_without_model: `(args) -> bool`: the options ask for a scoring that
            trains its own models (cross-validation), so no trained model is loaded.
        verbs: the task's own commands.
    """

    name: str
    summary: str
    description: str
    config: type
    train: object
    export: object
    evaluate: object
    recognizes: object
    signatures: str
    train_options: tuple = ()
    option_help: dict = dataclasses.field(default_factory=dict)
    prepare_config: object = None
    export_options: tuple = ()
    export_help: str = ""
    evaluate_options: tuple = ()
    evaluate_help: str = ""
    evaluates_without_model: object = None
    verbs: tuple = ()


@dataclasses.dataclass
class ModelSource:
    """What `evaluate` hands a task: the model to score, from a run or a SavedModel.

    `model` is the run's Keras model (None for a SavedModel, or when the task scores
    without one); `loaded` and `saved_path` are the SavedModel's; `info` is the run's
    run.json (None without a run).
    """

    model: object = None
    loaded: object = None
    saved_path: object = None
    info: dict | None = None
