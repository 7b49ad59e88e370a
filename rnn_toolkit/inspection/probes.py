"""Per-character probe signals: what an interpretable neuron might be tracking.

Karpathy's char-RNN found single cells that follow a property of the text: whether the
model is inside a quotation, how far into the line it is, how deep the brackets or the
indentation are, whether it is inside a comment. Each function here computes one such
property for every character of a text, as a float64 NumPy array of `len(text)` values,
so that `rnn_toolkit.inspection.neurons.rank_units` can correlate it with every unit.

The values describe the state **after reading the character**, which is what a model
reading left to right can know there:

* a span (quotation, string literal, comment) is on from the character at which a
  reader knows it has begun (the opening quote; the second character of `//` and `/*`)
  up to, but not including, the character that ends it (the closing quote, the final
  `/` of `*/`, the newline after a line comment);
* `bracket_depth` counts an opening bracket at once and a closing one at once;
* `position_in_line` counts the characters of the line read so far (a newline starts a
  new line: 0), and `line_length_remaining` the characters still to come before the
  next newline.

`indentation_depth` is a property of the whole line instead: every character of a line,
its leading whitespace and its final newline included, gets the line's indentation (a
newline keeps the indentation of the line it ends, the best guess for the next one).

Any other per-character signal works as well: `per_character` maps a function over the
characters, and `as_probe` checks an array computed some other way.

Imports from rnn_toolkit: arguments.

Example:

>>> from rnn_toolkit.inspection import probes
>>> probes.inside_quotes('say "hi" now').tolist()
[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
>>> probes.bracket_depth("f(a[1])").tolist()
[0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 0.0]
"""

import numpy as np

from rnn_toolkit.arguments import check_positive_int

LANGUAGES = ("python", "c", "tex")
"""The languages `inside_comment`, `inside_string_literal` and `bracket_depth` know:
`"python"` (`#` comments; `'`, `"` and triple-quoted strings), `"c"` (also C++, Java,
JavaScript: `//` and non-nesting `/* */` comments; `"` strings and `'` character
literals) and `"tex"` (`%` comments, `\\%` is a percent sign; no strings)."""

# What `_code_regions` labels each character as.
_CODE, _STRING, _COMMENT = 0, 1, 2


def inside_quotes(text, quotes='"', *, escape_character=None, end_at_newline=False):
    """1.0 inside a quotation, 0.0 outside, for every character of `text`.

    The opening quote is inside (after reading it the reader is in the quotation) and
    the closing quote outside. A quotation opened by one quote character closes only
    at its own closing character, so `'` inside `"..."` changes nothing. A quotation
    left open runs to the end of the text (or of the line, with `end_at_newline`).

    Args:
        text: the text, a string.
        quotes: the quote characters: a string of characters that each open and close
            a quotation (`'"'`, or `"\\"'"` for both kinds), or a list whose items are
            such characters or two-character strings `opening + closing` (`["“”"]`).
        escape_character: inside a quotation, this character makes the next one plain
            text (`"\\\\"` for code, so `\\"` does not close a string); None: no escapes.
        end_at_newline: a newline ends an open quotation (and is outside it), as in
            code, where a string cannot run over a line end.

    Returns:
        A float64 array of `len(text)` zeros and ones.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `quotes` is empty or has an item that is not one or two
            characters, or `escape_character` is not one character.

    Example:

    >>> from rnn_toolkit.inspection.probes import inside_quotes
    >>> inside_quotes('a"b\\\\"c"d', escape_character="\\\\").tolist()
    [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    >>> inside_quotes("«x» y", ["«»"]).tolist()
    [1.0, 1.0, 0.0, 0.0, 0.0]
    """
    _check_text(text)
    closing_of = _quote_pairs(quotes)
    if escape_character is not None and (
        not isinstance(escape_character, str) or len(escape_character) != 1
    ):
        raise ValueError(
            f"`escape_character` must be one character or None; "
            f"received escape_character={escape_character!r}."
        )
    values = np.zeros(len(text))
    index = 0
    while index < len(text):
        closing = closing_of.get(text[index])
        if closing is None:
            index += 1
            continue
        end = _span_end(text, index + 1, closing, escape_character, end_at_newline)
        values[index:end] = 1.0
        index = end + 1
    return values


