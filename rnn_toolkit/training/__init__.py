"""Training: gradient clipping by global norm, masked sequence losses, and the callbacks
every builder shares.

Imports from rnn_toolkit: data, decoding, training (never a model: callbacks call the
methods a model offers, such as `generate`).
"""

from rnn_toolkit.training.callbacks import (
    ClipNormSchedule,
    KeepBestWeights,
    ResetCarriedState,
    SampleText,
    ScoreGenerations,
)
from rnn_toolkit.training.gradient_clipping import GradientClippingModel, clip_scale, global_norm
from rnn_toolkit.training.sequence_losses import MaskedSequenceCrossentropy, TokenAccuracy, compile_sequence_model

__all__ = [
    "ClipNormSchedule",
    "GradientClippingModel",
    "KeepBestWeights",
    "MaskedSequenceCrossentropy",
    "ResetCarriedState",
    "SampleText",
    "ScoreGenerations",
    "TokenAccuracy",
    "compile_sequence_model",
    "clip_scale",
    "global_norm",
]
