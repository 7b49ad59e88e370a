"""SavedModel export in the TF Serving layout (`<base>/<name>/<version>/`), raw text in and out.

A facade over the task folders (`rnn_toolkit.tasks.<task>.export`) and the shared
atomic writer (`rnn_toolkit.saved_model`); these names are the stable public ones.
Export depends on models, never the other way round. Imports from rnn_toolkit: saved_model,
tasks.
"""

from rnn_toolkit.saved_model import version_dir, write_saved_model
from rnn_toolkit.tasks.captioner.export import CaptionerServing, export_captioner
from rnn_toolkit.tasks.char_lm.export import CharLMServing, export_char_lm
from rnn_toolkit.tasks.frame_labeller.export import FrameLabellerServing, export_frame_labeller
from rnn_toolkit.tasks.sentiment.export import SentimentServing, export_sentiment
from rnn_toolkit.tasks.translator.export import TranslatorServing, export_translator

__all__ = [
    "CaptionerServing",
    "export_captioner",
    "CharLMServing",
    "FrameLabellerServing",
    "export_frame_labeller",
    "SentimentServing",
    "TranslatorServing",
    "export_char_lm",
    "export_sentiment",
    "export_translator",
    "version_dir",
    "write_saved_model",
]
