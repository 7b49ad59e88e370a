"""Where a feature-grid cell is: a position code added to a CNN's grid before attention.

A convolutional encoder's grid `[batch, h, w, c]` says *what* is at each cell, and only
weakly *where*: a content-based attention (Bahdanau's additive score) weighs cells by
what their vectors hold, so a decoder that must say "left of" or "above" has nothing to
read the side from once the context vector is a weighted sum. Adding a code of the row
and the column to every cell (as transformers do for word positions, and DETR or ViT for
image patches) lets the score ask for a place and the context carry it.

Two codes:
- `"sinusoidal"`: fixed sines and cosines of the row in the first half of the channels,
  of the column in the second (Vaswani et al., 2017, per axis); no weights, any grid size.
- `"learned"`: one trainable vector per cell (`h * w * c` weights), starting from the
  sinusoidal code so that it is useful from the first step.
"""

import keras
import numpy as np
import tensorflow as tf

GRID_POSITION_CODES = ("sinusoidal", "learned", "none")


def sinusoidal_grid_code(height, width, channels, amplitude=1.0):
    """float32 `[height, width, channels]`: sines and cosines of the row in the first half
    of the channels, of the column in the second (wavelengths from 2 pi to 200 pi cells).

    Example:

    >>> import rnn_toolkit
    >>> code = rnn_toolkit.layers.sinusoidal_grid_code(7, 7, 8)
    >>> code.shape, float(abs(code).max()) <= 1.0
    ((7, 7, 8), True)
    """
    half = channels // 2
    quarter = max(half // 2, 1)
    frequencies = 1.0 / (100.0 ** (np.arange(quarter) / quarter))

    def axis(count):
        angles = np.arange(count)[:, None] * frequencies[None, :]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # [count, 2 * quarter]

    rows = np.repeat(axis(height)[:, None, :], width, axis=1)
    columns = np.repeat(axis(width)[None, :, :], height, axis=0)
    code = np.concatenate([rows[..., :half], columns], axis=-1)[..., :channels]
    if code.shape[-1] < channels:  # an odd channel count: the last channel carries nothing
        code = np.pad(code, [(0, 0), (0, 0), (0, channels - code.shape[-1])])
    return (amplitude * code).astype(np.float32)


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class GridPositions(keras.layers.Layer):
    """Adds a code of each cell's row and column to a feature grid `[batch, h, w, c]`.

    Args:
        code: `"sinusoidal"` (fixed), `"learned"` (trainable, one vector per cell,
            initialised to the sinusoidal code) or `"none"` (the grid passes unchanged).
        amplitude: the sinusoidal code's largest value (EfficientNet-Lite0's grid holds
            ReLU6 outputs in [0, 6]: 1 is on their scale).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> import rnn_toolkit
    >>> layer = rnn_toolkit.layers.GridPositions("sinusoidal")
    >>> grid = np.zeros((2, 3, 3, 4), np.float32)
    >>> placed = layer(grid).numpy()
    >>> bool((placed[:, 0, 0] != placed[:, 0, 2]).any())  # left and right cells differ
    True
    """

    def __init__(self, code="sinusoidal", amplitude=1.0, **kwargs):
        super().__init__(**kwargs)
        if code not in GRID_POSITION_CODES:
            raise ValueError(
                f"`code` must be one of {GRID_POSITION_CODES}; received code={code!r}."
            )
        if not float(amplitude) > 0:
            raise ValueError(f"`amplitude` must be > 0; received amplitude={amplitude!r}.")
        self.code = code
        self.amplitude = float(amplitude)
        self.table = None

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        if None in (height, width, channels):
            raise ValueError(
                f"GridPositions needs a grid of known height, width and channels; received "
                f"shape {tuple(input_shape)}."
            )
        initial = sinusoidal_grid_code(height, width, channels, self.amplitude)
        if self.code == "learned":
            self.table = self.add_weight(
                name="table", shape=initial.shape,
                initializer=keras.initializers.Constant(initial), trainable=True,
            )
        elif self.code == "sinusoidal":
            self.table = initial  # a NumPy constant: made a tensor in whichever graph calls
        self.grid_shape = (height, width, channels)
        self.built = True

    def call(self, grid):
        if self.code == "none":
            return grid
        table = tf.cast(tf.convert_to_tensor(self.table), grid.dtype)
        grid = tf.ensure_shape(grid, [None, *self.grid_shape])
        return grid + table[tf.newaxis]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(code=self.code, amplitude=self.amplitude)
        return config
