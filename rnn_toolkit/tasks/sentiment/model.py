"""Many-to-one sentiment classifier: word ids -> recurrent stack -> one decision per text.

As in the lecture, the recurrent network reads the whole review and the decision is taken
from its final hidden state; pooling the states of all steps (mean, max, or learned
attention) is selectable. The word vocabulary is a layer of the model, so `classify()` and
the exported SavedModel take raw strings.
"""

import keras
import numpy as np
import tensorflow as tf

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.word_vocabulary import WordVocabulary
from rnn_toolkit.layers.bag_of_words import BagOfWords
from rnn_toolkit.layers.recurrent_stack import RecurrentStack
from rnn_toolkit.layers.sequence_pooling import POOLING_METHODS, SequencePooling
from rnn_toolkit.layers.word_dropout import WordDropout
from rnn_toolkit.precision import resolve_dtype_policy
from rnn_toolkit.training.gradient_clipping import GradientClippingModel

POOLINGS = ("final",) + POOLING_METHODS
HEADS = ("classes", "regression")


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class SentimentClassifier(GradientClippingModel):
    """Reads word ids `[batch, time]` (right-padded with 0) and returns one output per text.

    With `head="classes"` the output is float32 logits `[batch, classes]`; with
    `head="regression"` it is a float32 score `[batch]` (e.g. the crowd sentiment score),
    and a text's class is the sign of its score. Build it with
    `build_sentiment_classifier()`, which also compiles it.

    Args:
        vocabulary: a `rnn_toolkit.data.WordVocabulary` (adapted on the training split).
        class_names: the class names in id order (at least two).
        head: `"classes"` (softmax over the classes) or `"regression"` (one real score;
            needs exactly two classes, negative below 0 and positive above).
        embedding_dim: word embedding size.
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per recurrent layer and direction.
        num_layers: stacked recurrent layers.
        bidirectional: read each text in both directions; the final state is then the
            forward state after the last word joined with the backward state after the
            first.
        dropout: dropout on the embeddings, between recurrent layers and before the head.
        word_dropout: share of words replaced by the unknown word during training (see
            `rnn_toolkit.layers.WordDropout`): the unknown id then means something when
            held-out text brings words the vocabulary lacks.
        pooling: `"final"` (the final hidden state, the default), `"mean"`, `"max"` or
            `"attention"` over all valid steps.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        clip_norm: global gradient-norm clipping threshold (None or 0: off).
        **kwargs: standard `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        vocabulary,
        class_names=("negative", "positive"),
        head="classes",
        embedding_dim=128,
        cell="lstm",
        units=128,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        word_dropout=0.0,
        pooling="final",
        dtype_policy="auto",
        clip_norm=1.0,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        policy = resolve_dtype_policy(dtype_policy)
        super().__init__(clip_norm=clip_norm, dtype=policy, **kwargs)
        if isinstance(vocabulary, dict):
            vocabulary = WordVocabulary(**vocabulary)
        if not isinstance(vocabulary, WordVocabulary):
            raise TypeError(
                "`vocabulary` must be a rnn_toolkit.data.WordVocabulary (e.g. "
                f"WordVocabulary.from_texts(train_texts)); got {type(vocabulary).__name__}."
            )
        class_names = tuple(str(name) for name in class_names)
        if len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(
                f"`class_names` must be at least two distinct names; received {list(class_names)}."
            )
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}; received head={head!r}.")
        if head == "regression" and len(class_names) != 2:
            raise ValueError(
                "`head='regression'` predicts one score whose sign is the class: it needs "
                f"exactly two classes; received {len(class_names)}."
            )
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}; received pooling={pooling!r}.")
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)

        # === Layers ===
        self.vocabulary = vocabulary
        self.word_dropout_layer = WordDropout(
            word_dropout, unknown_id=vocabulary.UNKNOWN_ID, padding_id=vocabulary.PADDING_ID,
            name="word_dropout",
        )
        # mask_zero: id 0 is padding; the mask is right-padded with a valid first step in
        # every row (WordVocabulary never yields an empty text), as cuDNN requires.
        self.embedding = keras.layers.Embedding(
            vocabulary.size, embedding_dim, mask_zero=True, name="embedding", dtype=policy
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout", dtype=policy)
        self.recurrent = RecurrentStack(
            cell,
            units=units,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            return_sequences=True,
            name="recurrent",
            dtype=policy,
        )
        self.pool = None if pooling == "final" else SequencePooling(pooling, name="pooling", dtype=policy)
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout", dtype=policy)
        outputs = len(class_names) if head == "classes" else 1
        self.head = keras.layers.Dense(outputs, name=head, dtype="float32")

        # === Config ===
        self.class_names = class_names
        self.head_type = head
        self.embedding_dim = embedding_dim
        self.cell = self.recurrent.cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.word_dropout = float(word_dropout)
        self.pooling = pooling
        self.dtype_policy_name = policy

    def build(self, input_shape=None):
        batch, time = (None, None) if input_shape is None else tuple(input_shape)[:2]
        self.embedding.build((batch, time))
        self.recurrent.build((batch, time, self.embedding_dim))
        if self.pool is not None:
            self.pool.build((batch, time, self.recurrent.output_size))
        self.head.build((batch, self.recurrent.output_size))
        self.built = True

    def call(self, token_ids, training=None, return_attention=False):
        """Logits `[batch, classes]` (or scores `[batch]`) for right-padded word ids.

        With `return_attention=True` (attention pooling only) also returns the attention
        weights `[batch, time]`.
        """
        mask = self.embedding.compute_mask(token_ids)
        token_ids = self.word_dropout_layer(token_ids, training=training)
        embedded = self.embedding_dropout(self.embedding(token_ids), training=training)
        outputs, states = self.recurrent(
            embedded, mask=mask, training=training, return_state=True
        )
        weights = None
        if self.pool is None:
            summary = self._final_hidden_state(states[-1])
        elif self.pooling == "attention":
            summary, weights = self.pool(outputs, mask=mask, return_weights=True)
        else:
            summary = self.pool(outputs, mask=mask)
        result = self.head(self.head_dropout(summary, training=training))
        if self.head_type == "regression":
            result = result[:, 0]
        if return_attention:
            if weights is None:
                raise ValueError("`return_attention` needs a model built with pooling='attention'.")
            return result, weights
        return result

    def _final_hidden_state(self, top_states):
        # Keras returns, per direction, (h, c) for an LSTM and (h,) otherwise; masked
        # steps leave the state unchanged, so this is the state after each text's last
        # word (and, backwards, after its first).
        per_direction = 2 if self.cell == "lstm" else 1
        hidden = top_states[::per_direction]
        return hidden[0] if len(hidden) == 1 else keras.ops.concatenate(hidden, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    # --- Inference on raw text ---------------------------------------------------------

    def classify_tensors(self, texts):
        """Graph-safe inference: string `[batch]` -> dict of tensors.

        Returns `label` (string `[batch]`), `class_id` (int32 `[batch]`) and
        `probabilities` (float32 `[batch, classes]`); a regression model also returns
        `score` (float32 `[batch]`), and its `probabilities` are
        `[sigmoid(-score), sigmoid(score)]`. A batch of zero texts gives empty results.
        """
        token_ids = self.vocabulary.encode_padded(texts)
        # A batch of zero texts has zero time steps too, which the recurrent layers'
        # loop cannot slice; one padding column makes it an empty batch of length 1.
        missing = tf.maximum(1 - tf.shape(token_ids)[1], 0)
        token_ids = tf.pad(token_ids, [[0, 0], [0, missing]])
        outputs = self(token_ids, training=False)
        result = {}
        if self.head_type == "regression":
            score = tf.cast(outputs, tf.float32)
            probabilities = tf.stack([tf.sigmoid(-score), tf.sigmoid(score)], axis=-1)
            result["score"] = score
        else:
            probabilities = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        result.update(
            label=tf.gather(tf.constant(self.class_names), class_id),
            class_id=class_id,
            probabilities=probabilities,
        )
        return result

    def classify(self, texts, batch_size=256):
        """Classifies raw texts.

        Args:
            texts: a string or a list of strings (bytes are read as UTF-8; bad bytes are
                replaced, not rejected).
            batch_size: texts per call of the network.

        Returns:
            A dict of NumPy arrays: `label` (str `[n]`), `class_id` (int `[n]`),
            `probabilities` (float `[n, classes]`), and for a regression model `score`.
        """
        single = isinstance(texts, (str, bytes))
        texts = [texts] if single else list(texts)
        batch_size = check_positive_int("batch_size", batch_size)
        function = self._classify_function()
        parts = [
            function(tf.constant(texts[start : start + batch_size], tf.string))
            for start in range(0, len(texts), batch_size)
        ] or [function(tf.constant([], tf.string))]
        result = {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}
        result["label"] = np.asarray([label.decode("utf-8") for label in result["label"]], dtype=object)
        return result

    def attention_weights(self, texts):
        """The words of each text and the attention weight pooling gave each of them.

        Only for `pooling="attention"`. Returns a list of `(words, weights)` pairs.
        """
        if self.pooling != "attention":
            raise ValueError("`attention_weights` needs a model built with pooling='attention'.")
        texts = [texts] if isinstance(texts, (str, bytes)) else list(texts)
        tokens = self.vocabulary.tokenize(tf.constant(texts, tf.string))
        token_ids = self.vocabulary.encode_padded(tf.constant(texts, tf.string))
        _, weights = self(token_ids, training=False, return_attention=True)
        pairs = []
        for row, words in enumerate(tokens.to_list()):
            words = [word.decode("utf-8") for word in words]
            if self.vocabulary.truncation == "head":
                words = words[: self.vocabulary.max_length]
            else:
                words = words[-self.vocabulary.max_length :]
            count = max(len(words), 1)
            pairs.append((words or ["[UNK]"], weights.numpy()[row, :count].tolist()))
        return pairs

    def _classify_function(self):
        # Kept out of Keras' attribute tracking (like a cache), traced once.
        if "_classify_fn" not in self.__dict__:
            self.__dict__["_classify_fn"] = tf.function(
                self.classify_tensors, input_signature=[tf.TensorSpec([None], tf.string)]
            )
        return self.__dict__["_classify_fn"]

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary.get_config(),
            class_names=list(self.class_names),
            head=self.head_type,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            word_dropout=self.word_dropout,
            pooling=self.pooling,
            dtype_policy=self.dtype_policy_name,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        vocabulary = dict(config.pop("vocabulary"))
        for key in ("name", "trainable", "dtype"):
            vocabulary.pop(key, None)
        return cls(WordVocabulary(**vocabulary), **config)


def build_sentiment_classifier(
    vocabulary,
    *,
    class_names=("negative", "positive"),
    head="classes",
    embedding_dim=128,
    cell="lstm",
    units=128,
    num_layers=1,
    bidirectional=False,
    dropout=0.3,
    word_dropout=0.0,
    pooling="final",
    learning_rate=2e-3,
    optimizer=None,
    clip_norm=1.0,
    dtype_policy="auto",
    name="sentiment",
):
    """Builds and compiles a many-to-one sentiment classifier.

    Args:
        vocabulary: a `rnn_toolkit.data.WordVocabulary` adapted on the training texts.
        class_names: class names in id order (binary or multi-class).
        head: `"classes"` (cross-entropy over the classes, metric `accuracy`) or
            `"regression"` (mean squared error on a real score such as the crowd score,
            metrics `mae` and `sign_accuracy`, the accuracy of the score's sign).
        embedding_dim: word embedding size (trained from scratch: no pretrained vectors).
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        units: hidden units per layer and direction.
        num_layers: stacked recurrent layers.
        bidirectional: read texts in both directions.
        dropout: dropout on embeddings, between layers and before the head.
        word_dropout: share of words replaced by the unknown word during training.
        pooling: `"final"` (final hidden state), `"mean"`, `"max"` or `"attention"`.
        learning_rate: Adam's learning rate (used when `optimizer` is None).
        optimizer: a `keras.optimizers.Optimizer` to use instead of Adam.
        clip_norm: gradient clipping by global norm (None or 0: off); the pre-clip norm is
            logged as `grad_norm`.
        dtype_policy: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        name: the model's name.

    Returns:
        A compiled `SentimentClassifier`.

    Example:

    >>> import rnn_toolkit
    >>> vocabulary = rnn_toolkit.data.WordVocabulary.from_texts(
    ...     ["a fine film", "a dull film"], min_count=1)
    >>> model = rnn_toolkit.build_sentiment_classifier(vocabulary, cell="gru", units=4)
    >>> model.classify(["a fine film"])["probabilities"].shape
    (1, 2)
    """
    model = SentimentClassifier(
        vocabulary,
        class_names=class_names,
        head=head,
        embedding_dim=embedding_dim,
        cell=cell,
        units=units,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        word_dropout=word_dropout,
        pooling=pooling,
        dtype_policy=dtype_policy,
        clip_norm=clip_norm,
        name=name,
    )
    model.build((None, None))
    if head == "regression":
        loss = keras.losses.MeanSquaredError()
        metrics = [keras.metrics.MeanAbsoluteError(name="mae"), SignAccuracy()]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate) if optimizer is None else optimizer,
        loss=loss,
        metrics=metrics,
    )
    return model


@keras.saving.register_keras_serializable(package="rnn_toolkit")
class SignAccuracy(keras.metrics.MeanMetricWrapper):
    """The share of predicted scores with the same sign as the true score."""

    def __init__(self, name="sign_accuracy", dtype=None):
        super().__init__(_same_sign, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def _same_sign(y_true, y_pred):
    y_true = keras.ops.cast(y_true, "float32")
    y_pred = keras.ops.cast(keras.ops.reshape(y_pred, keras.ops.shape(y_true)), "float32")
    return keras.ops.cast(keras.ops.equal(y_true > 0, y_pred > 0), "float32")


def build_bag_of_words_classifier(
    vocabulary,
    *,
    class_names=("negative", "positive"),
    l2=1e-4,
    learning_rate=1e-2,
    name="bag_of_words",
):
    """Builds and compiles the bag-of-words baseline: logistic regression on word presence.

    It sees the same vocabulary (and, in `rnn_toolkit.tasks.sentiment.run`, the same split) as
    the recurrent classifier, but no word order: the gap between the two is what the
    recurrence buys.

    Args:
        vocabulary: the `WordVocabulary` (or its size).
        class_names: class names in id order.
        l2: L2 penalty on the weights (per weight, added to the mean loss).
        learning_rate: Adam's learning rate.
        name: the model's name.

    Returns:
        A compiled `keras.Model`: right-padded word ids `[batch, time]` -> logits
        `[batch, classes]`, metric `accuracy`.

    Example:

    >>> import rnn_toolkit
    >>> model = rnn_toolkit.models.build_bag_of_words_classifier(50)
    >>> model.output_shape
    (None, 2)
    """
    size = vocabulary.size if isinstance(vocabulary, WordVocabulary) else int(vocabulary)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    features = BagOfWords(size, name="bag_of_words")(token_ids)
    logits = keras.layers.Dense(
        len(class_names), kernel_regularizer=keras.regularizers.L2(l2), name="logits"
    )(features)
    model = keras.Model(token_ids, logits, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
