"""Interpretable neurons: record every unit of a character model, rank units by a probe,
and show a unit's activation over the text.

The lecture's finding (Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding
Recurrent Networks", 2015): in a character LSTM trained on text, a few single cells
follow a property of the text, such as being inside a quotation, the position in the
line or the depth of indentation. The steps to find them:

1. `record_activations(model, text)` runs the model over a text one character at a
   time from a zero state and keeps every hidden unit (`h`) and, for an LSTM, every
   cell unit (`c`) of every layer at every character;
2. `rank_units(activations, probe)` ranks the units by how well they follow a probe
   signal (`rnn_toolkit.inspection.probes`), and `probe_table` lists the best unit of
   each probe;
3. `activation_html` (for a notebook) and `activation_png` (a picture) colour every
   character by one unit's activation, blue for negative and red for positive.

The model is duck-typed: anything with a `vocabulary` (a `CharVocabulary`), an
`embedding` layer and a `recurrent` `RecurrentStack`, as `rnn_toolkit.build_char_lm`
builds. Pillow and Matplotlib (for the font) load only inside `activation_png`.

Imports from rnn_toolkit: arguments, inspection, runs.

Example:

>>> import rnn_toolkit
>>> from rnn_toolkit.inspection import neurons
>>> model = rnn_toolkit.build_char_lm("ab\\n", units=4, embedding_dim=2, dtype_policy="float32")
>>> activations = neurons.record_activations(model, "abba\\nab")
>>> sorted(activations), activations["layer0/c"].shape
(['layer0/c', 'layer0/h'], (7, 4))
>>> best = neurons.rank_units(activations, [0, 0, 0, 0, 1, 1, 1])[0]
>>> best.name in activations and 0.0 <= abs(best.correlation) <= 1.0
True
"""

import collections
import html
import math
import re

import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.inspection.probes import as_probe, standard_probes
from rnn_toolkit.runs.tables import format_table

# Long texts are run in chunks of this many characters, the state carried from one to
# the next: one traced loop serves every length, and each call stays short.
DEFAULT_CHUNK_LENGTH = 4096

# The end colours of the diverging scale (RGB): light enough that black text stays
# readable on the strongest activations.
_NEGATIVE_RGB = np.array([80, 130, 235], dtype=np.float64)
_POSITIVE_RGB = np.array([235, 80, 70], dtype=np.float64)
_WHITE_RGB = np.array([255, 255, 255], dtype=np.float64)
_MISSING_RGB = np.array([225, 225, 225], dtype=np.float64)

_NAME = re.compile(r"layer(\d+)/(\w+)")

# Units per block when scoring thresholds (bounds the memory to ~50 MB at 10k characters).
_UNITS_PER_BLOCK = 128


class Activations(collections.abc.Mapping):
    """The recorded units of a model over a text: a read-only mapping of name -> array.

    Names are `"layer<i>/h"` (the hidden state, i.e. the layer's output) and, for an
    LSTM, `"layer<i>/c"` (the cell state), layers counted from 0 at the input. Each
    array is float32 `[len(text), units]`: row t holds the state after reading
    character t.

    Args:
        text: the text the model read.
        arrays: a dict from name to array `[len(text), units]`.

    Raises:
        ValueError: if a name is not of the form `layer<i>/<kind>` or an array does not
            have one row per character.

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.inspection.neurons import Activations
    >>> activations = Activations("ab", {"layer0/h": np.array([[0.5, -1.0], [0.25, 1.0]])})
    >>> activations.unit("layer0/h", 1).tolist()
    [-1.0, 1.0]
    """

    def __init__(self, text, arrays):
        self.text = text
        self._arrays = {}
        for name, values in arrays.items():
            _parse_name(name)
            values = np.asarray(values, dtype=np.float32)
            if values.ndim != 2 or values.shape[0] != len(text):
                raise ValueError(
                    f"`arrays[{name!r}]` must have shape [len(text)={len(text)}, units]; "
                    f"received shape {values.shape}."
                )
            self._arrays[name] = values
        # Layer by layer, h before c: the order reports and ties use.
        self._arrays = dict(sorted(self._arrays.items(), key=lambda item: _name_order(item[0])))

    def __getitem__(self, name):
        return self._arrays[name]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def unit(self, name, unit=None):
        """One unit's activation at every character, float32 `[len(text)]`.

        Args:
            name: a name such as `"layer0/c"`, or a `UnitScore` (then `unit` is its own).
            unit: the unit's index in that array.

        Returns:
            The unit's column of the array.
        """
        if isinstance(name, UnitScore):
            name, unit = name.name, name.unit
        if unit is None:
            raise ValueError("`unit` is required unless `name` is a UnitScore.")
        return self._arrays[name][:, unit]

    def slice(self, start, stop):
        """The recording over `text[start:stop]` only (the states as they were recorded:
        read from the start of the whole text, not from zeros at `start`)."""
        return Activations(self.text[start:stop], {name: values[start:stop] for name, values in self.items()})

    def __repr__(self):
        shapes = ", ".join(f"{name}: {list(values.shape)}" for name, values in self.items())
        return f"Activations({len(self.text)} characters; {shapes})"


