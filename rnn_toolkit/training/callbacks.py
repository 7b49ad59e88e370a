"""Keras callbacks shared by every builder: sampling and scoring generations during training,
clip-norm schedules, early stopping that survives a kill, and the state reset that truncated
backpropagation through time needs at each epoch."""

import json
import os
import pathlib

import keras

from rnn_toolkit.data.cache import write_atomically


class SampleText(keras.callbacks.Callback):
    """Prints what the model generates from fixed prompts every `every` epochs.

    Watching samples improve is the most direct check that a generative model learns.
    The model must have a `generate(prompts, max_length=..., sampler=..., seed=...)`
    method (the char language model, the translator and the captioner do). Generation
    runs in graph through the shared decoding loop, so this costs a fraction of an epoch.

    Args:
        prompts: a string or list of strings to continue (or translate, or image paths to
            caption), or encoded image bytes (a captioner's images without files).
        every: sample after every `every`-th epoch (and never when 0).
        max_length: characters (or tokens) to generate per prompt.
        sampler: a sampler name (`"greedy"`, `"temperature"`, `"top_k"`, `"top_p"`) or a
            `rnn_toolkit.decoding.Sampler`.
        seed: fixed seed, so successive epochs are compared on the same random draws;
            `None` draws fresh randomness each time.
        print_fn: where the samples go (`print` by default; pass a logger's method).
        input_name: what the printed heading calls an input (`"prompt"`; a translator's
            run says `"source"`).
        **sampler_kwargs: `temperature`, `top_k`, `top_p` for the named sampler.

    Attributes:
        samples: list of `(epoch, prompt, text)` tuples, one per prompt and sampling,
            for notebooks that want to show the progression afterwards.
    """

    def __init__(
        self,
        prompts,
        every=1,
        max_length=200,
        sampler="temperature",
        seed=0,
        print_fn=print,
        input_name="prompt",
        **sampler_kwargs,
    ):
        super().__init__()
        self.prompts = [prompts] if isinstance(prompts, (str, bytes)) else list(prompts)
        if not self.prompts or not all(isinstance(p, (str, bytes)) for p in self.prompts):
            raise ValueError(
                "`prompts` must be a string (a prompt, a sentence, an image path), encoded image "
                f"bytes, or a non-empty list of them; received {_shown(prompts)}."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"`every` must be an integer >= 0; received every={every!r}.")
        self.every = every
        self.max_length = max_length
        self.sampler = sampler
        self.seed = seed
        self.print_fn = print_fn
        self.input_name = input_name
        self.sampler_kwargs = sampler_kwargs
        self.samples = []

    def on_epoch_end(self, epoch, logs=None):
        if not self.every or (epoch + 1) % self.every:
            return
        texts = self.model.generate(
            self.prompts,
            max_length=self.max_length,
            sampler=self.sampler,
            seed=self.seed,
            **self.sampler_kwargs,
        )
        for prompt, text in zip(self.prompts, texts):
            self.samples.append((epoch + 1, prompt, text))
            self.print_fn(
                f"\n--- sample after epoch {epoch + 1}, {self.input_name} {_shown(prompt)} ---\n{text}\n"
            )


def _shown(value):
    """How a heading or an error shows an input: encoded image bytes by their size."""
    if isinstance(value, bytes):
        return f"<{len(value):,}-byte image>"
    if isinstance(value, (list, tuple)) and any(isinstance(v, bytes) for v in value):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


class ScoreGenerations(keras.callbacks.Callback):
    """Scores what the model generates for fixed inputs after each epoch, into the logs.

    For a generative model the validation loss is a poor guide to what it generates: on a
    captioner's held-out concepts it rises (confident wrong words cost much) while its
    captions still improve. This callback decodes `inputs` with `model.generate` and adds
    the scores of `score_fn` to the epoch's logs (e.g. `val_cider_d`), where
    `KeepBestWeights`, the history and TensorBoard find them; list it before them.

    Args:
        inputs: what `model.generate` takes (prompts, sentences, images or features).
        references: what `score_fn` compares the generations with.
        score_fn: `(generations, references) -> dict` of scores (float values are logged,
            other values ignored), e.g. `rnn_toolkit.metrics.caption_scores`.
        prefix: put before each score's name in the logs.
        **generate_kwargs: passed to `model.generate` (default: greedy decoding).
    """

    def __init__(self, inputs, references, score_fn, prefix="val_", **generate_kwargs):
        super().__init__()
        self.inputs, self.references, self.score_fn = inputs, references, score_fn
        self.prefix = prefix
        self.generate_kwargs = {"sampler": "greedy", **generate_kwargs}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        generations = self.model.generate(self.inputs, **self.generate_kwargs)
        for name, value in self.score_fn(generations, self.references).items():
            # Scores only: counts (ints) such as the number of images are not logged.
            if isinstance(value, float):
                logs[self.prefix + name] = value


