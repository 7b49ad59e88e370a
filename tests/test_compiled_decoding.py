"""Tests for the XLA-compiled decoding loop: equal results, bucketing, the switch, export."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit
from rnn_toolkit.decoding import (
    DecodingBuckets,
    beam_search,
    decode,
    jit_decoding,
    jit_decoding_enabled,
    pad_axis_to_bucket,
    sample_logits,
    set_jit_decoding,
    uniform_noise,
)
from rnn_toolkit.decoding.compilation import JIT_ENVIRONMENT_VARIABLE
from rnn_toolkit.saved_model import WARMUP_FILE, read_warmup_requests, warm_up

VOCAB_SIZE = 11
UNITS = 16
END_ID = 1


class TinyLanguageModel:
    """A seeded GRU cell language model: enough arithmetic for XLA to round differently."""

    def __init__(self, seed=0):
        keras.utils.set_random_seed(seed)
        self.embedding = keras.layers.Embedding(VOCAB_SIZE, 8)
        self.cell = keras.layers.GRUCell(UNITS)
        self.head = keras.layers.Dense(VOCAB_SIZE)
        self.embedding.build((None,))
        self.cell.build((None, 8))
        self.head.build((None, UNITS))
        # Sharper logits than at initialisation, so that rows end at different steps.
        self.head.kernel.assign(self.head.kernel * 6.0)

    def step(self, ids, state):
        output, new_state = self.cell(self.embedding(ids), state)
        return self.head(output), new_state[0] if isinstance(new_state, list) else new_state

    def inputs(self, batch_size):
        state = tf.random.stateless_normal([batch_size, UNITS], seed=[batch_size, 7])
        first_logits, state = self.step(tf.fill([batch_size], 2), state)
        return first_logits, state


@pytest.fixture(scope="module")
def tiny():
    return TinyLanguageModel()


def run(tiny, batch_size, jit_compile, buckets=None, **options):
    """Decodes inside a tf.function, as every generator of the toolkit does."""
    first_logits, state = tiny.inputs(batch_size)
    beam_width = options.pop("beam_width", None)

    @tf.function
    def generate(first_logits, state):
        if beam_width is not None:
            return beam_search(
                tiny.step, first_logits, state, beam_width=beam_width, end_id=END_ID,
                jit_compile=jit_compile, buckets=buckets, **options,
            )
        return decode(
            tiny.step, first_logits, state, end_id=END_ID, jit_compile=jit_compile,
            buckets=buckets, **options,
        )

    return [t.numpy() for t in generate(first_logits, state)]


def assert_same(first, second):
    """Tokens and lengths equal; beam scores equal to float rounding (XLA may sum in
    another order)."""
    for a, b in zip(first, second):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-5)
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize(
    "options",
    [
        {"sampler": "greedy", "seed": 0},
        {"sampler": "temperature", "seed": 5},
        {"sampler": lambda logits, seed: sample_logits(
            logits, seed, temperature=tf.constant(0.7), top_k=tf.constant(4)), "seed": 9},
        {"sampler": "top_p", "seed": 3},
        {"beam_width": 3},
        {"beam_width": 2, "return_all_beams": True, "length_penalty": 0.0},
    ],
    ids=["greedy", "temperature", "tensor-top-k", "top-p", "beam", "all-beams"],
)
def test_compiled_loop_gives_the_uncompiled_results(tiny, batch_size, options):
    uncompiled = run(tiny, batch_size, jit_compile=False, max_length=40, **dict(options))
    compiled = run(tiny, batch_size, jit_compile=True, max_length=40, **dict(options))
    assert_same(uncompiled, compiled)
    assert compiled[0].shape[0] == batch_size and compiled[0].shape[-1] == 40
    # Rows end at different steps: the padding and early exit are exercised.
    lengths = compiled[1]
    assert len(np.unique(lengths)) > 1 or batch_size == 1


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 2.0, -0.5])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_beam_search_stopping_early_keeps_the_full_search_result(tiny, length_penalty, jit_compile):
    """Settled rows stop early (and leave the compiled batch): the best beam is unchanged."""
    options = dict(beam_width=3, max_length=40, length_penalty=length_penalty)
    tokens, lengths = run(tiny, 7, jit_compile, **options)
    full_tokens, full_lengths, _ = run(tiny, 7, False, return_all_beams=True, **options)
    np.testing.assert_array_equal(tokens, full_tokens[:, 0])
    np.testing.assert_array_equal(lengths, full_lengths[:, 0])


def test_a_row_does_not_depend_on_its_batch(tiny):
    """Padding rows to a bucket and the noise per row leave every row's draw alone."""
    first_logits, state = tiny.inputs(5)

    @tf.function
    def generate(first_logits, state):
        return decode(
            tiny.step, first_logits, state, max_length=30, sampler="temperature", seed=4,
            end_id=END_ID, jit_compile=True,
        )

    tokens, _ = generate(first_logits, state)
    for rows in (1, 2, 3):
        fewer, _ = generate(first_logits[:rows], state[:rows])
        np.testing.assert_array_equal(fewer.numpy(), tokens.numpy()[:rows])


