"""Pictures of what a trained model does: attention heatmaps for now.

Matplotlib is imported inside each function, not with this module, so `import
rnn_toolkit` (and even `import rnn_toolkit.plots`) stays free of plotting libraries
until a plot is asked for. Install it with the `plot` extra (`pip install
rnn_toolkit[plot]`).
"""

import numpy as np


def plot_attention(source_tokens, target_tokens, weights, ax=None, title=None):
    """Draws attention weights as a heatmap: source words across, generated words down.

    Row i shows how the decoder spread its attention over the source words while it
    produced target token i; each row of a softmax attention adds up to 1. The colour
    scale is fixed to [0, 1], so heatmaps of different sentences compare directly.

    Args:
        source_tokens: the source sentence's tokens (the columns), e.g. the first value
            of `rnn_toolkit.models.Translator.attention_map`.
        target_tokens: the generated tokens (the rows), `[END]` included.
        weights: an array-like `[len(target_tokens), len(source_tokens)]`.
        ax: a matplotlib `Axes` to draw on; None makes a new figure sized to the tokens.
        title: an optional title for the axes.

    Returns:
        The matplotlib `Axes` drawn on (its heatmap is `ax.images[0]`, for a colour
        bar).

    Example:

    >>> from matplotlib.figure import Figure
    >>> from rnn_toolkit.plots import plot_attention
    >>> ax = plot_attention(
    ...     ["the", "house", "."], ["la", "casa", ".", "[END]"],
    ...     [[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9], [0.2, 0.2, 0.6]],
    ...     ax=Figure().add_subplot(), title="the house.")
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['the', 'house', '.']
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['la', 'casa', '.', '[END]']
    >>> ax.images[0].get_array().shape
    (4, 3)
    """
    source_tokens = _as_labels(source_tokens, "source_tokens")
    target_tokens = _as_labels(target_tokens, "target_tokens")
    weights = np.asarray(weights, dtype=np.float32)
    expected = (len(target_tokens), len(source_tokens))
    if weights.shape != expected:
        raise ValueError(
            f"`weights` must have shape [len(target_tokens), len(source_tokens)] = {list(expected)}; "
            f"received shape {list(weights.shape)}."
        )

    if ax is None:
        import matplotlib.pyplot as plt

        # About a third of an inch per token, plus room for the labels.
        size = (1.5 + 0.35 * len(source_tokens), 1.0 + 0.3 * len(target_tokens))
        _, ax = plt.subplots(figsize=size)
    ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source_tokens)), labels=source_tokens, rotation=90)
    ax.set_yticks(range(len(target_tokens)), labels=target_tokens)
    ax.tick_params(length=0)
    ax.set_xlabel("source")
    ax.set_ylabel("generated")
    if title is not None:
        ax.set_title(title)
    return ax


def _as_labels(tokens, name):
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"`{name}` must be a list of tokens, not one {type(tokens).__name__}.")
    return [token.decode("utf-8", "replace") if isinstance(token, bytes) else str(token) for token in tokens]
