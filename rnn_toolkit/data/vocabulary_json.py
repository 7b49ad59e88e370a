"""The one JSON form of a vocabulary, as exports write it to their SavedModel's assets.

`CharVocabulary.to_json()` and `WordVocabulary.to_json()` both return a dict of this
form, and `from_json(record)` rebuilds the same vocabulary (same ids, same encoding and
decoding) from it::

    {
      "format": "rnn_toolkit.vocabulary/1",
      "kind": "characters" | "words",
      "tokens": ["", "[UNK]", ...],   # the text every id stands for, in id order
      "padding_id": 0,
      "unknown_id": 1,
      "start_id": 2 | null,           # [START] and [END]: words with sequence_markers
      "end_id": 3 | null,
      # "words" only, how text is split before lookup:
      "max_length": 400,              # the most tokens kept per text
      "truncation": "head" | "tail",  # keep the first or the last max_length tokens
      "lowercase": true
    }

`tokens[i]` is what id i decodes to: `""` for padding, `"[UNK]"` (words) or U+FFFD
(characters) for the unknown id, then `"[START]"`, `"[END]"` if present, then the
vocabulary's own tokens. A tool that reads another version of `format` should refuse
it, not guess. `write_vocabulary_json` and `read_vocabulary_json` write and read it as a
UTF-8 file (`assets/vocabulary.json` and friends in an exported SavedModel).

Example:

>>> import tempfile, pathlib
>>> import rnn_toolkit.data
>>> from rnn_toolkit.data.vocabulary_json import read_vocabulary_json, write_vocabulary_json
>>> vocabulary = rnn_toolkit.data.WordVocabulary(["la", "casa"], sequence_markers=True)
>>> record = vocabulary.to_json()
>>> record["kind"], record["tokens"], record["start_id"], record["end_id"]
('words', ['', '[UNK]', '[START]', '[END]', 'la', 'casa'], 2, 3)
>>> path = write_vocabulary_json(vocabulary, pathlib.Path(tempfile.mkdtemp()) / "vocabulary.json")
>>> read_vocabulary_json(path).encode(["la casa"]).to_list()
[[4, 5]]
"""

import json
from pathlib import Path

FORMAT = "rnn_toolkit.vocabulary/1"
KINDS = ("characters", "words")


def vocabulary_record(kind, tokens, *, start_id=None, end_id=None, **settings):
    """A vocabulary's JSON record (see the module docstring) from its parts.

    Args:
        kind: `"characters"` or `"words"`.
        tokens: the text of every id, in id order (padding and unknown included).
        start_id: the id of `[START]`, or None.
        end_id: the id of `[END]`, or None.
        **settings: the kind's own settings (for words: `max_length`, `truncation`,
            `lowercase`).
    """
    return {
        "format": FORMAT,
        "kind": kind,
        "tokens": list(tokens),
        "padding_id": 0,
        "unknown_id": 1,
        "start_id": start_id,
        "end_id": end_id,
        **settings,
    }


def check_vocabulary_record(
    record, kind, reserved_tokens, *, start_id=None, end_id=None, settings=()
):
    """Checks that `record` is this module's form for a vocabulary of `kind` whose first
    ids are `reserved_tokens`, whose markers are `start_id` / `end_id`, and which has
    the kind's `settings` keys.

    Returns:
        The tokens after the reserved ones: what the vocabulary's constructor takes.

    Raises:
        ValueError: naming what does not match.
    """
    if not isinstance(record, dict):
        raise ValueError(f"A vocabulary record must be a dict; got {type(record).__name__}.")
    if record.get("format") != FORMAT:
        raise ValueError(
            f"Not a vocabulary record of format {FORMAT!r}; "
            f"received format={record.get('format')!r}."
        )
    if record.get("kind") != kind:
        raise ValueError(
            f"Expected a vocabulary of kind {kind!r}; received kind={record.get('kind')!r}."
        )
    tokens = record.get("tokens")
    if not isinstance(tokens, list) or tokens[: len(reserved_tokens)] != list(reserved_tokens):
        raise ValueError(
            f"A {kind!r} vocabulary record's tokens must start with {list(reserved_tokens)!r}."
        )
    expected = {"padding_id": 0, "unknown_id": 1, "start_id": start_id, "end_id": end_id}
    for key, value in expected.items():
        if record.get(key) != value:
            raise ValueError(
                f"Expected {key}={value!r} in this vocabulary record; received {record.get(key)!r}."
            )
    missing = [key for key in settings if key not in record]
    if missing:
        raise ValueError(f"A {kind!r} vocabulary record needs {missing!r}.")
    return tokens[len(reserved_tokens) :]


def write_vocabulary_json(vocabulary, path):
    """Writes `vocabulary.to_json()` to `path` as UTF-8 JSON; returns the `Path`."""
    path = Path(path)
    text = json.dumps(vocabulary.to_json(), ensure_ascii=False, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


def read_vocabulary_json(path, **kwargs):
    """Reads a vocabulary file written by `write_vocabulary_json`.

    Args:
        path: the file (e.g. an exported SavedModel's `assets/vocabulary.json`).
        **kwargs: passed to the vocabulary's constructor (`name`).

    Returns:
        A `CharVocabulary` or a `WordVocabulary`, as the record's `kind` says.
    """
    # Imported here: both vocabulary modules import this one's record helpers.
    from rnn_toolkit.data.vocabulary import CharVocabulary
    from rnn_toolkit.data.word_vocabulary import WordVocabulary

    record = json.loads(Path(path).read_text(encoding="utf-8"))
    classes = {"characters": CharVocabulary, "words": WordVocabulary}
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in classes:
        raise ValueError(f"{path}: `kind` must be one of {KINDS}; received kind={kind!r}.")
    return classes[kind].from_json(record, **kwargs)
