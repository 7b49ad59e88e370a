"""A word vocabulary that lives in the graph: raw review text to word ids with TF ops only.

`WordVocabulary` is what `CharVocabulary` is for characters: the same layer tokenizes the
training data in `tf.data`, and sits in front of the classifier inside the exported
SavedModel, so serving takes raw strings and tokenizes them exactly as training did.
"""

import collections

import keras
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.vocabulary_json import check_vocabulary_record, vocabulary_record

_OOV_TOKEN = "[UNK]"
_START_TOKEN = "[START]"
_END_TOKEN = "[END]"
_TRUNCATION = ("head", "tail")

# Punctuation becomes a token of its own ("great!" -> "great", "!"), since "!" and "?"
# carry sentiment; apostrophes stay inside words ("don't", "film's"). \pL / \pN are
# Unicode letters and digits (RE2), so accented words stay whole.
_PUNCTUATION = r"([^\pL\pN\s'])"
# Two patterns, not one alternation: in "'good' 'bad'" one match would take the space
# between the quotes, and the next one (needing a space before "'bad") would not match.
_LEADING_APOSTROPHES = r"(^|\s)'+"
_TRAILING_APOSTROPHES = r"'+(\s|$)"
# Control characters other than whitespace (tab, newline, ...) count as invalid text.
_CONTROL_CHARACTERS = r"[\x00-\x08\x0e-\x1f\x7f]"
# Joining tokens back into text: no space before closing punctuation, none after an
# opening mark (Spanish "¿" and "¡" included).
_SPACE_BEFORE_CLOSING = r" ([.,;:!?%)\]}»”’])"
_SPACE_AFTER_OPENING = r"([(\[{«“‘¿¡]) "
# A hyphen or slash the tokenizer split out of a word ("medium-light", "and/or").
_SPACES_AROUND_JOINER = r"([\pL\pN]) ([-/]) ([\pL\pN])"


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class WordVocabulary(keras.layers.Layer):
    """Maps strings to word ids: id 0 is padding, 1 unknown, then words by frequency.

    Tokenization (all TensorFlow ops): bytes that are not valid UTF-8 become U+FFFD,
    text is lower-cased, every punctuation mark becomes its own token, and the text is
    split on whitespace. At most `max_length` tokens are kept (the first ones, or the
    last with `truncation="tail"`): this bounds the work a single 50,000-word review can
    cause. A text without any token (empty, or only spaces) becomes one unknown token, so
    that no row of a batch is entirely padding: the recurrent layers' cuDNN kernel needs
    at least one valid step per row.

    A vocabulary for generated text (a translator's target side) takes
    `sequence_markers=True`: ids 2 and 3 are then `[START]` and `[END]`, the tokens a
    decoder starts from and stops at, and words begin at id 4. `decode` turns generated
    ids back into text.

    Args:
        words: the vocabulary, most frequent first (id = index + `first_word_id`).
        max_length: the most tokens kept per text.
        truncation: `"head"` keeps the first `max_length` tokens, `"tail"` the last.
        lowercase: lower-case text before splitting it (fewer, better-trained words;
            generated text is then lower-case too).
        sequence_markers: reserve ids 2 and 3 for `[START]` and `[END]`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import rnn_toolkit.data
    >>> vocab = rnn_toolkit.data.WordVocabulary(["the", "film", "!"], max_length=4)
    >>> vocab.tokenize(["The film!"]).to_list()
    [[b'the', b'film', b'!']]
    >>> vocab.encode(["The film!", "", "a film , the film"]).to_list()
    [[2, 3, 4], [1], [1, 3, 1, 2]]
    >>> target = rnn_toolkit.data.WordVocabulary(["¿", "qué", "?"], sequence_markers=True)
    >>> target.start_id, target.end_id, target.encode(["¿Qué?"]).to_list()
    (2, 3, [[4, 5, 6]])
    >>> target.decode([[4, 5, 6, 0]]).numpy().tolist()
    [b'\xc2\xbfqu\xc3\xa9?']
    """

    PADDING_ID = 0
    UNKNOWN_ID = 1

    def __init__(
        self,
        words,
        max_length=400,
        truncation="head",
        lowercase=True,
        sequence_markers=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        words = _validate_words(words)
        if truncation not in _TRUNCATION:
            raise ValueError(
                f"`truncation` must be one of {_TRUNCATION}; received truncation={truncation!r}."
            )
        markers = [_START_TOKEN, _END_TOKEN] if sequence_markers else []
        clashes = sorted(set(markers) & set(words))
        if clashes:
            raise ValueError(f"`words` must not contain the reserved tokens {clashes!r}.")

        # === Layers ===
        self.word_to_id = keras.layers.StringLookup(
            vocabulary=markers + words, mask_token="", num_oov_indices=1, oov_token=_OOV_TOKEN,
            name="word_to_id",
        )

        # === Config ===
        self._words = words
        self.max_length = check_positive_int("max_length", max_length)
        self.truncation = truncation
        self.lowercase = bool(lowercase)
        self.sequence_markers = bool(sequence_markers)
        self.built = True

    @classmethod
    def from_texts(cls, texts, *, max_words=20_000, min_count=2, batch_size=4096, **kwargs):
        """Builds a vocabulary from training texts (never from held-out ones).

        Words are counted with the same TensorFlow tokenizer that `encode` uses, and
        ordered by count (ties by the word itself), so the same texts give the same ids.

        Args:
            texts: an iterable of strings (or bytes).
            max_words: keep at most this many words.
            min_count: drop words seen fewer than `min_count` times.
            batch_size: texts tokenized per TensorFlow call.
            **kwargs: passed to the constructor (`max_length`, `truncation`, `name`).

        Returns:
            A `WordVocabulary`.
        """
        max_words = check_positive_int("max_words", max_words)
        min_count = check_positive_int("min_count", min_count)
        texts = list(texts)
        counts = collections.Counter()
        for start in range(0, len(texts), batch_size):
            tokens = cls.tokenize(
                tf.constant(texts[start : start + batch_size], tf.string),
                lowercase=kwargs.get("lowercase", True),
            )
            counts.update(tokens.flat_values.numpy().tolist())
        counts.pop("\ufffd".encode(), None)
        kept = sorted(
            ((word, n) for word, n in counts.items() if n >= min_count),
            key=lambda item: (-item[1], item[0]),
        )[:max_words]
        if not kept:
            raise ValueError(f"`texts` have no word seen at least `min_count`={min_count} times.")
        return cls([word.decode("utf-8") for word, _ in kept], **kwargs)

    @staticmethod
    def tokenize(strings, lowercase=True):
        """Splits strings into word and punctuation tokens.

        Args:
            strings: string tensor `[batch]` (or convertible).
            lowercase: lower-case the text first.

        Returns:
            A string `tf.RaggedTensor` `[batch, None]` (not truncated).
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replace_control_characters=False
        )
        strings = tf.strings.regex_replace(strings, _CONTROL_CHARACTERS, "\ufffd")
        if lowercase:
            strings = tf.strings.lower(strings, encoding="utf-8")
        strings = tf.strings.regex_replace(strings, _PUNCTUATION, r" \1 ")
        strings = tf.strings.regex_replace(strings, _LEADING_APOSTROPHES, r"\1 ")
        strings = tf.strings.regex_replace(strings, _TRAILING_APOSTROPHES, r" \1")
        return tf.strings.split(strings)

    @property
    def words(self):
        """The words in id order (id = index + `first_word_id`)."""
        return list(self._words)

    @property
    def first_word_id(self):
        """The id of the first word: 4 with sequence markers, else 2."""
        return 4 if self.sequence_markers else 2

    @property
    def start_id(self):
        """The id of `[START]` (vocabularies with `sequence_markers` only)."""
        self._check_markers("start_id")
        return 2

    @property
    def end_id(self):
        """The id of `[END]` (vocabularies with `sequence_markers` only)."""
        self._check_markers("end_id")
        return 3

    def _check_markers(self, what):
        if not self.sequence_markers:
            raise ValueError(f"`{what}` needs a WordVocabulary built with sequence_markers=True.")

    @property
    def tokens(self):
        """Every id's token, in id order: `""` (padding), `[UNK]`, markers, words."""
        markers = [_START_TOKEN, _END_TOKEN] if self.sequence_markers else []
        return ["", _OOV_TOKEN] + markers + self._words

    @property
    def size(self):
        """Number of ids, including padding, unknown and the sequence markers."""
        return len(self._words) + self.first_word_id

    def call(self, strings):
        """Same as `encode(strings)`."""
        return self.encode(strings)

    def encode(self, strings):
        """Word ids of each string: an int32 `tf.RaggedTensor` `[batch, 1..max_length]`."""
        tokens = self.tokenize(strings, self.lowercase)
        if self.truncation == "head":
            tokens = tokens[:, : self.max_length]
        else:
            tokens = tokens[:, -self.max_length :]
        ids = tf.cast(tokens.with_flat_values(self.word_to_id(tokens.flat_values)), tf.int32)
        # One unknown token for a text with none: never an all-padding row.
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(empty)], tf.constant(self.UNKNOWN_ID, tf.int32)), empty
        )
        return tf.concat([ids, filler], axis=1)

    def encode_padded(self, strings):
        """Word ids right-padded with 0 to the longest text: int32 `[batch, time]`."""
        return self.encode(strings).to_tensor(self.PADDING_ID)

    def decode(self, token_ids, lengths=None):
        """Joins ids back into text: string `[batch]`.

        Padding ids are dropped, every other id becomes its token (ids outside the
        vocabulary become `[UNK]`), tokens are joined with
        spaces and the spaces the tokenizer put around punctuation are taken out again
        ("¿ qué ?" -> "¿qué?", "medium - light" -> "medium-light"). Other spacing and (with `lowercase`) case are lost.

        Args:
            token_ids: int `[batch, time]`.
            lengths: optional int `[batch]`: only the first `lengths[i]` ids of row `i`
                count.
        """
        token_ids = tf.convert_to_tensor(token_ids)
        token_ids = tf.cast(tf.reshape(token_ids, [tf.shape(token_ids)[0], -1]), tf.int32)
        keep = tf.not_equal(token_ids, self.PADDING_ID)
        if lengths is not None:
            keep &= tf.sequence_mask(lengths, tf.shape(token_ids)[1])
        ids = tf.ragged.boolean_mask(token_ids, keep)
        table = tf.constant(self.tokens, tf.string)
        flat = ids.flat_values
        flat = tf.where((flat >= 0) & (flat < len(self.tokens)), flat, self.UNKNOWN_ID)
        words = ids.with_flat_values(tf.gather(table, flat))
        text = tf.strings.reduce_join(words, axis=1, separator=" ")
        text = tf.strings.regex_replace(text, _SPACE_BEFORE_CLOSING, r"\1")
        # Twice: a match consumes the letter after the joiner, so "a - b - c" needs two.
        for _ in range(2):
            text = tf.strings.regex_replace(text, _SPACES_AROUND_JOINER, r"\1\2\3")
        return tf.strings.regex_replace(text, _SPACE_AFTER_OPENING, r"\1")

    def compute_output_spec(self, strings):
        return keras.KerasTensor(tuple(strings.shape) + (None,), dtype="int32", ragged=True)

    def to_json(self):
        """The vocabulary as a JSON-able dict (see `rnn_toolkit.data.vocabulary_json`)."""
        markers = self.sequence_markers
        return vocabulary_record(
            "words",
            self.tokens,
            start_id=self.start_id if markers else None,
            end_id=self.end_id if markers else None,
            max_length=self.max_length,
            truncation=self.truncation,
            lowercase=self.lowercase,
        )

    @classmethod
    def from_json(cls, record, **kwargs):
        """The vocabulary `to_json` described; `kwargs` go to the constructor (`name`).

        Example:

        >>> import rnn_toolkit.data
        >>> vocab = rnn_toolkit.data.WordVocabulary(["yes", "no"], max_length=5)
        >>> copy = rnn_toolkit.data.WordVocabulary.from_json(vocab.to_json())
        >>> copy.words, copy.max_length, copy.sequence_markers
        (['yes', 'no'], 5, False)
        """
        markers = isinstance(record, dict) and record.get("start_id") is not None
        reserved = ["", _OOV_TOKEN] + ([_START_TOKEN, _END_TOKEN] if markers else [])
        words = check_vocabulary_record(
            record, "words", reserved,
            start_id=2 if markers else None,
            end_id=3 if markers else None,
            settings=("max_length", "truncation", "lowercase"),
        )
        return cls(
            words,
            max_length=record["max_length"],
            truncation=record["truncation"],
            lowercase=record["lowercase"],
            sequence_markers=markers,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            words=self.words,
            max_length=self.max_length,
            truncation=self.truncation,
            lowercase=self.lowercase,
            sequence_markers=self.sequence_markers,
        )
        return config


def _validate_words(words):
    if isinstance(words, str) or not isinstance(words, (list, tuple)):
        raise TypeError(f"`words` must be a list of strings; got {type(words).__name__}.")
    words = list(words)
    if not words:
        raise ValueError("`words` must not be empty.")
    bad = [w for w in words if not isinstance(w, str) or not w or w != w.strip()]
    if bad:
        raise ValueError(f"`words` must be non-empty strings without spaces at the ends; got {bad[:5]!r}.")
    duplicates = sorted(w for w, n in collections.Counter(words).items() if n > 1)
    if duplicates:
        raise ValueError(f"`words` has duplicates: {duplicates[:10]!r}.")
    if _OOV_TOKEN in words:
        raise ValueError(f"`words` must not contain {_OOV_TOKEN!r}, the unknown token.")
    return words
