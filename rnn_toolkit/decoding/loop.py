"""The in-graph decoding loop shared by every generator in `rnn_toolkit`.

Decoding is split three ways, as in OpenNMT-tf:

* a **sampler** (`rnn_toolkit.decoding.samplers`) turns one step's logits into one token
  id per row;
* a **strategy** (`DecodingStrategy`) owns the per-step decision and its bookkeeping:
  which tokens to keep, the token buffer, which rows have ended, how long each result
  is. `SamplingSearch` keeps one hypothesis per row and asks a sampler for its token;
  `BeamSearch` keeps `beam_width` hypotheses per row and reorders the model state to
  follow them;
* the **loop** (`decode_with_strategy`) is the same for all of them: it advances the
  model with the caller's step function, hides forbidden ids, derives a seed per step,
  and stops at `max_length` or as soon as the strategy says every row has ended.
  `decode` and `beam_search` are this loop with a `SamplingSearch` and a `BeamSearch`.

The loop is a `tf.while_loop`, so inside a `tf.function` (a model's `generate()`, a
training callback, an exported SavedModel) no Python runs per token, and `max_length`,
the seed, the sampler's parameters and the beam width may be tensors without
retracing. There it also runs XLA-compiled, at bucketed sizes, unless turned off
(`rnn_toolkit.decoding.compilation`); the per-step seeds and the samplers' noise come
from integer hashing, so compiled and uncompiled loops draw the same tokens.
"""

import functools
import numbers

import tensorflow as tf

from rnn_toolkit.decoding.compilation import DecodingBuckets, bucket_for, jit_decoding_enabled
from rnn_toolkit.decoding.samplers import Sampler, get_sampler, hash_seed

__all__ = [
    "beam_search",
    "decode",
    "decode_with_strategy",
    "BeamSearch",
    "DecodingStrategy",
    "SamplingSearch",
]

# Stands in for -inf in log-probabilities that are added up: sums stay finite, so no
# `inf - inf` can turn a score into NaN.
_LOST = -1e9


class DecodingStrategy:
    """How the decoding loop picks tokens and keeps its bookkeeping.

    The loop calls `initialize` once, then `step` once per generated position (the
    first time with the caller's `initial_logits`, then with the step function's
    output), and `finalize` once at the end. Everything a strategy tracks lives in
    `search_vars`, a nested structure of tensors that the loop threads through the
    `tf.while_loop` without looking inside; its shapes must not change across steps
    except in the leading (batch) dimension.

    A strategy may run more rows than the batch: `BeamSearch` tiles the model state to
    `batch * beam_width` rows in `initialize`, keeps cumulative log-probabilities and
    the token buffer in `search_vars`, reorders the model state by each new token's
    parent beam (`tf.gather`) in `step`, and picks the best beam per row in `finalize`.
    The loop (`decode_with_strategy`) is the same for every strategy.

    A strategy whose ops XLA supports and whose `finalize` cuts the token buffer to
    `max_length` sets `compilable = True` and implements `finish_rows` and `live_rows`:
    the loop then runs it XLA-compiled at bucketed sizes (see `decode_with_strategy`).
    Others always run uncompiled, as before.
    """

    compilable = False
    # True when a row's result does not depend on its position in the batch, so that the
    # compiled loop may move the rows still going into a smaller batch (`live_rows`).
    # Not so for sampling: its noise is drawn per row position.
    movable_rows = False
    # True when `step` only reorders the leaves of `state` (never reads their structure):
    # the loop then hands it just the leaves the step function changed, and state that
    # passes through the step function unchanged (a translator's memory) is never copied.
    opaque_state = False

    def initialize(self, initial_logits, initial_state, max_length):
        """Sets up the search.

        Args:
            initial_logits: float32 `[batch, vocab]`, the distribution of the first
                token (forbidden ids already at -inf).
            initial_state: the step function's state, any nested structure.
            max_length: int32 scalar tensor, at least 0.

        Returns:
            `(logits, state, search_vars)`: the logits and state the first `step` sees
            (a beam search would tile them), and the strategy's initial variables.
        """
        raise NotImplementedError

    def step(self, step, logits, state, search_vars, seed):
        """Picks the tokens of position `step`.

        Args:
            step: int32 scalar tensor, the position being generated (0-based).
            logits: float32 `[rows, vocab]` for this position.
            state: the step function's state after the previous position.
            search_vars: the strategy's variables.
            seed: int32 `[2]`, a stateless seed unique to this step (`hash_seed` of the
                user's seed and the step).

        Returns:
            `(ids, state, search_vars)`: int32 `[rows]` ids to feed the step function
            next, the (possibly reordered) state, and the updated variables.
        """
        raise NotImplementedError

    def is_done(self, search_vars):
        """Returns a bool scalar tensor: True when no row needs another token."""
        raise NotImplementedError

    def finalize(self, search_vars, max_length):
        """Returns `(tokens, lengths)`: int32 `[batch, max_length]` and `[batch]`.

        Every output must have the batch as its first axis. The token buffer may be
        wider than `max_length` (the compiled loop pads it to a bucket): return its
        first `max_length` positions.
        """
        raise NotImplementedError

    def finish_rows(self, search_vars, rows):
        """Marks rows as ended before the first step, so `is_done` ignores them.

        The compiled loop pads a batch to its bucket with rows of zeros and calls this
        with `rows`, a bool `[batch]` that is True for the padding. The default leaves
        `search_vars` as they are: padding rows then just run along.
        """
        return search_vars

    def live_rows(self, search_vars):
        """A bool `[batch]`: the input rows that still need tokens.

        The compiled loop uses it to move the rows still going into a smaller batch.
        Only needed with `compilable = True`.
        """
        raise NotImplementedError

    def limit(self, search_vars, max_length):
        """Tells the strategy, after `initialize`, how many positions the loop generates
        at most (the token buffer may be wider: the compiled loop pads it to a bucket).
        The default ignores it."""
        return search_vars

    def compile_sizes(self):
        """Int32 scalar tensors that must be constants when the loop is XLA-compiled.

        A dict of name -> tensor; the compiled loop passes each value in as a shape,
        where XLA sees a constant, and calls `with_compile_sizes` with it inside the
        compiled region. The default is none.
        """
        return {}

    def with_compile_sizes(self, sizes):
        """A copy of this strategy that uses `sizes` (see `compile_sizes`)."""
        return self


