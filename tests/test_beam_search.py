"""Tests for rnn_toolkit.decoding.beam_search and the BeamSearch strategy."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.decoding import BeamSearch, beam_search, decode, decode_with_strategy

PADDING, END, A, B = 0, 1, 2, 3  # the hand-made models' vocabulary


def linear_rnn(seed, vocab_size=6, units=5, batch_size=4):
    """A random tanh "RNN": returns `(step_fn, initial_logits, initial_state)`."""
    rng = np.random.default_rng(seed)
    recurrent = tf.constant(rng.normal(size=(units, units)), tf.float32)
    embeddings = tf.constant(rng.normal(size=(vocab_size, units)), tf.float32)
    head = tf.constant(rng.normal(size=(units, vocab_size)) * 2.0, tf.float32)

    def step_fn(ids, state):
        state = tf.tanh(state @ recurrent + tf.gather(embeddings, ids))
        return state @ head, state

    initial_state = tf.constant(rng.normal(size=(batch_size, units)), tf.float32)
    return step_fn, initial_state @ head, initial_state


def history_model(seed, vocab_size=4, batch_size=2):
    """Next-token logits depend on the sum of every token so far, carried in the state.

    The state is `(running_sum [batch] int32, calls scalar int32)`: if beam search fed a
    hypothesis another one's state, its scores would stop matching its tokens. The
    scalar has no batch dimension and must pass through untouched.
    """
    rng = np.random.default_rng(seed)
    table = tf.constant(rng.normal(size=(vocab_size, vocab_size)) * 1.5, tf.float32)

    def step_fn(ids, state):
        running_sum, calls = state
        running_sum += ids
        return tf.gather(table, running_sum % vocab_size), (running_sum, calls + 1)

    running_sum = tf.constant(rng.integers(0, vocab_size, size=batch_size), tf.int32)
    return step_fn, tf.gather(table, running_sum % vocab_size), (running_sum, tf.constant(0))


def bigram_model(next_token_probs):
    """`step_fn` and the first token's logits of a bigram table (row = previous token).

    The first token follows row `PADDING`.
    """
    table = tf.math.log(tf.constant(np.asarray(next_token_probs), tf.float32))

    def step_fn(ids, state):
        return tf.gather(table, ids), state

    return step_fn, table[PADDING][tf.newaxis, :]


def log_probs_of(step_fn, initial_logits, initial_state, tokens, lengths, end_id):
    """Teacher-forces `tokens` through the model: the log-probability of each row.

    A row shorter than the token buffer ended, so the probability of `end_id` at its
    length counts too.
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    max_length = tokens.shape[1]
    rows = np.arange(tokens.shape[0])
    total = np.zeros(tokens.shape[0])
    logits, state = initial_logits, initial_state
    for position in range(max_length):
        log_probs = tf.nn.log_softmax(logits).numpy()
        is_kept = position < lengths
        is_end = (position == lengths) & (end_id is not None)
        ids = np.where(is_kept, tokens[:, position], end_id if end_id is not None else 0)
        total += np.where(is_kept | is_end, log_probs[rows, ids], 0.0)
        logits, state = step_fn(tf.constant(ids, tf.int32), state)
    return total


def repeat_rows(structure, row, count):
    """`count` copies of one row of every batched tensor in `structure`."""

    def repeat(tensor):
        if tensor.shape.rank == 0:
            return tensor
        return tf.repeat(tensor[row:row + 1], count, axis=0)

    return tf.nest.map_structure(repeat, structure)


def exhaustive_search(step_fn, initial_logits, initial_state, *, max_length, end_id, alpha):
    """The best hypothesis of every row by trying all of them: `(tokens, lengths)`."""
    vocab_size = initial_logits.shape[1]
    not_end = [token for token in range(vocab_size) if token != end_id]
    hypotheses = [
        (list(tokens), max_length) for tokens in itertools.product(not_end, repeat=max_length)
    ]
    for length in range(max_length):
        for prefix in itertools.product(not_end, repeat=length):
            hypotheses.append((list(prefix) + [PADDING] * (max_length - length), length))
    tokens = np.array([tokens for tokens, _ in hypotheses])
    lengths = np.array([length for _, length in hypotheses])
    scored_lengths = lengths + (lengths < max_length)  # an ended hypothesis scores its end
    best_tokens, best_lengths = [], []
    for row in range(initial_logits.shape[0]):
        log_probs = log_probs_of(
            step_fn,
            repeat_rows(initial_logits, row, len(hypotheses)),
            repeat_rows(initial_state, row, len(hypotheses)),
            tokens, lengths, end_id,
        )
        scores = log_probs / ((5.0 + scored_lengths) / 6.0) ** alpha
        best = int(np.argmax(scores))
        assert np.sort(scores)[-2] < scores[best] - 1e-4, "the test needs a unique best"
        best_tokens.append(tokens[best])
        best_lengths.append(lengths[best])
    return np.array(best_tokens), np.array(best_lengths)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_is_greedy(seed):
    step_fn, initial_logits, state = linear_rnn(seed)
    greedy = decode(
        step_fn, initial_logits, state, max_length=8, sampler="greedy", seed=0, end_id=END
    )
    beam = beam_search(
        step_fn, initial_logits, state, beam_width=1, max_length=8, end_id=END
    )
    np.testing.assert_array_equal(beam[0], greedy[0])
    np.testing.assert_array_equal(beam[1], greedy[1])


