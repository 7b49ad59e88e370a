"""Pictures of what a trained model does: attention heatmaps over source words, attention
maps over an image word by word, and a clip's frames with a label per frame (as a filmstrip
or an animated GIF); and of the lecture's explanations: the unrolled graph, gradient norms
through time, memory against the lag, training with and without clipping.

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


# --- Gradient flow and long-range memory ---------------------------------------------------
# Pictures of `rnn_toolkit.inspection`'s measurements. Each takes plain numbers (arrays,
# dicts, lists of records), so this module still imports nothing from rnn_toolkit.


def _new_axes(ax, size=(6.0, 4.0)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def _positive_or_nan(values):
    """Values for a log axis: an underflowed 0 (or a non-finite value) is left out, not
    drawn at minus infinity."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def plot_gradient_norms(curves, ax=None, title=None):
    """Draws ||dL/dh_t|| against the distance in time from the loss, one line per
    configuration, on a log scale: vanishing is a line going down to the right.

    Args:
        curves: `{name: norms}`, where `norms` is an array `[T + 1]` indexed by t (the
            state after t inputs, the loss at step T), or a dict of such arrays (as
            `rnn_toolkit.inspection.state_gradient_norms` returns: `"h"` is drawn solid,
            `"c"` dashed in the same colour).
        ax: a matplotlib `Axes` to draw on; None makes a new figure.
        title: an optional title.

    Returns:
        The matplotlib `Axes` (one line per curve; norms that underflowed to 0 are left
        out).

    Example:

    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from rnn_toolkit.plots import plot_gradient_norms
    >>> ax = plot_gradient_norms({"RNN": 0.9 ** np.arange(5)[::-1],
    ...                           "LSTM": {"h": np.ones(5), "c": np.ones(5)}}, ax=Figure().add_subplot())
    >>> [line.get_label() for line in ax.get_lines()], ax.get_yscale()
    (['RNN', 'LSTM h', 'LSTM c'], 'log')
    >>> ax.get_lines()[0].get_xdata().tolist()  # distance from the loss
    [4, 3, 2, 1, 0]
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("`curves` must be a non-empty mapping {name: norms}.")
    ax = _new_axes(ax)
    for index, (name, norms) in enumerate(curves.items()):
        colour = f"C{index}"
        # A dict of one state (a vanilla RNN's or GRU's "h") needs no state in its label.
        parts = list(norms.items()) if isinstance(norms, dict) else [(None, norms)]
        if len(parts) == 1:
            parts = [(None, parts[0][1])]
        for state, values in parts:
            values = np.ravel(np.asarray(values, dtype=np.float64))
            distance = len(values) - 1 - np.arange(len(values))
            ax.plot(distance, _positive_or_nan(values), color=colour,
                    linestyle="--" if state == "c" else "-",
                    label=name if state is None else f"{name} {state}")
    cell_states = any(isinstance(norms, dict) and "c" in norms and len(norms) > 1 for norms in curves.values())
    ax.set_yscale("log")
    ax.set_xlabel("distance from the loss T - t (steps)")
    ax.set_ylabel("||dL/dh_t||" + (" (dashed: ||dL/dc_t||)" if cell_states else "") + ", mean over the batch")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_gradient_ratios(records, x="spectral_radius", ax=None, title=None):
    """Draws the ratio ||dL/dh_0|| / ||dL/dh_T|| against the recurrent weights' scale, one
    line per lag T, on a log scale, with the ratio 1 (neither vanishing nor exploding)
    dotted.

    Args:
        records: dicts with the key `x`, `"lag"` and `"ratio_h"`, as
            `rnn_toolkit.inspection.gradient_ratio_sweep` returns (records whose `x` is
            None, e.g. the LSTM's, are skipped).
        x: the record key on the horizontal axis: `"spectral_radius"` or
            `"singular_value"`.
        ax: a matplotlib `Axes` to draw on; None makes a new figure.
        title: an optional title.

    Returns:
        The matplotlib `Axes` (one line per lag, then the dotted line at 1).

    Example:

    >>> from matplotlib.figure import Figure
    >>> from rnn_toolkit.plots import plot_gradient_ratios
    >>> records = [{"spectral_radius": r, "lag": T, "ratio_h": r ** T} for T in (5, 10) for r in (0.8, 1.2)]
    >>> ax = plot_gradient_ratios(records, ax=Figure().add_subplot())
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['T = 5', 'T = 10']
    """
    kept = [record for record in records if record.get(x) is not None]
    if not kept:
        raise ValueError(f"`records` has no record with a value for {x!r}.")
    ax = _new_axes(ax)
    for lag in sorted({record["lag"] for record in kept}):
        points = sorted((record[x], record["ratio_h"]) for record in kept if record["lag"] == lag)
        values, ratios = zip(*points)
        ax.plot(values, _positive_or_nan(ratios), marker="o", label=f"T = {lag}")
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel(x.replace("_", " ") + " of W_hh")
    ax.set_ylabel("||dL/dh_0|| / ||dL/dh_T||")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax


_LAG_MARKERS = ("o", "s", "^", "D", "v", "P")
_LAG_LINESTYLES = ("-", "--", "-.", ":")


def plot_lag_accuracy(records, ax=None, title=None):
    """Draws held-out accuracy against the lag T, one line per cell, with chance dashed.

    Several records of one cell and lag (runs with different seeds) are drawn as faint
    dots, and the line goes through their mean.

    Args:
        records: dicts with `"cell"`, `"lag"`, `"accuracy"` and optionally `"chance"`,
            as `rnn_toolkit.inspection.lag_accuracy` returns (from one or more seeds).
            A cell named `"rnn"`, `"lstm"` or `"gru"` is labelled in capitals; any
            other name (say, `"LSTM, forget bias 1"`) as it is.
        ax: a matplotlib `Axes` to draw on; None makes a new figure.
        title: an optional title.

    Returns:
        The matplotlib `Axes` (one line per cell, in the records' order, then chance).

    Example:

    >>> from matplotlib.figure import Figure
    >>> from rnn_toolkit.plots import plot_lag_accuracy
    >>> records = [{"cell": c, "lag": T, "accuracy": a, "chance": 0.25}
    ...            for c, accuracies in {"rnn": (1.0, 0.3), "lstm": (1.0, 1.0)}.items()
    ...            for T, a in zip((5, 50), accuracies)]
    >>> ax = plot_lag_accuracy(records, ax=Figure().add_subplot())
    >>> [line.get_label() for line in ax.get_lines()]
    ['RNN', 'LSTM', 'chance']
    """
    if not records:
        raise ValueError("`records` is empty: nothing to draw.")
    ax = _new_axes(ax)
    cells = list(dict.fromkeys(record["cell"] for record in records))
    for index, cell in enumerate(cells):
        by_lag = {}
        for record in records:
            if record["cell"] == cell:
                by_lag.setdefault(record["lag"], []).append(record["accuracy"])
        lags = sorted(by_lag)
        colour = f"C{index}"
        if any(len(values) > 1 for values in by_lag.values()):
            ax.scatter([lag for lag in lags for _ in by_lag[lag]], [v for lag in lags for v in by_lag[lag]],
                       color=colour, alpha=0.35, s=14)
        # Cells often score the same (1.0 at short lags): markers, line styles and widths
        # that differ keep a line drawn over another one visible.
        ax.plot(lags, [float(np.mean(by_lag[lag])) for lag in lags], color=colour,
                marker=_LAG_MARKERS[index % len(_LAG_MARKERS)], markersize=9 - 1.2 * (index % 4),
                linestyle=_LAG_LINESTYLES[index % len(_LAG_LINESTYLES)], linewidth=2.6 - 0.5 * (index % 4),
                label=str(cell).upper() if str(cell).lower() in ("rnn", "lstm", "gru") else str(cell))
    chances = {record["chance"] for record in records if record.get("chance") is not None}
    if chances:
        ax.axhline(min(chances), color="gray", linestyle="--", linewidth=1, label="chance")
    lags = sorted({record["lag"] for record in records})
    ax.set_xscale("log")
    ax.set_xticks(lags, labels=[str(lag) for lag in lags])
    ax.minorticks_off()
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("lag T (steps between the symbol and the answer)")
    ax.set_ylabel("held-out accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_clipping_histories(histories, title=None, smoothing=1):
    """Draws the training loss and the pre-clip gradient norm, step by step, of runs with
    and without clipping: two panels side by side, one line per run in each.

    Args:
        histories: `{run name: {"loss": [...], "grad_norm": [...], "clip_norm": float or
            None}}`, as `rnn_toolkit.inspection.exploding_gradient_histories` returns; a
            run's clipping threshold is drawn dotted in the gradient panel.
        title: an optional title for the figure.
        smoothing: draw the loss as a moving average over this many steps (1: raw).

    Returns:
        The matplotlib `Figure` (its axes: loss, gradient norm).

    Example:

    >>> from rnn_toolkit.plots import plot_clipping_histories
    >>> figure = plot_clipping_histories({
    ...     "no clipping": {"loss": [1.4, 1.6, 2.0], "grad_norm": [1.0, 30.0, 8.0], "clip_norm": None},
    ...     "clip 1": {"loss": [1.4, 1.2, 0.9], "grad_norm": [1.0, 30.0, 2.0], "clip_norm": 1.0}})
    >>> [ax.get_ylabel() for ax in figure.axes]
    ['training loss', 'gradient norm before clipping']
    """
    from matplotlib.figure import Figure

    if not isinstance(histories, dict) or not histories:
        raise ValueError("`histories` must be a non-empty mapping {run name: history}.")
    smoothing = max(int(smoothing), 1)
    figure = Figure(figsize=(11.0, 4.0))
    loss_ax, norm_ax = figure.subplots(1, 2)
    for index, (name, history) in enumerate(histories.items()):
        colour = f"C{index}"
        loss = np.asarray(history["loss"], dtype=np.float64)
        if smoothing > 1 and len(loss) >= smoothing:
            loss = np.convolve(loss, np.ones(smoothing) / smoothing, mode="valid")
            steps = np.arange(smoothing, smoothing + len(loss))
        else:
            steps = np.arange(1, len(loss) + 1)
        loss_ax.plot(steps, loss, color=colour, label=name)
        norms = np.asarray(history["grad_norm"], dtype=np.float64)
        norm_ax.plot(np.arange(1, len(norms) + 1), _positive_or_nan(norms), color=colour, label=name,
                     linewidth=0.9)
        if history.get("clip_norm"):
            norm_ax.axhline(history["clip_norm"], color=colour, linestyle=":", linewidth=1.2,
                            label=f"{name}: threshold")
    loss_ax.set_xlabel("training step")
    loss_ax.set_ylabel("training loss")
    if smoothing > 1:
        loss_ax.set_title(f"moving average over {smoothing} steps", fontsize=9)
    norm_ax.set_xlabel("training step")
    norm_ax.set_ylabel("gradient norm before clipping")
    norm_ax.set_yscale("log")
    for ax in (loss_ax, norm_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_unrolled_graph(steps=4, *, cell="h", backward=True, ax=None, title=None):
    """Draws a recurrent network unrolled in time: the graph backpropagation goes through.

    Column t holds the input x_t (bottom), the state h_t (middle) and the output y_t with
    its loss L_t (top). Every state arrow h_{t-1} -> h_t is the SAME matrix W_hh and every
    input arrow the same W_xh: unrolling copies the graph, never the weights. With
    `backward=True` the gradient's path from the last loss back to h_0 is drawn in red: it
    crosses one W_hh (and one tanh') per step, which is why its size behaves like a power
    of W_hh.

    Args:
        steps: how many time steps to draw (1 to 12).
        cell: the state's letter in the boxes (`"h"`; for an LSTM, `"h, c"`).
        backward: draw the gradient path from the last loss back to the first state.
        ax: a matplotlib `Axes`; None makes a new figure.
        title: an optional title.

    Returns:
        The matplotlib `Axes` drawn on (one text label per box in `ax.texts`).

    Example:

    >>> from matplotlib.figure import Figure
    >>> from rnn_toolkit.plots import plot_unrolled_graph
    >>> ax = plot_unrolled_graph(3, ax=Figure().add_subplot())
    >>> sorted(t.get_text() for t in ax.texts if t.get_text().startswith("$h"))
    ['$h_0$', '$h_1$', '$h_2$', '$h_3$']
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 12:
        raise ValueError(f"`steps` must be an integer from 1 to 12; received steps={steps!r}.")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(1.6 * (steps + 1) + 0.8, 4.0))
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    gap = 1.6  # horizontal distance between time steps, room for the W_hh labels

    def box(x, y, label, colour):
        x = x * gap
        ax.add_patch(FancyBboxPatch((x - 0.32, y - 0.22), 0.64, 0.44, boxstyle="round,pad=0.04",
                                    facecolor=colour, edgecolor="0.25", linewidth=1.0))
        ax.text(x, y, label, ha="center", va="center", fontsize=12)

    def arrow(start, end, label=None, colour="0.25", style="-|>", offset=(0.0, 0.0), **kwargs):
        start, end = (start[0] * gap, start[1]), (end[0] * gap, end[1])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12,
                                     color=colour, linewidth=1.3, shrinkA=16, shrinkB=16, **kwargs))
        if label:
            ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1],
                    label, ha="center", va="center", fontsize=9, color=colour)

    state = cell.split(",")[0].strip() if cell else "h"
    box(0, 1, f"${state}_0$", "#e8e8e8")
    for t in range(1, steps + 1):
        box(t, 0, f"$x_{t}$", "#dbe9f6")
        box(t, 1, f"${state}_{t}$", "#fde9c9")
        box(t, 2, f"$y_{t}$", "#e2f0d9")
        box(t, 2.85, f"$L_{t}$", "#f4d7d7")
        arrow((t, 0), (t, 1), "$W_{xh}$", offset=(0.2, 0.0))
        arrow((t - 1, 1), (t, 1), "$W_{hh}$", offset=(0.0, -0.13))
        arrow((t, 1), (t, 2), "$W_{hy}$", offset=(0.2, 0.0))
        arrow((t, 2), (t, 2.85), None)
    if backward:
        for t in range(steps, 0, -1):
            arrow((t, 1), (t - 1, 1), None, colour="#c0392b", style="-|>",
                  connectionstyle="arc3,rad=0.45", linestyle="--")
        ax.text(steps * gap / 2, -0.55, r"$\partial L / \partial h_{t-1} = W_{hh}^\top\,"
                r"\mathrm{diag}(1 - h_t^2)\,\partial L / \partial h_t$ (+ the loss at $t-1$)",
                ha="center", va="center", fontsize=9, color="#c0392b")
    ax.set_xlim(-0.6, steps * gap + 0.6)
    ax.set_ylim(-0.8 if backward else -0.45, 3.25)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax
