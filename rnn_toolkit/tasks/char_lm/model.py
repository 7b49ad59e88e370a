"""Character-level language model: embedding -> recurrent stack -> softmax over characters.

The lecture's many-to-many model: at every step it reads one character and predicts the
next. Text stays in TensorFlow ops from raw string to raw string (the vocabulary is a
layer of the model), and generation runs the shared in-graph decoding loop, so the same
code serves `generate()`, the `SampleText` callback and the exported SavedModel.
"""

import keras
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.vocabulary import CharVocabulary
from rnn_toolkit.decoding import (
    DecodingBuckets,
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    decode,
    get_sampler,
    jit_decoding_enabled,
    sample_logits,
)
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.precision import resolve_dtype_policy
from rnn_toolkit.training.gradient_clipping import GradientClippingModel

# Generation longer than this is clamped: it bounds the work one request can cause in a
# served model (documented in `generate` and in the export signatures).
MAX_GENERATION_LENGTH = 10_000

# The sizes the compiled generation loop is compiled for: batches padded to a power of
# two up to 128, the text buffer to 256, 1,024, 4,096 or 10,000 characters. At most 32
# compilations per traced function (and sampler), each on the first request of its size.
GENERATION_BUCKETS = DecodingBuckets(
    batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), lengths=(256, 1024, 4096, MAX_GENERATION_LENGTH)
)


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class CharLanguageModel(GradientClippingModel):
    """A character language model with `generate()` and `log_prob()`.

    Build it with `build_char_lm()`, which also compiles it. Calling the model maps
    character ids `[batch, time]` to next-character logits `[batch, time, vocab]`
    (float32 whatever the compute precision).

    Args:
        vocabulary: a `rnn_toolkit.data.CharVocabulary`, or its characters (a string or
            list of one-character strings).
        embedding_dim: size of the character embedding.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per recurrent layer.
        num_layers: number of stacked recurrent layers.
        dropout: dropout between recurrent layers and before the output layer.
        dtype_policy: `"auto"` (fastest safe precision for this hardware, see
            `rnn_toolkit.precision`), `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        clip_norm: global gradient-norm clipping threshold (None or 0: off).
        **kwargs: standard `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        vocabulary,
        embedding_dim=64,
        cell="lstm",
        units=512,
        num_layers=1,
        dropout=0.0,
        dtype_policy="auto",
        clip_norm=1.0,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        policy = resolve_dtype_policy(dtype_policy)
        # The model's own policy only tells `compile()` to wrap the optimizer in a
        # LossScaleOptimizer under mixed_float16; each layer gets its policy below.
        super().__init__(clip_norm=clip_norm, dtype=policy, **kwargs)
        if not isinstance(vocabulary, CharVocabulary):
            vocabulary = CharVocabulary(vocabulary)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)

        # === Layers ===
        self.vocabulary = vocabulary
        self.embedding = keras.layers.Embedding(
            vocabulary.size, embedding_dim, name="embedding", dtype=policy
        )
        self.recurrent = RecurrentStack(
            cell, units=units, num_layers=num_layers, dropout=dropout, name="recurrent", dtype=policy
        )
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=policy)
        # float32 logits: a softmax over ~100 classes in bfloat16 loses ~0.01 nats/char.
        self.head = keras.layers.Dense(vocabulary.size, name="logits", dtype="float32")

        # === Config ===
        self.embedding_dim = embedding_dim
        self.cell = self.recurrent.cell
        self.units = units
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.dtype_policy_name = policy
        # An empty prompt is read as a newline (the natural start of a text): the
        # recurrent layers need at least one valid step per row (cuDNN requires it).
        characters = vocabulary.characters
        self.start_character = "\n" if "\n" in characters else characters[0]
        self._carried = _CarriedState()
        self.supports_masking = True

    def build(self, input_shape=None):
        batch, time = (None, None) if input_shape is None else tuple(input_shape)[:2]
        self.embedding.build((batch, time))
        self.recurrent.build((batch, time, self.embedding_dim))
        self.head.build((batch, time, self.units))
        self.built = True

    def call(self, token_ids, initial_state=None, mask=None, training=None, return_state=False):
        """Next-character logits for every position.

        Args:
            token_ids: int `[batch, time]` character ids.
            initial_state: optional recurrent state (see `RecurrentStack`); zeros when
                omitted, or the carried state in truncated-BPTT training.
            mask: optional boolean `[batch, time]`, right-padded.
            training: whether dropout is active.
            return_state: also return the final recurrent state.

        Returns:
            float32 logits `[batch, time, vocab]`, and the state with `return_state`.
        """
        carry = training and initial_state is None and self._carried.variables is not None
        if carry:
            initial_state = self._carried.read()
        embedded = self.embedding(token_ids)
        outputs, states = self.recurrent(
            embedded, initial_state=initial_state, mask=mask, training=training, return_state=True
        )
        if carry:
            self._carried.write(states)
        logits = self.head(self.output_dropout(outputs, training=training))
        if return_state:
            return logits, states
        return logits

    def step(self, token_ids, states):
        """One decoding step: ids `[batch]` and state -> (float32 logits `[batch, vocab]`, state).

        Runs in float32 whatever the training precision (see `RecurrentStack.step`):
        twice as fast as a mixed-precision step inside a decoding loop at batch 1, and
        bfloat16-trained weights score the same held-out loss in float32
        (benchmarks/README.md). The state is float32 too.
        """
        # `Embedding.call` directly: a float32 lookup, no per-step cast of the table.
        embedded = self.embedding.call(token_ids)
        outputs, states = self.recurrent.step(embedded, states, full_precision=True)
        return self.head(outputs), states

    # --- Truncated backpropagation through time -------------------------------------

    def enable_state_carry(self, batch_size):
        """Carries the recurrent state from each training batch to the next.

        For truncated BPTT over `rnn_toolkit.data.consecutive_char_batches`: row b of
        batch i+1 continues row b of batch i, so its initial state is the final state
        of batch i (gradients stop at the batch boundary). Pair with the
        `ResetCarriedState` callback. Evaluation and generation are unaffected.

        Under a distribution strategy, call it inside the strategy's scope with the batch
        size of ONE replica (the global batch divided by the replica count): each replica
        then carries the state of its own rows (the variables are per replica).

        Args:
            batch_size: the fixed batch size of the consecutive pipeline (per replica).
        """
        batch_size = check_positive_int("batch_size", batch_size)
        initial = self.recurrent.get_initial_state(batch_size)
        self._carried.variables = [
            [
                tf.Variable(
                    tf.zeros_like(s), trainable=False,
                    # One copy per replica, written in its training step (no all-reduce).
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
                for s in layer
            ]
            for layer in initial
        ]
        # The traced training step closes over the carry setting: force a retrace.
        self.train_function = None

    def disable_state_carry(self):
        """Back to a zero initial state for every training batch."""
        self._carried.variables = None
        self.train_function = None

    def reset_carried_state(self):
        """Zeroes the carried state (at the start of each epoch)."""
        self._carried.reset()

    # --- Text in, text out ----------------------------------------------------------

    def encode_prompts(self, prompts):
        """Right-padded ids `[batch, time>=1]` and lengths `[batch]` (>= 1) for prompts.

        An empty prompt is read as `start_character`, so no row is all padding.
        """
        prompts = tf.convert_to_tensor(prompts, tf.string)
        prompts = tf.where(tf.equal(tf.strings.length(prompts), 0), self.start_character, prompts)
        ids = self.vocabulary.encode(prompts)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(default_value=self.vocabulary.PADDING_ID)
        # A batch of zero still needs one time step for the recurrent layers.
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])
        return dense, lengths

    def generate_tensors(
        self, prompts, max_length, temperature, top_k, top_p, seed, sampler=None, end_id=None,
        jit_compile=None,
    ):
        """Graph-mode generation: string `[batch]` prompts -> string `[batch]` texts.

        Each text is the prompt followed by up to `max_length` generated characters.
        `max_length` is clamped to `[0, MAX_GENERATION_LENGTH]`. `temperature <= 0`
        means greedy; `top_k <= 0` and `top_p >= 1` turn those filters off; `seed < 0`
        draws a fresh random seed. `sampler`, if given, replaces the parameters.
        `end_id` (a Python int) stops a row at that character id, which is not included.
        `jit_compile` (None: the process setting) runs the decoding loop XLA-compiled,
        at the sizes of `GENERATION_BUCKETS` (see `rnn_toolkit.decoding.compilation`).
        """
        prompts = tf.convert_to_tensor(prompts, tf.string)
        max_length = tf.clip_by_value(tf.cast(max_length, tf.int32), 0, MAX_GENERATION_LENGTH)
        seed = tf.cast(seed, tf.int32)
        seed = tf.where(
            seed < 0, tf.random.uniform([], 0, tf.int32.max, dtype=tf.int32), seed
        )
        ids, lengths = self.encode_prompts(prompts)
        mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        logits, states = self(ids, mask=mask, training=False, return_state=True)
        last_logits = tf.gather(logits, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
        states = tf.nest.map_structure(lambda s: tf.cast(s, tf.float32), states)  # see step()
        if sampler is None:
            def sampler(step_logits, step_seed):
                return sample_logits(
                    step_logits, step_seed, temperature=temperature, top_k=top_k, top_p=top_p
                )
        tokens, _ = decode(
            self.step,
            last_logits,
            states,
            max_length=max_length,
            sampler=sampler,
            seed=tf.stack([seed, 0]),
            forbidden_ids=[self.vocabulary.PADDING_ID, self.vocabulary.UNKNOWN_ID],
            padding_id=self.vocabulary.PADDING_ID,
            end_id=end_id,
            jit_compile=jit_compile,
            buckets=GENERATION_BUCKETS,
        )
        return tf.strings.join([prompts, self.vocabulary.decode(tokens)])

    def generate(
        self,
        prompts,
        max_length=200,
        sampler="temperature",
        seed=None,
        end_character=None,
        **sampler_kwargs,
    ):
        """Continues each prompt by up to `max_length` characters.

        Args:
            prompts: a string or a list of strings (any lengths; may be empty: an empty
                prompt starts as if after a newline).
            max_length: characters to generate (clamped to `[0, MAX_GENERATION_LENGTH]`).
            sampler: `"greedy"`, `"temperature"`, `"top_k"`, `"top_p"`, or a
                `rnn_toolkit.decoding.Sampler`.
            seed: an int for reproducible output (same seed -> same text); None for
                fresh randomness.
            end_character: stop a continuation at this character (e.g. `"\n"` for one
                line); it is not included. None: always `max_length` characters.
            **sampler_kwargs: `temperature`, `top_k`, `top_p` for a named sampler.

        Returns:
            The prompt plus its continuation: a string for a string prompt, else a list.

        Example:

        >>> import rnn_toolkit
        >>> model = rnn_toolkit.build_char_lm("ab\\n", units=4, embedding_dim=2)
        >>> text = model.generate("ab", max_length=5, sampler="greedy")
        >>> text.startswith("ab"), len(text)
        (True, 7)
        """
        single = isinstance(prompts, str)
        batch = _as_string_list(prompts, "prompts")
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise TypeError(f"`max_length` must be an int; received max_length={max_length!r}.")
        parameters, custom = _sampler_parameters(sampler, sampler_kwargs)
        seed = -1 if seed is None else int(seed)
        end_id = None
        if end_character is not None:
            if end_character not in self.vocabulary.characters:
                raise ValueError(
                    f"`end_character` must be one character of the vocabulary; "
                    f"received end_character={end_character!r}."
                )
            end_id = self.vocabulary.characters.index(end_character) + 2
        function = self._generate_function(custom, end_id)
        texts = function(
            tf.constant(batch, tf.string),
            tf.constant(max_length, tf.int32),
            tf.constant(parameters["temperature"], tf.float32),
            tf.constant(parameters["top_k"], tf.int32),
            tf.constant(parameters["top_p"], tf.float32),
            tf.constant(seed, tf.int32),
        )
        texts = [t.decode("utf-8", errors="replace") for t in texts.numpy().tolist()]
        return texts[0] if single else texts

    def _generate_function(self, custom_sampler, end_id):
        # Traced functions live in `__dict__` directly: set as attributes, Keras and
        # SavedModel tracking would walk them. The cache keeps the sampler alive so its
        # id() stays unique.
        cache = self.__dict__.setdefault("_generate_cache", {})
        jit_compile = jit_decoding_enabled()
        key = (id(custom_sampler), end_id, jit_compile)
        if key not in cache:
            signature = [
                tf.TensorSpec([None], tf.string),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
            ]

            @tf.function(input_signature=signature)
            def generate(prompts, max_length, temperature, top_k, top_p, seed):
                return self.generate_tensors(
                    prompts, max_length, temperature, top_k, top_p, seed,
                    sampler=custom_sampler, end_id=end_id, jit_compile=jit_compile,
                )

            cache[key] = (custom_sampler, generate)
        return cache[key][1]

    def log_prob_tensors(self, texts):
        """Graph-mode scoring: string `[batch]` -> (float32 log p `[batch]`, int32 chars `[batch]`).

        `log p` is the natural-log probability of each character after the first given
        the ones before it, summed; `num_chars` counts all characters. Empty and
        one-character texts score 0. Characters unseen in training score as the
        unknown id (a very low probability), undecodable bytes likewise.
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        ids, lengths = self.encode_prompts(texts)
        num_chars = tf.cast(self.vocabulary.encode(texts).row_lengths(), tf.int32)
        # At least one input step per row (cuDNN), at least one column overall.
        ids = tf.pad(ids, [[0, 0], [0, 1]])
        inputs, targets = ids[:, :-1], ids[:, 1:]
        input_mask = tf.sequence_mask(tf.maximum(lengths - 1, 1), tf.shape(inputs)[1])
        target_mask = tf.sequence_mask(num_chars - 1, tf.shape(targets)[1])
        logits = self(inputs, mask=input_mask, training=False)
        log_probs = tf.nn.log_softmax(logits)
        picked = tf.gather(log_probs, targets, axis=2, batch_dims=2)
        log_prob = tf.reduce_sum(tf.where(target_mask, picked, 0.0), axis=1)
        return log_prob, num_chars

    def log_prob(self, texts):
        """Log-probability (nats) of each text; see `log_prob_tensors`.

        Args:
            texts: a string or list of strings.

        Returns:
            `(log_prob, num_chars)` as numpy arrays (scalars for a string input).
        """
        single = isinstance(texts, str)
        batch = _as_string_list(texts, "texts")
        log_prob, num_chars = self._log_prob_function(tf.constant(batch, tf.string))
        log_prob, num_chars = log_prob.numpy(), num_chars.numpy()
        return (log_prob[0], num_chars[0]) if single else (log_prob, num_chars)

    @property
    def _log_prob_function(self):
        if "_log_prob_fn" not in self.__dict__:
            self.__dict__["_log_prob_fn"] = tf.function(
                self.log_prob_tensors, input_signature=[tf.TensorSpec([None], tf.string)]
            )
        return self.__dict__["_log_prob_fn"]

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary.characters,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            dropout=self.dropout,
            dtype_policy=self.dtype_policy_name,
        )
        return config


