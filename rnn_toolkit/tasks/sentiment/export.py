"""Exporting a sentiment classifier as a SavedModel that takes raw text and returns labels.

Signature `serving_default` (also under the name `classify`):

- input `text`: string [batch], raw review text (any length; bytes that are not UTF-8
  are replaced, never rejected);
- outputs `label`: string [batch], the predicted class name; `probabilities`: float32
  [batch, classes], in the order of `assets/labels.json`; `class_id`: int32 [batch]; and
  for a model trained with the score-regression head, `score`: float32 [batch].

Tokenization happens inside the graph with the training vocabulary: an empty text is
one unknown word, a text longer than the vocabulary's `max_length` words is truncated
(head or tail as trained), and a batch of zero texts returns empty outputs. The
vocabulary and class names are also written as `assets/vocabulary.json` (the form of
`rnn_toolkit.data.vocabulary_json`) and `assets/labels.json` for other tools.
"""

import json
import tempfile
from pathlib import Path

import tensorflow as tf

from rnn_toolkit.data.vocabulary_json import write_vocabulary_json
from rnn_toolkit.saved_model import version_dir, write_saved_model


class SentimentServing(tf.Module):
    """The exported module: the classifier (with its vocabulary) and one serve function."""

    def __init__(self, model, vocabulary_file, labels_file):
        super().__init__(name="sentiment_serving")
        self.model = model
        self.vocabulary_file = tf.saved_model.Asset(str(vocabulary_file))
        self.labels_file = tf.saved_model.Asset(str(labels_file))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return self.model.classify_tensors(text)


def export_sentiment(model, base_dir="saved_models", *, name="sentiment", version=None, overwrite=False):
    """Exports a `SentimentClassifier` to `<base_dir>/<name>/<version>/`.

    The result loads with `tf.saved_model.load` in a process that has TensorFlow only,
    and with TF Serving (`--model_base_path=<base_dir>/<name>`).

    Args:
        model: a `rnn_toolkit.models.SentimentClassifier` (from
            `build_sentiment_classifier`).
        base_dir: the model base folder.
        name: the model's folder name.
        version: version number; None takes the next free one.
        overwrite: replace an existing version (otherwise `FileExistsError`).

    Returns:
        The `pathlib.Path` of the written version folder.

    Example:

    >>> import tempfile, rnn_toolkit
    >>> vocabulary = rnn_toolkit.data.WordVocabulary(["good", "bad"])
    >>> model = rnn_toolkit.build_sentiment_classifier(vocabulary, units=2, embedding_dim=2)
    >>> path = rnn_toolkit.export.export_sentiment(model, tempfile.mkdtemp())
    >>> path.name
    '1'
    """
    if not hasattr(model, "classify_tensors") or not hasattr(model, "class_names"):
        raise TypeError(
            f"`model` must be a rnn_toolkit SentimentClassifier; received {type(model).__name__}."
        )
    target = version_dir(base_dir, name, version)
    with tempfile.TemporaryDirectory() as scratch:
        vocabulary_file = write_vocabulary_json(model.vocabulary, Path(scratch) / "vocabulary.json")
        labels_file = Path(scratch) / "labels.json"
        labels_file.write_text(
            json.dumps({"class_names": list(model.class_names), "head": model.head_type}),
            encoding="utf-8",
        )
        module = SentimentServing(model, vocabulary_file, labels_file)
        signatures = {"serving_default": module.serve, "classify": module.serve}
        return write_saved_model(module, target, signatures=signatures, overwrite=overwrite)
