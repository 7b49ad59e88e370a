"""Samplers: how one decoding step turns logits into token ids.

A sampler sees one step's logits `[batch, vocab]` and a stateless seed and returns one
token id per row. It knows nothing of the decoding loop (`rnn_toolkit.decoding.decode`),
which owns the model state, the step counter and end-of-sequence bookkeeping.

Everything here is built on `sample_logits`, whose parameters may be Python numbers or
scalar tensors. Tensors are what an exported SavedModel receives in its signature, so the
same function serves a notebook (`TopKSampler(k=5)`) and a serving signature
(`sample_logits(logits, seed, temperature=temperature_tensor, top_k=k_tensor)`).
Python numbers are resolved while tracing, so a plain greedy or top-k sampler carries no
`tf.cond` for options it does not use.
"""

import keras
import tensorflow as tf

__all__ = [
    "sample_logits",
    "Sampler",
    "GreedySampler",
    "TemperatureSampler",
    "TopKSampler",
    "TopPSampler",
    "get_sampler",
]


def _mix(h):
    """The 32-bit finalizer of MurmurHash3 on uint32 tensors: every input bit flips each
    output bit with probability about 1/2."""

    def xor_shift(h, bits):
        return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(bits, tf.uint32)))

    h = xor_shift(h, 16) * tf.constant(0x85EBCA6B, tf.uint32)
    h = xor_shift(h, 13) * tf.constant(0xC2B2AE35, tf.uint32)
    return xor_shift(h, 16)


# 2**32 / golden ratio: keeps a zero seed and a zero index from hashing alike.
_GOLDEN = 0x9E3779B9


def _as_uint32(tensor):
    return tf.bitcast(tf.cast(tensor, tf.int32), tf.uint32)


def hash_seed(seed, value):
    """A new int32 `[2]` seed from `seed` (`[2]`) and an int32 scalar `value`, by hashing.

    What the decoding loop uses to give every step its own seed. Unlike
    `tf.random.experimental.stateless_fold_in`, it is plain integer arithmetic, which XLA
    computes exactly as TensorFlow's kernels do.
    """
    seed = _as_uint32(seed)
    value = _as_uint32(value)
    first = _mix(tf.bitwise.bitwise_xor(seed[0], _mix(value + _GOLDEN)))
    second = _mix(tf.bitwise.bitwise_xor(seed[1], _mix(first + value)))
    return tf.bitcast(tf.stack([first, second]), tf.int32)


def uniform_noise(seed, shape):
    """Floats in (0, 1), one per element of `shape`, from a stateless seed `[2]`.

    Element `i` (in row-major order) is a hash of `(seed, i)`, so the same seed gives
    the same numbers in an XLA-compiled function and in an ordinary one (TensorFlow's
    stateless random ops do not: XLA has its own generator), and row `r` of a
    `[batch, n]` draw does not depend on how many rows follow it. The 24 high bits of
    the hash make the mantissa; the values are centred in their bins, so neither 0 nor
    1 occurs.

    Example:

    >>> noise = uniform_noise(tf.constant([1, 2]), [2, 3])
    >>> bool(tf.reduce_all((noise > 0) & (noise < 1)))
    True
    """
    seed = _as_uint32(seed)
    index = _as_uint32(tf.reshape(tf.range(tf.reduce_prod(shape)), shape))
    key = _mix(tf.bitwise.bitwise_xor(seed[0], _mix(seed[1] + _GOLDEN)))
    bits = tf.bitwise.right_shift(_mix(tf.bitwise.bitwise_xor(index, key)), tf.constant(8, tf.uint32))
    return (tf.cast(bits, tf.float32) + 0.5) / float(1 << 24)


def _cond_on(value, predicate, true_fn, false_fn):
    """`tf.cond` on `predicate(value)`, decided in Python when `value` is known.

    Python numbers and constants are resolved while tracing, so a sampler built with
    plain numbers carries no `tf.cond` (and no sort) for the options it does not use.
    """
    static = tf.get_static_value(value)
    if static is not None:
        return true_fn() if predicate(static) else false_fn()
    return tf.cond(predicate(value), true_fn, false_fn)


