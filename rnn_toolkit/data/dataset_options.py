"""tf.data settings shared by rnn_toolkit's input pipelines.

Why this module exists: on TensorFlow 2.21 / Keras 3 (2-core CPU machines),
about one `model.fit(dataset)` in three paused for 1-40 s *after* its last
training step, before returning. The pause is tf.data's autotuning machinery
being torn down with the epoch's iterator; it does not happen when autotuning
is off. `benchmarks/fit_end_stall.py` measures it.

The pipelines here hold their data in memory and do only cheap integer
slicing, so autotuning has nothing to win: a fixed prefetch buffer keeps the
accelerator (or CPU) fed just as well. `pipeline_options()` turns autotuning
off, and `PREFETCH_BUFFER_SIZE` replaces `tf.data.AUTOTUNE` wherever a
buffer size or parallelism is needed.
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
      at the end of `fit` is what stalled (see the module docstring).
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
