"""rnn_toolkit: recurrent neural networks with Keras 3 and TensorFlow.

`import rnn_toolkit` loads TensorFlow and Keras and nothing else heavy (plotting
libraries load only when a plot is asked for).

Example:

>>> import rnn_toolkit
>>> vocabulary = rnn_toolkit.data.CharVocabulary.from_text("to be or not to be\\n")
>>> model = rnn_toolkit.build_char_lm(vocabulary, units=8, embedding_dim=4)
>>> isinstance(model.generate("to ", max_length=3, seed=0), str)
True
"""

import os

# TensorFlow's C++ INFO/WARNING lines are noise for a library user; set before the first
# `import tensorflow` so it takes effect. An explicit setting of the variable wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnn_toolkit import cells, data, decoding, export, inspection, layers, models, training  # noqa: E402
from rnn_toolkit.models import (  # noqa: E402
    build_captioner,
    build_char_lm,
    build_frame_labeller,
    build_sentiment_classifier,
    build_translator,
)
from rnn_toolkit.training import ClipNormSchedule, ResetCarriedState, SampleText  # noqa: E402

from rnn_toolkit.version import __version__  # noqa: E402

__all__ = [
    "__version__",
    "ClipNormSchedule",
    "ResetCarriedState",
    "SampleText",
    "build_char_lm",
    "build_frame_labeller",
    "build_sentiment_classifier",
    "build_translator",
    "cells",
    "data",
    "decoding",
    "export",
    "inspection",
    "layers",
    "models",
    "training",
]