def build_char_lm(
    vocabulary,
    *,
    embedding_dim=64,
    cell="lstm",
    units=512,
    num_layers=1,
    dropout=0.0,
    learning_rate=2e-3,
    optimizer=None,
    clip_norm=1.0,
    dtype_policy="auto",
    name="char_lm",
):
    """Builds and compiles a character language model.

    Args:
        vocabulary: a `rnn_toolkit.data.CharVocabulary` (e.g. `CharVocabulary.from_text`
            on the training text), or its characters.
        embedding_dim: character embedding size.
        cell: `"rnn"` (vanilla tanh), `"lstm"` or `"gru"`.
        units: hidden units per layer.
        num_layers: stacked recurrent layers.
        dropout: dropout between layers and before the output layer.
        learning_rate: Adam's learning rate (used when `optimizer` is None).
        optimizer: a `keras.optimizers.Optimizer` (or its name) to use instead of Adam,
            e.g. `keras.optimizers.SGD(1.0)` to watch gradients explode without clipping.
        clip_norm: gradient clipping by global norm (None or 0: off). The pre-clip norm
            is logged as `grad_norm` either way.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        name: the model's name.

    Returns:
        A compiled `CharLanguageModel` (loss: sparse categorical cross-entropy on
        logits, in nats per character).

    Example:

    >>> import rnn_toolkit
    >>> vocabulary = rnn_toolkit.data.CharVocabulary.from_text("hello world\\n")
    >>> model = rnn_toolkit.build_char_lm(vocabulary, cell="gru", units=8)
    >>> model.count_params() > 0
    True
    """
    model = CharLanguageModel(
        vocabulary,
        embedding_dim=embedding_dim,
        cell=cell,
        units=units,
        num_layers=num_layers,
        dropout=dropout,
        dtype_policy=dtype_policy,
        clip_norm=clip_norm,
        name=name,
    )
    model.build((None, None))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate) if optimizer is None else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class _CarriedState:
    """Holds the truncated-BPTT state variables out of Keras' and SavedModel's tracking:
    they are training bookkeeping, not weights, and their batch size is fixed."""

    def __init__(self):
        self.variables = None

    def read(self):
        return [[v.value() for v in layer] for layer in self.variables]

    def write(self, states):
        for layer_vars, layer_states in zip(self.variables, states):
            for variable, state in zip(layer_vars, layer_states):
                variable.assign(tf.stop_gradient(tf.cast(state, variable.dtype)))

    def reset(self):
        if self.variables is not None:
            for layer in self.variables:
                for variable in layer:
                    variable.assign(tf.zeros_like(variable))