def inside_string_literal(text, language="python"):
    """1.0 inside a string literal of source code, 0.0 elsewhere.

    Unlike `inside_quotes`, this reads the code as a lexer does: quotes inside a
    comment start no string, Python's triple-quoted strings run over lines, and
    backslash escapes are honoured. An unterminated one-line string ends at the
    newline, so that one typo does not mark the rest of a file as a string.

    Args:
        text: the source code, a string.
        language: `"python"` or `"c"` (see `LANGUAGES`; TeX has no string literals).

    Returns:
        A float64 array of `len(text)` zeros and ones.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `language` is not one of `"python"` and `"c"`.

    Example:

    >>> from rnn_toolkit.inspection.probes import inside_string_literal
    >>> inside_string_literal("x='#' # 'no'").tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    if language == "tex":
        raise ValueError("`language`='tex' has no string literals; use 'python' or 'c'.")
    return (_code_regions(text, language) == _STRING).astype(np.float64)


def inside_comment(text, language="python"):
    """1.0 inside a comment of source code, 0.0 elsewhere.

    Python's `#`, C's `//` and `/* */` (which do not nest: the first `*/` closes) and
    TeX's `%` comments, read as a lexer does: a `#` inside a string starts no comment.
    A line comment ends at (and excludes) its newline; an unclosed `/*` runs to the end.

    Args:
        text: the source code, a string.
        language: `"python"`, `"c"` or `"tex"` (see `LANGUAGES`).

    Returns:
        A float64 array of `len(text)` zeros and ones.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `language` is not one of `LANGUAGES`.

    Example:

    >>> from rnn_toolkit.inspection.probes import inside_comment
    >>> inside_comment("a/*b*/c", language="c").tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    >>> inside_comment("50\\\\% % note", language="tex").tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    return (_code_regions(text, language) == _COMMENT).astype(np.float64)


def bracket_depth(text, brackets="()[]{}", *, language=None):
    """How many brackets are open after reading each character.

    All the kinds in `brackets` are counted together (one combined depth): `"([)"`
    is depth 2 after its `[`, and the `)` then closes one level whatever its kind.
    Pass one pair (`brackets="()"`) for the depth of one kind. A closing bracket with
    nothing open leaves the depth at 0.

    Args:
        text: the text, a string.
        brackets: opening and closing characters in pairs, e.g. `"()[]{}"` or `"[]"`.
        language: None (count every bracket), or a language of `LANGUAGES` whose
            strings and comments are skipped, as a compiler skips them.

    Returns:
        A float64 array of `len(text)` non-negative depths.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `brackets` is not a non-empty even-length string of distinct
            characters, or `language` is not None or one of `LANGUAGES`.

    Example:

    >>> from rnn_toolkit.inspection.probes import bracket_depth
    >>> bracket_depth("(a[b])").tolist()
    [1.0, 1.0, 2.0, 2.0, 1.0, 0.0]
    >>> bracket_depth("(a[b])", brackets="[]").tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    >>> bracket_depth("f(')')", language="python").tolist()
    [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    """
    _check_text(text)
    if (
        not isinstance(brackets, str)
        or not brackets
        or len(brackets) % 2
        or len(set(brackets)) != len(brackets)
    ):
        raise ValueError(
            f"`brackets` must be opening and closing characters in pairs, all distinct, "
            f"such as '()[]{{}}'; received brackets={brackets!r}."
        )
    opening, closing = set(brackets[0::2]), set(brackets[1::2])
    regions = None if language is None else _code_regions(text, language)
    values = np.zeros(len(text))
    depth = 0
    for index, character in enumerate(text):
        if regions is None or regions[index] == _CODE:
            if character in opening:
                depth += 1
            elif character in closing:
                depth = max(depth - 1, 0)
        values[index] = depth
    return values


def position_in_line(text):
    """How many characters of the current line have been read, for every character.

    This is the 1-based column of each character, with 0 for a newline: after
    reading a newline, no character of the new line has been read yet. Equivalently,
    the 0-based column of the next character.

    Args:
        text: the text, a string.

    Returns:
        A float64 array of `len(text)` non-negative counts.

    Raises:
        TypeError: if `text` is not a string.

    Example:

    >>> from rnn_toolkit.inspection.probes import position_in_line
    >>> position_in_line("ab\\ncde").tolist()
    [1.0, 2.0, 0.0, 1.0, 2.0, 3.0]
    """
    _check_text(text)
    positions = np.arange(len(text))
    # The index of the last newline at or before each character (-1 before the first).
    last_newline = np.maximum.accumulate(np.where(_newlines(text), positions, -1))
    return (positions - last_newline).astype(np.float64)