def _keep_top_k(logits, k):
    """Sets every logit below the k-th largest of its row to -inf.

    Logits tied with the k-th largest are kept, so a row may keep more than k tokens
    when there are ties; the tie-free case is exactly top-k.
    """
    # A static vocabulary size lets a Python `k` decide the branch while tracing.
    vocab_size = logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]

    def mask():
        if tf.get_static_value(k) is not None:
            kth_largest = tf.math.top_k(logits, k=tf.minimum(k, vocab_size)).values[:, -1:]
        else:
            # XLA needs top_k's `k` at compile time; a tensor `k` (a serving input) picks
            # the same value from a full sort instead.
            in_order = tf.sort(logits, axis=-1, direction="DESCENDING")
            kth_largest = tf.gather(in_order, [tf.minimum(k, vocab_size) - 1], axis=-1)
        return tf.where(logits < kth_largest, tf.constant(-float("inf")), logits)

    # k <= 0 is "off" and k >= vocab keeps everything: skip the sort in both cases.
    k_and_vocab = tf.stack([k, vocab_size])
    return _cond_on(k_and_vocab, lambda kv: (kv[0] <= 0) | (kv[0] >= kv[1]), lambda: logits, mask)


def _keep_top_p(logits, p):
    """Keeps the smallest set of most likely tokens whose probability reaches `p`.

    The most likely token is always kept, even for `p <= 0`. As with top-k, tokens tied
    with the least likely kept one are kept too.
    """

    def mask():
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        mass_before = tf.math.cumsum(tf.nn.softmax(sorted_logits), axis=-1, exclusive=True)
        is_first = tf.range(tf.shape(logits)[-1]) == 0
        keep = (mass_before < p) | is_first
        # The smallest kept logit is the threshold; mapping it back avoids inverting
        # the sort permutation.
        threshold = tf.reduce_min(
            tf.where(keep, sorted_logits, tf.constant(float("inf"))), axis=-1, keepdims=True
        )
        return tf.where(logits < threshold, tf.constant(-float("inf")), logits)

    return _cond_on(p, lambda p: p >= 1.0, lambda: logits, mask)


