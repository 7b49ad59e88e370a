"""The lecture's recurrent cells written from their equations, to check against Keras.

`VanillaRNN`, `LSTM` and `GRU` compute each time step in a few TensorFlow lines that
read like the lecture's equations, with one named weight matrix per gate; their
`from_keras()` copies the weights of a built `keras.layers.SimpleRNN` / `LSTM` / `GRU`
(fused kernels split into the gates). tests/test_cells_equations.py shows that outputs,
states and gradients then agree with the Keras layers to rounding error (~1e-15 in
float64): the equations on the page are what the fast, cuDNN-eligible Keras layers
compute (on a GPU Keras passes the same weights, reordered, to cuDNN). `MinCharRNN` is the
lecture's NumPy min-char-rnn (backpropagation through time by hand), with
`gradient_check()` to verify its gradients.

These are for reading and checking, not for training models: the builders use
`rnn_toolkit.layers.RecurrentStack`.

Imports from rnn_toolkit: arguments, layers.

Example:

>>> import keras
>>> import numpy as np
>>> import rnn_toolkit.cells
>>> layer = keras.layers.GRU(3, return_sequences=True)
>>> x = np.ones((1, 2, 4), "float32")
>>> keras_outputs = layer(x)
>>> outputs, _ = rnn_toolkit.cells.GRU.from_keras(layer).run(x)
>>> np.allclose(outputs, keras_outputs, atol=1e-6)
True
"""

from rnn_toolkit.cells.equations import GRU, LSTM, VanillaRNN
from rnn_toolkit.cells.min_char_rnn import MinCharRNN, MinCharVocabulary, gradient_check

__all__ = [
    "GRU",
    "LSTM",
    "MinCharRNN",
    "MinCharVocabulary",
    "VanillaRNN",
    "gradient_check",
]
