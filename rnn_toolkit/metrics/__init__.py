"""Evaluation metrics computed outside the graph: sacreBLEU for translation, BLEU-1..4 and
CIDEr-D (the COCO caption evaluation's scorers) for captioning.

Imports from rnn_toolkit: metrics.
"""

from rnn_toolkit.metrics.captioning import caption_scores, caption_tokens
from rnn_toolkit.metrics.translation import bleu_by_source_length, corpus_scores

__all__ = ["bleu_by_source_length", "caption_scores", "caption_tokens", "corpus_scores"]
