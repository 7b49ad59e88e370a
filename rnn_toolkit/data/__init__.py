"""Data for recurrent networks: corpora, vocabularies, splits and tf.data pipelines.

This package never imports models or builders; models depend on data, not the
other way round. Imports from rnn_toolkit: arguments, data.

Example:

>>> import rnn_toolkit.data as data
>>> vocab = data.CharVocabulary.from_text("to be or not to be")
>>> train, validation = data.split_text("to be or not to be " * 20)
>>> ds = data.char_windows(train, vocab, sequence_length=8, batch_size=4, seed=0)
>>> inputs, targets = next(iter(ds))
>>> tuple(inputs.shape), inputs.dtype.name
((4, 8), 'int32')
"""

from rnn_toolkit.data.caption_batches import caption_batches, image_batches
from rnn_toolkit.data.clip_batches import clip_batches
from rnn_toolkit.data.captioned_images import (
    CaptionedImages,
    load_captioned_images,
    read_caption_folder,
    read_coco_captions,
    read_flickr_tokens,
    split_captioned_images,
    tfds_captioned_images,
)
from rnn_toolkit.data.clip_art import noto_emoji, openmoji_drawings, tuxpaint_stamps
from rnn_toolkit.data.scenes import compose_scenes, emoji_scenes, scene_caption_scores
from rnn_toolkit.data.images import decode_image, decode_image_batch
from rnn_toolkit.data.cache import cache_dir, fetch_debian_package, fetch_pypi_distribution
from rnn_toolkit.data.corpora import load_corpus, python_source_text, shakespeare_text, tfds_text
from rnn_toolkit.data.source_corpora import (
    SourceCorpus,
    glibc_source_text,
    linux_source_text,
    pari_tex_text,
    parse_source_corpus,
    source_corpus_text,
)
from rnn_toolkit.data.flare import flare, flare_clips, flare_sequences
from rnn_toolkit.data.dataset_options import pipeline_options
from rnn_toolkit.data.labelled_clips import LabelledClips, read_labelled_frames, read_video_file
from rnn_toolkit.data.lag_task import lag_task_batches, lag_task_examples
from rnn_toolkit.data.tfds_clips import tfds_clip_splits, tfds_labelled_clips
from rnn_toolkit.data.moving_digits import mnist_digits, moving_digit_clips, moving_digits
from rnn_toolkit.data.pingus import pingus, pingus_clips, pingus_sequences
from rnn_toolkit.data.parallel_text import (
    ParallelTexts,
    bible_verse_pairs,
    gcc_messages,
    gettext_pairs,
    load_parallel,
    parallel_holdout_split,
    read_parallel_table,
    tfds_parallel_texts,
)
from rnn_toolkit.data.reviews import (
    BINARY_CLASS_NAMES,
    LabelledTexts,
    document_sentences,
    holdout_split,
    load_reviews,
    pang_lee_reviews,
    read_class_folders,
    read_labelled_table,
    rotten_tomatoes_sentences,
    stratified_folds,
    tfds_labelled_texts,
)
from rnn_toolkit.data.splits import split_text
from rnn_toolkit.data.text_batches import (
    encode_texts,
    padding_share,
    text_classification_batches,
    translation_batches,
)
from rnn_toolkit.data.vocabulary import CharVocabulary
from rnn_toolkit.data.windows import char_windows, consecutive_char_batches
from rnn_toolkit.data.word_vocabulary import WordVocabulary

__all__ = [
    "cache_dir",
    "fetch_pypi_distribution",
    "fetch_debian_package",
    "load_corpus",
    "tfds_text",
    "shakespeare_text",
    "python_source_text",
    "SourceCorpus",
    "parse_source_corpus",
    "source_corpus_text",
    "linux_source_text",
    "glibc_source_text",
    "pari_tex_text",
    "CharVocabulary",
    "split_text",
    "char_windows",
    "consecutive_char_batches",
    "pipeline_options",
    "lag_task_examples",
    "lag_task_batches",
    "LabelledClips",
    "read_labelled_frames",
    "read_video_file",
    "tfds_labelled_clips",
    "tfds_clip_splits",
    "clip_batches",
    "mnist_digits",
    "moving_digit_clips",
    "moving_digits",
    "pingus",
    "pingus_clips",
    "pingus_sequences",
    "flare",
    "flare_clips",
    "flare_sequences",
    "BINARY_CLASS_NAMES",
    "LabelledTexts",
    "document_sentences",
    "load_reviews",
    "rotten_tomatoes_sentences",
    "pang_lee_reviews",
    "read_labelled_table",
    "read_class_folders",
    "tfds_labelled_texts",
    "holdout_split",
    "stratified_folds",
    "WordVocabulary",
    "encode_texts",
    "text_classification_batches",
    "padding_share",
    "translation_batches",
    "ParallelTexts",
    "bible_verse_pairs",
    "gcc_messages",
    "gettext_pairs",
    "load_parallel",
    "parallel_holdout_split",
    "read_parallel_table",
    "tfds_parallel_texts",
    "CaptionedImages",
    "load_captioned_images",
    "read_caption_folder",
    "read_coco_captions",
    "read_flickr_tokens",
    "tfds_captioned_images",
    "split_captioned_images",
    "tuxpaint_stamps",
    "noto_emoji",
    "openmoji_drawings",
    "compose_scenes",
    "emoji_scenes",
    "scene_caption_scores",
    "caption_batches",
    "image_batches",
    "decode_image",
    "decode_image_batch",
]