def record_activations(model, text, *, chunk_length=DEFAULT_CHUNK_LENGTH):
    """Runs a character model over `text` from a zero state and records every unit.

    The model reads the text one character at a time, as it does when generating,
    inside one traced `tf.scan` over `model.recurrent.step` (over ten times faster than
    a Python loop calling `model.step` per character: benchmarks/interpretable_neurons.py).
    It computes in float32 with the float32 weights whatever the training precision. Characters the vocabulary does
    not hold are read as the model reads them: as its unknown id.

    Args:
        model: a character language model, e.g. from `rnn_toolkit.build_char_lm`: it
            needs `vocabulary` (with `encode`), `embedding` (a `keras.layers.Embedding`)
            and `recurrent` (a unidirectional `rnn_toolkit.layers.RecurrentStack`).
        text: the text to read, a string.
        chunk_length: characters per traced call; the state is carried across chunks,
            so the result does not depend on it.

    Returns:
        An `Activations` mapping `"layer<i>/h"` (and `"layer<i>/c"` for an LSTM) to
        float32 arrays `[len(text), units]`, with the text as `.text`.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `chunk_length` is not a positive integer, or the vocabulary
            splits the text into a different number of characters (lone surrogates).

    Example:

    >>> import rnn_toolkit
    >>> from rnn_toolkit.inspection.neurons import record_activations
    >>> model = rnn_toolkit.build_char_lm("xy", units=3, cell="gru", num_layers=2)
    >>> record_activations(model, "xyz")
    Activations(3 characters; layer0/h: [3, 3], layer1/h: [3, 3])
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string; received {type(text).__name__}.")
    chunk_length = check_positive_int("chunk_length", chunk_length)
    recurrent = model.recurrent
    initial = [
        [tf.zeros([1, int(state.shape[-1])], tf.float32) for state in layer]
        for layer in recurrent.get_initial_state(1)
    ]
    kinds = ("h", "c") if len(initial[0]) == 2 else ("h",)
    names = [f"layer{layer}/{kind}" for layer in range(len(initial)) for kind in kinds]
    ids = model.vocabulary.encode(text)
    if int(ids.shape[0]) != len(text):
        raise ValueError(
            f"the vocabulary split the text into {int(ids.shape[0])} characters, not "
            f"{len(text)} (a lone surrogate?)."
        )
    pieces = {name: [] for name in names}
    function = _record_function(model, initial)
    states = initial
    for start in range(0, len(text), chunk_length):
        stacked = function(ids[start:start + chunk_length], states)
        for layer, layer_states in enumerate(stacked):
            for kind, values in zip(kinds, layer_states):
                pieces[f"layer{layer}/{kind}"].append(values[:, 0, :].numpy())
        states = [[values[-1] for values in layer] for layer in stacked]
    arrays = {
        name: np.concatenate(chunks) if chunks else np.zeros((0, int(initial[0][0].shape[-1])))
        for name, chunks in pieces.items()
    }
    return Activations(text, arrays)


def _record_function(model, initial):
    """The traced scan that reads ids `[time]` from a state, cached on the model."""
    # In the model's `__dict__` directly, as the model caches its own traced functions:
    # set as an attribute, Keras' tracking would walk it.
    cache = model.__dict__.setdefault("_record_activations_cache", {})
    key = tuple(tuple(int(s.shape[-1]) for s in layer) for layer in initial)
    if key not in cache:
        state_spec = [[tf.TensorSpec(s.shape, tf.float32) for s in layer] for layer in initial]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), state_spec])
        def record(ids, states):
            # The float32 table itself, for the whole chunk at once: `Embedding.call`
            # would round the vectors to a mixed-precision policy's 16 bits.
            embedded = tf.gather(tf.cast(model.embedding.embeddings, tf.float32), ids)

            def advance(states, inputs):
                _, new_states = model.recurrent.step(inputs[None, :], states, full_precision=True)
                return new_states

            return tf.scan(advance, embedded, initializer=states)

        cache[key] = record
    return cache[key]


UnitScore = collections.namedtuple(
    "UnitScore", "name layer kind unit correlation threshold_accuracy"
)
UnitScore.__doc__ = """How well one unit follows a probe.

