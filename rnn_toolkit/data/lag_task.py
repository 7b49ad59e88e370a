"""A long-range memory task with a lag you choose: remember one symbol over `lag` steps.

The lecture's test of what a recurrent network can remember. Every sequence is
`lag + 1` steps long:

* step 0 shows one of `num_symbols` symbols (one-hot in the first `num_symbols` input
  channels);
* steps 1 ... `lag` show distractors: one of `num_distractors` other symbols each,
  drawn at random (one-hot in the last `num_distractors` channels), or nothing at all
  (all-zero inputs) when `num_distractors=0`;
* the target is the symbol of step 0, read out after the last step (many-to-one).

So the model's output is exactly `lag` steps after the only input that matters, and
nothing in between helps: a classifier that has forgotten is at chance, `1 /
num_symbols`. Distractors also make held-out sequences differ from the training ones
(without them there are only `num_symbols` different sequences).

Examples are drawn with NumPy from `seed` (training and validation from separate
streams of it), so the same arguments give the same examples on every machine.
"""

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.dataset_options import finish_pipeline

# The seed streams of the two parts: `default_rng([seed, part])`.
_TRAIN_STREAM, _VALIDATION_STREAM = 0, 1


def lag_task_examples(num_examples, lag, *, num_symbols=4, num_distractors=4, seed=0):
    """Sequences of the lag task as NumPy arrays (see the module docstring).

    Args:
        num_examples: how many sequences.
        lag: steps between the symbol and the read-out (the sequences have `lag + 1`
            steps).
        num_symbols: symbols to remember, at least 2 (chance accuracy is `1 /
            num_symbols`).
        num_distractors: distractor symbols shown after the first step; 0 for blank
            (all-zero) steps.
        seed: an int, or a sequence of ints (NumPy `default_rng` seeds), fixing the
            examples.

    Returns:
        `(inputs, targets)`: float32 one-hot `[num_examples, lag + 1, num_symbols +
        num_distractors]` and int32 `[num_examples]` in `[0, num_symbols)`.

    Raises:
        ValueError: if `num_examples` or `lag` is not a positive integer,
            `num_symbols` is not an integer >= 2, or `num_distractors` is not an
            integer >= 0.

    Example:

    >>> from rnn_toolkit.data import lag_task_examples
    >>> inputs, targets = lag_task_examples(2, lag=3, num_symbols=3, num_distractors=2, seed=0)
    >>> inputs.shape, targets.shape
    ((2, 4, 5), (2,))
    >>> bool((inputs[:, 0, :3].argmax(-1) == targets).all())  # step 0 holds the answer
    True
    >>> float(inputs[:, 1:, :3].sum())  # later steps never show a symbol
    0.0
    """
    num_examples = check_positive_int("num_examples", num_examples)
    lag, num_symbols, num_distractors = _check_task(lag, num_symbols, num_distractors)
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, num_symbols, size=num_examples).astype(np.int32)
    inputs = np.zeros((num_examples, lag + 1, num_symbols + num_distractors), np.float32)
    inputs[np.arange(num_examples), 0, targets] = 1.0
    if num_distractors:
        distractors = rng.integers(0, num_distractors, size=(num_examples, lag))
        rows, steps = np.meshgrid(np.arange(num_examples), np.arange(lag), indexing="ij")
        inputs[rows, steps + 1, num_symbols + distractors] = 1.0
    return inputs, targets


def lag_task_batches(
    lag,
    *,
    num_symbols=4,
    num_distractors=4,
    train_examples=2048,
    validation_examples=512,
    batch_size=32,
    seed=0,
):
    """Training and validation `tf.data` pipelines of the lag task.

    Training examples come from the stream `[seed, 0]`, validation examples from
    `[seed, 1]`: a different draw of symbols and distractors (with distractors, a
    validation sequence is almost never also a training sequence once `lag` is a
    few steps). Both use the shared `rnn_toolkit.data.pipeline_options()`.

    Args:
        lag: steps between the symbol and the read-out (see `lag_task_examples`).
        num_symbols: symbols to remember (>= 2).
        num_distractors: distractor symbols (0: blank steps).
        train_examples: training sequences (at least `batch_size`).
        validation_examples: held-out sequences.
        batch_size: sequences per batch.
        seed: fixes the examples and, with TensorFlow's global seed (see
            `keras.utils.set_random_seed`), the training order. Each new iterator over
            the same `train` object draws the next order; build a new pipeline to
            replay the same batches.

    Returns:
        `(train, validation)` datasets of `(inputs, targets)` batches: float32 `[batch,
        lag + 1, num_symbols + num_distractors]` and int32 `[batch]`. `train` is
        reshuffled every epoch (seeded) and drops its last incomplete batch, so every
        batch has the static shape; repeat it (`train.repeat()`) to train for a number
        of steps. `validation` keeps its order and every example.

    Raises:
        ValueError: for a bad argument (see `lag_task_examples`), or fewer
            `train_examples` than `batch_size`.

    Example:

    >>> from rnn_toolkit.data import lag_task_batches
    >>> train, validation = lag_task_batches(5, train_examples=64, validation_examples=10, batch_size=16)
    >>> inputs, targets = next(iter(train))
    >>> tuple(inputs.shape), tuple(targets.shape), int(train.cardinality()), int(validation.cardinality())
    ((16, 6, 8), (16,), 4, 1)
    """
    lag, num_symbols, num_distractors = _check_task(lag, num_symbols, num_distractors)
    train_examples = check_positive_int("train_examples", train_examples)
    validation_examples = check_positive_int("validation_examples", validation_examples)
    batch_size = check_positive_int("batch_size", batch_size)
    if train_examples < batch_size:
        raise ValueError(
            f"`train_examples` ({train_examples}) must be at least `batch_size` ({batch_size}): "
            "the training pipeline drops incomplete batches."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int; received seed={seed!r}.")
    task = dict(lag=lag, num_symbols=num_symbols, num_distractors=num_distractors)
    train = tf.data.Dataset.from_tensor_slices(
        lag_task_examples(train_examples, seed=[seed, _TRAIN_STREAM], **task)
    )
    train = train.shuffle(train_examples, seed=seed, reshuffle_each_iteration=True)
    train = finish_pipeline(train.batch(batch_size, drop_remainder=True))
    validation = tf.data.Dataset.from_tensor_slices(
        lag_task_examples(validation_examples, seed=[seed, _VALIDATION_STREAM], **task)
    )
    validation = finish_pipeline(validation.batch(batch_size))
    return train, validation


def _check_task(lag, num_symbols, num_distractors):
    lag = check_positive_int("lag", lag)
    if isinstance(num_symbols, bool) or not isinstance(num_symbols, (int, np.integer)) or num_symbols < 2:
        raise ValueError(
            f"`num_symbols` must be an integer >= 2 (one symbol leaves nothing to remember); "
            f"received num_symbols={num_symbols!r}."
        )
    if (
        isinstance(num_distractors, bool)
        or not isinstance(num_distractors, (int, np.integer))
        or num_distractors < 0
    ):
        raise ValueError(
            f"`num_distractors` must be an integer >= 0; received num_distractors={num_distractors!r}."
        )
    return lag, int(num_symbols), int(num_distractors)