class ClipNormSchedule(keras.callbacks.Callback):
    """Sets the model's gradient clipping threshold from a schedule.

    Works with models built on `GradientClippingModel` (every `build_*` of this
    toolkit). The threshold lives in a variable, so changing it takes effect at the next
    step without retracing.

    Args:
        schedule: a function `epoch -> threshold` (0-based epoch; `None` or 0 turns
            clipping off), or a dict `{epoch: threshold}` applied from that epoch on.
        verbose: print each change.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if isinstance(schedule, dict):
            steps = sorted(schedule.items())
            if not steps:
                raise ValueError("`schedule` must not be an empty dict.")

            def schedule(epoch, _steps=steps):
                value = None
                for start, threshold in _steps:
                    if epoch >= start:
                        value = threshold
                return value

        if not callable(schedule):
            raise ValueError(
                f"`schedule` must be a callable epoch -> threshold or a dict; received {schedule!r}."
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model, "clip_norm"):
            raise TypeError(
                "ClipNormSchedule needs a model with a `clip_norm` attribute "
                "(a rnn_toolkit GradientClippingModel)."
            )
        previous = self.model.clip_norm
        self.model.clip_norm = self.schedule(epoch)
        if self.verbose and previous != self.model.clip_norm:
            print(f"\nEpoch {epoch + 1}: clip_norm {previous:g} -> {self.model.clip_norm:g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["clip_norm"] = self.model.clip_norm


class ResetCarriedState(keras.callbacks.Callback):
    """Zeroes a model's carried recurrent state at the start of each epoch.

    With truncated BPTT over consecutive batches, the state carried from the last batch
    of an epoch belongs to the end of the corpus; the next epoch starts at its beginning.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_carried_state()


class KeepBestWeights(keras.callbacks.Callback):
    """Early stopping that survives a killed run: keeps the best epoch's weights on disk.

    After every epoch, if `monitor` improved, the weights are saved to `path` and the
    best value and epoch to `path` + `.json`. Training stops once `patience` epochs have
    passed without improvement, and at the end the best weights are loaded back. Because
    the record lives on disk, a run resumed after a kill still knows its best epoch
    (Keras' `EarlyStopping(restore_best_weights=True)` keeps it in memory only).

    Args:
        path: where the best weights go (must end in `.weights.h5`).
        monitor: the logged metric to watch, e.g. `"val_accuracy"`.
        mode: `"max"` or `"min"`.
        patience: epochs without improvement before stopping (None: never stop early).
    """

    def __init__(self, path, monitor="val_loss", mode="min", patience=None):
        super().__init__()
        path = str(path)
        if not path.endswith(".weights.h5"):
            raise ValueError(f"`path` must end in '.weights.h5'; received path={path!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; received mode={mode!r}.")
        self.path, self.monitor, self.mode, self.patience = path, monitor, mode, patience
        self.best, self.best_epoch = None, None

    @property
    def _record(self):
        return pathlib.Path(self.path + ".json")

    def on_train_begin(self, logs=None):
        if self._record.is_file():
            record = json.loads(self._record.read_text())
            self.best, self.best_epoch = record["best"], record["epoch"]

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"KeepBestWeights watches {self.monitor!r}, which the logs do not have "
                f"(they have {sorted(logs or {})}); is there validation data?"
            )
        if self._improved(float(value)):
            self.best, self.best_epoch = float(value), int(epoch)
            partial = self.path[: -len(".weights.h5")] + ".partial.weights.h5"
            self.model.save_weights(partial, overwrite=True)
            os.replace(partial, self.path)
            write_atomically(self._record, json.dumps({"best": self.best, "epoch": self.best_epoch}))
        elif self.patience is not None and epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_epoch is not None and os.path.exists(self.path):
            self.model.load_weights(self.path)