`name` is the activations' key (`"layer0/c"`), `layer` its layer, `kind` `"h"` or
`"c"`, `unit` the index in that array. `correlation` is the Pearson correlation of the
unit with the probe over the characters used, with its sign (0.0 for a unit that never
changes); for a probe of two values, `threshold_accuracy` is the share of characters the
best single threshold on the unit classifies right (in either direction), else None.
"""


def rank_units(activations, probe, *, top=None):
    """Ranks every recorded unit by the absolute correlation of its activation with a probe.

    Args:
        activations: an `Activations` from `record_activations`.
        probe: one value per character of `activations.text` (see
            `rnn_toolkit.inspection.probes`), or a function of the text returning them.
            Characters whose value is NaN are left out, e.g. the first ones, while a
            unit is still settling from the zero state.
        top: keep only the best `top` units (None: all).

    Returns:
        A list of `UnitScore`, best (largest absolute correlation) first; ties keep
        layer, then `h` before `c`, then unit order.

    Raises:
        ValueError: if the probe does not have one value per character, has fewer than
            two values that are not NaN, or is constant (nothing can follow it).

    Example:

    >>> import numpy as np
    >>> from rnn_toolkit.inspection.neurons import Activations, rank_units
    >>> probe = np.array([0.0, 1.0, 1.0, 0.0])
    >>> units = np.stack([np.full(4, 0.3), -probe, probe + [0.0, 0.2, 0.0, 0.2]], axis=1)
    >>> for score in rank_units(Activations("abcd", {"layer0/h": units}), probe):
    ...     print(score.unit, round(score.correlation, 3), score.threshold_accuracy)
    1 -1.0 1.0
    2 0.981 1.0
    0 0.0 0.5
    """
    probe = as_probe(activations.text, probe)
    top = check_positive_int("top", top, allow_none=True)
    used = ~np.isnan(probe)
    target = probe[used]
    if target.size < 2 or np.ptp(target) == 0:
        raise ValueError(
            "the probe must take at least two different values on the characters used "
            "(those not NaN); a constant probe has nothing to follow."
        )
    levels = np.unique(target)
    binary = (target == levels[-1]).astype(np.float64) if levels.size == 2 else None
    target_centred = target - target.mean()
    target_norm = math.sqrt(float(target_centred @ target_centred))

    records = []
    for name, values in activations.items():
        layer, kind = _parse_name(name)
        values = values[used].astype(np.float64)
        centred = values - values.mean(axis=0)
        norms = np.sqrt(np.einsum("tu,tu->u", centred, centred))
        # A unit that never changes follows nothing; its rounding noise must not score.
        constant = np.ptp(values, axis=0) == 0
        safe_norms = np.where(constant, 1.0, norms * target_norm)
        correlations = np.where(constant, 0.0, (target_centred @ centred) / safe_norms)
        correlations = np.clip(correlations, -1.0, 1.0)
        accuracies = None
        if binary is not None:
            # In blocks of units: the sort keeps several `[time, units]` arrays alive.
            accuracies = np.concatenate(
                [
                    _threshold_accuracies(values[:, start:start + _UNITS_PER_BLOCK], binary)
                    for start in range(0, values.shape[1], _UNITS_PER_BLOCK)
                ]
                or [np.zeros(0)]
            )
        for unit, correlation in enumerate(correlations):
            accuracy = None if accuracies is None else float(accuracies[unit])
            records.append(UnitScore(name, layer, kind, unit, float(correlation), accuracy))
    # Python's sort is stable: equal scores keep the activations' (layer, kind, unit) order.
    records.sort(key=lambda record: -abs(record.correlation))
    return records if top is None else records[:top]


def _threshold_accuracies(values, labels):
    """Per unit, the best accuracy of `value > t` (or `value <= t`) predicting `labels`.

    `values` is `[time, units]`, `labels` `[time]` of zeros and ones. Every threshold
    between two distinct sorted values is tried (and below and above all of them).
    """
    count = len(labels)
    order = np.argsort(values, axis=0, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=0)
    # Positives among the k + 1 smallest values, for k = 0 .. count - 1.
    positives_below = np.cumsum(labels[order], axis=0)
    below = np.arange(1, count + 1)[:, None]
    total_positives = labels.sum()
    # "value > t means 1" with t between sorted k and k + 1: the k + 1 below say 0.
    correct = (below - positives_below) + (total_positives - positives_below)
    # A threshold can only fall between two different values (and after the last one).
    splittable = np.ones_like(sorted_values, dtype=bool)
    splittable[:-1] = sorted_values[:-1] < sorted_values[1:]
    correct = np.where(splittable, correct, -1)
    best_up = np.maximum(correct.max(axis=0), total_positives)  # t below all: all say 1
    worst_up = np.minimum(np.where(splittable, correct, count + 1).min(axis=0), total_positives)
    # The flipped rule gets right exactly what the other gets wrong.
    return np.maximum(best_up, count - worst_up) / count


ProbeRow = collections.namedtuple(
    "ProbeRow",
    "probe name layer kind unit correlation threshold_accuracy majority_accuracy selection_correlation",
    defaults=(None,),
)
ProbeRow.__doc__ = """One probe's ranked unit in a `ProbeTable`.