def test_beam_finds_what_greedy_misses():
    step_fn, first_logits = bigram_model(
        [
            [0.0, 0.0, 0.55, 0.45],  # first token: "a" is a little likelier...
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.3, 0.35, 0.35],  # ...but nothing is likely after "a",
            [0.0, 0.05, 0.9, 0.05],  # while "b a" is very likely.
        ]
    )
    greedy, _ = decode(step_fn, first_logits, None, max_length=2, sampler="greedy", seed=0)
    beam, lengths = beam_search(
        step_fn, first_logits, None, beam_width=2, max_length=2, end_id=None
    )
    assert greedy.numpy()[0, 0] == A
    np.testing.assert_array_equal(beam, [[B, A]])  # 0.45 * 0.9 > 0.55 * 0.35
    np.testing.assert_array_equal(lengths, [2])


def test_beam_is_at_least_as_likely_as_greedy():
    # Not a theorem for every model (the greedy prefix can fall out of the beam), but
    # it holds for these fixed random models and breaks if scoring goes wrong.
    gains = []
    for seed in range(5):
        step_fn, initial_logits, state = linear_rnn(seed, batch_size=6)
        greedy = decode(
            step_fn, initial_logits, state, max_length=7, sampler="greedy", seed=0, end_id=END
        )
        beam = beam_search(
            step_fn, initial_logits, state,
            beam_width=3, max_length=7, end_id=END, length_penalty=0.0,
        )
        gains.append(
            log_probs_of(step_fn, initial_logits, state, *beam, END)
            - log_probs_of(step_fn, initial_logits, state, *greedy, END)
        )
    gains = np.concatenate(gains)
    assert np.all(gains >= -1e-5)
    assert np.sum(gains > 1e-3) >= 3  # beam search did find better results


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("seed", [0, 3])
def test_wide_beam_equals_exhaustive_search(seed, alpha):
    max_length = 3
    step_fn, initial_logits, state = history_model(seed)
    expected_tokens, expected_lengths = exhaustive_search(
        step_fn, initial_logits, state, max_length=max_length, end_id=END, alpha=alpha
    )
    # vocab ** max_length beams hold every hypothesis, so nothing is ever pruned.
    tokens, lengths = beam_search(
        step_fn, initial_logits, state,
        beam_width=4**max_length, max_length=max_length, end_id=END, length_penalty=alpha,
    )
    np.testing.assert_array_equal(tokens, expected_tokens)
    np.testing.assert_array_equal(lengths, expected_lengths)


def test_state_is_reordered_with_its_hypothesis():
    step_fn, initial_logits, state = history_model(seed=5, vocab_size=5, batch_size=3)
    tokens, lengths, scores = beam_search(
        step_fn, initial_logits, state,
        beam_width=4, max_length=6, end_id=END, length_penalty=0.0, return_all_beams=True,
    )
    assert tokens.shape == (3, 4, 6) and lengths.shape == (3, 4) and scores.shape == (3, 4)
    # With alpha 0 a beam's score is the log-probability the search accumulated using
    # the state it carried; teacher-forcing the beam's own tokens must give it back.
    for beam in range(4):
        expected = log_probs_of(
            step_fn, initial_logits, state, tokens[:, beam], lengths[:, beam], END
        )
        np.testing.assert_allclose(scores[:, beam], expected, rtol=1e-5)
    assert np.all(np.diff(scores.numpy(), axis=1) <= 0)  # best first
    # Several distinct hypotheses per row: reordering had something to do.
    assert all(len({tuple(beam) for beam in row}) > 1 for row in tokens.numpy())


def test_end_token_is_dropped_and_later_positions_are_padding():
    step_fn, initial_logits, state = linear_rnn(seed=4, batch_size=8)
    tokens, lengths, _ = beam_search(
        step_fn, initial_logits, state,
        beam_width=3, max_length=10, end_id=END, padding_id=5, return_all_beams=True,
    )
    tokens, lengths = tokens.numpy(), lengths.numpy()
    assert np.any(lengths < 10) and np.any(lengths > 0)  # some beams ended, not at once
    positions = np.arange(10)
    is_after_end = positions >= lengths[..., np.newaxis]
    assert np.all(tokens[is_after_end] == 5)
    assert not np.any(tokens == END)