class SamplingSearch(DecodingStrategy):
    """One hypothesis per row: each step's token comes straight from a sampler.

    Greedy, temperature, top-k and top-p decoding are all this strategy with a
    different sampler. Tokens go into a `[batch, max_length]` buffer prefilled with
    `padding_id`, so positions after a row's end (or after an early exit) are padding
    without any extra work.

    Args:
        sampler: a callable `(logits, seed) -> int32 ids [batch]`, usually a `Sampler`.
        end_id: optional int. A row stops at its first `end_id`, which is not part of
            the result; later positions are `padding_id`.
        padding_id: int written after a row's end. Finished rows also feed it to the
            step function, whose output for them is ignored.
    """

    compilable = True
    opaque_state = True

    def __init__(self, sampler, end_id=None, padding_id=0):
        self.sampler = sampler
        self.end_id = end_id
        self.padding_id = padding_id

    def initialize(self, initial_logits, initial_state, max_length):
        batch_size = tf.shape(initial_logits)[0]
        padding = tf.constant(self.padding_id, tf.int32)
        search_vars = {
            "tokens": tf.fill(tf.stack([batch_size, max_length]), padding),
            "finished": tf.zeros([batch_size], tf.bool),
            "lengths": tf.zeros([batch_size], tf.int32),
        }
        return initial_logits, initial_state, search_vars

    def step(self, step, logits, state, search_vars, seed):
        ids = tf.cast(self.sampler(logits, seed), tf.int32)
        finished = search_vars["finished"]
        if self.end_id is not None:
            finished = finished | tf.equal(ids, self.end_id)
            ids = tf.where(finished, tf.constant(self.padding_id, tf.int32), ids)
        lengths = search_vars["lengths"] + tf.cast(tf.logical_not(finished), tf.int32)
        # Writing through a one-column mask keeps the buffer's shape fixed (a
        # `tf.while_loop` requirement); it costs O(batch * max_length) per step, which is
        # small next to a model step.
        tokens = search_vars["tokens"]
        is_this_step = tf.equal(tf.range(tf.shape(tokens)[1]), step)
        tokens = tf.where(is_this_step[tf.newaxis, :], ids[:, tf.newaxis], tokens)
        return ids, state, {"tokens": tokens, "finished": finished, "lengths": lengths}

    def is_done(self, search_vars):
        # True for an empty batch, so batch size 0 runs no step at all.
        return tf.reduce_all(search_vars["finished"])

    def finalize(self, search_vars, max_length):
        # The first position is picked before the loop checks `max_length`, so with
        # max_length 0 a row has counted a token that was never written.
        tokens = search_vars["tokens"][:, :max_length]
        return tokens, tf.minimum(search_vars["lengths"], max_length)

    def finish_rows(self, search_vars, rows):
        return dict(search_vars, finished=search_vars["finished"] | rows)

    def live_rows(self, search_vars):
        return tf.logical_not(search_vars["finished"])


class BeamSearch(DecodingStrategy):
    """Keeps the `beam_width` most likely hypotheses per row, GNMT-style.

    Every input row becomes `beam_width` adjacent rows of the model state (`tf.repeat`),
    so the step function simply sees a bigger batch. At each position, every live
    hypothesis is extended by every token, the `beam_width` best extensions of each
    input row are kept, and the model state, the token buffer and the bookkeeping are
    reordered to follow their parent hypotheses (`tf.gather`). A hypothesis that
    produces `end_id` is finished: its score freezes and it only continues with
    `padding_id`, while it keeps competing for a place in the beam. The search stops
    when every hypothesis is finished or at `max_length`; a row also stops as soon as
    none of its live hypotheses can still beat its best finished one (an exact bound,
    see `_settled_rows`: the result is unchanged, the steps after it are saved), except
    with `return_all_beams`, whose every beam runs to its end. The seed is ignored:
    beam search is deterministic.

    Hypotheses are compared by their length-normalised log-probability
    `log P(tokens) / lp(n)` with the GNMT penalty of Wu et al. (2016),
    `lp(n) = ((5 + n) / 6) ** length_penalty`, where `n` counts the scored tokens: the
    kept ones plus `end_id` when the hypothesis ended (its probability is part of the
    score, as in OpenNMT-tf, although it is not part of the result).

    Args:
        beam_width: int, or int32 scalar tensor (for example an input of a SavedModel
            signature, so that one trace serves every width; values below 1 count as
            1). `beam_width=1` is greedy decoding.
        end_id: int, the token that ends a hypothesis; it is not part of `tokens` nor
            counted in `lengths`, as with `decode`. `None` means hypotheses never end
            before `max_length`.
        padding_id: int written after a hypothesis' end and fed to the step function
            for finished hypotheses (those outputs are ignored).
        length_penalty: float or float scalar tensor, the GNMT `alpha`. 0 compares raw
            log-probabilities, which favours short results; larger values favour
            longer ones.
        return_all_beams: bool. False: `finalize` returns the best hypothesis per row,
            `(tokens [batch, max_length], lengths [batch])`. True: it returns every
            beam, best first, `(tokens [batch, beam_width, max_length],
            lengths [batch, beam_width], scores [batch, beam_width])` with the
            length-normalised float32 scores. When there are fewer possible
            hypotheses than beams (a tiny vocabulary), the spare beams hold copies
            scored around -1e9.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> logits = tf.constant(np.log([[0.1, 0.6, 0.3]]), tf.float32)
    >>> tokens, lengths, scores = rnn_toolkit.decoding.decode_with_strategy(
    ...     rnn_toolkit.decoding.BeamSearch(
    ...         beam_width=2, end_id=None, length_penalty=0.0, return_all_beams=True
    ...     ),
    ...     lambda ids, state: (logits, state),
    ...     initial_logits=logits,
    ...     initial_state=None,
    ...     max_length=2,
    ...     seed=0,
    ... )
    >>> tokens.numpy()
    array([[[1, 1],
            [1, 2]]], dtype=int32)
    >>> np.exp(scores.numpy()).round(2)
    array([[0.36, 0.18]], dtype=float32)
    """

    compilable = True
    opaque_state = True
    movable_rows = True

    def __init__(
        self, beam_width, end_id, padding_id=0, length_penalty=0.6, return_all_beams=False
    ):
        if not tf.is_tensor(beam_width):
            if (
                isinstance(beam_width, bool)
                or not isinstance(beam_width, numbers.Integral)
                or beam_width < 1
            ):
                raise ValueError(
                    "`beam_width` must be a positive integer or an int32 scalar tensor; "
                    f"received beam_width={beam_width!r}."
                )
            beam_width = int(beam_width)
        self.beam_width = beam_width
        self.end_id = end_id
        self.padding_id = padding_id
        self.length_penalty = length_penalty
        self.return_all_beams = return_all_beams

    def _width(self):
        """The beam width: a Python int, or an int32 tensor clamped to at least 1."""
        if isinstance(self.beam_width, int):
            return self.beam_width
        return tf.maximum(tf.cast(self.beam_width, tf.int32), 1)

    def _penalty(self, lengths):
        """The GNMT length penalty `lp(n)` of `lengths` scored tokens."""
        alpha = tf.cast(self.length_penalty, tf.float32)
        return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)

    def _normalize(self, log_probs, lengths):
        """Divides log-probabilities by the GNMT length penalty of `lengths` tokens."""
        return log_probs / self._penalty(lengths)

    def compile_sizes(self):
        return {"beam_width": self._width()}

    def with_compile_sizes(self, sizes):
        return BeamSearch(
            sizes["beam_width"],
            self.end_id,
            padding_id=self.padding_id,
            length_penalty=self.length_penalty,
            return_all_beams=self.return_all_beams,
        )

    def finish_rows(self, search_vars, rows):
        rows = tf.repeat(rows, self._width(), axis=0)
        return dict(search_vars, finished=search_vars["finished"] | rows)

    def limit(self, search_vars, max_length):
        return dict(search_vars, max_length=tf.cast(max_length, tf.int32))

    def live_rows(self, search_vars):
        finished = tf.reshape(search_vars["finished"], tf.stack([-1, self._width()]))
        return tf.logical_not(tf.reduce_all(finished, axis=1))

    def _settled_rows(self, search_vars):
        """Hypotheses of rows whose best result is already known, as a bool `[rows]`.

        A live hypothesis' log-probability only falls as it grows, and its length
        penalty is at most `lp` of `max_length + 1` scored tokens (or of its present
        length, for a negative penalty), so `log_probs / max lp` bounds the score of
        anything it can still become. When every live hypothesis of a row is bounded
        below the row's best finished one, that one is the row's result whatever
        follows: the row is ended at once instead of running its live hypotheses to
        their end or to `max_length`. The result is the one the full search would
        give (an exact tie aside); only the other, unreturned beams differ.
        """
        beam_width = self._width()
        finished, lengths = search_vars["finished"], search_vars["lengths"]
        log_probs = search_vars["log_probs"]
        final = self._normalize(log_probs, lengths + 1)
        longest = self._penalty(search_vars["max_length"] + 1)
        bound = log_probs / tf.maximum(self._penalty(lengths), longest)
        lowest = tf.constant(-float("inf"))
        by_row = tf.stack([-1, beam_width])
        best_finished = tf.reduce_max(tf.reshape(tf.where(finished, final, lowest), by_row), 1)
        best_live = tf.reduce_max(tf.reshape(tf.where(finished, lowest, bound), by_row), 1)
        return tf.repeat(best_live < best_finished, beam_width, axis=0)

    def initialize(self, initial_logits, initial_state, max_length):
        beam_width = self._width()

        def tile(tensor):
            # A scalar has no batch dimension: it is shared by every row already.
            if tensor.shape.rank == 0:
                return tensor
            return tf.repeat(tensor, beam_width, axis=0)

        logits = tile(initial_logits)
        state = tf.nest.map_structure(tile, initial_state)
        rows = tf.shape(logits)[0]
        # The tiled beams are identical: only beam 0 may start, or the first step would
        # fill the beam with copies of the same few tokens.
        is_first_beam = tf.equal(tf.range(rows) % beam_width, 0)
        search_vars = {
            "log_probs": tf.where(is_first_beam, 0.0, _LOST),
            "tokens": tf.fill(tf.stack([rows, max_length]), tf.constant(self.padding_id, tf.int32)),
            "finished": tf.zeros([rows], tf.bool),
            "lengths": tf.zeros([rows], tf.int32),
            "max_length": tf.cast(max_length, tf.int32),
        }
        return logits, state, search_vars

    def step(self, step, logits, state, search_vars, seed):
        beam_width = self._width()
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocab_size = tf.shape(log_probs)[1]
        finished = search_vars["finished"]
        # A finished hypothesis has one continuation at probability 1, so its score stays
        # what it was when it ended. Column 0 stands for it (its id becomes `padding_id`
        # below), so a padding id outside the vocabulary works too.
        frozen = tf.where(tf.equal(tf.range(vocab_size), 0), 0.0, _LOST)
        log_probs = tf.where(finished[:, tf.newaxis], frozen[tf.newaxis, :], log_probs)
        total = search_vars["log_probs"][:, tf.newaxis] + log_probs
        # `lengths + 1` counts the candidate token of a live hypothesis, and the end
        # token of a finished one: either way, the number of scored tokens.
        scores = self._normalize(total, search_vars["lengths"][:, tf.newaxis] + 1)

        batch_size = tf.shape(total)[0] // beam_width
        # The best `beam_width` extensions of each row are among the best `beam_width` of
        # each of its hypotheses: two small top-k's instead of one over
        # `beam_width * vocab_size` scores, with the same picks (ties go to the lower
        # hypothesis, then the lower id, as in one top-k over the flattened scores).
        per_beam = tf.minimum(beam_width, vocab_size)
        beam_scores, beam_ids = tf.math.top_k(scores, k=per_beam)
        candidates = tf.stack([batch_size, beam_width * per_beam])
        _, best = tf.math.top_k(tf.reshape(beam_scores, candidates), k=beam_width)
        ids = tf.gather(tf.reshape(beam_ids, candidates), best, batch_dims=1)
        parents = best // per_beam + tf.range(batch_size)[:, tf.newaxis] * beam_width
        ids, parents = tf.reshape(ids, [-1]), tf.reshape(parents, [-1])
        cumulative = tf.gather_nd(total, tf.stack([parents, ids], axis=1))

        def follow_parents(tensor):
            if tensor.shape.rank == 0:
                return tensor
            return tf.gather(tensor, parents)

        state = tf.nest.map_structure(follow_parents, state)
        finished = tf.gather(finished, parents)
        if self.end_id is not None:
            finished = finished | tf.equal(ids, self.end_id)
        ids = tf.where(finished, tf.constant(self.padding_id, tf.int32), ids)
        lengths = tf.gather(search_vars["lengths"], parents)
        lengths += tf.cast(tf.logical_not(finished), tf.int32)
        # Same one-column write as `SamplingSearch`: the buffer keeps its shape.
        tokens = tf.gather(search_vars["tokens"], parents)
        is_this_step = tf.equal(tf.range(tf.shape(tokens)[1]), step)
        tokens = tf.where(is_this_step[tf.newaxis, :], ids[:, tf.newaxis], tokens)
        search_vars = dict(
            search_vars,
            log_probs=tf.reshape(cumulative, [-1]),
            tokens=tokens,
            finished=finished,
            lengths=lengths,
        )
        if not self.return_all_beams:
            settled = self._settled_rows(search_vars)
            search_vars["finished"] = finished | settled
        return ids, state, search_vars

    def is_done(self, search_vars):
        # True for an empty batch, so batch size 0 runs no step at all.
        return tf.reduce_all(search_vars["finished"])

    def finalize(self, search_vars, max_length):
        beam_width = self._width()
        finished = search_vars["finished"]
        # With max_length 0 the first position was picked and counted but never written.
        lengths = tf.minimum(search_vars["lengths"], max_length)
        scores = self._normalize(
            search_vars["log_probs"], search_vars["lengths"] + tf.cast(finished, tf.int32)
        )
        tokens = search_vars["tokens"][:, :max_length]
        batch_size = tf.shape(lengths)[0] // beam_width
        width = tokens.shape[1] if tokens.shape[1] is not None else tf.shape(tokens)[1]
        tokens = tf.reshape(tokens, tf.stack([batch_size, beam_width, width]))
        lengths = tf.reshape(lengths, tf.stack([batch_size, beam_width]))
        scores = tf.reshape(scores, tf.stack([batch_size, beam_width]))
        if self.return_all_beams:
            order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
            return (
                tf.gather(tokens, order, batch_dims=1),
                tf.gather(lengths, order, batch_dims=1),
                tf.gather(scores, order, batch_dims=1),
            )
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        return tf.gather(tokens, best, batch_dims=1), tf.gather(lengths, best, batch_dims=1)