def test_sizes_outside_the_buckets_run_uncompiled(tiny):
    small = DecodingBuckets(batch_sizes=(1, 2), lengths=(8,), max_beam_width=2)
    for batch_size, max_length, beam_width in [(3, 8, None), (2, 9, None), (2, 8, 3)]:
        options = {"beam_width": beam_width} if beam_width else {"sampler": "greedy", "seed": 0}
        expected = run(tiny, batch_size, False, max_length=max_length, **options)
        compiled = run(tiny, batch_size, True, small, max_length=max_length, **options)
        assert_same(expected, compiled)


def test_max_length_zero_and_empty_batches(tiny):
    tokens, lengths = run(tiny, 2, True, max_length=0, sampler="greedy", seed=0)
    assert tokens.shape == (2, 0) and lengths.tolist() == [0, 0]
    tokens, lengths = run(tiny, 0, True, max_length=5, sampler="greedy", seed=0)
    assert tokens.shape == (0, 5) and lengths.shape == (0,)
    tokens, lengths = run(tiny, 0, True, max_length=5, beam_width=2)
    assert tokens.shape == (0, 5)


def _compiled_functions(concrete_function):
    """Names of the functions of a traced graph that XLA must compile."""
    library = concrete_function.graph.as_graph_def().library.function
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


def _traced(tiny, jit_compile=None):
    first_logits, state = tiny.inputs(2)

    @tf.function
    def generate(first_logits, state):
        return decode(tiny.step, first_logits, state, max_length=5, sampler="greedy", seed=0,
                      jit_compile=jit_compile)

    return generate.get_concrete_function(first_logits, state)


def test_the_switch(tiny, monkeypatch):
    assert _compiled_functions(_traced(tiny))
    assert not _compiled_functions(_traced(tiny, jit_compile=False))
    with jit_decoding(False):
        assert not jit_decoding_enabled()
        assert not _compiled_functions(_traced(tiny))
        assert _compiled_functions(_traced(tiny, jit_compile=True))
    assert jit_decoding_enabled()
    monkeypatch.setenv(JIT_ENVIRONMENT_VARIABLE, "0")
    assert not _compiled_functions(_traced(tiny))
    set_jit_decoding(True)
    try:
        assert _compiled_functions(_traced(tiny))
    finally:
        set_jit_decoding(None)
    monkeypatch.setenv(JIT_ENVIRONMENT_VARIABLE, "maybe")
    with pytest.raises(ValueError, match=JIT_ENVIRONMENT_VARIABLE):
        jit_decoding_enabled()
    with pytest.raises(TypeError, match="jit_compile"):
        jit_decoding_enabled("yes")


