"""Train / validation splits of one long text.

A char-RNN corpus is usually one long string. Holding out its last 10 % would
validate on a single play (or a single module); `split_text` instead holds out
the end of each of several evenly spaced blocks, so validation text comes from
every part of the corpus while each piece stays contiguous.
"""

from rnn_toolkit.arguments import check_positive_int


def split_text(text, *, validation_fraction=0.1, num_chunks=10):
    """Splits a text into contiguous training and validation pieces.

    The text is cut into `num_chunks` contiguous blocks of (nearly) equal
    length; the last `validation_fraction` of each block is held out. The
    pieces are returned separately, so a window built inside one piece never
    spans a train/validation boundary. The split is a pure function of its
    arguments.

    Args:
        text: The corpus, a non-empty string.
        validation_fraction: Share of each block held out, in (0, 1).
        num_chunks: Number of blocks, a positive integer no larger than
            `len(text)`.

    Returns:
        `(train_pieces, validation_pieces)`: two lists of non-empty strings,
        in corpus order. Joining all pieces in the order train[0], val[0],
        train[1], val[1], ... gives back `text`.

    Raises:
        TypeError: If `text` is not a string.
        ValueError: If `text` is empty, or `validation_fraction` or
            `num_chunks` is out of range (the argument is named).

    Example:

    >>> import rnn_toolkit.data
    >>> rnn_toolkit.data.split_text("aaaaBbbbbB", validation_fraction=0.2, num_chunks=2)
    (['aaaa', 'bbbb'], ['B', 'B'])
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string, got {type(text).__name__}.")
    if not text:
        raise ValueError("`text` must not be empty.")
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, (int, float))
        or not 0.0 < validation_fraction < 1.0
    ):
        raise ValueError(
            f"`validation_fraction` must be a number in (0, 1), got {validation_fraction!r}."
        )
    num_chunks = check_positive_int("num_chunks", num_chunks)
    if num_chunks > len(text):
        raise ValueError(
            f"`num_chunks` ({num_chunks}) must not exceed the text length ({len(text)})."
        )

    # Integer arithmetic keeps the boundaries exact and platform-independent.
    bounds = [len(text) * i // num_chunks for i in range(num_chunks + 1)]
    train, validation = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        cut = end - round((end - start) * validation_fraction)
        if text[start:cut]:
            train.append(text[start:cut])
        if text[cut:end]:
            validation.append(text[cut:end])
    return train, validation