def line_length_remaining(text):
    """How many characters are still to come before the next newline (or the text's end).

    The counterpart of `position_in_line`: for a character that is not a newline, the
    two add up to the length of its line. After a newline, the whole next line is to
    come. A model can only guess this one (from the line lengths it has seen): a unit
    that follows it anticipates the line break.

    Args:
        text: the text, a string.

    Returns:
        A float64 array of `len(text)` non-negative counts.

    Raises:
        TypeError: if `text` is not a string.

    Example:

    >>> from rnn_toolkit.inspection.probes import line_length_remaining
    >>> line_length_remaining("ab\\ncde").tolist()
    [1.0, 0.0, 3.0, 2.0, 1.0, 0.0]
    """
    _check_text(text)
    positions = np.arange(len(text))
    if not text:
        return positions.astype(np.float64)
    # The index of the first newline after each character (len(text) after the last).
    later = np.where(_newlines(text), positions, len(text))
    next_newline = np.minimum.accumulate(later[::-1])[::-1]
    next_newline = np.append(next_newline[1:], len(text))
    return (next_newline - positions - 1).astype(np.float64)


def indentation_depth(text, indent_width=4, *, tab_width=8):
    """The indentation of the line each character is on, in levels of `indent_width`.

    The leading spaces and tabs of a line count as columns (a tab moves to the next
    multiple of `tab_width`, as Python reads it), divided by `indent_width`: 8 spaces
    are 2.0 levels, 6 are 1.5. Every character of the line gets the value, its
    newline included; a blank line has the indentation of its own whitespace.

    Args:
        text: the text, a string.
        indent_width: columns per level (1 gives plain columns).
        tab_width: the column multiple a tab advances to.

    Returns:
        A float64 array of `len(text)` non-negative levels.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `indent_width` or `tab_width` is not a positive integer.

    Example:

    >>> from rnn_toolkit.inspection.probes import indentation_depth
    >>> indentation_depth("if x:\\n    y\\n").tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    _check_text(text)
    indent_width = check_positive_int("indent_width", indent_width)
    tab_width = check_positive_int("tab_width", tab_width)
    values = np.zeros(len(text))
    start = 0
    for line in _lines(text):
        columns = 0
        for character in line:
            if character == " ":
                columns += 1
            elif character == "\t":
                columns = (columns // tab_width + 1) * tab_width
            else:
                break
        values[start:start + len(line)] = columns / indent_width
        start += len(line)
    return values


def per_character(text, function):
    """Any per-character signal: `function(character)` for every character, as floats.

    Args:
        text: the text, a string.
        function: maps one character to a number or a bool, e.g. `str.isupper`.

    Returns:
        A float64 array of `len(text)` values.

    Raises:
        TypeError: if `text` is not a string or `function` is not callable.

    Example:

    >>> from rnn_toolkit.inspection.probes import per_character
    >>> per_character("aB1", str.isupper).tolist()
    [0.0, 1.0, 0.0]
    """
    _check_text(text)
    if not callable(function):
        raise TypeError(f"`function` must be callable; received {function!r:.80}.")
    return np.array([float(function(character)) for character in text], dtype=np.float64)


def as_probe(text, signal):
    """Checks a user-supplied signal against its text and returns it as a float64 array.

    Use it for a signal computed some other way (from a parser, a tagger, by hand).
    NaN values are allowed: `rank_units` leaves those characters out.

    Args:
        text: the text the signal describes.
        signal: one number per character (a list or array of `len(text)` values), or a
            function that takes the text and returns them.

    Returns:
        A float64 array of `len(text)` values.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if the signal is not one-dimensional of `len(text)` values, or has
            infinite values.

    Example:

    >>> from rnn_toolkit.inspection.probes import as_probe
    >>> as_probe("abc", [0, 1, 0]).tolist()
    [0.0, 1.0, 0.0]
    >>> as_probe("abc", lambda text: [c == "b" for c in text]).tolist()
    [0.0, 1.0, 0.0]
    """
    _check_text(text)
    if callable(signal):
        signal = signal(text)
    values = np.asarray(signal, dtype=np.float64)
    if values.shape != (len(text),):
        raise ValueError(
            f"a probe must have one value per character: shape ({len(text)},); "
            f"received shape {values.shape}."
        )
    if np.isinf(values).any():
        raise ValueError("a probe must not have infinite values (NaN marks a character to skip).")
    return values


def standard_probes(text, language=None):
    """The probes this module defines that apply to a text, by name.

    Args:
        text: the text, a string.
        language: None for prose; a language of `LANGUAGES` for source code, which
            adds `indentation_depth`, `inside_comment` and (not for TeX)
            `inside_string_literal`, and reads brackets and quotes as code.

    Returns:
        A dict from probe name to float64 array: `inside_quotes` (double quotes),
        `position_in_line`, `line_length_remaining`, `bracket_depth` (all kinds
        combined) and, for code, the ones above.

    Raises:
        TypeError: if `text` is not a string.
        ValueError: if `language` is not None or one of `LANGUAGES`.

    Example:

    >>> from rnn_toolkit.inspection.probes import standard_probes
    >>> sorted(standard_probes("x = (1)  # one\\n", language="python"))  # doctest: +NORMALIZE_WHITESPACE
    ['bracket_depth', 'indentation_depth', 'inside_comment', 'inside_quotes',
     'inside_string_literal', 'line_length_remaining', 'position_in_line']
    """
    _check_text(text)
    if language is not None:
        language = _check_language(language)
    code = language in ("python", "c")
    probes = {
        # In code, a backslash escapes a quote and a string cannot run over a line end.
        "inside_quotes": inside_quotes(
            text, '"', escape_character="\\" if code else None, end_at_newline=code
        ),
        "position_in_line": position_in_line(text),
        "line_length_remaining": line_length_remaining(text),
        "bracket_depth": bracket_depth(text, language=language),
    }
    if language is not None:
        probes["indentation_depth"] = indentation_depth(text)
        probes["inside_comment"] = inside_comment(text, language)
    if code:
        probes["inside_string_literal"] = inside_string_literal(text, language)
    return probes


# --- Reading code -------------------------------------------------------------------


def _code_regions(text, language):
    """An int8 array: for each character, `_CODE`, `_STRING` or `_COMMENT` after reading it."""
    _check_text(text)
    language = _check_language(language)
    regions = np.full(len(text), _CODE, dtype=np.int8)
    index, length = 0, len(text)
    while index < length:
        character = text[index]
        if language == "tex":
            if character == "\\":  # `\%` is a percent sign, `\\` a line break
                index += 2
                continue
            if character == "%":
                end = _line_end(text, index)
                regions[index:end] = _COMMENT
                index = end
                continue
        elif language == "python":
            if character == "#":
                end = _line_end(text, index)
                regions[index:end] = _COMMENT
                index = end
                continue
            if character in "'\"":
                triple = text.startswith(character * 3, index)
                delimiter = character * 3 if triple else character
                end = _span_end(text, index + len(delimiter), delimiter, "\\", not triple)
                regions[index:end] = _STRING
                index = end + 1
                continue
        else:  # c
            if text.startswith("//", index):
                end = _line_end(text, index)
                # After the first `/` it may still be a division: the comment starts at the second.
                regions[index + 1:end] = _COMMENT
                index = end
                continue
            if text.startswith("/*", index):
                close = text.find("*/", index + 2)
                end = length if close == -1 else close + 1
                regions[index + 1:end] = _COMMENT
                index = end + 1
                continue
            if character in "'\"":
                end = _span_end(text, index + 1, character, "\\", True)
                regions[index:end] = _STRING
                index = end + 1
                continue
        index += 1
    return regions


def _span_end(text, start, closing, escape_character, end_at_newline):
    """The index of the character that ends a span opened before `start`.

    That is the last character of `closing`, or with `end_at_newline` an unescaped
    newline, whichever comes first; `len(text)` if neither comes.
    """
    index = start
    while index < len(text):
        character = text[index]
        if character == escape_character:
            index += 2
            continue
        if end_at_newline and character == "\n":
            return index
        if text.startswith(closing, index):
            return index + len(closing) - 1
        index += 1
    return len(text)


def _line_end(text, index):
    """The index of the first newline at or after `index`, or `len(text)`."""
    end = text.find("\n", index)
    return len(text) if end == -1 else end


def _lines(text):
    """`text` split after each `\\n` only (`str.splitlines` also splits at `\\r` and others)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _newlines(text):
    """A boolean array: which characters are `\\n`."""
    # One 4-byte code per character; "surrogatepass" keeps a lone surrogate one character.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4") == ord("\n")


def _quote_pairs(quotes):
    """`{opening: closing}` from the `quotes` argument of `inside_quotes`."""
    items = list(quotes) if isinstance(quotes, (str, list, tuple)) else None
    if not items or any(not isinstance(item, str) or len(item) not in (1, 2) for item in items):
        raise ValueError(
            f"`quotes` must be quote characters, or a list of them and of two-character "
            f"strings opening + closing; received quotes={quotes!r}."
        )
    return {item[0]: item[-1] for item in items}


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string; received {type(text).__name__}.")


def _check_language(language):
    if language not in LANGUAGES:
        raise ValueError(f"`language` must be one of {LANGUAGES}; received language={language!r}.")
    return language