def _as_seed(seed):
    """Turns a user seed (None, int, shape [] or [2]) into an int32/int64 `[2]` tensor."""
    if seed is None:
        # A fresh draw per call, in graph: generation is random but not reproducible.
        return tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise TypeError(f"`seed` must be an int32 or int64 tensor; received dtype {seed.dtype}.")
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.zeros([], seed.dtype)])
    if seed.shape.rank == 1 and seed.shape[0] in (2, None):
        return tf.ensure_shape(seed, [2])
    raise ValueError(f"`seed` must have shape [] or [2]; received shape {seed.shape}.")


def _forbid(logits, forbidden_ids):
    """Sets the logits of `forbidden_ids` to -inf in every row."""
    if forbidden_ids is None:
        return logits
    forbidden_ids = tf.reshape(tf.cast(forbidden_ids, tf.int32), [-1])
    if forbidden_ids.shape[0] == 0:
        return logits
    vocab_size = tf.shape(logits)[-1]
    # Ids outside the vocabulary get an all-zero one-hot row, so they are ignored.
    is_forbidden = tf.reduce_any(
        tf.one_hot(forbidden_ids, vocab_size, True, False, dtype=tf.bool), axis=0
    )
    return tf.where(is_forbidden[tf.newaxis, :], tf.constant(-float("inf")), logits)