@pytest.mark.parametrize("padding_id", [7, -1])  # -1 is outside the vocabulary
def test_counter_model_ends_exactly_where_expected(padding_id):
    vocab_size = 8

    def step_fn(ids, state):
        return tf.one_hot((ids + 1) % vocab_size, vocab_size) * 20.0, state

    tokens, lengths = beam_search(
        step_fn, tf.one_hot([1, 3, 5], vocab_size) * 20.0, tf.zeros([3, 1]),
        beam_width=2, max_length=6, end_id=5, padding_id=padding_id,
    )
    p = padding_id
    np.testing.assert_array_equal(
        tokens,
        [
            [1, 2, 3, 4, p, p],
            [3, 4, p, p, p, p],
            [p, p, p, p, p, p],  # the very first token is the end
        ],
    )
    np.testing.assert_array_equal(lengths, [4, 2, 0])


def test_length_penalty_favours_the_longer_hypothesis():
    step_fn, first_logits = bigram_model(
        [
            [0.0, 0.0, 1.0, 0.0],  # always start with "a"
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.5, 0.05, 0.45],  # "a" then the end is likeliest,
            [0.0, 0.001, 0.0, 0.999],  # but "a b" goes on almost for free.
        ]
    )

    def search(alpha):
        return beam_search(
            step_fn, first_logits, None,
            beam_width=2, max_length=6, end_id=END, length_penalty=alpha,
        )

    tokens, lengths = search(0.0)
    np.testing.assert_array_equal(tokens, [[A, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(lengths, [1])
    tokens, lengths = search(1.0)
    np.testing.assert_array_equal(tokens, [[A, B, B, B, B, B]])
    np.testing.assert_array_equal(lengths, [6])
    # A tensor alpha gives the same answer.
    np.testing.assert_array_equal(search(tf.constant(1.0))[0], tokens)


def test_tensor_beam_width_and_max_length_share_one_trace():
    step_fn, initial_logits, state = linear_rnn(seed=6)

    @tf.function(
        input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)]
    )
    def generate(beam_width, max_length):
        return beam_search(
            step_fn, initial_logits, state,
            beam_width=beam_width, max_length=max_length, end_id=END,
        )

    for width, length in [(1, 5), (3, 7), (4, 2)]:
        tokens, lengths = generate(tf.constant(width), tf.constant(length))
        expected = beam_search(
            step_fn, initial_logits, state, beam_width=width, max_length=length, end_id=END
        )
        assert tokens.shape == (4, length)
        np.testing.assert_array_equal(tokens, expected[0])
        np.testing.assert_array_equal(lengths, expected[1])
    assert generate.experimental_get_tracing_count() == 1
    # A width below 1 counts as 1 (greedy) rather than failing inside the graph.
    np.testing.assert_array_equal(
        generate(tf.constant(0), tf.constant(5))[0], generate(tf.constant(1), tf.constant(5))[0]
    )


def test_empty_batch_runs_no_step():
    calls = tf.Variable(0)

    def step_fn(ids, state):
        calls.assign_add(1)
        return tf.zeros([tf.shape(ids)[0], 6]), state

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def generate(beam_width):
        return beam_search(
            step_fn, tf.zeros([0, 6]), tf.zeros([0, 3]),
            beam_width=beam_width, max_length=5, end_id=END,
        )

    tokens, lengths = generate(tf.constant(3))
    assert tokens.shape == (0, 5) and lengths.shape == (0,)
    assert int(calls.numpy()) == 0
    tokens, lengths, scores = beam_search(
        step_fn, tf.zeros([0, 6]), tf.zeros([0, 3]),
        beam_width=2, max_length=5, end_id=END, return_all_beams=True,
    )
    assert tokens.shape == (0, 2, 5) and lengths.shape == (0, 2) and scores.shape == (0, 2)


@pytest.mark.parametrize("max_length", [0, -2])
def test_zero_max_length(max_length):
    step_fn, initial_logits, state = linear_rnn(seed=7, batch_size=2)
    tokens, lengths = beam_search(
        step_fn, initial_logits, state, beam_width=3, max_length=max_length, end_id=END
    )
    assert tokens.shape == (2, 0)
    np.testing.assert_array_equal(lengths, [0, 0])


def test_forbidden_ids_are_never_generated():
    step_fn, initial_logits, state = linear_rnn(seed=8, batch_size=6)
    tokens, _, _ = beam_search(
        step_fn, initial_logits, state,
        beam_width=3, max_length=6, end_id=None, forbidden_ids=[2, 4], return_all_beams=True,
    )
    assert not np.isin(tokens.numpy(), [2, 4]).any()


def test_invalid_beam_width():
    for beam_width in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="beam_width"):
            BeamSearch(beam_width, end_id=END)


def test_strategy_runs_through_decode_with_strategy():
    step_fn, initial_logits, state = linear_rnn(seed=9)
    strategy = BeamSearch(np.int64(2), end_id=END, length_penalty=0.0)
    tokens, lengths = decode_with_strategy(
        strategy, step_fn, initial_logits, state, max_length=4, seed=None
    )
    expected = beam_search(
        step_fn, initial_logits, state, beam_width=2, max_length=4, end_id=END, length_penalty=0.0
    )
    np.testing.assert_array_equal(tokens, expected[0])
    np.testing.assert_array_equal(lengths, expected[1])