def sample_logits(logits, seed, *, temperature=1.0, top_k=0, top_p=1.0):
    """Draws one token id per row from logits, with temperature, top-k and top-p.

    The options apply in the usual order: logits are divided by `temperature`, then
    top-k and then top-p (nucleus) filtering keep the most likely tokens, and one id is
    drawn from what is left by the Gumbel-max trick with `uniform_noise`, which gives the
    same draws inside an XLA-compiled loop and outside it. Every option may be
    a Python number or a scalar tensor (for example an input of a SavedModel signature);
    Python numbers are resolved while tracing, tensors through `tf.cond`, so the result
    is the same either way.

    Args:
        logits: float tensor `[batch, vocab]`, any float dtype (cast to float32 first,
            so bfloat16 / float16 logits from a mixed-precision model are fine). Logits of
            -inf are never drawn.
        seed: int32 or int64 tensor of shape `[2]`, the stateless seed. The same logits
            and seed always give the same ids.
        temperature: float. `<= 0` means greedy (argmax), decided per call, so a tensor
            temperature of 0 turns a serving signature greedy. Values below 1 sharpen the
            distribution, values above 1 flatten it.
        top_k: int. Keep only the `top_k` most likely tokens; `<= 0` turns this off and a
            value above the vocabulary size keeps the whole vocabulary.
        top_p: float. Keep the smallest set of most likely tokens whose probability
            (after temperature) reaches `top_p`; the most likely token is always kept.
            `>= 1` turns this off.

    Returns:
        int32 tensor `[batch]` of token ids.

    Example:

    >>> logits = tf.constant([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    >>> sample_logits(logits, seed=[1, 2], temperature=0.0).numpy()
    array([1, 0], dtype=int32)
    >>> sample_logits(logits, seed=[1, 2], top_k=1).numpy()
    array([1, 0], dtype=int32)
    """
    logits = tf.cast(logits, tf.float32)
    seed = tf.convert_to_tensor(seed)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)

    def greedy():
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def sample():
        # Shifting by the row maximum first keeps a tiny temperature from overflowing
        # to +inf (inf - inf would be NaN); softmax is unchanged by the shift.
        shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
        scaled = _keep_top_p(_keep_top_k(shifted / temperature, top_k), top_p)
        # The Gumbel-max trick: argmax(logits + Gumbel noise) is a draw from
        # softmax(logits). The noise comes from integer hashing (`uniform_noise`), which
        # XLA and TensorFlow's kernels compute bit for bit alike, so a compiled decoding
        # loop draws what the uncompiled one draws.
        gumbel = -tf.math.log(-tf.math.log(uniform_noise(seed, tf.shape(scaled))))
        return tf.argmax(scaled + gumbel, axis=-1, output_type=tf.int32)

    return _cond_on(temperature, lambda t: t <= 0.0, greedy, sample)


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class Sampler:
    """Base class: picks the next token of every row from one step's logits.

    A subclass overrides one method, `get_next_token(logits, seed)`; calling the
    sampler casts the logits to float32 and the result to int32 around it. Subclasses
    store their constructor arguments and return them from `get_config()`, so a sampler
    can be serialized with `keras.saving.serialize_keras_object` (for example inside a
    callback's config).

    Samplers are stateless: the randomness comes from the `seed` argument, which the
    decoding loop derives per step from one user seed, so generation is reproducible.

    Example:

    >>> class LeastLikelySampler(rnn_toolkit.decoding.Sampler):
    ...     def get_next_token(self, logits, seed):
    ...         return tf.argmin(logits, axis=-1)
    >>> LeastLikelySampler()(tf.constant([[0.0, 3.0, 1.0]]), seed=[0, 0]).numpy()
    array([0], dtype=int32)
    """

    def __call__(self, logits, seed):
        """Returns int32 token ids `[batch]` for float `logits` `[batch, vocab]`."""
        logits = tf.cast(logits, tf.float32)
        return tf.cast(self.get_next_token(logits, tf.convert_to_tensor(seed)), tf.int32)

    def get_next_token(self, logits, seed):
        """Picks one token id per row.

        Args:
            logits: float32 tensor `[batch, vocab]`.
            seed: int32 or int64 tensor `[2]`, a stateless seed for this step.

        Returns:
            Integer tensor `[batch]` of token ids.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `get_next_token(logits, seed)`."
        )

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class GreedySampler(Sampler):
    """Always picks the most likely token (argmax); the seed is ignored.

    Example:

    >>> rnn_toolkit.decoding.GreedySampler()(tf.constant([[0.0, 3.0, 1.0]]), [0, 0]).numpy()
    array([1], dtype=int32)
    """

    def get_next_token(self, logits, seed):
        return sample_logits(logits, seed, temperature=0.0)


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class TemperatureSampler(Sampler):
    """Draws from the whole distribution, sharpened or flattened by a temperature.

    Args:
        temperature: float or scalar tensor. Below 1 favours likely tokens, above 1
            flattens the distribution, `<= 0` is greedy.

    Example:

    >>> sampler = rnn_toolkit.decoding.TemperatureSampler(temperature=0.7)
    >>> sampler(tf.zeros([2, 5]), seed=[1, 2]).shape
    TensorShape([2])
    """

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def get_next_token(self, logits, seed):
        return sample_logits(logits, seed, temperature=self.temperature)

    def get_config(self):
        return {"temperature": self.temperature}


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class TopKSampler(Sampler):
    """Draws from the `k` most likely tokens only.

    Args:
        k: int or scalar tensor, how many tokens stay candidates (clamped to the
            vocabulary size). A Python `k` must be at least 1; `k=1` is greedy.
        temperature: float or scalar tensor, applied before the top-k cut.

    Example:

    >>> sampler = rnn_toolkit.decoding.TopKSampler(k=2)
    >>> int(sampler(tf.constant([[5.0, 4.0, -9.0]]), seed=[1, 2])[0]) in (0, 1)
    True
    """

    def __init__(self, k=10, temperature=1.0):
        if isinstance(k, bool) or (isinstance(k, int) and k < 1):
            raise ValueError(f"`k` must be a positive integer; received k={k!r}.")
        self.k = k
        self.temperature = temperature

    def get_next_token(self, logits, seed):
        return sample_logits(logits, seed, temperature=self.temperature, top_k=self.k)

    def get_config(self):
        return {"k": self.k, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class TopPSampler(Sampler):
    """Nucleus sampling: draws from the most likely tokens that together reach `p`.

    Args:
        p: float or scalar tensor in (0, 1]: the probability mass to keep. The most
            likely token is always a candidate; `p=1` keeps the whole vocabulary.
        temperature: float or scalar tensor, applied before the nucleus is chosen.

    Example:

    >>> sampler = rnn_toolkit.decoding.TopPSampler(p=0.5)
    >>> sampler(tf.math.log([[0.7, 0.2, 0.1]]), seed=[1, 2]).numpy()
    array([0], dtype=int32)
    """

    def __init__(self, p=0.9, temperature=1.0):
        if isinstance(p, (int, float)) and not 0.0 < p <= 1.0:
            raise ValueError(f"`p` must be in (0, 1]; received p={p!r}.")
        self.p = p
        self.temperature = temperature

    def get_next_token(self, logits, seed):
        return sample_logits(logits, seed, temperature=self.temperature, top_p=self.p)

    def get_config(self):
        return {"p": self.p, "temperature": self.temperature}


_SAMPLERS = {
    "greedy": GreedySampler,
    "temperature": TemperatureSampler,
    "random": TemperatureSampler,
    "top_k": TopKSampler,
    "top_p": TopPSampler,
}


def get_sampler(identifier, **kwargs):
    """Returns a `Sampler` from a name, a serialized config or an instance.

    Args:
        identifier: a name (`"greedy"`, `"temperature"` or its alias `"random"`,
            `"top_k"`, `"top_p"`), a dict produced by
            `keras.saving.serialize_keras_object(sampler)`, or a `Sampler`, which is
            returned unchanged.
        **kwargs: constructor arguments for a sampler given by name (for example
            `k=5, temperature=0.8` for `"top_k"`). They are not applied to an instance
            or a config, which already carry their own.

    Returns:
        A `Sampler`.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
        TypeError: for an identifier of another type, or arguments the named sampler
            does not take.

    Example:

    >>> rnn_toolkit.decoding.get_sampler("top_k", k=5)
    TopKSampler(k=5, temperature=1.0)
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, dict):
        sampler = keras.saving.deserialize_keras_object(identifier)
        if not isinstance(sampler, Sampler):
            raise TypeError(f"The config does not describe a Sampler: {identifier!r}.")
        return sampler
    if isinstance(identifier, str):
        name = identifier.lower()
        if name not in _SAMPLERS:
            raise ValueError(
                f"Unknown sampler {identifier!r}; valid names are {sorted(_SAMPLERS)}, "
                "or pass a `rnn_toolkit.decoding.Sampler` instance."
            )
        return _SAMPLERS[name](**kwargs)
    raise TypeError(
        "`identifier` must be a sampler name, a serialized sampler config or a "
        f"`rnn_toolkit.decoding.Sampler`; received {identifier!r}."
    )


