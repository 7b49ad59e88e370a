"""Models: each `build_*()` returns a compiled `keras.Model` ready for `fit()`."""

from rnn_toolkit.models.char_lm import MAX_GENERATION_LENGTH, CharLanguageModel, build_char_lm
from rnn_toolkit.models.sentiment import (
    SentimentClassifier,
    build_bag_of_words_classifier,
    build_sentiment_classifier,
)
from rnn_toolkit.models.translator import (
    MAX_TRANSLATION_LENGTH,
    MaskedSequenceCrossentropy,
    TokenAccuracy,
    Translator,
    build_translator,
)

__all__ = [
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
