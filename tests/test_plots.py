"""Tests for rnn_toolkit.plots: the attention heatmap, drawn off screen (Agg)."""

import ast
import pathlib

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import rnn_toolkit.plots  # noqa: E402
from rnn_toolkit.plots import plot_attention  # noqa: E402

SOURCE = ["in", "the", "beginning", "."]
TARGET = ["en", "el", "principio", ".", "[END]"]
WEIGHTS = np.eye(5, 4) + 0.01


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_labels_shape_and_colour_scale_on_given_axes():
    fig, ax = plt.subplots()
    returned = plot_attention(SOURCE, TARGET, WEIGHTS, ax=ax, title="Genesis 1:1")
    assert returned is ax
    assert [t.get_text() for t in ax.get_xticklabels()] == SOURCE
    assert [t.get_text() for t in ax.get_yticklabels()] == TARGET
    (image,) = ax.images
    # Rows are generated tokens, columns source tokens; a fixed 0..1 scale.
    assert image.get_array().shape == (5, 4)
    np.testing.assert_allclose(image.get_array(), WEIGHTS.astype(np.float32))
    assert image.get_clim() == (0.0, 1.0)
    assert ax.get_title() == "Genesis 1:1"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("source", "generated")


def test_new_figure_grows_with_the_sentence_and_bytes_are_decoded():
    short = plot_attention(["a"], ["b"], [[1.0]])
    long = plot_attention([b"caf\xc3\xa9"] * 30, ["x"] * 20, np.full((20, 30), 1 / 30))
    assert short.figure is not long.figure
    short_size, long_size = short.figure.get_size_inches(), long.figure.get_size_inches()
    assert long_size[0] > short_size[0] and long_size[1] > short_size[1]
    assert long.get_xticklabels()[0].get_text() == "café"
    assert short.get_title() == ""


@pytest.mark.parametrize(
    "source, target, weights, error",
    [
        (SOURCE, TARGET, WEIGHTS.T, ValueError),  # transposed
        (SOURCE, TARGET[:-1], WEIGHTS, ValueError),  # [END] row missing from the labels
        ("in the beginning", TARGET, WEIGHTS, TypeError),  # a string, not tokens
    ],
)
def test_mismatched_inputs_raise(source, target, weights, error):
    with pytest.raises(error, match="source_tokens|weights"):
        plot_attention(source, target, weights)


def test_matplotlib_is_imported_only_inside_the_functions():
    # The light-imports rule: `import rnn_toolkit.plots` must not load matplotlib.
    tree = ast.parse(pathlib.Path(rnn_toolkit.plots.__file__).read_text(encoding="utf-8"))
    top_level = [
        alias.name
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ] + [node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [name for name in top_level if name.startswith("matplotlib")]


def test_frame_labels_mark_wrong_labels_red_and_check_lengths():
    from rnn_toolkit.plots import plot_frame_labels

    frames = np.zeros((4, 6, 6, 1))
    figure = plot_frame_labels(frames, {"truth": list("aabb"), "model": list("abbb")}, truth="truth", every=2)
    assert len(figure.axes) == 2  # frames 0 and 2
    colours = [[text.get_color() for text in ax.texts if text.get_text() in "ab"] for ax in figure.axes]
    assert colours == [["black", "black"], ["black", "black"]]
    figure = plot_frame_labels(frames, {"truth": list("aabb"), "model": list("abbb")}, truth="truth")
    assert [text.get_color() for text in figure.axes[1].texts] == ["black", "red"]
    with pytest.raises(ValueError, match=r"labels\['model'\].*one label per frame \(4\); received 3"):
        plot_frame_labels(frames, {"model": list("abb")})
    figure = plot_frame_labels(frames, {"truth": list("aabb"), "note": list("xxxx"), "model": list("abbb")},
                               truth="truth", compared=["model"])
    assert [text.get_color() for text in figure.axes[1].texts] == ["black", "black", "red"]
    with pytest.raises(ValueError, match="`compared` must name rows"):
        plot_frame_labels(frames, {"truth": list("aabb")}, truth="truth", compared=["model"])
    with pytest.raises(ValueError, match="`truth` must name a row"):
        plot_frame_labels(frames, {"model": list("abbb")}, truth="labels")
    with pytest.raises(ValueError, match="at least one frame"):
        plot_frame_labels(np.zeros((0, 6, 6)), {"model": []})


def test_clip_animation_is_a_gif_with_a_frame_per_step():
    import io

    from PIL import Image

    from rnn_toolkit.plots import clip_animation

    short, long = np.zeros((3, 8, 8, 3)), np.full((5, 8, 8, 3), 255.0)
    gif = clip_animation([short, long], [list("abc"), list("vwxyz")], scale=2, fps=10)
    with Image.open(io.BytesIO(gif)) as image:
        assert image.n_frames == 5  # the short clip holds its last frame
        assert image.size == (2 * 16 + 4, 16 + 16)
        assert image.info["duration"] == 100
    with pytest.raises(ValueError, match="one caption per frame"):
        clip_animation(short, [list("ab")])
    with pytest.raises(ValueError, match="share one frame size"):
        clip_animation([short, np.zeros((3, 4, 4, 3))])


def test_plot_unrolled_graph_draws_one_state_per_step_and_checks_steps():
    from matplotlib.figure import Figure

    from rnn_toolkit.plots import plot_unrolled_graph

    ax = plot_unrolled_graph(5, cell="h, c", backward=False, ax=Figure().add_subplot())
    labels = [text.get_text() for text in ax.texts]
    assert [label for label in labels if label.startswith("$h_")] == [f"$h_{t}$" for t in range(6)]
    assert sum(label.startswith("$x_") for label in labels) == 5
    assert not any("partial" in label for label in labels)  # no gradient path drawn
    for steps in (0, 13, 2.0, True):
        with pytest.raises(ValueError, match="steps"):
            plot_unrolled_graph(steps, ax=Figure().add_subplot())