The `UnitScore` fields, after `probe` (its name), and `majority_accuracy`: for a probe
of two values, the accuracy of always answering its more common value (what
`threshold_accuracy` must beat), else None. When the unit was chosen on other characters
than those it is scored on (`probe_table(..., select=..., evaluate=...)`),
`selection_correlation` is its correlation where it was chosen, and the other scores are
on the evaluation characters; else None.
"""


class ProbeTable:
    """The best units per probe, as rows that print as a table.

    Args:
        rows: `ProbeRow`s, in the order to show.
        skipped: names of probes left out because they are constant where the units would
            be chosen or scored (printed under the table).

    Example:

    >>> from rnn_toolkit.inspection.neurons import ProbeRow, ProbeTable
    >>> print(ProbeTable([ProbeRow("inside_quotes", "layer0/c", 0, "c", 7, -0.91, 0.97, 0.8)]))
    probe          unit        correlation  threshold accuracy  majority
    -------------  ----------  -----------  ------------------  --------
    inside_quotes  layer0/c 7  -0.910       0.970               0.800
    """

    def __init__(self, rows, skipped=()):
        self.rows = list(rows)
        self.skipped = list(skipped)  # probes left out: constant where they would be ranked

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def best(self, probe):
        """The first (best) row of the probe named `probe`.

        Raises:
            KeyError: if the table has no row for `probe`.
        """
        for row in self.rows:
            if row.probe == probe:
                return row
        raise KeyError(f"no row for the probe {probe!r}; the table has {self.probes()}.")

    def probes(self):
        """The probe names, in table order, each once."""
        return list(dict.fromkeys(row.probe for row in self.rows))

    def to_records(self):
        """The rows as dicts (for JSON)."""
        return [row._asdict() for row in self.rows]

    def __str__(self):
        def number(value, signed=False):
            return "-" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

        held_out = any(row.selection_correlation is not None for row in self.rows)
        header = ("probe", "unit", "correlation", "threshold accuracy", "majority")
        if held_out:
            header = ("probe", "unit", "r where chosen", "r held out", "threshold accuracy", "majority")
        body = [
            (
                row.probe,
                f"{row.name} {row.unit}",
                *((number(row.selection_correlation, signed=True),) if held_out else ()),
                number(row.correlation, signed=True),
                number(row.threshold_accuracy),
                number(row.majority_accuracy),
            )
            for row in self.rows
        ]
        table = format_table([header, *body])
        if self.skipped:
            table += "\nleft out (constant on a range, nothing to follow): " + ", ".join(self.skipped)
        return table

    __repr__ = __str__


def probe_table(activations, probes=None, *, language=None, top=1, select=None, evaluate=None, warmup=0):
    """The best `top` units of each probe, for a model's recorded activations.

    The best of hundreds of units on one text is an optimistic number: some unit follows
    any signal a little by chance. Give `select` and `evaluate` (two ranges of
    characters) to choose the units on the first and report their scores on the second,
    which the choice did not see.

    Args:
        activations: an `Activations` from `record_activations`.
        probes: a dict from probe name to its values (one per character of the whole
            text) or to a function of the text; None: `rnn_toolkit.inspection.probes.
            standard_probes` of the text, less those that are constant on it (no
            brackets, say). Probes are computed on the whole text, so a comment that
            opened before a range counts inside it.
        language: with `probes=None`, None for prose or the text's programming language
            (see `rnn_toolkit.inspection.probes.LANGUAGES`).
        top: rows per probe.
        select: None (rank on every character), or `(start, stop)` / a `slice` of the
            characters to choose the units on.
        evaluate: with `select`, the characters to score the chosen units on.
        warmup: characters left out at the start of each range (and of the text), while
            the state read from zeros settles.

    Returns:
        A `ProbeTable`, probes in the order given (sorted by name for the standard
        ones), each probe's units best first. A probe constant on a range is left out
        and named in the table's `skipped`.

    Raises:
        ValueError: if a probe is invalid (see `rank_units`), or only one of `select`
            and `evaluate` is given, or a range is empty.

    Example:

    >>> import rnn_toolkit
    >>> from rnn_toolkit.inspection.neurons import probe_table, record_activations
    >>> model = rnn_toolkit.build_char_lm('ab"\\n', units=4, dtype_policy="float32")
    >>> activations = record_activations(model, 'ab"ba"\\nab\\n')
    >>> table = probe_table(activations)
    >>> table.probes()  # no brackets in the text: no bracket_depth
    ['inside_quotes', 'line_length_remaining', 'position_in_line']
    >>> table.best("inside_quotes").name in activations
    True
    >>> held_out = probe_table(activations, select=(0, 5), evaluate=(5, 10))
    >>> held_out.best("position_in_line").selection_correlation is not None
    True
    """
    if (select is None) != (evaluate is None):
        raise ValueError("`select` and `evaluate` go together: give both ranges or neither.")
    warmup = int(warmup)
    if warmup < 0:
        raise ValueError(f"`warmup` must be a non-negative integer; received warmup={warmup!r}.")
    if probes is None:
        probes = dict(sorted(standard_probes(activations.text, language).items()))
        # A text without brackets (or quotes) has a constant probe: nothing to rank.
        probes = {name: values for name, values in probes.items() if np.ptp(values) > 0} or probes
    if select is not None:
        length = len(activations.text)
        select_start, select_stop = _character_range(select, "select", length)
        eval_start, eval_stop = _character_range(evaluate, "evaluate", length)
        selection = activations.slice(select_start, select_stop)
        evaluation = activations.slice(eval_start, eval_stop)
    rows, skipped = [], []
    for probe_name, probe in probes.items():
        values = as_probe(activations.text, probe)
        if select is None:
            chosen = _after_warmup(values, warmup)
            used = chosen[~np.isnan(chosen)]
            for score in rank_units(activations, chosen, top=top):
                rows.append(ProbeRow(probe_name, *score, _majority(used)))
            continue
        chosen = _after_warmup(values[select_start:select_stop], warmup)
        scored = _after_warmup(values[eval_start:eval_stop], warmup)
        if _is_constant(chosen) or _is_constant(scored):
            skipped.append(probe_name)  # nothing to choose or to score on that range
            continue
        scores = {(score.name, score.unit): score for score in rank_units(evaluation, scored)}
        used = scored[~np.isnan(scored)]
        for score in rank_units(selection, chosen, top=top):
            rows.append(ProbeRow(probe_name, *scores[(score.name, score.unit)], _majority(used), score.correlation))
    return ProbeTable(rows, skipped)


def _after_warmup(values, warmup):
    """A copy of a range's probe values with its first `warmup` left out (NaN)."""
    values = values.copy()
    values[:warmup] = np.nan
    return values


