"""Keras callbacks shared by every builder: sampling during training, clip-norm schedules,
and the state reset that truncated backpropagation through time needs at each epoch."""

import keras


class SampleText(keras.callbacks.Callback):
    """Prints what the model generates from fixed prompts every `every` epochs.

    Watching samples improve is the most direct check that a generative model learns.
    The model must have a `generate(prompts, max_length=..., sampler=..., seed=...)`
    method (the char language model, the translator and the captioner do). Generation
    runs in graph through the shared decoding loop, so this costs a fraction of an epoch.

    Args:
        prompts: a string or list of strings to continue.
        every: sample after every `every`-th epoch (and never when 0).
        max_length: characters (or tokens) to generate per prompt.
        sampler: a sampler name (`"greedy"`, `"temperature"`, `"top_k"`, `"top_p"`) or a
            `rnn_toolkit.decoding.Sampler`.
        seed: fixed seed, so successive epochs are compared on the same random draws;
            `None` draws fresh randomness each time.
        print_fn: where the samples go (`print` by default; pass a logger's method).
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
        **sampler_kwargs,
    ):
        super().__init__()
        self.prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not self.prompts or not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(f"`prompts` must be a string or a non-empty list of strings; received {prompts!r}.")
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"`every` must be an integer >= 0; received every={every!r}.")
        self.every = every
        self.max_length = max_length
        self.sampler = sampler
        self.seed = seed
        self.print_fn = print_fn
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
            self.print_fn(f"\n--- sample after epoch {epoch + 1}, prompt {prompt!r} ---\n{text}\n")


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
