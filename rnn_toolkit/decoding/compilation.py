"""When and at which sizes the decoding loop runs XLA-compiled.

A decoding step is a few small ops on a few rows: run one by one as TensorFlow kernels,
their dispatch costs more than their arithmetic. Compiled with XLA
(`tf.function(jit_compile=True)`), the whole `tf.while_loop` becomes one fused program;
on a 2-core CPU a GRU-512 character model generates 4x faster at batch 1, and a
translator's beam search of 32 sentences takes half the time (benchmarks/README.md).

XLA compiles one program per input shape, so `decode_with_strategy` never hands it a
request's own sizes: it pads the batch up to the next of `DecodingBuckets.batch_sizes`
and the token buffer up to the next of `DecodingBuckets.lengths` (the loop still stops
at the requested length), and a beam search compiles once per beam width. A server thus
sees at most `len(batch_sizes) * len(lengths)` compilations per signature and beam
width, each on the first request of its bucket (or at warm-up); a request larger than
the largest bucket runs the uncompiled loop, which needs no compilation.

The switch, in order of precedence:

* the `jit_compile` argument of `decode`, `beam_search`, `decode_with_strategy` and of
  the exporters;
* `set_jit_decoding(False)` / `with jit_decoding(False):` in a process;
* the environment variable `RNN_TOOLKIT_JIT_DECODING=0` (for debugging, and for
  platforms without XLA);
* otherwise on.

The setting is read when a function is traced: a model's `generate()` or `translate()`
keeps one traced function per setting, and an exported SavedModel keeps the setting it
was exported with.
"""

import contextlib
import dataclasses
import os

import tensorflow as tf

__all__ = [
    "DecodingBuckets",
    "JIT_ENVIRONMENT_VARIABLE",
    "jit_decoding",
    "jit_decoding_enabled",
    "pad_axis_to_bucket",
    "set_jit_decoding",
]

JIT_ENVIRONMENT_VARIABLE = "RNN_TOOLKIT_JIT_DECODING"

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")
_override = None


def _from_environment():
    value = os.environ.get(JIT_ENVIRONMENT_VARIABLE)
    if value is None or value.strip() == "":
        return True
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(
        f"{JIT_ENVIRONMENT_VARIABLE} must be 1/true/on or 0/false/off; received {value!r}."
    )


def jit_decoding_enabled(jit_compile=None):
    """Whether decoding loops traced now run XLA-compiled.

    Args:
        jit_compile: None (use the process setting), or a bool that overrides it.

    Raises:
        ValueError: if `RNN_TOOLKIT_JIT_DECODING` holds something other than a boolean.
    """
    if jit_compile is not None:
        if not isinstance(jit_compile, bool):
            raise TypeError(f"`jit_compile` must be None or a bool; received {jit_compile!r}.")
        return jit_compile
    if _override is not None:
        return _override
    return _from_environment()


def set_jit_decoding(enabled):
    """Turns compiled decoding on or off for this process (None: back to the environment).

    Functions traced earlier keep their setting: a model's `generate()` traces a new
    function the first time it runs under the other setting.
    """
    global _override
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"`enabled` must be None or a bool; received {enabled!r}.")
    _override = enabled


@contextlib.contextmanager
def jit_decoding(enabled):
    """`with jit_decoding(False): model.generate(...)`: the setting for one block.

    Example:

    >>> with jit_decoding(False):
    ...     jit_decoding_enabled()
    False
    """
    global _override
    previous = _override
    set_jit_decoding(enabled)
    try:
        yield
    finally:
        _override = previous


def _check_sizes(name, sizes):
    sizes = tuple(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"`{name}` must be positive integers; received {name}={sizes!r}.")
    if list(sizes) != sorted(set(sizes)):
        raise ValueError(f"`{name}` must be strictly increasing; received {name}={sizes!r}.")
    return sizes


@dataclasses.dataclass(frozen=True)
class DecodingBuckets:
    """The sizes the compiled decoding loop is compiled for.

    Args:
        batch_sizes: a batch runs padded to the first size at least as large; a larger
            batch runs the uncompiled loop. Powers of two waste at most half the rows.
        lengths: the token buffer's width, padded likewise from `max_length` (the loop
            still stops at `max_length`); a longer request runs uncompiled.
        max_beam_width: beam searches up to this width compile (once per width), wider
            ones run uncompiled.

    Example:

    >>> DecodingBuckets(batch_sizes=(1, 8), lengths=(64,)).compilations()
    2
    """

    batch_sizes: tuple = (1, 2, 4, 8, 16, 32, 64, 128)
    lengths: tuple = (64, 256, 1024)
    max_beam_width: int = 16

    def __post_init__(self):
        object.__setattr__(self, "batch_sizes", _check_sizes("batch_sizes", self.batch_sizes))
        object.__setattr__(self, "lengths", _check_sizes("lengths", self.lengths))
        _check_sizes("max_beam_width", (self.max_beam_width,))

    def compilations(self, beam_widths=1):
        """The most compilations one traced function can cause, for this many beam widths."""
        return len(self.batch_sizes) * len(self.lengths) * beam_widths


def bucket_for(value, sizes):
    """The first of `sizes` (a Python tuple) at least `value` (int32 scalar tensor), or
    the last size when none is (callers check `fits` first)."""
    sizes = tf.constant(sizes, tf.int32)
    fits = sizes >= value
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    return tf.where(tf.reduce_any(fits), tf.gather(sizes, first), sizes[-1])


def pad_axis_to_bucket(tensor, axis, sizes, value=0):
    """Pads `tensor` along `axis` with `value` up to the first of `sizes` at least its
    length; a longer axis is left as it is.

    For inputs of the compiled region whose size is not the batch, such as a
    translator's source length: bucketing them bounds the number of compilations.

    Example:

    >>> pad_axis_to_bucket(tf.ones([2, 5], tf.int32), 1, (4, 8)).shape
    TensorShape([2, 8])
    """
    tensor = tf.convert_to_tensor(tensor)
    length = tf.shape(tensor)[axis]
    target = tf.maximum(bucket_for(length, sizes), length)
    paddings = tf.scatter_nd([[axis]], [[0, 1]], [tensor.shape.rank, 2]) * (target - length)
    return tf.pad(tensor, paddings, constant_values=value)
