"""A character-level vanilla RNN in NumPy, after Karpathy's min-char-rnn.

The lecture's gist (https://gist.github.com/karpathy/d4dee566867f8291f086, 112 lines)
as a small class: the forward pass over a window of characters with a softmax
cross-entropy loss, backpropagation through time written by hand, Adagrad, and sampling.
`gradient_check()` compares the hand-written gradients with centered differences, which
is how one knows the backward pass is right.

The equations, with one-hot column vectors `x_t` as in the lecture:

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)
    y_t = W_hy h_t + b_y                  (scores of the next character)
    p_t = softmax(y_t),   loss = -sum_t log p_t[target_t]

Parameters are float64, so that centered differences are accurate to ~1e-10.

"""

import dataclasses

import numpy as np

from rnn_toolkit.arguments import check_positive_int


@dataclasses.dataclass(frozen=True)
class MinCharVocabulary:
    """The gist's vocabulary: the text's distinct characters, with ids `0 .. size - 1`.

    Unlike `rnn_toolkit.data.CharVocabulary` there is no padding or unknown id: the
    model reads only text made of these characters.

    Args:
        chars: the characters, in id order.

    Example:

    >>> from rnn_toolkit.cells import MinCharVocabulary
    >>> vocabulary = MinCharVocabulary.from_text("hello")
    >>> vocabulary.chars, vocabulary.size
    ('ehlo', 4)
    >>> vocabulary.encode("hole").tolist()
    [1, 3, 2, 0]
    >>> vocabulary.decode([1, 0, 2, 2, 3])
    'hello'
    """

    chars: str

    @classmethod
    def from_text(cls, text):
        """The sorted distinct characters of `text` (sorted, so that ids are repeatable).

        Raises:
            ValueError: if `text` is not a non-empty string.
        """
        if not isinstance(text, str) or not text:
            raise ValueError(f"`text` must be a non-empty string; received {text!r:.40}.")
        return cls("".join(sorted(set(text))))

    @property
    def size(self):
        return len(self.chars)

    def encode(self, text):
        """The ids of the characters of `text`, as an int array.

        Raises:
            ValueError: if `text` holds characters outside the vocabulary.
        """
        index_of = {char: index for index, char in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index_of))
        if unknown:
            raise ValueError(f"`text` holds characters outside the vocabulary: {unknown[:10]}.")
        return np.array([index_of[char] for char in text], dtype=np.int64)

    def decode(self, ids):
        """The text of the character ids `ids`."""
        return "".join(self.chars[int(index)] for index in ids)


def _softmax(scores):
    # Subtracting the maximum changes nothing mathematically and keeps exp() finite.
    exps = np.exp(scores - scores.max())
    return exps / exps.sum()


