"""The position code of a feature grid: every cell distinct, fixed or learned, saved with its model."""

import keras
import numpy as np
import pytest

from rnn_toolkit.layers import GridPositions, sinusoidal_grid_code


def test_every_cell_of_the_sinusoidal_code_is_distinct_and_on_the_grids_scale():
    code = sinusoidal_grid_code(7, 7, 1280)
    cells = code.reshape(49, 1280)
    assert len({cell.tobytes() for cell in cells}) == 49
    assert np.abs(code).max() <= 1.0 + 1e-6
    # Rows in the first half of the channels, columns in the second.
    np.testing.assert_array_equal(code[0, :, :640], np.repeat(code[0, :1, :640], 7, axis=0))
    np.testing.assert_array_equal(code[:, 0, 640:], np.repeat(code[:1, 0, 640:], 7, axis=0))
    assert sinusoidal_grid_code(3, 5, 7).shape == (3, 5, 7)  # odd channel counts too


@pytest.mark.parametrize("code", ["sinusoidal", "learned", "none"])
def test_the_code_is_added_to_the_grid(code):
    layer = GridPositions(code)
    grid = np.random.default_rng(0).uniform(0, 6, (2, 4, 3, 8)).astype("float32")
    placed = layer(grid).numpy()
    expected = grid if code == "none" else grid + sinusoidal_grid_code(4, 3, 8)[None]
    np.testing.assert_allclose(placed, expected, rtol=1e-6)
    assert len(layer.trainable_weights) == (1 if code == "learned" else 0)


def test_a_learned_code_trains_and_is_saved(tmp_path):
    model = keras.Sequential([keras.Input((2, 2, 4)), GridPositions("learned")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(np.zeros((4, 2, 2, 4)), np.ones((4, 2, 2, 4)), epochs=2, verbose=0)
    table = model.layers[0].table.numpy()
    assert not np.allclose(table, sinusoidal_grid_code(2, 2, 4))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.layers[0].table.numpy(), table)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`code`"):
        GridPositions("absolute")
    with pytest.raises(ValueError, match="`amplitude`"):
        GridPositions(amplitude=0)
    with pytest.raises(ValueError, match="known height"):
        GridPositions().build((None, None, None, 8))
