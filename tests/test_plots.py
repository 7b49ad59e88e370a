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
