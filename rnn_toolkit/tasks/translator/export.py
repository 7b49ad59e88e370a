"""Exporting a translator as a SavedModel that takes raw sentences and returns translations.

Signatures:

- `serving_default`: input `text` (string [batch]) -> output `translation` (string
  [batch]), decoded with the model's default beam search (`DEFAULT_BEAM_WIDTH`,
  length penalty `DEFAULT_LENGTH_PENALTY`) up to twice the source length plus 10 words;
- `translate`: inputs `text`, `beam_width` (int32 scalar, 1 = greedy search; clamped to
  `[1, MAX_BEAM_WIDTH]`) and `max_length` (int32 scalar, the most target words; 0 or
  less means the default, at most `rnn_toolkit.models.MAX_TRANSLATION_LENGTH`) ->
  `translation`.

Tokenization and detokenization happen in the graph with the training vocabularies:
invalid UTF-8 bytes are replaced, an empty sentence is one unknown word, unknown words
map to the unknown id, sources longer than the source vocabulary's `max_length` words
are cut, and a batch of zero sentences returns zero translations. Decoding is one
`tf.while_loop`, so a request costs at most `max_length` decoder steps. The loop runs
XLA-compiled (unless exported with `jit_compile=False`) at the sizes of
`rnn_toolkit.tasks.translator.model.TRANSLATION_BUCKETS` and `SOURCE_BUCKETS`: batches padded
to 1, 2, 4, ..., 128 sentences, sources to 16, 32, 64, ... words, outputs to 128 or 512
words, one compilation per beam width up to 16 (wider beams and batches above 128 run
uncompiled). `assets.extra/tf_serving_warmup_requests` holds one request per batch size
and source length for `serving_default` and for `translate` at beam widths 1 and the
default, which TF Serving replays at load (`rnn_toolkit.saved_model.warm_up` in any
TensorFlow process). The vocabularies
are also written as `assets/source_vocabulary.json` and `assets/target_vocabulary.json`
(the form of `rnn_toolkit.data.vocabulary_json`).
"""

import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data.vocabulary_json import write_vocabulary_json
from rnn_toolkit.decoding.compilation import jit_decoding_enabled
from rnn_toolkit.saved_model import version_dir, write_saved_model
from rnn_toolkit.tasks.translator.model import SOURCE_BUCKETS, TRANSLATION_BUCKETS

DEFAULT_BEAM_WIDTH = 4
DEFAULT_LENGTH_PENALTY = 0.6
MAX_BEAM_WIDTH = 32
"""The widest beam a request may ask for: the work of a step grows with the width."""


class TranslatorServing(tf.Module):
    """The exported module: the translator (with its vocabularies) and two serve functions."""

    def __init__(self, model, asset_files, beam_width, length_penalty, jit_compile):
        super().__init__(name="translator_serving")
        self.model = model
        self.jit_compile = jit_compile
        self.assets = [tf.saved_model.Asset(str(path)) for path in asset_files]
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)

    def _translate(self, text, beam_width, max_length):
        beam_width = tf.clip_by_value(beam_width, 1, MAX_BEAM_WIDTH)
        result = self.model.translate_tensors(
            text,
            beam_width=beam_width,
            max_length=max_length,
            length_penalty=self.length_penalty,
            jit_compile=self.jit_compile,
        )
        return {"translation": result["translation"]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return self._translate(text, tf.constant(self.beam_width, tf.int32), tf.constant(0, tf.int32))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int32, name="beam_width"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def translate(self, text, beam_width, max_length):
        return self._translate(text, beam_width, max_length)


def export_translator(
    model,
    base_dir="saved_models",
    *,
    name="translator",
    version=None,
    overwrite=False,
    beam_width=DEFAULT_BEAM_WIDTH,
    length_penalty=DEFAULT_LENGTH_PENALTY,
    jit_compile=None,
):
    """Exports a `Translator` to `<base_dir>/<name>/<version>/`.

    The result loads with `tf.saved_model.load` in a process that has TensorFlow only,
    and with TF Serving (`--model_base_path=<base_dir>/<name>`).

    Args:
        model: a `rnn_toolkit.models.Translator` (from `build_translator`).
        base_dir: the model base folder.
        name: the model's folder name.
        version: version number; None takes the next free one.
        overwrite: replace an existing version (otherwise `FileExistsError`).
        beam_width: the beam width of `serving_default`.
        length_penalty: the GNMT length-penalty exponent of both signatures.
        jit_compile: None (the process setting, see `rnn_toolkit.decoding.compilation`),
            True or False: whether the signatures decode in the XLA-compiled loop.

    Returns:
        The `pathlib.Path` of the written version folder.

    Example:

    >>> import tempfile, rnn_toolkit
    >>> source = rnn_toolkit.data.WordVocabulary(["hello"])
    >>> target = rnn_toolkit.data.WordVocabulary(["hola"], sequence_markers=True)
    >>> model = rnn_toolkit.build_translator(source, target, units=2, embedding_dim=2)
    >>> path = rnn_toolkit.export.export_translator(model, tempfile.mkdtemp())
    >>> path.name
    '1'
    """
    if not hasattr(model, "translate_tensors") or not hasattr(model, "target_vocabulary"):
        raise TypeError(f"`model` must be a rnn_toolkit Translator; received {type(model).__name__}.")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise ValueError(f"`beam_width` must be an int in [1, {MAX_BEAM_WIDTH}]; received beam_width={beam_width!r}.")
    target = version_dir(base_dir, name, version)
    with tempfile.TemporaryDirectory() as scratch:
        files = [
            write_vocabulary_json(vocabulary, Path(scratch) / f"{side}_vocabulary.json")
            for side, vocabulary in (("source", model.source_vocabulary), ("target", model.target_vocabulary))
        ]
        jit_compile = jit_decoding_enabled(jit_compile)
        module = TranslatorServing(model, files, beam_width, length_penalty, jit_compile)
        signatures = {"serving_default": module.serve, "translate": module.translate}
        requests = warmup_requests(model, beam_width) if jit_compile else ()
        return write_saved_model(
            module, target, signatures=signatures, overwrite=overwrite, warmup_requests=requests
        )


def warmup_requests(model, beam_width):
    """One request per compiled size: every batch size, at every source length bucket up
    to the source vocabulary's `max_length`, for `serving_default` and for `translate`
    at beam width 1 and `beam_width`."""
    longest = model.source_vocabulary.max_length
    lengths = [n for n in SOURCE_BUCKETS if n < longest] + [min(longest, SOURCE_BUCKETS[-1])]
    requests = []
    for batch_size in TRANSLATION_BUCKETS.batch_sizes:
        for length in sorted(set(lengths)):
            text = [" ".join(["."] * length)] * batch_size
            requests.append(("serving_default", {"text": text}))
            for width in sorted({1, beam_width}):
                requests.append(("translate", {"text": text, "beam_width": width, "max_length": 0}))
    return requests
