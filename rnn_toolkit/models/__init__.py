"""Models: each `build_*()` returns a compiled `keras.Model` ready for `fit()`.

A facade over the task folders (`rnn_toolkit.tasks.<task>.model`), where each model
lives with its run, export, client and command-line registration; these names are the
stable public ones. Imports from rnn_toolkit: tasks, training.
"""

from rnn_toolkit.tasks.captioner.model import MAX_CAPTION_LENGTH, Captioner, build_captioner
from rnn_toolkit.tasks.frame_labeller.model import FrameLabeller, build_frame_labeller
from rnn_toolkit.tasks.char_lm.model import MAX_GENERATION_LENGTH, CharLanguageModel, build_char_lm
from rnn_toolkit.tasks.sentiment.model import (
    SentimentClassifier,
    build_bag_of_words_classifier,
    build_sentiment_classifier,
)
from rnn_toolkit.tasks.translator.model import MAX_TRANSLATION_LENGTH, Translator, build_translator
from rnn_toolkit.training.sequence_losses import MaskedSequenceCrossentropy, TokenAccuracy

__all__ = [
    "MAX_CAPTION_LENGTH",
    "Captioner",
    "build_captioner",
    "FrameLabeller",
    "build_frame_labeller",
    "MAX_GENERATION_LENGTH",
    "CharLanguageModel",
    "build_char_lm",
    "SentimentClassifier",
    "build_sentiment_classifier",
    "build_bag_of_words_classifier",
    "MAX_TRANSLATION_LENGTH",
    "MaskedSequenceCrossentropy",
    "TokenAccuracy",
    "Translator",
    "build_translator",
]
