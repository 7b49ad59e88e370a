"""Pictures of what a trained model does: attention heatmaps over source words, attention
maps over an image word by word, and a clip's frames with a label per frame (as a filmstrip
or an animated GIF).

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


def plot_frame_labels(frames, labels, *, truth=None, compared=None, title=None, size=1.0, every=1):
    """Draws a clip as a filmstrip with one or more rows of per-frame labels under it.

    What a frame labeller said at every frame, next to the truth: a label that differs from
    the row named `truth` is drawn in red, so a reader sees at a glance where a model is
    wrong (and whether it is wrong at the start, while it has seen little, or later).

    Args:
        frames: the clip's pixels `[time, height, width, 1 or 3]` (or `[time, height,
            width]`) in [0, 255].
        labels: `{row name: a label per frame}` (strings), drawn top to bottom in order.
        truth: the name of the row that holds the true labels, or None.
        compared: the rows checked against `truth` (None: every other row); the rest are
            notes (e.g. whether the frame is occluded), never marked.
        title: an optional title for the figure.
        size: inches per frame.
        every: draw every `every`-th frame only (for long clips).

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.plots import plot_frame_labels
    >>> figure = plot_frame_labels(np.zeros((3, 8, 8)), {"truth": ["a", "b", "b"], "model": ["a", "a", "b"]},
    ...                            truth="truth")
    >>> [text.get_color() for text in figure.axes[1].texts]
    ['black', 'red']
    """
    from matplotlib.figure import Figure

    frames = _as_frames(frames, "frames")
    if not isinstance(labels, dict) or not labels:
        raise ValueError("`labels` must be a non-empty mapping {row name: a label per frame}.")
    rows = {name: _as_labels(values, f"labels[{name!r}]") for name, values in labels.items()}
    for name, values in rows.items():
        if len(values) != len(frames):
            raise ValueError(
                f"`labels[{name!r}]` must hold one label per frame ({len(frames)}); received {len(values)}."
            )
    if truth is not None and truth not in rows:
        raise ValueError(f"`truth` must name a row of `labels` ({', '.join(rows)}); received {truth!r}.")
    compared = [name for name in rows if name != truth] if compared is None else list(compared)
    unknown = [name for name in compared if name not in rows]
    if unknown:
        raise ValueError(f"`compared` must name rows of `labels` ({', '.join(rows)}); received {unknown}.")
    every = max(int(every), 1)
    shown = list(range(0, len(frames), every))
    figure = Figure(figsize=(size * len(shown) + 0.9, size * (1 + 0.22 * len(rows)) + (0.55 if title else 0.2)))
    axes = figure.subplots(1, len(shown), squeeze=False).ravel()
    for ax, t in zip(axes, shown):
        ax.imshow(frames[t], cmap="gray" if frames[t].ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(str(t), fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
        for row, (name, values) in enumerate(rows.items()):
            wrong = truth is not None and name in compared and name != truth and values[t] != rows[truth][t]
            ax.text(0.5, -0.1 - 0.22 * row, values[t], transform=ax.transAxes, ha="center", va="top",
                    fontsize=7, color="red" if wrong else "black")
    for row, name in enumerate(rows):
        axes[0].text(-0.15, -0.1 - 0.22 * row, name, transform=axes[0].transAxes, ha="right", va="top",
                     fontsize=7, style="italic")
    if title:
        figure.suptitle(title, fontsize=9)
    figure.subplots_adjust(left=0.9 / figure.get_figwidth(), right=0.99, wspace=0.08,
                           top=1 - (0.55 if title else 0.2) / figure.get_figheight(),
                           bottom=0.05 + 0.22 * len(rows) * size / figure.get_figheight())
    return figure


def clip_animation(clips, captions=None, *, scale=3, fps=5):
    """An animated GIF of one or more clips side by side, with a caption per frame.

    Notebooks show it with `IPython.display.Image(data=gif)`; it is a few tens of
    kilobytes for a handful of small clips (a matplotlib animation stored as HTML is many
    times larger).

    Args:
        clips: pixels `[time, height, width, channels]` or several clips of one size
            `[clips, time, height, width, channels]` (1 or 3 channels, [0, 255]); shorter
            clips may be passed as a list, they hold their last frame.
        captions: None, or per clip a list of strings, one per frame, written under it.
        scale: each pixel becomes `scale x scale` pixels.
        fps: frames per second.

    Returns:
        The GIF file's bytes.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.plots import clip_animation
    >>> gif = clip_animation(np.zeros((4, 8, 8, 1)), [["a", "b", "c", "d"]], scale=2)
    >>> gif[:6]
    b'GIF89a'
    """
    import io

    from PIL import Image, ImageDraw, ImageFont

    if isinstance(clips, np.ndarray) and clips.ndim in (3, 4) or (
        not isinstance(clips, (list, tuple, np.ndarray))
    ):
        clips = [clips]
    clips = [_as_frames(clip, "clips") for clip in clips]
    if len({clip.shape[1:3] for clip in clips}) != 1:
        raise ValueError(f"`clips` must share one frame size; received {[clip.shape[1:3] for clip in clips]}.")
    if captions is not None:
        if len(captions) != len(clips):
            raise ValueError(f"`captions` must hold one list per clip ({len(clips)}); received {len(captions)}.")
        captions = [_as_labels(c, "captions") for c in captions]
        for clip, caption in zip(clips, captions):
            if len(caption) != len(clip):
                raise ValueError(f"each clip needs one caption per frame ({len(clip)}); received {len(caption)}.")
    scale = max(int(scale), 1)
    height, width = (d * scale for d in clips[0].shape[1:3])
    font = ImageFont.load_default(size=max(10, 4 * scale))
    text_height = 0 if captions is None else 4 * scale + 8
    gap = 4
    canvas_size = (len(clips) * (width + gap) - gap, height + text_height)
    pictures = []
    for t in range(max(len(clip) for clip in clips)):
        canvas = Image.new("RGB", canvas_size, "white")
        draw = ImageDraw.Draw(canvas)
        for k, clip in enumerate(clips):
            frame = clip[min(t, len(clip) - 1)]
            frame = np.repeat(frame[..., None], 3, -1) if frame.ndim == 2 else frame
            picture = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).resize((width, height), Image.NEAREST)
            canvas.paste(picture, (k * (width + gap), 0))
            if captions is not None:
                draw.text((k * (width + gap) + width / 2, height + 3), captions[k][min(t, len(clip) - 1)],
                          fill="black", font=font, anchor="ma")
        pictures.append(canvas.convert("P", palette=Image.ADAPTIVE))
    output = io.BytesIO()
    pictures[0].save(output, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=int(1000 / fps), loop=0)
    return output.getvalue()


def _as_frames(frames, name):
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3) or len(frames) == 0:
        raise ValueError(
            f"`{name}` must be frames [time, height, width] or [time, height, width, 1 or 3] with at least "
            f"one frame; received shape {list(frames.shape)}."
        )
    return frames
