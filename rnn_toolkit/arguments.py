"""Checks of user-supplied arguments, shared so every error reads the same way.

Each check names the argument and what was expected: a user who passes `units=0` should
read "`units` must be a positive integer; received units=0." wherever it happens.
"""

import numbers


def check_positive_int(name, value, *, allow_none=False):
    """Returns `value` as an `int` if it is a positive integer (not a bool).

    Args:
        name: the argument's name, for the error message.
        value: what the caller passed (Python or NumPy integers are accepted).
        allow_none: let `None` through (returned as None).

    Raises:
        ValueError: naming `name` and saying what was expected.

    Example:

    >>> from rnn_toolkit.arguments import check_positive_int
    >>> check_positive_int("units", 8)
    8
    >>> check_positive_int("units", 0)
    Traceback (most recent call last):
    ...
    ValueError: `units` must be a positive integer; received units=0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}; received {name}={value!r}.")
    return int(value)