def test_eager_calls_run_uncompiled_unless_asked(tiny):
    first_logits, state = tiny.inputs(2)
    eager = decode(tiny.step, first_logits, state, max_length=6, sampler="temperature", seed=1)
    forced = decode(tiny.step, first_logits, state, max_length=6, sampler="temperature", seed=1,
                    jit_compile=True)
    assert_same([t.numpy() for t in eager], [t.numpy() for t in forced])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_sizes": ()}, "batch_sizes"),
        ({"batch_sizes": (4, 2)}, "increasing"),
        ({"lengths": (0, 8)}, "lengths"),
        ({"max_beam_width": 0}, "max_beam_width"),
    ],
)
def test_bad_buckets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecodingBuckets(**kwargs)


def test_bad_buckets_argument(tiny):
    with pytest.raises(TypeError, match="buckets"):
        run(tiny, 1, True, buckets=(1, 2), max_length=3, sampler="greedy", seed=0)


def test_pad_axis_to_bucket():
    ids = tf.ones([2, 5], tf.int32)
    assert pad_axis_to_bucket(ids, 1, (4, 8)).numpy().tolist() == [[1] * 5 + [0] * 3] * 2
    assert pad_axis_to_bucket(ids, 1, (2, 3)).shape == (2, 5)  # longer than every bucket
    assert pad_axis_to_bucket(ids, 0, (4,)).shape == (4, 5)


def test_uniform_noise_is_uniform_and_the_sampler_follows_softmax():
    noise = uniform_noise(tf.constant([3, 4]), [200_000]).numpy()
    assert 0 < noise.min() and noise.max() < 1
    counts, _ = np.histogram(noise, bins=10, range=(0, 1))
    assert np.all(np.abs(counts / 20_000 - 1) < 0.03)
    probabilities = np.array([0.5, 0.25, 0.15, 0.1])
    logits = tf.math.log(tf.constant([probabilities] * 40_000, tf.float32))
    ids = sample_logits(logits, tf.constant([1, 2])).numpy()
    np.testing.assert_allclose(np.bincount(ids, minlength=4) / 40_000, probabilities, atol=0.01)
    # Steps of the loop get different seeds, hence different draws.
    assert not np.array_equal(
        sample_logits(logits[:50], tf.constant([1, 2])), sample_logits(logits[:50], tf.constant([1, 3]))
    )


# --- Models and SavedModels ------------------------------------------------------------------


@pytest.fixture(scope="module")
def char_model():
    return rnn_toolkit.build_char_lm("abcdefgh \n", units=16, embedding_dim=4, cell="gru")


def test_generate_is_the_same_with_and_without_compilation(char_model):
    prompts = ["ab", "", "hhh"]
    results = {}
    for jit in (False, True):
        with jit_decoding(jit):
            results[jit] = [
                char_model.generate(prompts, max_length=60, sampler="greedy"),
                char_model.generate(prompts, max_length=60, sampler="top_k", top_k=3, seed=2),
                char_model.generate(prompts, max_length=60, seed=8, end_character="\n"),
            ]
    assert results[True] == results[False]


def test_translate_is_the_same_with_and_without_compilation():
    """In mixed_bfloat16, where XLA would round the step differently: it runs in float32."""
    source = rnn_toolkit.data.WordVocabulary(["a", "b", "c", "d"])
    target = rnn_toolkit.data.WordVocabulary(["x", "y", "z"], sequence_markers=True)
    model = rnn_toolkit.build_translator(
        source, target, units=8, embedding_dim=4, dtype_policy="mixed_bfloat16"
    )
    policies = [layer.dtype_policy.name for layer in model._flatten_layers()]
    texts = ["a b c", "d", "", "a a a a a a a a a a a a a a a a a a b"]
    results = {}
    for jit in (False, True):
        with jit_decoding(jit):
            results[jit] = [
                model.translate(texts, beam_width=3, max_length=12),
                model.translate(texts, beam_width=1),
                model.translate(texts, sampler="temperature", seed=3),
            ]
    assert results[True] == results[False]
    # The float32 step put every layer's policy back, and training keeps its fused layers.
    assert [layer.dtype_policy.name for layer in model._flatten_layers()] == policies
    assert "mixed_bfloat16" in policies
    stacks = [layer for layer in model._flatten_layers() if hasattr(layer, "cudnn_eligible")]
    assert stacks and all(stack.cudnn_eligible for stack in stacks)