def _relax_batch_dim(structure):
    """Shape invariants that leave only the leading dimension free.

    A state built with a static batch size may come back from a step function (or a
    Keras layer) with an unknown one; `tf.while_loop` would reject that change.
    """

    def relax(tensor):
        shape = tensor.shape
        if shape.rank is None or shape.rank == 0:
            return shape
        return tf.TensorShape([None]).concatenate(shape[1:])

    return tf.nest.map_structure(relax, structure)


def decode(
    step_fn,
    initial_logits,
    initial_state,
    *,
    max_length,
    sampler,
    seed,
    end_id=None,
    forbidden_ids=None,
    padding_id=0,
    jit_compile=None,
    buckets=None,
):
    """Generates up to `max_length` tokens per row with one `tf.while_loop`.

    The caller has already run its prompt (or encoder, or image features) through the
    model and passes the distribution of the first token as `initial_logits`, with the
    model state that follows it. Each later token comes from
    `step_fn(previous_ids, state)`. The step function is never called after the last
    token is picked, so generating `n` tokens costs `n - 1` model steps, and the loop
    exits as soon as every row has produced `end_id`.

    Inside a `tf.function` nothing here runs Python per token, and `max_length`, `seed`
    and the sampler's parameters may be tensors (for example inputs of a SavedModel
    signature) without retracing. Called eagerly, the same ops run step by step.

    Args:
        step_fn: callable `(token_ids, state) -> (logits, new_state)`: int32 ids
            `[batch]` in, float logits `[batch, vocab]` (any float dtype) out. `state`
            is any nested structure of tensors (`tf.nest`) whose shapes stay the same
            from step to step (the batch dimension may be unknown).
        initial_logits: float `[batch, vocab]`, the distribution of the first token.
        initial_state: the step function's state after the prompt (`None` for a
            model without state: `step_fn` then always receives `None`).
        max_length: int or int32 scalar tensor, the number of tokens to generate at
            most. Negative values are treated as 0.
        sampler: a `Sampler`, a sampler name for `get_sampler` (with its defaults),
            or any callable `(logits, seed) -> ids`, for example
            `lambda logits, seed: sample_logits(logits, seed, temperature=t, top_k=k)`
            with tensor `t` and `k`.
        seed: int, or int32/int64 tensor of shape `[]` or `[2]`. The same seed gives the
            same tokens; every step folds the step number into it, so steps differ.
            `None` draws a fresh seed each call.
        end_id: optional int. A row stops at its first `end_id`, which is not included
            in `tokens` nor counted in `lengths`; later positions are `padding_id`.
        forbidden_ids: optional list (or 1-D int tensor) of ids never generated, such
            as padding and out-of-vocabulary ids: their logits become -inf.
        padding_id: int filling positions after a row's end. Rows that have ended
            also feed it to `step_fn` while other rows go on; those outputs are ignored.
        jit_compile: None (the process setting), True or False: whether the loop runs
            XLA-compiled inside a `tf.function` (see `decode_with_strategy`). Called
            eagerly, it runs op by op unless this is True.
        buckets: the `DecodingBuckets` of the compiled loop (None: the default ones).

    Returns:
        `(tokens, lengths)`: int32 `[batch, max_length]` token ids padded with
        `padding_id`, and int32 `[batch]` numbers of generated tokens before the end.

    Example:

    A counter "language model" whose next token is always the previous one plus one:

    >>> import rnn_toolkit
    >>> vocab_size = 6
    >>> def step_fn(ids, state):
    ...     return tf.one_hot((ids + 1) % vocab_size, vocab_size) * 10.0, state
    >>> tokens, lengths = rnn_toolkit.decoding.decode(
    ...     step_fn,
    ...     initial_logits=tf.one_hot([1, 3], vocab_size) * 10.0,
    ...     initial_state=tf.zeros([2, 1]),
    ...     max_length=5,
    ...     sampler="greedy",
    ...     seed=0,
    ...     end_id=5,
    ... )
    >>> tokens.numpy()
    array([[1, 2, 3, 4, 0],
           [3, 4, 0, 0, 0]], dtype=int32)
    >>> lengths.numpy()
    array([4, 2], dtype=int32)
    """
    if isinstance(sampler, (str, dict, Sampler)):
        sampler = get_sampler(sampler)
    elif not callable(sampler):
        raise TypeError(
            "`sampler` must be a Sampler, a sampler name or a callable "
            f"`(logits, seed) -> ids`; received {sampler!r}."
        )
    return decode_with_strategy(
        SamplingSearch(sampler, end_id=end_id, padding_id=padding_id),
        step_fn,
        initial_logits,
        initial_state,
        max_length=max_length,
        seed=seed,
        forbidden_ids=forbidden_ids,
        jit_compile=jit_compile,
        buckets=buckets,
    )


