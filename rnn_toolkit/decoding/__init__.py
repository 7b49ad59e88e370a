"""In-graph decoding: samplers, beam search and the one loop every generator uses.

`decode` runs any step function `(token_ids, state) -> (logits, state)` in a
`tf.while_loop`; a sampler (`GreedySampler`, `TemperatureSampler`, `TopKSampler`,
`TopPSampler`, or `sample_logits` with tensor parameters) picks each token.
`beam_search` runs the same loop with a `BeamSearch`, `decode_with_strategy` with any strategy.
Inside a `tf.function` the loop runs XLA-compiled at bucketed sizes (`DecodingBuckets`);
`set_jit_decoding(False)`, `jit_decoding(False)` or `RNN_TOOLKIT_JIT_DECODING=0` turn that
off (`rnn_toolkit.decoding.compilation`).

Imports from rnn_toolkit: arguments, decoding.
"""

from rnn_toolkit.decoding.compilation import (
    DecodingBuckets,
    jit_decoding,
    jit_decoding_enabled,
    pad_axis_to_bucket,
    set_jit_decoding,
)
from rnn_toolkit.decoding.loop import (
    BeamSearch,
    DecodingStrategy,
    SamplingSearch,
    beam_search,
    decode,
    decode_with_strategy,
)
from rnn_toolkit.decoding.samplers import (
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    get_sampler,
    sample_logits,
    sampling_function,
    uniform_noise,
)

__all__ = [
    "decode",
    "beam_search",
    "decode_with_strategy",
    "DecodingStrategy",
    "SamplingSearch",
    "BeamSearch",
    "sample_logits",
    "sampling_function",
    "Sampler",
    "GreedySampler",
    "TemperatureSampler",
    "TopKSampler",
    "TopPSampler",
    "get_sampler",
    "uniform_noise",
    "DecodingBuckets",
    "jit_decoding",
    "jit_decoding_enabled",
    "pad_axis_to_bucket",
    "set_jit_decoding",
]
