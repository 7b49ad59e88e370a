"""Evaluation metrics computed outside the graph (sacreBLEU for translation).

Imports from rnn_toolkit: metrics.
"""

from rnn_toolkit.metrics.translation import bleu_by_source_length, corpus_scores

__all__ = ["bleu_by_source_length", "corpus_scores"]
