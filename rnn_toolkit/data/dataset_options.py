"""tf.data settings shared by rnn_toolkit's input pipelines.

Why this module exists: on TensorFlow 2.21 / Keras 3.15 (2-core CPU), about
one `model.fit(dataset)` in three paused for one to several seconds *after*
its last training step, before returning. The pause comes from tf.data's
autotuning: it happens while the epoch's iterator, which owns the autotuning
model thread, is torn down, and it is gone when autotuning is disabled.
Fixed buffer sizes alone do not help: with `prefetch(2)` and a sequential
`map` but autotuning left on, fits stalled as often.

`benchmarks/fit_end_stall.py --runs 40` (40 fits of 111 steps per variant,
400k characters of Shakespeare, small LSTM; time from the end of the last
step to `fit` returning):

    variant              median     p90     max   >1 s   fit median
    autotune (defaults)  0.028 s  2.343 s  4.029 s  12/40    5.04 s
    this module          0.007 s  0.022 s  0.202 s   0/40    4.26 s
    fixed buffers, autotuning still on:
                         0.014 s  1.534 s  4.843 s   9/40    4.35 s

The pipelines here hold their data in memory and do only cheap integer
slicing, so autotuning has nothing to win (whole fits were faster without
it): `pipeline_options()` turns it off, and `PREFETCH_BUFFER_SIZE` replaces
`tf.data.AUTOTUNE` as the prefetch buffer size; maps run sequentially.
"""

import tensorflow as tf

PREFETCH_BUFFER_SIZE = 2
"""Batches prepared ahead of the training step.

One batch in flight plus one ready is enough when producing a batch (a
gather of in-memory ids) is much cheaper than a training step.
"""


def pipeline_options():
    """Returns the `tf.data.Options` applied to every rnn_toolkit pipeline.

    * `autotune.enabled = False`: no autotuning model thread, whose teardown
      at the end of `fit` stalled it (see the module docstring).
    * `deterministic = True`: with a seed, two runs see the same batches.

    Returns:
        A new `tf.data.Options`; apply it with `dataset.with_options(...)`.

    Example:

    >>> import tensorflow as tf
    >>> import rnn_toolkit.data
    >>> ds = tf.data.Dataset.range(3).with_options(rnn_toolkit.data.pipeline_options())
    >>> ds.options().autotune.enabled
    False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return options


def finish_pipeline(dataset, *, autotune=False):
    """Adds prefetching and the shared options to a batched dataset.

    Args:
        dataset: A batched `tf.data.Dataset`.
        autotune: If True, use tf.data's defaults instead
            (`prefetch(tf.data.AUTOTUNE)`, autotuning on). Only for
            comparisons such as `benchmarks/fit_end_stall.py`.

    Returns:
        The dataset, prefetched and with options applied.
    """
    if autotune:
        return dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.prefetch(PREFETCH_BUFFER_SIZE).with_options(pipeline_options())
