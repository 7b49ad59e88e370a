"""Training: gradient clipping by global norm and the callbacks every builder shares."""

from rnn_toolkit.training.callbacks import (
    ClipNormSchedule,
    KeepBestWeights,
    ResetCarriedState,
    SampleText,
)
from rnn_toolkit.training.gradient_clipping import GradientClippingModel, clip_scale, global_norm

__all__ = [
    "ClipNormSchedule",
    "GradientClippingModel",
    "KeepBestWeights",
    "ResetCarriedState",
    "SampleText",
    "clip_scale",
    "global_norm",
]
