"""Recording, ranking and showing the units of a character model (tiny models, fast)."""

import ast
import pathlib
import re

import keras
import numpy as np
import pytest
from PIL import Image

import rnn_toolkit
from rnn_toolkit.inspection import neurons, probes

TEXT = 'ab "ba" ?\nabab\n'  # "?" is not in the vocabulary: it reads as the unknown id


def tiny_model(cell="lstm", num_layers=2, dtype_policy="float32", seed=0):
    keras.utils.set_random_seed(seed)
    return rnn_toolkit.build_char_lm(
        'ab "\n', cell=cell, units=4, num_layers=num_layers, embedding_dim=3, dtype_policy=dtype_policy
    )


@pytest.fixture(scope="module")
def lstm():
    return tiny_model()


# --- record_activations ----------------------------------------------------------------


def test_recording_equals_the_sequence_call_of_every_layer(lstm):
    activations = neurons.record_activations(lstm, TEXT)
    ids = lstm.vocabulary.encode([TEXT]).to_tensor()
    assert 1 in ids.numpy()  # the unknown id is read like any other
    embedded = lstm.embedding(ids)
    # The top layer's output is what the model's own sequence call computes.
    np.testing.assert_allclose(activations["layer1/h"], lstm.recurrent(embedded)[0], atol=1e-5)
    # Layer 0 through its Keras layer; its cell state c at every character as the final
    # state of every prefix (Keras returns c only at the end of a sequence).
    layer0 = lstm.recurrent.recurrent_layers[0]
    sequence, _, _ = layer0(embedded)
    np.testing.assert_allclose(activations["layer0/h"], sequence[0], atol=1e-5)
    cells = [layer0(embedded[:, :length])[2][0] for length in range(1, len(TEXT) + 1)]
    np.testing.assert_allclose(activations["layer0/c"], np.stack(cells), atol=1e-5)
    assert list(activations) == ["layer0/h", "layer0/c", "layer1/h", "layer1/c"]
    assert activations.text == TEXT
    assert all(values.shape == (len(TEXT), 4) and values.dtype == np.float32 for values in activations.values())


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_recording_a_gru_or_vanilla_rnn_has_hidden_states_only(cell):
    model = tiny_model(cell, num_layers=1)
    activations = neurons.record_activations(model, TEXT)
    assert list(activations) == ["layer0/h"]
    ids = model.vocabulary.encode([TEXT]).to_tensor()
    np.testing.assert_allclose(activations["layer0/h"], model.recurrent(model.embedding(ids))[0], atol=1e-5)


def test_chunks_carry_the_state(lstm):
    whole = neurons.record_activations(lstm, TEXT)
    chunked = neurons.record_activations(lstm, TEXT, chunk_length=3)
    for name in whole:
        np.testing.assert_allclose(chunked[name], whole[name], atol=1e-6)


def test_a_mixed_precision_model_is_read_in_float32(lstm):
    mixed = tiny_model(dtype_policy="mixed_bfloat16")
    mixed.set_weights(lstm.get_weights())
    expected = neurons.record_activations(lstm, TEXT)
    for name, values in neurons.record_activations(mixed, TEXT).items():
        np.testing.assert_allclose(values, expected[name], atol=1e-6)


def test_an_empty_text_and_a_bad_text(lstm):
    activations = neurons.record_activations(lstm, "")
    assert [values.shape for values in activations.values()] == [(0, 4)] * 4
    with pytest.raises(TypeError, match="text"):
        neurons.record_activations(lstm, b"ab")
    with pytest.raises(ValueError, match="chunk_length"):
        neurons.record_activations(lstm, "ab", chunk_length=0)


def test_ranking_finds_a_planted_unit():
    """A vanilla RNN whose unit 2 copies "is a vowel" from the embedding comes out on top."""
    keras.utils.set_random_seed(1)
    model = rnn_toolkit.build_char_lm("aeioxyz \n", cell="rnn", units=3, embedding_dim=2, dtype_policy="float32")
    embedding = np.random.default_rng(0).normal(size=(model.vocabulary.size, 2)).astype("float32")
    vowels = [model.vocabulary.characters.index(c) + 2 for c in "aeio"]
    embedding[:, 0] = -1.0
    embedding[vowels, 0] = 1.0
    kernel, recurrent_kernel, bias = model.recurrent.recurrent_layers[0].cell.get_weights()
    kernel[0, 2], kernel[1, 2] = 2.0, 0.0  # unit 2: tanh(2 * vowel feature), no memory
    recurrent_kernel[:, 2] = 0.0
    bias[2] = 0.0
    model.embedding.set_weights([embedding])
    model.recurrent.recurrent_layers[0].cell.set_weights([kernel, recurrent_kernel, bias])

    text = "zoo xyz aie\noxa ye z\n" * 3
    activations = neurons.record_activations(model, text)
    ranked = neurons.rank_units(activations, probes.per_character(text, lambda c: c in "aeio"))
    best = ranked[0]
    assert (best.name, best.layer, best.kind, best.unit) == ("layer0/h", 0, "h", 2)
    assert best.correlation == pytest.approx(1.0, abs=1e-6)
    assert best.threshold_accuracy == 1.0
    assert abs(ranked[1].correlation) < 0.99
    np.testing.assert_array_equal(activations.unit(best), activations["layer0/h"][:, 2])


