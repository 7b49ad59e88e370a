"""Layers shared by every builder. Layers know nothing of training."""

from rnn_toolkit.layers.recurrent_stack import CELL_TYPES, RecurrentStack, cudnn_conditions

__all__ = ["CELL_TYPES", "RecurrentStack", "cudnn_conditions"]
