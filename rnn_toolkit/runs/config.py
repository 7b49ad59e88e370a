"""The settings every training run has, whatever its task.

A task's run config subclasses `TrainingConfig`, adds its own fields and may give a
shared field another default (a translator trains 12 epochs, a char LM 10). The
dataclass is the single definition of a run: command-line options parse to None and the
dataclass supplies every default, and `run.json` stores `dataclasses.asdict(config)`.
"""

import dataclasses


@dataclasses.dataclass
class TrainingConfig:
    """Fields the shared training driver (`rnn_toolkit.runs.train_run`) reads."""

    epochs: int = 10  # at most (tasks with early stopping often end sooner)
    batch_size: int = 64  # examples per training step
    learning_rate: float = 2e-3  # Adam
    clip_norm: float = 1.0  # global gradient-norm clipping (0: off); the pre-clip norm is logged
    precision: str = "auto"  # "auto", "float32", "mixed_bfloat16", "mixed_float16"
    seed: int = 0  # seeds Python, NumPy, TensorFlow and the data pipelines
    backup_every: int = 100  # steps between backups (plus one at every epoch end)


def config_from_settings(config_class, info):
    """A `config_class` from run.json's `settings` (`info`; None gives the defaults).

    Settings the class no longer has are ignored, and fields it gained since the run
    was written take their defaults, so old run folders keep loading.
    """
    fields = {field.name for field in dataclasses.fields(config_class)}
    settings = (info or {}).get("settings", {})
    return config_class(**{key: value for key, value in settings.items() if key in fields})
