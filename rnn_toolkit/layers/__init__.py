"""Layers shared by every builder. Layers know nothing of training.

Imports from rnn_toolkit: arguments, precision, data, decoding, layers.
"""

from rnn_toolkit.layers.attention_decoder import AttentionDecoder
from rnn_toolkit.layers.bag_of_words import BagOfWords
from rnn_toolkit.layers.grid_positions import GRID_POSITION_CODES, GridPositions, sinusoidal_grid_code
from rnn_toolkit.layers.image_encoders import (
    ENCODER_NAMES,
    efficientnet_lite0,
    image_encoder,
    imagenet_class_names,
    small_cnn,
)
from rnn_toolkit.layers.recurrent_stack import CELL_TYPES, RecurrentStack, cudnn_conditions
from rnn_toolkit.layers.sequence_pooling import POOLING_METHODS, SequencePooling
from rnn_toolkit.layers.source_attention import ATTENTION_SCORES, SourceAttention
from rnn_toolkit.layers.word_dropout import WordDropout

__all__ = [
    "ATTENTION_SCORES",
    "AttentionDecoder",
    "BagOfWords",
    "CELL_TYPES",
    "ENCODER_NAMES",
    "GRID_POSITION_CODES",
    "GridPositions",
    "POOLING_METHODS",
    "RecurrentStack",
    "SequencePooling",
    "SourceAttention",
    "WordDropout",
    "cudnn_conditions",
    "efficientnet_lite0",
    "image_encoder",
    "imagenet_class_names",
    "sinusoidal_grid_code",
    "small_cnn",
]