def _is_constant(values):
    """Whether the values not left out (not NaN) take fewer than two different values."""
    used = values[~np.isnan(values)]
    return used.size == 0 or np.ptp(used) == 0


def _majority(values):
    """For two-valued probe values, the accuracy of always answering the commoner one."""
    levels = np.unique(values)
    if levels.size != 2:
        return None
    return float(max(np.mean(values == levels[0]), np.mean(values == levels[1])))


def _character_range(value, name, length):
    start, stop, step = (value if isinstance(value, slice) else slice(*value)).indices(length)
    if step != 1 or stop <= start:
        raise ValueError(
            f"`{name}` must be a non-empty (start, stop) range of the text's {length} characters; "
            f"received {name}={value!r}."
        )
    return start, stop


# --- Showing a unit -----------------------------------------------------------------


class ActivationHTML(str):
    """An HTML string that a notebook shows as HTML (it has `_repr_html_`)."""

    def _repr_html_(self):
        return str(self)


def activation_html(text, values, *, limit=None, newline_marker=" ", title=None, tooltips=True):
    """Colours every character of `text` by a unit's activation, as HTML.

    A diverging scale, as in the char-RNN pictures: white at 0, red for positive, blue
    for negative, full colour at `±limit`. Line breaks and spaces are kept (a `<pre>`
    block) and every character is HTML-escaped.

    Args:
        text: the text, a string.
        values: one activation per character, e.g. `activations.unit("layer0/c", 7)`;
            NaN shows grey.
        limit: the activation shown in full colour (larger ones are clipped); None: the
            largest absolute value (1.0 if all are 0).
        newline_marker: what shows the newline's own colour before the line break (a
            space; `"↵"` to see the newlines; `""` for none).
        title: an optional heading (escaped too).
        tooltips: give every character a tooltip with its value.

    Returns:
        An `ActivationHTML`: a `str` holding the HTML, which a notebook displays.

    Raises:
        ValueError: if `values` does not have one value per character.

    Example:

    >>> from rnn_toolkit.inspection.neurons import activation_html
    >>> print(activation_html("<&", [1.0, -1.0], tooltips=False))  # doctest: +ELLIPSIS
    <div ...><pre ...><span style="background:#eb5046">&lt;</span><span style="background:#5082eb">&amp;</span></pre></div>
    """
    values, limit = _checked_values(text, values, limit)
    colours = _diverging_rgb(values, limit)
    parts = []
    for character, value, colour in zip(text, values, colours):
        shown = html.escape(newline_marker if character == "\n" else character, quote=True)
        tooltip = f' title="{value:.3f}"' if tooltips else ""
        parts.append(f'<span style="background:#{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}"{tooltip}>{shown}</span>')
        if character == "\n":
            parts.append("\n")
    heading = ""
    if title is not None:
        heading = f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(str(title), quote=True)}</div>'
    return ActivationHTML(
        '<div style="font-family:monospace">'
        + heading
        + '<pre style="line-height:1.4;margin:0;color:#000;background:#fff">'
        + "".join(parts)
        + "</pre></div>"
    )


def activation_png(
    text,
    values,
    path=None,
    *,
    limit=None,
    line_width=100,
    font_size=14,
    newline_marker=" ",
    title=None,
    font_path=None,
):
    """Colours every character of `text` by a unit's activation, as a picture.

    The picture of `activation_html`, drawn with Pillow in DejaVu Sans Mono (the font
    Matplotlib ships): one cell per character, lines longer than `line_width`
    characters wrapped, each newline shown as a cell at the end of its line.

    Args:
        text: the text, a string.
        values: one activation per character; NaN shows grey.
        path: if given, the file to save the picture to (format from its suffix).
        limit: the activation shown in full colour; None: the largest absolute value.
        line_width: characters per drawn line before wrapping.
        font_size: the font size in pixels.
        newline_marker: the character drawn in a newline's cell (`" "`, or `"↵"`).
        title: an optional line of text above the picture.
        font_path: a monospaced TrueType font to use instead of DejaVu Sans Mono.

    Returns:
        A `PIL.Image.Image` in RGB mode.

    Raises:
        ValueError: if `values` does not have one value per character, or `line_width`
            or `font_size` is not a positive integer.

    Example:

    >>> from rnn_toolkit.inspection.neurons import activation_png
    >>> image = activation_png("abc\\nde", [0.1, 0.5, -0.2, 0.0, 1.0, -1.0], line_width=2)
    >>> image.mode, image.height > image.width
    ('RGB', True)
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    values, limit = _checked_values(text, values, limit)
    line_width = check_positive_int("line_width", line_width)
    font_size = check_positive_int("font_size", font_size)
    if font_path is None:
        font_path = f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSansMono.ttf"
    font = ImageFont.truetype(str(font_path), font_size)
    cell_width = font.getlength("M")
    row_height = round(font_size * 1.4)
    margin = max(4, font_size // 2)

    rows = _wrapped_rows(text, line_width)
    colours = _diverging_rgb(values, limit)
    columns = max([len(row) for row in rows] + [1])
    title_height = row_height + margin if title is not None else 0
    title_width = font.getlength(str(title)) if title is not None else 0
    width = 2 * margin + math.ceil(max(columns * cell_width, title_width))
    height = 2 * margin + title_height + max(len(rows), 1) * row_height
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if title is not None:
        draw.text((margin, margin), str(title), font=font, fill="black")
    # The glyphs sit in the middle of the row's cells.
    text_offset = (row_height - font_size) // 2
    for row_index, row in enumerate(rows):
        top = margin + title_height + row_index * row_height
        for column, index in enumerate(row):
            left = margin + round(column * cell_width)
            right = margin + round((column + 1) * cell_width)
            draw.rectangle([left, top, right - 1, top + row_height - 1], fill=tuple(int(c) for c in colours[index]))
        # A monospaced font advances one cell per glyph, so a whole row draws at once.
        glyphs = "".join(_printable(text[index], newline_marker) for index in row)
        draw.text((margin, top + text_offset), glyphs, font=font, fill="black")
    if path is not None:
        image.save(path)
    return image


def _wrapped_rows(text, line_width):
    """The drawn rows: lists of character indices, a newline ending its row, long lines wrapped."""
    rows, row = [], []
    for index, character in enumerate(text):
        if len(row) == line_width:
            rows.append(row)
            row = []
        row.append(index)
        if character == "\n":
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return rows


def _printable(character, newline_marker):
    """What a character's cell shows: a newline its marker, other control characters nothing."""
    if character == "\n":
        return (newline_marker or " ")[:1]
    return character if character.isprintable() else " "