def beam_search(
    step_fn,
    initial_logits,
    initial_state,
    *,
    beam_width,
    max_length,
    end_id,
    length_penalty=0.6,
    forbidden_ids=None,
    padding_id=0,
    return_all_beams=False,
    jit_compile=None,
    buckets=None,
):
    """Generates the most likely continuation of every row with a beam search.

    `decode` with a greedy sampler commits to the best token at each position; a beam
    search keeps the `beam_width` best partial results per row, so a first token whose
    continuations are all poor can lose to a slightly less likely one with a good
    continuation. The loop, the step function contract and the shapes are those of
    `decode` (see `BeamSearch` for the scoring): the model sees `batch * beam_width`
    rows, and the step function's state is reordered between steps to follow the kept
    hypotheses, so it must carry a batch dimension on every non-scalar tensor.

    Args:
        step_fn: callable `(token_ids, state) -> (logits, new_state)`, as for `decode`.
        initial_logits: float `[batch, vocab]`, the distribution of the first token.
        initial_state: the step function's state after the prompt, or `None`.
        beam_width: int or int32 scalar tensor, hypotheses kept per row; 1 is greedy.
        max_length: int or int32 scalar tensor; negative values are treated as 0.
        end_id: int ending a hypothesis (not kept in `tokens`), or `None`.
        length_penalty: float or float scalar tensor, the GNMT `alpha`: 0 ranks by
            raw log-probability, larger values favour longer results.
        forbidden_ids: optional list (or 1-D int tensor) of ids never generated.
        padding_id: int filling positions after a hypothesis' end.
        return_all_beams: bool; True returns every beam, best first, with its score.
        jit_compile: None (the process setting), True or False, as for `decode`.
        buckets: the `DecodingBuckets` of the compiled loop (None: the default ones).

    Returns:
        `(tokens, lengths)`: int32 `[batch, max_length]` and `[batch]`, the best
        hypothesis of each row, padded with `padding_id`. With `return_all_beams`,
        `(tokens [batch, beam_width, max_length], lengths [batch, beam_width],
        scores [batch, beam_width])`.

    Example:

    A bigram "language model" over `[padding, end, a, b]`. "a" is the likelier first
    token, but only "b" is likely to be followed by the end:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> next_token_probs = np.array(
    ...     [
    ...         [0.0, 0.0, 0.6, 0.4],  # after padding (also the first token)
    ...         [0.0, 1.0, 0.0, 0.0],  # after the end
    ...         [0.0, 0.2, 0.4, 0.4],  # after "a"
    ...         [0.0, 0.9, 0.05, 0.05],  # after "b"
    ...     ],
    ...     np.float32,
    ... )
    >>> next_token_logits = tf.math.log(next_token_probs)
    >>> def step_fn(ids, state):
    ...     return tf.gather(next_token_logits, ids), state
    >>> first_logits = tf.gather(next_token_logits, np.array([0]))
    >>> tokens, lengths = rnn_toolkit.decoding.beam_search(
    ...     step_fn, first_logits, None, beam_width=2, max_length=4, end_id=1
    ... )
    >>> tokens.numpy(), lengths.numpy()
    (array([[3, 0, 0, 0]], dtype=int32), array([1], dtype=int32))
    >>> rnn_toolkit.decoding.decode(
    ...     step_fn, first_logits, None, max_length=4, sampler="greedy", seed=0, end_id=1
    ... )[0].numpy()
    array([[2, 2, 2, 2]], dtype=int32)
    """
    return decode_with_strategy(
        BeamSearch(
            beam_width,
            end_id,
            padding_id=padding_id,
            length_penalty=length_penalty,
            return_all_beams=return_all_beams,
        ),
        step_fn,
        initial_logits,
        initial_state,
        max_length=max_length,
        seed=0,
        forbidden_ids=forbidden_ids,
        jit_compile=jit_compile,
        buckets=buckets,
    )


