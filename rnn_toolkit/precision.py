"""Choosing the numeric precision that the hardware runs fastest without hurting the loss.

On a GPU, `mixed_float16` runs the recurrent kernels on tensor cores; on a CPU with
AVX512-BF16 or AMX (recent Xeon / EPYC), `mixed_bfloat16` lets oneDNN use the bfloat16
dot-product instructions, measured here at ~1.6x the float32 training throughput of an
LSTM 512 language model (see `benchmarks/char_lm_training_throughput.py`). Variables stay
in float32 in both cases; only the computation is in 16 bits.
"""

import functools

import tensorflow as tf

POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_supports_bfloat16():
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def default_dtype_policy():
    """The fastest safe policy here: `mixed_float16` on a GPU, `mixed_bfloat16` on a
    CPU with bfloat16 instructions, `float32` otherwise."""
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if cpu_supports_bfloat16():
        return "mixed_bfloat16"
    return "float32"


def resolve_dtype_policy(dtype_policy):
    """Turns `"auto"` (or None) into a concrete policy name; checks the others."""
    if dtype_policy is None or dtype_policy == "auto":
        return default_dtype_policy()
    if dtype_policy not in POLICIES:
        raise ValueError(
            f"`dtype_policy` must be one of {POLICIES}; received dtype_policy={dtype_policy!r}."
        )
    return dtype_policy
