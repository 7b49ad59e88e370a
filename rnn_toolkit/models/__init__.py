"""Models: each `build_*()` returns a compiled `keras.Model` ready for `fit()`."""

from rnn_toolkit.models.char_lm import MAX_GENERATION_LENGTH, CharLanguageModel, build_char_lm

__all__ = ["MAX_GENERATION_LENGTH", "CharLanguageModel", "build_char_lm"]