def _as_string_list(value, name):
    """`value` (a string or a sequence of strings) as a list of strings, or a TypeError."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"`{name}` must be a string or a list of strings; received {value!r:.80}.")


def _sampler_parameters(sampler, sampler_kwargs):
    """Maps a sampler name or built-in sampler to tensor parameters.

    Returns `(parameters, custom)`: `custom` is a user-defined `Sampler` to call as is
    (its own traced function), else None.
    """
    parameters = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
    if isinstance(sampler, str):
        # `generate(..., top_k=5)` reads better than `k=5`; the samplers say k and p.
        renamed = {"top_k": "k", "top_p": "p"}
        sampler = get_sampler(
            sampler, **{renamed.get(key, key): value for key, value in sampler_kwargs.items()}
        )
    elif sampler_kwargs:
        raise ValueError(
            f"Sampler arguments {sorted(sampler_kwargs)} go with a sampler name, not a Sampler object."
        )
    if not isinstance(sampler, Sampler):
        raise TypeError(f"`sampler` must be a name or a rnn_toolkit.decoding.Sampler; received {sampler!r}.")
    config = sampler.get_config()
    if type(sampler) is GreedySampler:
        parameters["temperature"] = 0.0
    elif type(sampler) is TemperatureSampler:
        parameters["temperature"] = float(config["temperature"])
    elif type(sampler) is TopKSampler:
        parameters.update(temperature=float(config["temperature"]), top_k=int(config["k"]))
    elif type(sampler) is TopPSampler:
        parameters.update(temperature=float(config["temperature"]), top_p=float(config["p"]))
    else:
        return parameters, sampler
    return parameters, None
