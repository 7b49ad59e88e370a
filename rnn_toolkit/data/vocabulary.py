"""A character vocabulary that lives in the graph.

`CharVocabulary` maps raw UTF-8 strings to character ids and back with
TensorFlow ops only, so the same object serves a `tf.data` pipeline, a
`tf.function` decoding loop and an exported SavedModel that takes and returns
raw strings.
"""

import collections

import keras
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.vocabulary_json import check_vocabulary_record, vocabulary_record

# StringLookup needs some OOV token string when mapping text to ids; it is never
# produced, because a single character cannot equal this multi-character token.
_OOV_TOKEN = "[UNK]"
_REPLACEMENT_CHARACTER = "\ufffd"


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class CharVocabulary(keras.layers.Layer):
    """Maps strings to character ids and ids back to strings.

    Id 0 is padding, id 1 is "unknown", and ids `2 .. size - 1` are the
    characters in the order given. Text is split into Unicode code points;
    bytes that are not valid UTF-8 become U+FFFD and then the unknown id, as
    does any character not in the vocabulary.

    The lookups are two `keras.layers.StringLookup` layers held as attributes,
    so their tables are tracked: the vocabulary works inside `tf.function`,
    `tf.data.Dataset.map`, a Keras model, and a `tf.saved_model.save` export
    that is reloaded without rnn_toolkit installed.

    Args:
        characters: The characters, as a string or a list of one-character
            strings, in id order. Must be non-empty, without duplicates,
            and without U+FFFD (which always means "unknown").
        **kwargs: Standard `keras.layers.Layer` arguments (e.g. `name`).

    Raises:
        TypeError: If `characters` is not a string or a list of strings.
        ValueError: If `characters` is empty, contains an entry that is not
            exactly one character, contains duplicates or U+FFFD.

    Example:

    >>> import rnn_toolkit.data
    >>> vocab = rnn_toolkit.data.CharVocabulary("abc")
    >>> vocab.size
    5
    >>> vocab.encode(["cab", "ax"]).to_list()
    [[4, 2, 3], [2, 1]]
    >>> vocab.decode([[4, 2, 3, 0]]).numpy().tolist()
    [b'cab']
    """

    PADDING_ID = 0
    UNKNOWN_ID = 1

    def __init__(self, characters, **kwargs):
        super().__init__(**kwargs)
        characters = _validate_characters(characters)

        # === Layers ===
        # mask_token="" claims id 0 for padding and pushes the OOV id to 1, so
        # the characters start at 2 with no index arithmetic of our own.
        self.char_to_id = keras.layers.StringLookup(
            vocabulary=characters,
            mask_token="",
            num_oov_indices=1,
            oov_token=_OOV_TOKEN,
            name="char_to_id",
        )
        self.id_to_char = keras.layers.StringLookup(
            vocabulary=characters,
            mask_token="",
            num_oov_indices=1,
            oov_token=_REPLACEMENT_CHARACTER,
            invert=True,
            name="id_to_char",
        )

        # === Config ===
        self._characters = characters
        # The lookups have no weights to create, so there is nothing to build;
        # saying so up front keeps Keras from warning on the first call.
        self.built = True

    @classmethod
    def from_text(cls, text_or_texts, *, max_characters=None, min_count=1, **kwargs):
        """Builds a vocabulary from the characters that occur in a text.

        Characters are sorted by code point so the same text always gives the
        same ids. U+FFFD (the mark of undecodable bytes) is never included.

        Args:
            text_or_texts: A string or an iterable of strings.
            max_characters: If given, keep only the `max_characters` most
                frequent characters (ties broken by code point).
            min_count: Drop characters seen fewer than `min_count` times.
            **kwargs: Passed to the constructor (e.g. `name`).

        Returns:
            A `CharVocabulary`.

        Raises:
            TypeError: If `text_or_texts` is not a string or strings.
            ValueError: If `max_characters` or `min_count` is not a positive
                integer, or no character is left.
        """
        max_characters = check_positive_int("max_characters", max_characters, allow_none=True)
        min_count = check_positive_int("min_count", min_count)
        texts = [text_or_texts] if isinstance(text_or_texts, str) else text_or_texts
        counts = collections.Counter()
        try:
            for text in texts:
                if not isinstance(text, str):
                    raise TypeError
                counts.update(text)
        except TypeError:
            raise TypeError(
                "`text_or_texts` must be a string or an iterable of strings."
            ) from None
        counts.pop(_REPLACEMENT_CHARACTER, None)
        kept = [(c, n) for c, n in counts.items() if n >= min_count]
        if max_characters is not None:
            kept = sorted(kept, key=lambda item: (-item[1], item[0]))[:max_characters]
        characters = sorted(c for c, _ in kept)
        if not characters:
            raise ValueError(
                f"`text_or_texts` has no character seen at least `min_count`={min_count} times."
            )
        return cls(characters, **kwargs)

    @property
    def characters(self):
        """The vocabulary's characters in id order (id = index + 2)."""
        return list(self._characters)

    @property
    def tokens(self):
        """What every id decodes to, in id order: `""` (padding), U+FFFD (unknown),
        then the characters."""
        return ["", _REPLACEMENT_CHARACTER] + self._characters

    @property
    def size(self):
        """Number of ids, including padding and unknown."""
        return len(self._characters) + 2

    def call(self, strings):
        """Same as `encode`."""
        return self.encode(strings)

    def encode(self, strings):
        """Splits strings into characters and maps them to ids.

        Args:
            strings: A string tensor (or anything convertible to one) of
                shape `[batch]`, or a scalar string.

        Returns:
            For `[batch]` input, an int32 `tf.RaggedTensor` of shape
            `[batch, None]`; for a scalar string, a 1-D int32 tensor.
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        characters = tf.strings.unicode_split(strings, "UTF-8", errors="replace")
        if isinstance(characters, tf.RaggedTensor):
            ids = characters.with_flat_values(self.char_to_id(characters.flat_values))
        else:
            ids = self.char_to_id(characters)
        return tf.cast(ids, tf.int32)

    def decode(self, ids):
        """Maps ids back to strings, joining along the last axis.

        Padding ids (0) are dropped; the unknown id and ids outside the
        vocabulary become U+FFFD.

        Args:
            ids: Integer ids of shape `[..., time]`, dense (padded with 0) or
                ragged.

        Returns:
            A string tensor of shape `[...]` (a scalar for 1-D `ids`).
        """
        if isinstance(ids, tf.RaggedTensor):
            flat = tf.cast(ids.flat_values, tf.int64)
            characters = ids.with_flat_values(self.id_to_char(flat))
        else:
            ids = tf.cast(tf.convert_to_tensor(ids), tf.int64)
            characters = self.id_to_char(ids)
        return tf.strings.reduce_join(characters, axis=-1)

    def compute_output_spec(self, strings):
        # Keras traces layers symbolically; ids have one more (ragged) axis.
        shape = tuple(strings.shape) + (None,)
        return keras.KerasTensor(shape, dtype="int32", ragged=len(shape) > 1)

    def to_json(self):
        """The vocabulary as a JSON-able dict (see `rnn_toolkit.data.vocabulary_json`)."""
        return vocabulary_record("characters", self.tokens)

    @classmethod
    def from_json(cls, record, **kwargs):
        """The vocabulary `to_json` described; `kwargs` go to the constructor (`name`).

        Example:

        >>> import rnn_toolkit.data
        >>> vocab = rnn_toolkit.data.CharVocabulary("ab")
        >>> record = vocab.to_json()
        >>> record["kind"], record["tokens"][2:], record["unknown_id"]
        ('characters', ['a', 'b'], 1)
        >>> rnn_toolkit.data.CharVocabulary.from_json(record).characters
        ['a', 'b']
        """
        characters = check_vocabulary_record(record, "characters", ["", _REPLACEMENT_CHARACTER])
        return cls(characters, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({"characters": self.characters})
        return config


def _validate_characters(characters):
    """Returns `characters` as a list of one-character strings, or raises."""
    if isinstance(characters, str):
        characters = list(characters)
    elif isinstance(characters, (list, tuple)):
        characters = list(characters)
        for item in characters:
            if not isinstance(item, str):
                raise TypeError(
                    f"`characters` must be a string or a list of strings, "
                    f"found an item of type {type(item).__name__}."
                )
    else:
        raise TypeError(
            f"`characters` must be a string or a list of strings, got {type(characters).__name__}."
        )
    if not characters:
        raise ValueError("`characters` must not be empty.")
    bad = [c for c in characters if len(c) != 1]
    if bad:
        raise ValueError(f"`characters` entries must be single characters, got {bad[:5]!r}.")
    duplicates = sorted(c for c, n in collections.Counter(characters).items() if n > 1)
    if duplicates:
        raise ValueError(f"`characters` has duplicates: {duplicates[:10]!r}.")
    if _REPLACEMENT_CHARACTER in characters:
        raise ValueError(
            "`characters` must not contain U+FFFD; it always decodes the unknown id."
        )
    return characters
