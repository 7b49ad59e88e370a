"""In-graph decoding: samplers and the one loop every generator uses.

`decode` runs any step function `(token_ids, state) -> (logits, state)` in a
`tf.while_loop`; a sampler (`GreedySampler`, `TemperatureSampler`, `TopKSampler`,
`TopPSampler`, or `sample_logits` with tensor parameters) picks each token.
"""

from rnn_toolkit.decoding.loop import decode
from rnn_toolkit.decoding.samplers import (
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    get_sampler,
    sample_logits,
)

__all__ = [
    "decode",
    "sample_logits",
    "Sampler",
    "GreedySampler",
    "TemperatureSampler",
    "TopKSampler",
    "TopPSampler",
    "get_sampler",
]