# --- rank_units on made-up activations -----------------------------------------------


def test_constant_units_score_zero_and_nan_characters_are_left_out():
    probe = np.array([np.nan, 0.0, 1.0, 2.0, 3.0])
    units = np.array(
        [
            [0.7, 5.0, 9.0],
            [0.7, 0.0, 1.0],
            [0.7, -1.0, 1.0],
            [0.7, -2.0, 1.0],
            [0.7, -3.0, 1.0],
        ],
        dtype=np.float32,
    )
    ranked = neurons.rank_units(neurons.Activations("abcde", {"layer0/c": units}), probe)
    assert [(score.unit, score.correlation) for score in ranked] == [(1, pytest.approx(-1.0)), (0, 0.0), (2, 0.0)]
    assert all(score.threshold_accuracy is None for score in ranked)  # not a two-valued probe
    assert not any(np.isnan(score.correlation) for score in ranked)


def test_a_constant_or_empty_probe_is_refused():
    activations = neurons.Activations("abc", {"layer0/h": np.eye(3)})
    with pytest.raises(ValueError, match="constant"):
        neurons.rank_units(activations, [1.0, 1.0, np.nan])
    with pytest.raises(ValueError, match="one value per character"):
        neurons.rank_units(activations, [1.0, 0.0])


def test_ranking_order_sign_layers_and_top():
    probe = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    noise = np.array([0.3, -0.2, 0.1, 0.0, -0.1, 0.2])
    activations = neurons.Activations(
        "abcdef",
        {
            "layer1/h": np.stack([probe + 3 * noise, -probe], axis=1),
            "layer0/c": np.stack([probe, noise], axis=1),
        },
    )
    ranked = neurons.rank_units(activations, probe)
    # Equal scores keep layer, h before c, and unit order: layer0/c 0 before layer1/h 1.
    assert [(s.name, s.unit, round(s.correlation, 6)) for s in ranked[:2]] == [
        ("layer0/c", 0, 1.0),
        ("layer1/h", 1, -1.0),
    ]
    assert [s.name for s in neurons.rank_units(activations, probe, top=3)] == ["layer0/c", "layer1/h", "layer1/h"]


def test_threshold_accuracy_equals_trying_every_threshold():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=40).astype(float)
    units = np.round(rng.normal(size=(40, 6)) + labels[:, None] * rng.normal(size=6), 1)
    units[:, 5] = 2.0  # constant: the majority share
    scores = neurons.rank_units(neurons.Activations("x" * 40, {"layer0/h": units}), labels)
    for score in scores:
        values = units[:, score.unit]
        thresholds = np.concatenate([[-np.inf], np.unique(values)])
        best = max(
            max(np.mean((values > t) == labels), np.mean((values <= t) == labels)) for t in thresholds
        )
        assert score.threshold_accuracy == pytest.approx(best)
    assert scores[-1].threshold_accuracy == pytest.approx(max(labels.mean(), 1 - labels.mean()))


def test_probe_table_lists_the_best_units_of_each_probe():
    text = "ab(c)\nd"
    units = np.stack([probes.bracket_depth(text), probes.position_in_line(text) * -2.0], axis=1)
    activations = neurons.Activations(text, {"layer0/h": units})
    table = neurons.probe_table(
        activations, {"brackets": probes.bracket_depth, "column": probes.position_in_line(text)}, top=2
    )
    assert [(row.probe, row.unit) for row in table] == [("brackets", 0), ("brackets", 1), ("column", 1), ("column", 0)]
    assert table.best("column").correlation == pytest.approx(-1.0)
    assert table.best("brackets").majority_accuracy == pytest.approx(5 / 7)
    assert table.best("column").majority_accuracy is None
    text_table = str(table)
    assert text_table.splitlines()[0].split() == ["probe", "unit", "correlation", "threshold", "accuracy", "majority"]
    assert "layer0/h 1  -1.000" in text_table
    assert table.to_records()[0]["probe"] == "brackets"
    with pytest.raises(KeyError):
        table.best("quotes")


# --- Showing a unit ----------------------------------------------------------------------


