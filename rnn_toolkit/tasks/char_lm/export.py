"""Exporting a character language model as a SavedModel that takes and returns raw text.

Signatures (all batched along the first axis; a batch of zero returns empty outputs):

- `serving_default`: `prompt` string [batch] -> `text` string [batch]: the prompt plus
  `default_max_length` characters sampled at `default_temperature` with a fresh seed.
- `generate`: `prompt` string [batch], `max_length` int32, `temperature` float32,
  `top_k` int32, `seed` int32 -> `text` string [batch]. `max_length` is clamped to
  [0, 10000] (0 or negative returns the prompts unchanged); `temperature <= 0` is greedy;
  `top_k <= 0` is off; `seed < 0` draws a fresh seed, otherwise the output is
  reproducible.
- `log_prob`: `text` string [batch] -> `log_prob` float32 [batch] (natural log of the
  probability of every character after the first, summed) and `num_chars` int32 [batch].

Characters unseen in training and bytes that are not UTF-8 map to the unknown id
(generated text never contains it); an empty prompt is read as a newline. The vocabulary
is inside the graph and also written as `assets/vocabulary.json` for other tools (the
form of `rnn_toolkit.data.vocabulary_json`).

Generation runs the XLA-compiled decoding loop (unless exported with
`jit_compile=False`), at the sizes of `rnn_toolkit.tasks.char_lm.model.GENERATION_BUCKETS`:
batches padded to 1, 2, 4, ..., 128 prompts, texts to 256, 1,024, 4,096 or 10,000
characters. `assets.extra/tf_serving_warmup_requests` holds one request per batch size at
the default length, for TF Serving to compile them when it loads the model; other
lengths compile on first use (about a second each on 2 CPU cores), and a batch above 128
runs uncompiled.
"""

import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data.vocabulary_json import write_vocabulary_json
from rnn_toolkit.decoding.compilation import jit_decoding_enabled
from rnn_toolkit.saved_model import version_dir, write_saved_model
from rnn_toolkit.tasks.char_lm.model import GENERATION_BUCKETS


class CharLMServing(tf.Module):
    """The exported module: the model plus its serving functions."""

    def __init__(
        self, model, vocabulary_file, default_max_length, default_temperature, jit_compile
    ):
        super().__init__(name="char_lm_serving")
        self.model = model
        self.jit_compile = jit_compile
        self.vocabulary_file = tf.saved_model.Asset(str(vocabulary_file))
        self.default_max_length = tf.constant(default_max_length, tf.int32)
        self.default_temperature = tf.constant(default_temperature, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def serve(self, prompt):
        text = self.model.generate_tensors(
            prompt, self.default_max_length, self.default_temperature, 0, 1.0, -1,
            jit_compile=self.jit_compile,
        )
        return {"text": text}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]
    )
    def generate(self, prompt, max_length, temperature, top_k, seed):
        text = self.model.generate_tensors(
            prompt, max_length, temperature, top_k, 1.0, seed, jit_compile=self.jit_compile
        )
        return {"text": text}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def log_prob(self, text):
        log_prob, num_chars = self.model.log_prob_tensors(text)
        return {"log_prob": log_prob, "num_chars": num_chars}


def export_char_lm(
    model,
    base_dir="saved_models",
    *,
    name="char_lm",
    version=None,
    overwrite=False,
    default_max_length=200,
    default_temperature=0.8,
    jit_compile=None,
):
    """Exports a `CharLanguageModel` to `<base_dir>/<name>/<version>/`.

    The result loads with `tf.saved_model.load` in a process that has TensorFlow only.

    Args:
        model: a `rnn_toolkit.models.CharLanguageModel` (from `build_char_lm`).
        base_dir: the model base folder, as TF Serving's `--model_base_path` parent.
        name: the model's folder name.
        version: version number; None takes the next free one.
        overwrite: replace an existing version (otherwise `FileExistsError`).
        default_max_length: characters `serving_default` generates.
        default_temperature: sampling temperature of `serving_default`.
        jit_compile: None (the process setting, see `rnn_toolkit.decoding.compilation`),
            True or False: whether the signatures decode in the XLA-compiled loop. False
            for a server without XLA.

    Returns:
        The `pathlib.Path` of the written version folder.

    Example:

    >>> import tempfile, rnn_toolkit
    >>> model = rnn_toolkit.build_char_lm("ab\\n", units=4, embedding_dim=2)
    >>> path = rnn_toolkit.export.export_char_lm(model, tempfile.mkdtemp())
    >>> path.name
    '1'
    """
    if not hasattr(model, "generate_tensors") or not hasattr(model, "log_prob_tensors"):
        raise TypeError(
            f"`model` must be a rnn_toolkit CharLanguageModel; received {type(model).__name__}."
        )
    target = version_dir(base_dir, name, version)
    with tempfile.TemporaryDirectory() as scratch:
        vocabulary_file = write_vocabulary_json(model.vocabulary, Path(scratch) / "vocabulary.json")
        jit_compile = jit_decoding_enabled(jit_compile)
        module = CharLMServing(
            model, vocabulary_file, default_max_length, default_temperature, jit_compile
        )
        signatures = {
            "serving_default": module.serve,
            "generate": module.generate,
            "log_prob": module.log_prob,
        }
        return write_saved_model(
            module,
            target,
            signatures=signatures,
            overwrite=overwrite,
            warmup_requests=warmup_requests(default_max_length) if jit_compile else (),
        )


def warmup_requests(default_max_length):
    """One request per compiled batch size for `serving_default` and `generate`, at the
    default length (`rnn_toolkit.saved_model.encode_warmup_request`)."""
    requests = []
    for batch_size in GENERATION_BUCKETS.batch_sizes:
        prompts = ["\n"] * batch_size
        requests.append(("serving_default", {"prompt": prompts}))
        generate = {"max_length": default_max_length, "temperature": 1.0, "top_k": 0, "seed": 0}
        requests.append(("generate", {"prompt": prompts, **generate}))
    return requests