def decode_with_strategy(
    strategy,
    step_fn,
    initial_logits,
    initial_state,
    *,
    max_length,
    seed,
    forbidden_ids=None,
    jit_compile=None,
    buckets=None,
):
    """Runs the decoding loop with any `DecodingStrategy`.

    `decode` is this function with a `SamplingSearch`, `beam_search` this function with
    a `BeamSearch`. Arguments are those of `decode`, and the strategy takes over the
    sampler, `end_id` and `padding_id`.

    Compiled (the default, see `rnn_toolkit.decoding.compilation`), the loop runs as
    one XLA program taking ids and state: the batch is padded with rows of zeros to the
    next of `buckets.batch_sizes` (the strategy's `finish_rows` ends them at once), the
    token buffer to the next of `buckets.lengths`, and the results are cut back. A
    batch or `max_length` beyond the largest bucket, or a beam wider than
    `buckets.max_beam_width`, runs the same loop uncompiled instead. Greedy and beam
    outputs, and the built-in samplers' seeded draws, are those of the uncompiled loop:
    XLA may round the model's arithmetic differently in the last bit, which changes a
    choice only between candidates that tie to about 1e-6.

    Args:
        strategy: a `DecodingStrategy`.
        step_fn: callable `(token_ids, state) -> (logits, new_state)`. Compiled, it runs
            inside XLA: it must use ops XLA supports (Keras layers and cells do) and
            shapes that follow from its inputs' shapes.
        initial_logits: float `[batch, vocab]`, the distribution of the first token.
        initial_state: the step function's state after the prompt, or `None`.
        max_length: int or int32 scalar tensor; negative values are treated as 0.
        seed: int, int32/int64 tensor of shape `[]` or `[2]`, or `None`.
        forbidden_ids: optional list (or 1-D int tensor) of ids never generated.
        jit_compile: None (the process setting, on unless turned off), True or False.
        buckets: a `DecodingBuckets` (the default one when None).

    Returns:
        Whatever `strategy.finalize` returns, `(tokens, lengths)` for the built-in
        strategies.
    """
    static_max_length = tf.get_static_value(max_length)
    if static_max_length is not None:
        # A known length gives the token buffer a static width.
        max_length = tf.constant(max(int(static_max_length), 0), tf.int32)
    else:
        max_length = tf.maximum(tf.cast(max_length, tf.int32), 0)
    seed = _as_seed(seed)
    initial_logits = _forbid(tf.cast(initial_logits, tf.float32), forbidden_ids)
    model_step = step_fn
    if initial_state is None:
        # `tf.while_loop` cannot carry None, so an empty tuple stands in for it.
        def model_step(ids, state):
            return step_fn(ids, None)[0], ()

        initial_state = ()
    initial_state = tf.nest.map_structure(tf.convert_to_tensor, initial_state)

    def uncompiled():
        search_vars = _run_loop(
            strategy, initial_logits, initial_state, max_length, seed, max_length,
            model_step=model_step, forbidden_ids=forbidden_ids,
        )
        return strategy.finalize(search_vars, max_length)

    # Called eagerly (not inside a `tf.function`), the loop runs op by op unless asked:
    # each eager call would trace and compile a new program.
    eager_default = jit_compile is None and tf.executing_eagerly()
    if eager_default or not strategy.compilable or not jit_decoding_enabled(jit_compile):
        return uncompiled()
    buckets = DecodingBuckets() if buckets is None else buckets
    if not isinstance(buckets, DecodingBuckets):
        raise TypeError(f"`buckets` must be a DecodingBuckets; received {buckets!r}.")
    compiled_loop = _compiled_loop(
        strategy,
        functools.partial(_continue_loop, model_step=model_step, forbidden_ids=forbidden_ids),
    )
    sizes = strategy.compile_sizes()
    batch_size = tf.shape(initial_logits)[0]
    fits = (batch_size <= buckets.batch_sizes[-1]) & (max_length <= buckets.lengths[-1])
    for size in sizes.values():
        fits &= size <= buckets.max_beam_width

    def compiled():
        rows = bucket_for(batch_size, buckets.batch_sizes)
        width = bucket_for(max_length, buckets.lengths)

        def pad_rows(tensor):
            # A scalar has no batch axis: it is shared by every row.
            if tensor.shape.rank == 0:
                return tensor
            paddings = [[0, rows - batch_size]] + [[0, 0]] * (tensor.shape.rank - 1)
            padded = tf.pad(tensor, paddings)
            # Only the batch axis grows: keep what is known of the others.
            padded.set_shape(tf.TensorShape([None]).concatenate(tensor.shape[1:]))
            return padded

        static = strategy.with_compile_sizes(sizes)
        start = _start_loop(
            static, pad_rows(initial_logits), tf.nest.map_structure(pad_rows, initial_state),
            max_length, seed, width, padding_rows=tf.range(rows) >= batch_size,
        )
        # Sizes XLA must know travel as shapes of empty tensors (the token buffer's width
        # is its own shape).
        carriers = {name: tf.zeros(tf.stack([size, 0])) for name, size in sizes.items()}

        def run(loop_vars, stop_rows):
            return compiled_loop(loop_vars, max_length, seed, stop_rows, carriers)

        if static.movable_rows:
            search_vars = _shrinking_loop(static, run, start, max_length, buckets.batch_sizes)
        else:
            search_vars = run(start, tf.constant(0, tf.int32))[3]
        outputs = static.finalize(search_vars, max_length)
        return tf.nest.map_structure(lambda tensor: tensor[:batch_size], outputs)

    static_fits = tf.get_static_value(fits)
    if static_fits is not None:
        return compiled() if static_fits else uncompiled()
    return tf.cond(fits, compiled, uncompiled)


def _compiled_loop(strategy, loop):
    """`loop` (`_continue_loop`) as an XLA-compiled function of tensors only."""

    @tf.function(jit_compile=True, autograph=False)
    def run(loop_vars, max_length, seed, stop_rows, sizes):
        static = strategy.with_compile_sizes(
            {name: tf.shape(carrier)[0] for name, carrier in sizes.items()}
        )
        return loop(static, loop_vars, max_length, seed, stop_rows=stop_rows)

    return run


