"""Layers shared by every builder. Layers know nothing of training."""

from rnn_toolkit.layers.bag_of_words import BagOfWords
from rnn_toolkit.layers.recurrent_stack import CELL_TYPES, RecurrentStack, cudnn_conditions
from rnn_toolkit.layers.sequence_pooling import POOLING_METHODS, SequencePooling
from rnn_toolkit.layers.word_dropout import WordDropout

__all__ = [
    "BagOfWords",
    "CELL_TYPES",
    "POOLING_METHODS",
    "RecurrentStack",
    "SequencePooling",
    "WordDropout",
    "cudnn_conditions",
]