class MinCharRNN:
    """A one-layer vanilla RNN over characters, trained by hand-written BPTT and Adagrad.

    `parameters` holds `W_xh` `[hidden, vocab]`, `W_hh` `[hidden, hidden]`, `W_hy`
    `[vocab, hidden]`, `b_h` `[hidden]` and `b_y` `[vocab]` (float64 arrays, the gist's
    column-vector layout); `train()` updates them in place, and keeps Adagrad's sums of
    squared gradients in `adagrad_memory` from one call to the next.

    Args:
        vocabulary: a `MinCharVocabulary`.
        hidden_size: number of hidden units (the gist: 100).
        seed: seeds the initial weights.
        init_scale: standard deviation of the initial weights (the gist: 0.01); biases
            start at zero.

    Raises:
        TypeError: if `vocabulary` is not a `MinCharVocabulary`.
        ValueError: if `hidden_size` is not a positive integer or `init_scale` not positive.

    Example:

    >>> from rnn_toolkit.cells import MinCharRNN, MinCharVocabulary
    >>> text = "hello world, hello rnn. " * 4
    >>> model = MinCharRNN(MinCharVocabulary.from_text(text), hidden_size=16, seed=0)
    >>> history = model.train(text, steps=300, seq_length=12, smoothing=0.9)
    >>> bool(history[-1] < history[0] / 3)
    True
    >>> sample = model.vocabulary.decode(model.sample(None, model.vocabulary.encode("h")[0], n=11, rng=0))
    >>> len(sample), set(sample) <= set(text)
    (11, True)
    """

    PARAMETER_NAMES = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")

    def __init__(self, vocabulary, hidden_size=100, seed=0, init_scale=0.01):
        if not isinstance(vocabulary, MinCharVocabulary):
            raise TypeError(
                f"`vocabulary` must be a MinCharVocabulary; received {type(vocabulary).__name__} "
                "(make one with MinCharVocabulary.from_text(text))."
            )
        if not init_scale > 0:
            raise ValueError(f"`init_scale` must be positive; received init_scale={init_scale!r}.")
        self.vocabulary = vocabulary
        self.vocab_size = vocabulary.size
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        rng = np.random.default_rng(seed)
        hidden, vocab = self.hidden_size, self.vocab_size
        self.parameters = {
            "W_xh": rng.standard_normal((hidden, vocab)) * init_scale,
            "W_hh": rng.standard_normal((hidden, hidden)) * init_scale,
            "W_hy": rng.standard_normal((vocab, hidden)) * init_scale,
            "b_h": np.zeros(hidden),
            "b_y": np.zeros(vocab),
        }
        self.adagrad_memory = {name: np.zeros_like(p) for name, p in self.parameters.items()}

    def _forward(self, inputs, h_prev):
        """The hidden states (`hs[-1]` is `h_prev`) and next-character probabilities."""
        W_xh, W_hh, W_hy, b_h, b_y = (self.parameters[name] for name in self.PARAMETER_NAMES)
        hs, ps = {-1: h_prev}, {}
        for t, ix in enumerate(inputs):
            # W_xh times the one-hot x_t is W_xh's column for the character.
            hs[t] = np.tanh(W_xh[:, ix] + W_hh @ hs[t - 1] + b_h)
            ps[t] = _softmax(W_hy @ hs[t] + b_y)
        return hs, ps

    def _checked(self, inputs, targets, h_prev):
        inputs = np.asarray(inputs)
        targets = np.asarray(targets)
        if inputs.ndim != 1 or inputs.shape != targets.shape or inputs.size == 0:
            raise ValueError(
                "`inputs` and `targets` must be non-empty sequences of character ids of the "
                f"same length; received lengths {inputs.shape} and {targets.shape}."
            )
        for name, ids in (("inputs", inputs), ("targets", targets)):
            if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= self.vocab_size:
                raise ValueError(f"`{name}` must be character ids in [0, {self.vocab_size}).")
        h_prev = np.zeros(self.hidden_size) if h_prev is None else np.asarray(h_prev, np.float64)
        if h_prev.shape != (self.hidden_size,):
            raise ValueError(
                f"`h_prev` must have shape ({self.hidden_size},); received {h_prev.shape}."
            )
        return inputs, targets, h_prev

    def loss(self, inputs, targets, h_prev=None):
        """The summed cross-entropy of predicting `targets` from `inputs` (forward only).

        Args:
            inputs: character ids, one per time step.
            targets: the id of the character that follows each input.
            h_prev: the hidden state before the first step (zeros when None).

        Returns:
            The loss as a float (natural log, summed over the time steps).
        """
        inputs, targets, h_prev = self._checked(inputs, targets, h_prev)
        _, ps = self._forward(inputs, h_prev)
        return float(-sum(np.log(ps[t][target]) for t, target in enumerate(targets)))

    def loss_and_gradients(self, inputs, targets, h_prev=None, clip=None):
        """The gist's `lossFun`: forward pass, then backpropagation through time.

        Args:
            inputs: character ids, one per time step.
            targets: the id of the character that follows each input.
            h_prev: the hidden state before the first step (zeros when None).
            clip: if given, every gradient entry is clipped to `[-clip, clip]` (the gist
                clips to 5 against exploding gradients); None for exact gradients.

        Returns:
            `(loss, gradients, h_last)`: the summed cross-entropy, a dict of gradients
            with the keys of `parameters`, and the last hidden state (the next window's
            `h_prev`).

        Raises:
            ValueError: if the ids or `h_prev` do not fit the model.
        """
        inputs, targets, h_prev = self._checked(inputs, targets, h_prev)
        W_hh, W_hy = self.parameters["W_hh"], self.parameters["W_hy"]
        hs, ps = self._forward(inputs, h_prev)
        loss = -sum(np.log(ps[t][target]) for t, target in enumerate(targets))

        grads = {name: np.zeros_like(p) for name, p in self.parameters.items()}
        dh_next = np.zeros(self.hidden_size)
        for t in reversed(range(len(inputs))):
            dy = ps[t].copy()
            dy[targets[t]] -= 1  # the gradient of softmax + cross-entropy: p - onehot
            grads["W_hy"] += np.outer(dy, hs[t])
            grads["b_y"] += dy
            dh = W_hy.T @ dy + dh_next  # from the output and from the next step
            dh_raw = (1 - hs[t] * hs[t]) * dh  # through tanh
            grads["b_h"] += dh_raw
            grads["W_xh"][:, inputs[t]] += dh_raw
            grads["W_hh"] += np.outer(dh_raw, hs[t - 1])
            dh_next = W_hh.T @ dh_raw
        if clip is not None:
            for grad in grads.values():
                np.clip(grad, -clip, clip, out=grad)
        return float(loss), grads, hs[len(inputs) - 1]

    def sample(self, h, seed_ix, n, rng=None):
        """Samples `n` characters, each from the softmax the previous one gives.

        Args:
            h: the hidden state to start from, `[hidden_size]` (zeros when None).
            seed_ix: the id of the character fed first (not part of the result).
            n: how many characters to sample.
            rng: a `np.random.Generator` or a seed (a fresh unseeded one when None).

        Returns:
            The sampled character ids, a list of `n` ints (`vocabulary.decode` makes text).
        """
        W_xh, W_hh, W_hy, b_h, b_y = (self.parameters[name] for name in self.PARAMETER_NAMES)
        rng = np.random.default_rng(rng)
        h = np.zeros(self.hidden_size) if h is None else np.asarray(h, np.float64)
        if h.shape != (self.hidden_size,):
            raise ValueError(
                f"`h` must be a vector of {self.hidden_size} values (or None for zeros); "
                f"received shape {h.shape}."
            )
        ix, ixes = int(seed_ix), []
        for _ in range(check_positive_int("n", n)):
            h = np.tanh(W_xh[:, ix] + W_hh @ h + b_h)
            ix = int(rng.choice(self.vocab_size, p=_softmax(W_hy @ h + b_y)))
            ixes.append(ix)
        return ixes

    def train(self, text, steps, seq_length=25, learning_rate=0.1, clip=5.0, smoothing=0.999):
        """The gist's main loop: windows of `seq_length` characters, one Adagrad step each.

        The windows follow each other through `text`, the hidden state carried from one
        to the next; at the end of the text both start over (from zeros).

        Args:
            text: the training text, made of the vocabulary's characters.
            steps: number of windows (parameter updates).
            seq_length: characters per window (steps of backpropagation through time).
            learning_rate: Adagrad's learning rate.
            clip: per-entry gradient clipping (None: no clipping).
            smoothing: weight of the running loss in the smoothed loss (the gist: 0.999).

        Returns:
            The smoothed loss after every step (a float array of length `steps`); it
            starts from the loss of uniform guessing, `seq_length * log(vocab_size)`.

        Raises:
            ValueError: if `text` has fewer than `seq_length + 1` characters or holds
                characters outside the vocabulary.
        """
        data = self.vocabulary.encode(text)
        steps = check_positive_int("steps", steps)
        seq_length = check_positive_int("seq_length", seq_length)
        if len(data) < seq_length + 1:
            raise ValueError(
                f"`text` must have at least seq_length + 1 = {seq_length + 1} characters; "
                f"received {len(data)}."
            )
        smooth_loss = -np.log(1.0 / self.vocab_size) * seq_length
        history = np.empty(steps)
        position, h_prev = 0, np.zeros(self.hidden_size)
        for step in range(steps):
            if position + seq_length + 1 > len(data):
                position, h_prev = 0, np.zeros(self.hidden_size)
            inputs = data[position : position + seq_length]
            targets = data[position + 1 : position + seq_length + 1]
            loss, grads, h_prev = self.loss_and_gradients(inputs, targets, h_prev, clip=clip)
            smooth_loss = smoothing * smooth_loss + (1 - smoothing) * loss
            history[step] = smooth_loss
            for name, param in self.parameters.items():
                memory = self.adagrad_memory[name]
                memory += grads[name] * grads[name]
                param -= learning_rate * grads[name] / np.sqrt(memory + 1e-8)
            position += seq_length
        return history