def _checked_values(text, values, limit):
    """`values` as float64 `[len(text)]`, and the colour limit (positive)."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string; received {type(text).__name__}.")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(text),):
        raise ValueError(
            f"`values` must have one value per character: shape ({len(text)},); "
            f"received shape {values.shape}."
        )
    if limit is None:
        finite = np.abs(values[np.isfinite(values)])
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    elif not limit > 0:
        raise ValueError(f"`limit` must be a positive number; received limit={limit!r}.")
    return values, float(limit)


def _diverging_rgb(values, limit):
    """uint8 `[n, 3]` colours: white at 0, blue at -limit, red at +limit, grey for NaN."""
    scaled = np.clip(np.nan_to_num(values / limit), -1.0, 1.0)[:, None]
    end = np.where(scaled > 0, _POSITIVE_RGB, _NEGATIVE_RGB)
    colours = _WHITE_RGB + np.abs(scaled) * (end - _WHITE_RGB)
    colours = np.where(np.isnan(values)[:, None], _MISSING_RGB, colours)
    return np.round(colours).astype(np.uint8)


def _parse_name(name):
    """`(layer, kind)` of a name such as `"layer1/c"`."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"activation names look like 'layer0/h' or 'layer1/c'; received {name!r}.")
    return int(match.group(1)), match.group(2)


def _name_order(name):
    layer, kind = _parse_name(name)
    return layer, {"h": 0, "c": 1}.get(kind, 2), kind
