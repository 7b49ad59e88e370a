"""SavedModel export in the TF Serving layout (`<base>/<name>/<version>/`), raw text in and out.

Export depends on models, never the other way round.
"""

from rnn_toolkit.export.char_lm import CharLMServing, export_char_lm
from rnn_toolkit.export.saved_model import version_dir, write_saved_model
from rnn_toolkit.export.sentiment import SentimentServing, export_sentiment
from rnn_toolkit.export.translator import TranslatorServing, export_translator

__all__ = [
    "CharLMServing",
    "SentimentServing",
    "TranslatorServing",
    "export_char_lm",
    "export_sentiment",
    "export_translator",
    "version_dir",
    "write_saved_model",
]