def gradient_check(model, inputs, targets, h_prev=None, delta=1e-4, num_checks=None, seed=0, per_entry=False):
    """Compares `model`'s backpropagated gradients with centered differences.

    For each checked entry `w` of a parameter, the numerical gradient is
    `n = (loss(w + delta) - loss(w - delta)) / (2 * delta)`, compared with the analytic
    gradient `a` (not clipped). A parameter's relative error is the largest difference
    `|a - n|` over its checked entries divided by the parameter's gradient scale, the
    largest `|a|` or `|n|` of the parameter (the analytic gradient's over all entries).

    Why not each entry's own `|a - n| / max(|a|, |n|)`, as the gist prints? The loss,
    a sum of tens of logs, carries a rounding error of ~1e-14, so every `n` is off by
    ~1e-14 / delta whatever the backward pass; an entry whose gradient is 1e-5 then
    shows a relative error of 1e-5 or more although its gradient is right.
    `per_entry=True` gives that measure nonetheless (the largest over the checked
    entries, 0 where both are 0, as for the `W_xh` columns of characters absent from
    `inputs`).

    Why `delta=1e-4` and not the gist's 1e-5? The rounding part of the error shrinks
    with a larger step and the truncation part (~delta**2) stays below it: at the gist's
    initial weights, where the `W_hh` gradient is only ~3e-3, 1e-5 gives ~1e-6 and 1e-4
    ~1e-7; after training both give ~1e-9. With large recurrent weights (e.g.
    `init_scale=0.5`, 50 hidden units) the network is chaotic, the loss changes on
    scales below any usable step, and the check fails for every `delta` although the
    gradients are right.

    Args:
        model: a `MinCharRNN` (its parameters are restored exactly afterwards).
        inputs: character ids, one per time step.
        targets: the id of the character that follows each input.
        h_prev: the hidden state before the first step (zeros when None).
        delta: the step of the centered differences (see above).
        num_checks: how many entries to check per parameter, drawn at random as in the
            gist; None checks every entry.
        seed: seeds the choice of entries.
        per_entry: measure each entry against its own magnitude (see above).

    Returns:
        `{parameter name: relative error}`, floats; a correct backward pass gives ~1e-9,
        a wrong one ~1e-2 or more.

    Raises:
        TypeError: if `model` is not a `MinCharRNN`.
        ValueError: if `delta` is not positive or the ids do not fit the model.

    Example:

    >>> from rnn_toolkit.cells import MinCharRNN, MinCharVocabulary, gradient_check
    >>> vocabulary = MinCharVocabulary.from_text("abcde")
    >>> model = MinCharRNN(vocabulary, hidden_size=6, seed=0, init_scale=0.5)
    >>> ids = vocabulary.encode("abcdeedcba")
    >>> errors = gradient_check(model, ids[:-1], ids[1:])
    >>> sorted(errors), max(errors.values()) < 1e-6
    (['W_hh', 'W_hy', 'W_xh', 'b_h', 'b_y'], True)
    """
    if not isinstance(model, MinCharRNN):
        raise TypeError(f"`model` must be a MinCharRNN; received {type(model).__name__}.")
    if not delta > 0:
        raise ValueError(f"`delta` must be positive; received delta={delta!r}.")
    _, analytic, _ = model.loss_and_gradients(inputs, targets, h_prev)
    rng = np.random.default_rng(seed)
    errors = {}
    for name, param in model.parameters.items():
        if num_checks is None:
            entries = range(param.size)
        else:
            count = min(check_positive_int("num_checks", num_checks), param.size)
            entries = rng.choice(param.size, size=count, replace=False)
        exact, numerical = [], []
        for index in entries:
            original = param.flat[index]
            param.flat[index] = original + delta
            loss_plus = model.loss(inputs, targets, h_prev)
            param.flat[index] = original - delta
            loss_minus = model.loss(inputs, targets, h_prev)
            param.flat[index] = original
            exact.append(analytic[name].flat[index])
            numerical.append((loss_plus - loss_minus) / (2 * delta))
        exact, numerical = np.array(exact), np.array(numerical)
        difference = np.abs(exact - numerical)
        if per_entry:
            scale = np.maximum(np.abs(exact), np.abs(numerical))
            ratios = np.divide(difference, scale, out=np.zeros_like(scale), where=scale > 0)
            errors[name] = float(ratios.max())
        else:
            scale = max(np.abs(analytic[name]).max(), np.abs(numerical).max())
            errors[name] = float(difference.max() / scale) if scale > 0 else 0.0
    return errors
