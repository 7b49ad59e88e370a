"""Pictures of what a trained model does: attention heatmaps over source words, and
attention maps over an image, word by word.

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


def plot_image_attention(image, words, weights, *, columns=5, size=2.2, title=None):
    """Overlays a captioner's attention maps on its image, one panel per generated word.

    The lecture's figure of soft attention: each map (a softmax over the encoder's grid,
    e.g. 7 x 7) is stretched over the image with bilinear smoothing and drawn as a
    translucent white veil that is clear where the model looked.

    Args:
        image: the pixels the model read, `[S, S, 3]` in [0, 255] (e.g.
            `model.pixels([path])[0]`).
        words: the generated words, `[END]` included (the first value of
            `rnn_toolkit.models.Captioner.attention_maps`).
        weights: array-like `[len(words), h, w]`.
        columns: panels per row (the image itself comes first).
        size: inches per panel.
        title: an optional title for the figure.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.plots import plot_image_attention
    >>> weights = np.full((2, 3, 3), 1 / 9)
    >>> figure = plot_image_attention(np.zeros((24, 24, 3)), ["cat", "[END]"], weights)
    >>> [ax.get_title() for ax in figure.axes][:3]
    ['image', 'cat (0.11)', '[END] (0.11)']
    """
    from matplotlib.figure import Figure

    words = _as_labels(words, "words")
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 3 or weights.shape[0] != len(words):
        raise ValueError(
            f"`weights` must have shape [len(words), h, w] = [{len(words)}, h, w]; received "
            f"shape {list(weights.shape)}."
        )
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 255) / 255.0
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`image` must be RGB pixels [S, S, 3]; received shape {list(image.shape)}.")
    panels = len(words) + 1
    rows = -(-panels // columns)
    figure = Figure(figsize=(size * columns, size * rows + (0.4 if title else 0)))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    height, width = image.shape[:2]
    extent = (0, width, height, 0)
    for ax in axes:
        ax.set_axis_off()
    axes[0].imshow(image, extent=extent)
    axes[0].set_title("image")
    for ax, word, weight in zip(axes[1:], words, weights):
        # Scaled per map so that its peak is fully clear: the maps of a confident word
        # and of a diffuse one are both readable (the title gives the peak's weight).
        veil = 1.0 - weight / max(float(weight.max()), 1e-8)
        ax.imshow(image, extent=extent)
        ax.imshow(veil, cmap="gray_r", vmin=0, vmax=1, alpha=0.75, extent=extent,
                  interpolation="bilinear")
        ax.set_title(f"{word} ({weight.max():.2f})")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def _as_labels(tokens, name):
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"`{name}` must be a list of tokens, not one {type(tokens).__name__}.")
    return [token.decode("utf-8", "replace") if isinstance(token, bytes) else str(token) for token in tokens]