def test_exported_char_lm_warm_up_requests(char_model, tmp_path):
    path = rnn_toolkit.export.export_char_lm(char_model, tmp_path / "on")
    requests = read_warmup_requests(path)
    batch_sizes = rnn_toolkit.tasks.char_lm.model.GENERATION_BUCKETS.batch_sizes
    assert len(requests) == 2 * len(batch_sizes)
    assert {name for name, _ in requests} == {"serving_default", "generate"}
    assert sorted({inputs["prompt"].shape[0] for _, inputs in requests}) == list(batch_sizes)
    loaded = tf.saved_model.load(str(path))
    timings = warm_up(path, loaded)
    assert len(timings) == len(requests)
    signature = loaded.signatures["generate"]
    graph = signature.graph.as_graph_def()
    assert any(f.attr["_XlaMustCompile"].b for f in graph.library.function)

    off = rnn_toolkit.export.export_char_lm(char_model, tmp_path / "off", jit_compile=False)
    assert not (off / WARMUP_FILE).exists()
    assert warm_up(off) == []
    graph = tf.saved_model.load(str(off)).signatures["generate"].graph.as_graph_def()
    assert not any(f.attr["_XlaMustCompile"].b for f in graph.library.function)


def test_warm_up_file_is_what_tf_serving_reads(tmp_path):
    """The hand-written records parse with TF Serving's own protos, when they are installed."""
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    from rnn_toolkit.saved_model import encode_warmup_request

    record = encode_warmup_request("generate", {"prompt": ["a", "b"], "max_length": 7})
    log = prediction_log_pb2.PredictionLog.FromString(record)
    assert log.predict_log.request.model_spec.signature_name == "generate"
    assert tf.make_ndarray(log.predict_log.request.inputs["max_length"]) == 7


def test_compiled_saved_model_in_a_fresh_plain_tensorflow_process(char_model, tmp_path):
    path = rnn_toolkit.export.export_char_lm(char_model, tmp_path)
    expected = char_model.generate(["ab", "c"], max_length=50, sampler="temperature", temperature=0.8, seed=5)
    code = f"""
import sys, tensorflow as tf
m = tf.saved_model.load({str(path)!r})
out = m.signatures["generate"](prompt=tf.constant(["ab", "c"]), max_length=tf.constant(50),
    temperature=tf.constant(0.8), top_k=tf.constant(0), seed=tf.constant(5))["text"]
print("|".join(t.decode() for t in out.numpy()).replace(chr(10), "~"))
assert "rnn_toolkit" not in sys.modules
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().split("|") == [t.replace("\n", "~") for t in expected]


def test_exported_translator_warm_up_requests(tmp_path):
    source = rnn_toolkit.data.WordVocabulary(["a", "b"], max_length=40)
    target = rnn_toolkit.data.WordVocabulary(["x", "y"], sequence_markers=True)
    model = rnn_toolkit.build_translator(source, target, units=4, embedding_dim=4)
    path = rnn_toolkit.export.export_translator(model, tmp_path, beam_width=3)
    requests = read_warmup_requests(path)
    batch_sizes = rnn_toolkit.tasks.translator.model.TRANSLATION_BUCKETS.batch_sizes
    # Sources of 16, 32 and 40 words (the vocabulary's max_length): buckets 16, 32 and 64.
    lengths = sorted({len(inputs["text"][0].split()) for _, inputs in requests})
    assert lengths == [16, 32, 40]
    assert len(requests) == len(batch_sizes) * len(lengths) * 3
    widths = {int(inputs["beam_width"]) for name, inputs in requests if name == "translate"}
    assert widths == {1, 3}
    loaded = tf.saved_model.load(str(path))
    name, inputs = requests[0]
    outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
    assert outputs["translation"].shape == (1,)
