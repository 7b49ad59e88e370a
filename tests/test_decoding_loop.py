"""Tests for rnn_toolkit.decoding.decode: the in-graph loop and its bookkeeping."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.decoding import TemperatureSampler, TopKSampler, decode, sample_logits
from rnn_toolkit.decoding import loop as loop_module
from rnn_toolkit.decoding.loop import DecodingStrategy, decode_with_strategy

VOCAB_SIZE = 8
CONFIDENT = 20.0  # logit of the one token a toy model "means"; others are 0


def counter_model(calls=None):
    """A deterministic "language model": next token = (previous + stride) % VOCAB_SIZE.

    The state is a tuple of two tensors, `(stride [B] int32, steps_taken [B, 1] float32)`,
    so the loop must carry a nested structure. `calls`, a tf.Variable, counts step calls.
    """

    def step_fn(ids, state):
        stride, steps_taken = state
        if calls is not None:
            calls.assign_add(1)
        logits = tf.one_hot((ids + stride) % VOCAB_SIZE, VOCAB_SIZE) * CONFIDENT
        return logits, (stride, steps_taken + 1.0)

    return step_fn


def counter_inputs(first_ids, strides):
    initial_logits = tf.one_hot(first_ids, VOCAB_SIZE) * CONFIDENT
    state = (tf.constant(strides, tf.int32), tf.zeros([len(strides), 1]))
    return initial_logits, state


def flat_model(ids, state):
    """Every token equally likely, whatever came before."""
    return tf.zeros([tf.shape(ids)[0], VOCAB_SIZE]), state


def flat_inputs(batch_size):
    return tf.zeros([batch_size, VOCAB_SIZE]), tf.zeros([batch_size, 1])


def test_counter_model_tokens_in_exact_order_with_nested_state():
    steps_seen = tf.Variable(tf.zeros([2, 1]))

    def step_fn(ids, state):
        logits, state = counter_model()(ids, state)
        steps_seen.assign(state[1])  # the second state tensor must be threaded through
        return logits, state

    initial_logits, state = counter_inputs([1, 6], strides=[1, 3])
    tokens, lengths = tf.function(
        lambda: decode(step_fn, initial_logits, state, max_length=6, sampler="greedy", seed=0)
    )()
    np.testing.assert_array_equal(
        tokens,
        [
            [1, 2, 3, 4, 5, 6],
            [6, 1, 4, 7, 2, 5],  # (previous + 3) % 8: the stride comes from the state
        ],
    )
    np.testing.assert_array_equal(lengths, [6, 6])
    assert tokens.dtype == tf.int32 and lengths.dtype == tf.int32
    np.testing.assert_array_equal(steps_seen.numpy(), [[5.0], [5.0]])


def test_end_token_stops_one_row_while_others_go_on():
    end_id = 5
    initial_logits, state = counter_inputs([1, 3, 5, 6], strides=[1, 1, 1, 1])
    tokens, lengths = decode(
        counter_model(), initial_logits, state,
        max_length=6, sampler="greedy", seed=0, end_id=end_id, padding_id=7,
    )
    np.testing.assert_array_equal(
        tokens,
        [
            [1, 2, 3, 4, 7, 7],  # ends at position 4; the end token is not kept
            [3, 4, 7, 7, 7, 7],
            [7, 7, 7, 7, 7, 7],  # the very first token is the end
            [6, 7, 0, 1, 2, 3],  # never ends
        ],
    )
    np.testing.assert_array_equal(lengths, [4, 2, 0, 6])


def test_loop_exits_early_once_every_row_has_ended():
    calls = tf.Variable(0)

    @tf.function
    def generate():
        # Every row produces the end token (5) at position 3.
        initial_logits, state = counter_inputs([2, 2], strides=[1, 1])
        return decode(
            counter_model(calls), initial_logits, state,
            max_length=50, sampler="greedy", seed=0, end_id=5,
        )

    tokens, lengths = generate()
    np.testing.assert_array_equal(lengths, [3, 3])
    np.testing.assert_array_equal(tokens[:, :4], [[2, 3, 4, 0]] * 2)
    assert not np.any(tokens[:, 3:])
    # Positions 1, 2 and 3 each need one model step; position 0 came from the prompt.
    assert int(calls.numpy()) == 3


@pytest.mark.parametrize("max_length, expected_calls", [(1, 0), (2, 1), (7, 6)])
def test_step_function_never_runs_after_the_last_token(max_length, expected_calls):
    calls = tf.Variable(0)
    initial_logits, state = counter_inputs([0], strides=[1])
    generate = tf.function(
        lambda: decode(
            counter_model(calls), initial_logits, state,
            max_length=max_length, sampler="greedy", seed=0,
        )
    )
    tokens, _ = generate()
    assert tokens.shape == (1, max_length)
    assert int(calls.numpy()) == expected_calls


@pytest.mark.parametrize("max_length", [0, -3])
def test_zero_or_negative_max_length_gives_empty_tokens(max_length):
    calls = tf.Variable(0)
    initial_logits, state = counter_inputs([1, 2], strides=[1, 1])

    @tf.function
    def generate(max_length):
        return decode(
            counter_model(calls), initial_logits, state,
            max_length=max_length, sampler="greedy", seed=0,
        )

    for length in (max_length, tf.constant(max_length)):
        tokens, lengths = generate(length)
        assert tokens.shape == (2, 0)
        np.testing.assert_array_equal(lengths, [0, 0])
    assert int(calls.numpy()) == 0


def test_empty_batch():
    calls = tf.Variable(0)
    initial_logits, state = counter_inputs(tf.zeros([0], tf.int32), strides=np.zeros([0], np.int32))

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def generate(max_length):
        return decode(
            counter_model(calls), initial_logits, state,
            max_length=max_length, sampler=TopKSampler(k=3), seed=1, end_id=5,
        )

    tokens, lengths = generate(tf.constant(5))
    assert tokens.shape == (0, 5) and lengths.shape == (0,)
    assert int(calls.numpy()) == 0


def test_forbidden_ids_are_never_generated():
    forbidden = [0, 3, 6]
    initial_logits, state = flat_inputs(batch_size=64)
    tokens, _ = decode(
        flat_model, initial_logits, state,
        max_length=12, sampler=TemperatureSampler(2.0), seed=3, forbidden_ids=forbidden,
    )
    generated = set(np.unique(tokens.numpy()))
    assert generated == set(range(VOCAB_SIZE)) - set(forbidden)


def test_forbidden_argmax_falls_back_to_next_best():
    initial_logits = tf.constant([[0.0, 5.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    tokens, _ = decode(
        lambda ids, state: (initial_logits, state), initial_logits, tf.zeros([1, 1]),
        max_length=3, sampler="greedy", seed=0, forbidden_ids=[1],
    )
    np.testing.assert_array_equal(tokens, [[2, 2, 2]])


def test_seed_makes_generation_reproducible():
    initial_logits, state = flat_inputs(batch_size=4)

    def generate(seed):
        tokens, _ = decode(
            flat_model, initial_logits, state, max_length=20, sampler="random", seed=seed
        )
        return tokens.numpy()

    first = generate(42)
    np.testing.assert_array_equal(generate(42), first)
    np.testing.assert_array_equal(generate(tf.constant(42, tf.int64)), first)
    np.testing.assert_array_equal(generate(tf.constant([42, 0], tf.int32)), first)
    assert not np.array_equal(generate(43), first)
    assert not np.array_equal(generate([42, 1]), first)
    # Each step folds its number into the seed: a flat distribution gives varied rows.
    assert all(len(set(row)) > 1 for row in first)


def test_no_seed_draws_a_fresh_one():
    initial_logits, state = flat_inputs(batch_size=4)
    generate = tf.function(
        lambda: decode(
            flat_model, initial_logits, state, max_length=20, sampler="random", seed=None
        )[0]
    )
    assert not np.array_equal(generate().numpy(), generate().numpy())


def test_invalid_seed():
    initial_logits, state = flat_inputs(batch_size=1)
    with pytest.raises(ValueError, match="shape"):
        decode(flat_model, initial_logits, state, max_length=2, sampler="random", seed=[1, 2, 3])
    with pytest.raises(TypeError, match="seed"):
        decode(flat_model, initial_logits, state, max_length=2, sampler="random", seed=1.5)


def test_tensor_max_length_does_not_retrace():
    initial_logits, state = counter_inputs([0, 4], strides=[1, 2])

    @tf.function
    def generate(max_length):
        return decode(
            counter_model(), initial_logits, state,
            max_length=max_length, sampler="greedy", seed=0,
        )

    for length in (3, 5, 1):
        tokens, lengths = generate(tf.constant(length))
        assert tokens.shape == (2, length)
        np.testing.assert_array_equal(lengths, [length, length])
    assert generate.experimental_get_tracing_count() == 1


def test_serving_signature_with_tensor_parameters_and_unknown_batch():
    signature = [
        tf.TensorSpec([None], tf.int32, name="first_ids"),
        tf.TensorSpec([], tf.int32, name="max_length"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"),
        tf.TensorSpec([], tf.int64, name="seed"),
    ]

    @tf.function(input_signature=signature)
    def serve(first_ids, max_length, temperature, top_k, top_p, seed):
        initial_logits = tf.one_hot(first_ids, VOCAB_SIZE) * CONFIDENT
        batch_size = tf.shape(first_ids)[0]
        state = (tf.ones([batch_size], tf.int32), tf.zeros([batch_size, 1]))
        return decode(
            counter_model(), initial_logits, state,
            max_length=max_length,
            sampler=lambda logits, step_seed: sample_logits(
                logits, step_seed, temperature=temperature, top_k=top_k, top_p=top_p
            ),
            seed=seed,
            end_id=0,
        )

    greedy, lengths = serve(
        first_ids=tf.constant([3, 6]),
        max_length=tf.constant(6),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        seed=tf.constant(1, tf.int64),
    )
    np.testing.assert_array_equal(greedy, [[3, 4, 5, 6, 7, 0], [6, 7, 0, 0, 0, 0]])
    np.testing.assert_array_equal(lengths, [5, 2])
    # A hot, filtered sample on more rows: other values, same (single) trace.
    sampled, _ = serve(
        first_ids=tf.range(5),
        max_length=tf.constant(9),
        temperature=tf.constant(50.0),
        top_k=tf.constant(3),
        top_p=tf.constant(0.9),
        seed=tf.constant(7, tf.int64),
    )
    assert sampled.shape == (5, 9)
    assert serve.experimental_get_tracing_count() == 1


def test_state_whose_batch_dimension_becomes_unknown():
    def step_fn(ids, state):
        # Keras layers and reshapes often lose a static batch size.
        state = tf.raw_ops.PlaceholderWithDefault(input=state + 1.0, shape=[None, 2])
        return tf.one_hot(ids, VOCAB_SIZE) * CONFIDENT, state

    tokens, _ = tf.function(
        lambda: decode(
            step_fn, tf.one_hot([4], VOCAB_SIZE), tf.zeros([1, 2]),
            max_length=3, sampler="greedy", seed=0,
        )
    )()
    np.testing.assert_array_equal(tokens, [[4, 4, 4]])


def test_model_without_state():
    def step_fn(ids, state):
        assert state is None
        return tf.one_hot((ids + 2) % VOCAB_SIZE, VOCAB_SIZE) * CONFIDENT, None

    tokens, _ = tf.function(
        lambda: decode(
            step_fn, tf.one_hot([1], VOCAB_SIZE), None, max_length=4, sampler="greedy", seed=0
        )
    )()
    np.testing.assert_array_equal(tokens, [[1, 3, 5, 7]])


def test_keras_recurrent_step_matches_a_python_loop():
    keras.utils.set_random_seed(0)
    embedding = keras.layers.Embedding(VOCAB_SIZE, 4)
    cell = keras.layers.GRUCell(6)
    head = keras.layers.Dense(VOCAB_SIZE, dtype="mixed_bfloat16")  # low-precision logits

    def step_fn(ids, state):
        output, new_state = cell(embedding(ids), state)
        return head(output), new_state

    first_ids = tf.constant([1, 2, 3])
    initial_logits, state = step_fn(first_ids, [tf.zeros([3, 6])])
    tokens, _ = tf.function(
        lambda: decode(step_fn, initial_logits, state, max_length=6, sampler="greedy", seed=0)
    )()

    expected, logits = [], initial_logits
    for _ in range(6):
        ids = tf.argmax(tf.cast(logits, tf.float32), axis=-1, output_type=tf.int32)
        expected.append(ids.numpy())
        logits, state = step_fn(ids, state)
    np.testing.assert_array_equal(tokens, np.stack(expected, axis=1))


class CounterGenerator(tf.Module):
    """A SavedModel-style module: a variable-backed model and one serving signature."""

    def __init__(self):
        super().__init__()
        # Row i of the table scores the token after i: here always i + 1.
        self.next_token_logits = tf.Variable(
            tf.one_hot((np.arange(VOCAB_SIZE) + 1) % VOCAB_SIZE, VOCAB_SIZE) * CONFIDENT
        )

    def step(self, ids, state):
        steps_taken, last_ids = state
        return tf.gather(self.next_token_logits, ids), (steps_taken + 1, ids)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int64),
        ]
    )
    def generate(self, first_ids, max_length, temperature, top_k, top_p, seed):
        state = (tf.zeros_like(first_ids), first_ids)
        return decode(
            self.step, tf.gather(self.next_token_logits, first_ids), state,
            max_length=max_length,
            sampler=lambda logits, step_seed: sample_logits(
                logits, step_seed, temperature=temperature, top_k=top_k, top_p=top_p
            ),
            seed=seed,
            forbidden_ids=[0],
        )


def test_saved_model_round_trip(tmp_path):
    module = CounterGenerator()
    tf.saved_model.save(module, str(tmp_path))
    restored = tf.saved_model.load(str(tmp_path))

    greedy = dict(
        first_ids=tf.constant([2, 5]),
        max_length=tf.constant(5),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        seed=tf.constant([1, 2], tf.int64),
    )
    tokens, lengths = restored.generate(**greedy)
    # Token 0 is forbidden, so after 7 the model's second choice (the lowest id) wins.
    np.testing.assert_array_equal(tokens, [[3, 4, 5, 6, 7], [6, 7, 1, 2, 3]])
    np.testing.assert_array_equal(lengths, [5, 5])

    hot = dict(
        first_ids=tf.constant([2, 5, 1]),
        max_length=tf.constant(7),
        temperature=tf.constant(100.0),
        top_k=tf.constant(4),
        top_p=tf.constant(0.95),
        seed=tf.constant([3, 4], tf.int64),
    )
    restored_tokens, _ = restored.generate(**hot)
    np.testing.assert_array_equal(restored_tokens, module.generate(**hot)[0])
    assert 0 not in restored_tokens.numpy()


class TwoCopiesSearch(DecodingStrategy):
    """A stand-in for beam search: two hypotheses per row, the second with double stride.

    It exercises what a beam strategy needs from the loop: more rows than the batch,
    a state the strategy rewrites, and a result shape of its own choosing.
    """

    def initialize(self, initial_logits, initial_state, max_length):
        stride, steps_taken = initial_state
        logits = tf.repeat(initial_logits, 2, axis=0)
        state = (tf.repeat(stride, 2) * tf.tile([1, 2], [tf.shape(stride)[0]]),
                 tf.repeat(steps_taken, 2, axis=0))
        tokens = tf.zeros(tf.stack([tf.shape(logits)[0], max_length]), tf.int32)
        return logits, state, tokens

    def step(self, step, logits, state, tokens, seed):
        ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        is_this_step = tf.equal(tf.range(tf.shape(tokens)[1]), step)
        return ids, state, tf.where(is_this_step[tf.newaxis, :], ids[:, tf.newaxis], tokens)

    def is_done(self, tokens):
        return tf.constant(False)

    def finalize(self, tokens, max_length):
        return tf.reshape(tokens, tf.stack([-1, 2, max_length]))


def test_strategy_seam_supports_more_rows_than_the_batch():
    initial_logits, state = counter_inputs([1, 4], strides=[1, 1])
    tokens = tf.function(
        lambda: decode_with_strategy(
            TwoCopiesSearch(), counter_model(), initial_logits, state, max_length=4, seed=0
        )
    )()
    np.testing.assert_array_equal(
        tokens, [[[1, 2, 3, 4], [1, 3, 5, 7]], [[4, 5, 6, 7], [4, 6, 0, 2]]]
    )


def test_sampler_argument_is_checked():
    initial_logits, state = flat_inputs(batch_size=1)
    with pytest.raises(ValueError, match="top_k"):
        decode(flat_model, initial_logits, state, max_length=2, sampler="nucleus", seed=0)
    with pytest.raises(TypeError, match="sampler"):
        decode(flat_model, initial_logits, state, max_length=2, sampler=3, seed=0)


def test_docstring_examples_run():
    results = doctest.testmod(loop_module, extraglobs={"tf": tf, "rnn_toolkit": rnn_toolkit})
    assert results.attempted > 0 and results.failed == 0