def test_html_escapes_every_character_and_keeps_the_lines():
    text = "<a href='x'>&\"\n"
    shown = neurons.activation_html(text, np.linspace(-1, 1, len(text)), title="<unit & 'c'>")
    assert isinstance(shown, str) and shown._repr_html_() == shown
    for raw, escaped in [("<", "&lt;"), (">", "&gt;"), ("&", "&amp;"), ("'", "&#x27;"), ('"', "&quot;")]:
        assert f">{escaped}</span>" in shown
    assert ">'x" not in shown and "<a href" not in shown
    assert "&lt;unit &amp; &#x27;c&#x27;&gt;" in shown
    assert shown.count("\n") == 1 and "</span>\n" in shown


def test_html_colours_run_from_blue_through_white_to_red():
    shown = neurons.activation_html("abc", [-2.0, 0.0, 0.5], limit=1.0, tooltips=False)
    backgrounds = re.findall(r'<span style="background:#(\w+)"', shown)
    assert backgrounds == ["5082eb", "ffffff", "f5a8a2"]  # clipped at -limit; half red
    assert 'title="' not in shown
    assert 'title="-2.000"' in neurons.activation_html("abc", [-2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="one value per character"):
        neurons.activation_html("abc", [1.0])


def test_png_wraps_long_lines_and_saves(tmp_path):
    values = np.ones(25)
    values[0] = -1.0
    one_row = neurons.activation_png("x" * 10, values[:10], line_width=10)
    three_rows = neurons.activation_png("x" * 25, values, tmp_path / "unit.png", line_width=10)
    narrow = neurons.activation_png("x" * 25, values, line_width=5)
    assert three_rows.mode == "RGB"
    assert three_rows.width == one_row.width and narrow.width < three_rows.width
    row_height = (three_rows.height - one_row.height) // 2
    assert row_height > 0 and narrow.height == one_row.height + 4 * row_height
    saved = Image.open(tmp_path / "unit.png")
    assert saved.size == three_rows.size
    # The first cell is blue (-1), the next ones red (+1), at their top left pixel.
    margin = 7  # font_size 14 // 2
    assert three_rows.getpixel((margin + 1, margin + 1)) == (80, 130, 235)
    assert three_rows.getpixel((margin + 1, margin + row_height + 1)) == (235, 80, 70)


def test_png_lines_end_at_newlines_and_title_adds_a_row():
    plain = neurons.activation_png("ab\ncd\n", np.zeros(6))
    titled = neurons.activation_png("ab\ncd\n", np.zeros(6), title="layer0/c 3")
    two_lines = neurons.activation_png("ab\ncd", np.zeros(5))
    assert plain.size == two_lines.size
    assert titled.height > plain.height


def test_plotting_libraries_are_imported_only_inside_the_functions():
    # TensorFlow itself loads Matplotlib and Keras loads Pillow, so `sys.modules` cannot
    # tell; the module's own top-level imports can.
    tree = ast.parse(pathlib.Path(neurons.__file__).read_text(encoding="utf-8"))
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top_level.add(node.module.split(".")[0])
    assert "numpy" in top_level and not top_level & {"PIL", "matplotlib"}


def test_probe_table_chooses_units_on_one_range_and_scores_them_on_another():
    rng = np.random.default_rng(0)
    text = "ab" * 100
    probe = rng.normal(size=200)
    steady = probe + rng.normal(scale=0.5, size=200)  # follows the probe everywhere
    lucky = np.concatenate([probe[:100], rng.normal(size=100)])  # only where it is chosen
    activations = neurons.Activations(text, {"layer0/h": np.stack([steady, lucky], axis=1)})

    table = neurons.probe_table(activations, {"signal": probe}, select=(0, 100), evaluate=(100, 200))
    row = table.best("signal")
    assert row.unit == 1  # the lucky unit wins where it is chosen ...
    assert row.selection_correlation == pytest.approx(1.0)
    assert abs(row.correlation) < 0.3  # ... and the held-out score shows it was luck
    assert "r held out" in str(table)

    warm = neurons.probe_table(activations, {"signal": probe}, select=slice(0, 100), evaluate=slice(100, 200), warmup=10)
    assert warm.best("signal").unit == 1
    with pytest.raises(ValueError, match="go together"):
        neurons.probe_table(activations, {"signal": probe}, select=(0, 100))
    with pytest.raises(ValueError, match="non-empty"):
        neurons.probe_table(activations, {"signal": probe}, select=(50, 50), evaluate=(100, 200))


def test_probe_table_names_the_probes_it_leaves_out():
    text = "ab" * 50
    values = np.arange(100, dtype=float)
    activations = neurons.Activations(text, {"layer0/h": np.stack([values, -values], axis=1)})
    only_in_first_half = np.concatenate([np.arange(50) % 2, np.zeros(50)])
    table = neurons.probe_table(
        activations, {"ramp": values, "first_half_only": only_in_first_half}, select=(0, 50), evaluate=(50, 100)
    )
    assert table.probes() == ["ramp"] and table.skipped == ["first_half_only"]
    assert str(table).endswith("left out (constant on a range, nothing to follow): first_half_only")