SAMPLING_OPTIONS = ("temperature", "top_k", "top_p")


def sampling_function(sampler, **options):
    """A `(logits, seed) -> ids` function for a sampler named with keyword options, as a
    generator's `sampler="top_k", top_k=5` arguments give it; None for None (a generator's
    default search).

    Args:
        sampler: None, `"greedy"`, `"temperature"`, `"top_k"` or `"top_p"`.
        **options: `temperature`, `top_k`, `top_p` (see `sample_logits`).

    Raises:
        ValueError: for another name or other options.

    Example:

    >>> import tensorflow as tf
    >>> pick = sampling_function("greedy")
    >>> pick(tf.constant([[0.1, 2.0, 0.3]]), tf.constant([0, 0])).numpy().tolist()
    [1]
    """
    if sampler is None:
        return None
    unknown = sorted(set(options) - set(SAMPLING_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown sampler arguments {unknown}; expected {', '.join(SAMPLING_OPTIONS)}.")
    if sampler == "greedy":
        options["temperature"] = 0.0
    elif sampler not in SAMPLING_OPTIONS:
        raise ValueError(
            "`sampler` must be None (the generator's search), 'greedy', 'temperature', 'top_k' "
            f"or 'top_p'; received sampler={sampler!r}."
        )

    def sample(logits, seed):
        return sample_logits(logits, seed, **options)

    return sample