def _shrinking_loop(strategy, run, loop_vars, max_length, sizes):
    """Runs the compiled loop in phases, on fewer rows as rows end.

    A batch row that has ended still costs a full model step at every position in a
    loop of fixed shape. So each phase runs the compiled loop until at most the next
    smaller bucket's number of rows is still going, then the live rows are gathered
    into that bucket (the others' results are kept aside) and the next phase goes on
    with them: one compilation per bucket serves every phase, and a batch whose rows end
    at different lengths costs about as much as its rows' lengths, not as many times its
    longest. `run(loop_vars, stop_rows)` is the compiled loop; only strategies with
    `movable_rows` come here. Returns the strategy's final `search_vars` for the first
    phase's rows.
    """
    bucket_sizes = tuple(sizes)
    sizes = tf.constant(bucket_sizes, tf.int32)
    step, ids, state, search_vars = loop_vars
    rows = tf.shape(strategy.live_rows(search_vars))[0]
    results = search_vars
    index = tf.range(rows)

    def rows_of(tensor, positions, per_row):
        """The rows of `tensor` that belong to batch rows `positions`."""
        if tensor.shape.rank == 0:
            return tensor
        expanded = positions[:, tf.newaxis] * per_row + tf.range(per_row)[tf.newaxis, :]
        return tf.gather(tensor, tf.reshape(expanded, [-1]))

    def keep_going(step, ids, state, search_vars, index, results):
        return (step < max_length) & tf.logical_not(strategy.is_done(search_vars))

    def phase(step, ids, state, search_vars, index, results):
        current = tf.shape(index)[0]
        stop_rows = tf.reduce_max(tf.concat([tf.boolean_mask(sizes, sizes < current), [0]], 0))
        step, ids, state, search_vars = run((step, ids, state, search_vars), stop_rows)
        per_row = tf.shape(ids)[0] // current
        valid = index >= 0
        # What this phase computed goes back to its rows of the first phase.
        targets = tf.reshape(
            tf.boolean_mask(index, valid)[:, tf.newaxis] * per_row + tf.range(per_row), [-1, 1]
        )
        kept = tf.reshape(tf.tile(valid[:, tf.newaxis], [1, per_row]), [-1])

        def write_back(result, value):
            if value.shape.rank == 0:
                return result
            return tf.tensor_scatter_nd_update(result, targets, tf.boolean_mask(value, kept))

        results = tf.nest.map_structure(write_back, results, search_vars)
        live = tf.where(strategy.live_rows(search_vars) & valid)[:, 0]
        live = tf.cast(live, tf.int32)
        count = tf.size(live)
        fewer = bucket_for(tf.maximum(count, 1), bucket_sizes)
        positions = tf.concat([live, tf.zeros([fewer - count], tf.int32)], 0)
        ids = rows_of(ids, positions, per_row)
        state = tf.nest.map_structure(lambda t: rows_of(t, positions, per_row), state)
        search_vars = tf.nest.map_structure(lambda t: rows_of(t, positions, per_row), search_vars)
        index = tf.concat([tf.gather(index, live), tf.fill([fewer - count], -1)], 0)
        # Filler rows (copies of row 0) are ended at once and never written back.
        search_vars = strategy.finish_rows(search_vars, index < 0)
        return step, ids, state, search_vars, index, results

    loop_vars = (step, ids, state, search_vars, index, results)
    *_, results = tf.while_loop(
        keep_going,
        phase,
        loop_vars,
        shape_invariants=(tf.TensorShape([]),)
        + _relax_batch_dim(loop_vars[1:5])
        + (tf.nest.map_structure(lambda t: t.shape, results),),
    )
    return results


def _run_loop(
    strategy, initial_logits, initial_state, max_length, seed, width, *,
    model_step, forbidden_ids,
):
    """The whole loop, uncompiled: returns the strategy's final `search_vars`."""
    loop_vars = _start_loop(strategy, initial_logits, initial_state, max_length, seed, width)
    return _continue_loop(
        strategy, loop_vars, max_length, seed, model_step=model_step, forbidden_ids=forbidden_ids
    )[3]


def _start_loop(
    strategy, initial_logits, initial_state, max_length, seed, width, padding_rows=None
):
    """Sets the strategy up and picks the first position: `(step, ids, state, search_vars)`.

    `width` is the token buffer's width, `max_length` where the loop stops (at most
    `width`); `padding_rows` (bool `[batch]`) are ended before the first step.
    """
    logits, state, search_vars = strategy.initialize(initial_logits, initial_state, width)
    search_vars = strategy.limit(search_vars, max_length)
    if padding_rows is not None:
        search_vars = strategy.finish_rows(search_vars, padding_rows)
    # The first position is picked outside the loop, so that the loop body can start by
    # advancing the model and the step function never runs after the last token.
    step = tf.constant(0, tf.int32)
    ids, state, search_vars = strategy.step(
        step, logits, state, search_vars, hash_seed(seed, step)
    )
    return step + 1, ids, state, search_vars


def _continue_loop(
    strategy, loop_vars, max_length, seed, *, model_step, forbidden_ids, stop_rows=None
):
    """The `tf.while_loop`: from `(step, ids, state, search_vars)` until every row has
    ended, `max_length`, or (with `stop_rows`) at most that many rows go on."""

    def keep_going(step, ids, state, search_vars):
        going = (step < max_length) & tf.logical_not(strategy.is_done(search_vars))
        if stop_rows is not None:
            live = tf.reduce_sum(tf.cast(strategy.live_rows(search_vars), tf.int32))
            going &= live > stop_rows
        return going

    def advance(step, ids, state, search_vars):
        logits, new_state = model_step(ids, state)
        logits = _forbid(tf.cast(logits, tf.float32), forbidden_ids)
        step_seed = hash_seed(seed, step)
        if not strategy.opaque_state:
            ids, new_state, search_vars = strategy.step(
                step, logits, new_state, search_vars, step_seed
            )
            return step + 1, ids, new_state, search_vars
        # A leaf the step function returned as it got it is the same in every hypothesis
        # of a row (a beam search tiles the state, then only reorders it within rows):
        # reordering it would copy it for nothing.
        old_leaves, leaves = tf.nest.flatten(state), tf.nest.flatten(new_state)
        changed = [i for i, (old, new) in enumerate(zip(old_leaves, leaves)) if old is not new]
        ids, moved, search_vars = strategy.step(
            step, logits, [leaves[i] for i in changed], search_vars, step_seed
        )
        for i, leaf in zip(changed, moved):
            leaves[i] = leaf
        return step + 1, ids, tf.nest.pack_sequence_as(new_state, leaves), search_vars

    return tf.while_loop(
        keep_going,
        advance,
        loop_vars,
        shape_invariants=(tf.TensorShape([]),) + _relax_batch_dim(loop_vars[1:]),
    )
