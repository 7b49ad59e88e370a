"""Looking inside recurrent networks: how gradients flow back through time, how far back
they remember, and what their units respond to.

The lecture's measurements, taken on the toolkit's own layers (`RecurrentStack`) and
training step (`GradientClippingModel`), never on a copy: vanishing and exploding
gradients and their cures (`gradient_flow`), memory over a controllable lag
(`long_range_memory`), and the units that follow a property of the text (`neurons`,
with the per-character signals of `probes`). Nothing here is needed to train or serve a model.

Imports from rnn_toolkit: arguments, layers, training, data, runs.

Example:

>>> from rnn_toolkit.inspection import spectral_radius
>>> spectral_radius([[0.5, 0.0], [0.0, -0.9]])
0.9
"""

# --- Gradient flow and long-range memory --------------------------------------------------
from rnn_toolkit.inspection.gradient_flow import (
    RecordTable,
    RecurrentClassifier,
    StepHistory,
    build_recurrent_classifier,
    exploding_gradient_histories,
    gradient_norm_curves,
    gradient_ratio_sweep,
    largest_singular_value,
    model_state_gradient_norms,
    scale_recurrent_kernel,
    set_gru_update_bias,
    set_lstm_forget_bias,
    spectral_radius,
    state_gradient_norms,
)
from rnn_toolkit.inspection.long_range_memory import lag_accuracy

__all__ = [
    "RecordTable",
    "RecurrentClassifier",
    "StepHistory",
    "build_recurrent_classifier",
    "exploding_gradient_histories",
    "gradient_norm_curves",
    "gradient_ratio_sweep",
    "lag_accuracy",
    "largest_singular_value",
    "model_state_gradient_norms",
    "scale_recurrent_kernel",
    "set_gru_update_bias",
    "set_lstm_forget_bias",
    "spectral_radius",
    "state_gradient_norms",
]

# --- Neurons and probes ---------------------------------------------------------------------
from rnn_toolkit.inspection import neurons, probes  # noqa: E402
from rnn_toolkit.inspection.neurons import (  # noqa: E402
    Activations,
    activation_html,
    activation_png,
    probe_table,
    rank_units,
    record_activations,
)

__all__ += [
    "Activations",
    "activation_html",
    "activation_png",
    "neurons",
    "probe_table",
    "probes",
    "rank_units",
    "record_activations",
]
