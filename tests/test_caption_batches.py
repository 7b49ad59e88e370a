"""Tests for rnn_toolkit.data.caption_batches: the captioning tf.data pipelines."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.data.caption_batches import (
    DECODE_PARALLEL_CALLS,
    augment_image,
    caption_batches,
    image_batches,
    lightness_safe,
    mirror_safe,
)
from rnn_toolkit.data.captioned_images import CaptionedImages
from rnn_toolkit.data.images import decode_image

WORDS = ["a", "frog", "red", "green", "big", "small", "cat", "sleeping", "left", "arrow"]


def _png(value, size=(6, 6)):
    """An opaque square PNG whose pixels all hold `value` (a decoded image says which it was)."""
    return tf.io.encode_png(np.full(size + (3,), value, np.uint8)).numpy()


@pytest.fixture
def vocab():
    return WordVocabulary(WORDS, sequence_markers=True)


@pytest.fixture
def data(tmp_path):
    """Six images, half files and half bytes, with one to three references each."""
    captions = [
        ["a frog", "a green frog", "a big green frog"],
        ["a cat"],
        ["a red frog", "a small red frog"],
        ["a sleeping cat", "a cat", "a small cat sleeping"],
        ["a frog"],
        ["a big cat", "a cat"],
    ]
    images = []
    for i in range(6):
        encoded = _png(40 * i)
        if i % 2:
            images.append(encoded)
        else:
            path = tmp_path / f"{i}.png"
            path.write_bytes(encoded)
            images.append(str(path))
    return CaptionedImages(images, captions, source="demo")


def _which_image(images):
    """The image index each decoded batch row came from (its pixel value / 40)."""
    return [int(round(float(row.numpy().mean()) / 40)) for row in images]


def _epoch(dataset, vocab):
    """{image: caption drawn} of one pass, checking each batch's shapes and padding."""
    drawn = {}
    for (images, decoder_input), target in dataset:
        assert images.dtype == tf.float32 and decoder_input.dtype == tf.int32 and target.dtype == tf.int32
        decoder_input, target = decoder_input.numpy(), target.numpy()
        assert decoder_input.shape == target.shape
        lengths = (target != 0).sum(axis=1)
        assert lengths.max() == target.shape[1]  # padded to the longest caption of THIS batch
        for row, length in enumerate(lengths):
            assert decoder_input[row, 0] == vocab.start_id and target[row, length - 1] == vocab.end_id
            np.testing.assert_array_equal(decoder_input[row, 1:length], target[row, : length - 1])
            assert not decoder_input[row, length:].any() and not target[row, length:].any()
        texts = vocab.decode(target[:, :], lengths - 1).numpy()
        for index, text in zip(_which_image(images), texts):
            drawn[index] = text.decode()
    return drawn


def test_batches_decode_images_and_shift_the_drawn_caption(data, vocab):
    dataset = caption_batches(data, vocab, image_size=8, batch_size=4, seed=0)
    assert dataset.cardinality().numpy() == 2
    (images, _), _ = next(iter(dataset))
    assert images.shape == (4, 8, 8, 3)
    drawn = _epoch(dataset, vocab)
    assert sorted(drawn) == list(range(6))  # every image once per epoch
    for index, caption in drawn.items():
        assert caption in data.captions[index]


def test_each_epoch_draws_one_reference_at_random_reproducibly(data, vocab):
    dataset = caption_batches(data, vocab, image_size=8, batch_size=3, seed=5)
    epochs = [_epoch(dataset, vocab) for _ in range(12)]
    seen = collections.defaultdict(set)
    for drawn in epochs:
        for index, caption in drawn.items():
            seen[index].add(caption)
    assert all(seen[i] == set(data.captions[i]) for i in range(6))  # every reference comes up
    again = caption_batches(data, vocab, image_size=8, batch_size=3, seed=5)
    assert [_epoch(again, vocab) for _ in range(3)] == epochs[:3]  # the same seed, the same draws
    other = caption_batches(data, vocab, image_size=8, batch_size=3, seed=6)
    assert [_epoch(other, vocab) for _ in range(3)] != epochs[:3]


def test_evaluation_batches_keep_order_and_captions(data, vocab):
    dataset = caption_batches(data, vocab, image_size=8, batch_size=4, shuffle=False)
    orders = [[_which_image(images) for (images, _), _ in dataset] for _ in range(2)]
    assert orders[0] == orders[1] == [[0, 1, 2, 3], [4, 5]]
    assert _epoch(dataset, vocab) == _epoch(dataset, vocab)


def test_long_captions_are_cut_and_still_end(data, vocab):
    dataset = caption_batches(data, vocab, image_size=8, batch_size=6, shuffle=False, max_caption_length=2)
    (_, decoder_input), target = next(iter(dataset))
    assert decoder_input.shape[1] == 3  # [START] + at most 2 words
    drawn = _epoch(dataset, vocab)  # which also checks that every row ends with [END]
    for index, caption in drawn.items():
        assert caption in {" ".join(c.split()[:2]) for c in data.captions[index]}


def test_decoding_runs_in_a_parallel_map_with_the_shared_options(data, vocab):
    for dataset in (caption_batches(data, vocab, image_size=8, batch_size=2, seed=0),
                    image_batches(data, image_size=8, batch_size=2)):
        assert dataset.options().autotune.enabled is False
        graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
        ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
        assert "ParallelMapDatasetV2" in ops
        assert {"ReadFile", "DecodeImage"} <= ops  # file bytes read and decoded in the graph
        parallel = [node for node in graph.node if node.op == "ParallelMapDatasetV2"]
        calls = {n.name: n for n in graph.node}[parallel[0].input[-1].split(":")[0]]
        assert tf.make_ndarray(calls.attr["value"].tensor) == DECODE_PARALLEL_CALLS


def test_features_replace_pixels(data, vocab):
    features = np.stack([np.full((2, 3, 4), i, np.float16) for i in range(6)])
    dataset = caption_batches(data, vocab, image_size=8, batch_size=4, seed=1, features=features)
    rows = {}
    for (grids, _), target in dataset:
        assert grids.dtype == tf.float32 and grids.shape[1:] == (2, 3, 4)
        for grid, caption in zip(grids.numpy(), vocab.decode(target).numpy()):
            rows[int(grid[0, 0, 0])] = caption.decode().rsplit(" ", 1)[0]  # drop "[END]"
    assert sorted(rows) == list(range(6))
    assert all(rows[i] in data.captions[i] for i in rows)  # a row's caption belongs to its image
    with pytest.raises(ValueError, match="one row per image"):
        caption_batches(data, vocab, image_size=8, batch_size=4, features=features[:5])
    with pytest.raises(ValueError, match="`augment=True` needs pixels"):
        caption_batches(data, vocab, image_size=8, batch_size=4, features=features, augment=True)


def test_feature_views_give_one_random_view_per_image_and_epoch(data, vocab):
    # View v of image i holds 10 * v + i everywhere: a row says which view it came from.
    views = [np.stack([np.full((2, 2, 4), 10 * v + i, np.float16) for i in range(6)]) for v in range(3)]
    dataset = caption_batches(data, vocab, image_size=8, batch_size=6, seed=3, features=views)
    seen = collections.defaultdict(set)
    for _ in range(8):  # epochs
        (grids, _), _ = next(iter(dataset))
        values = [int(grid[0, 0, 0]) for grid in grids.numpy()]
        assert sorted(value % 10 for value in values) == list(range(6))  # every image once
        for value in values:
            seen[value % 10].add(value // 10)
    assert all(seen[i] <= {0, 1, 2} for i in seen)
    assert sum(len(v) for v in seen.values()) > 6  # views change from epoch to epoch
    first = [
        next(iter(caption_batches(data, vocab, image_size=8, batch_size=6, seed=3, features=views)))[0][0].numpy()
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*first)  # one seed, the same views
    with pytest.raises(ValueError, match="one shape"):
        caption_batches(data, vocab, image_size=8, batch_size=6, features=[views[0], views[1][:, :1]])


def test_augmented_image_batches_are_fixed_by_their_seed(data):
    plain = np.concatenate(list(image_batches(data, image_size=8, batch_size=4)))
    view = [np.concatenate(list(image_batches(data, image_size=8, batch_size=4, augment_seed=s))) for s in (1, 1, 2)]
    np.testing.assert_array_equal(view[0], view[1])  # one seed, one view
    assert not np.array_equal(view[0], view[2]) and not np.array_equal(view[0], plain)
    expected = augment_image(tf.constant(plain[3]), tf.constant([1, 3], tf.int64), True)
    np.testing.assert_allclose(view[0][3], expected.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="`augment_seed` must be an integer"):
        image_batches(data, image_size=8, augment_seed=1.5)


def test_argument_checks(data, vocab, tmp_path):
    with pytest.raises(ValueError, match="sequence_markers=True"):
        caption_batches(data, WordVocabulary(WORDS), image_size=8, batch_size=2)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        caption_batches(data, vocab, image_size=8, batch_size=0)
    with pytest.raises(TypeError, match="`data` must be CaptionedImages"):
        caption_batches(["a.png"], vocab, image_size=8, batch_size=2)
    moved = CaptionedImages([str(tmp_path / "gone.png")], [["a frog"]])
    with pytest.raises(FileNotFoundError, match="1 image file.s. do not exist.*gone.png"):
        caption_batches(moved, vocab, image_size=8, batch_size=2)


def test_image_batches_decode_in_order_like_decode_image(data):
    batches = list(image_batches(data, image_size=8, batch_size=4))
    assert [b.shape[0] for b in batches] == [4, 2]
    assert _which_image(tf.concat(batches, 0)) == list(range(6))
    expected = decode_image(tf.io.read_file(data.images[2]), 8)
    np.testing.assert_allclose(batches[0][2].numpy(), expected.numpy())
    listed = list(image_batches(data.images[:3], image_size=8, batch_size=8))
    np.testing.assert_allclose(listed[0].numpy(), batches[0][:3].numpy())


# --- Augmentation ---------------------------------------------------------------------------------


def _arrow():
    """A dark block on the left half of a white 32 x 32 image: a flip moves it right."""
    pixels = np.full((32, 32, 3), 255.0, np.float32)
    pixels[8:24, 2:14] = 0.0
    return tf.constant(pixels)


def test_augmentation_is_mild_seeded_and_flips_only_when_allowed():
    pixels = _arrow()
    flipped = 0
    for seed in range(40):
        out = augment_image(pixels, tf.constant([seed, 3], tf.int64), True).numpy()
        assert out.shape == (32, 32, 3) and out.min() >= 0.0 and out.max() <= 255.0
        dark = out.mean(axis=2) < 128
        assert dark.sum() > 0.5 * 16 * 12  # zoomed out at most to 80 %: never cropped away
        flipped += dark[:, 16:].sum() > dark[:, :16].sum()
        kept = augment_image(pixels, tf.constant([seed, 3], tf.int64), False).numpy().mean(axis=2) < 128
        assert kept[:, :16].sum() > kept[:, 16:].sum()  # never flipped
    assert 8 <= flipped <= 32
    first = augment_image(pixels, tf.constant([7, 1], tf.int64), True)
    np.testing.assert_array_equal(first.numpy(), augment_image(pixels, tf.constant([7, 1], tf.int64), True).numpy())


def test_lightness_words_keep_brightness_and_contrast(data, vocab):
    assert lightness_safe(["thumbs up", "A red frog."])
    for caption in ("thumbs up medium-dark skin tone", "woman light skin tone", "A grey jacket.",
                    "bridge at night", "dim button"):
        assert not lightness_safe([caption]), caption
    pixels = tf.fill([32, 32, 3], 100.0)  # uniform: a zoom-out keeps the centre at 100
    centre = [
        [augment_image(pixels, tf.constant([seed, 0], tf.int64), True, lightness_ok=ok)[16, 16, 0].numpy()
         for seed in range(8)]
        for ok in (False, True)
    ]
    assert centre[0] == [100.0] * 8 and any(abs(value - 100.0) > 1 for value in centre[1])
    # The pipeline asks per image: a skin tone in any reference keeps the pixels' lightness.
    toned = CaptionedImages([_png(100, (32, 32))] * 2, [["a frog"], ["a frog", "a cat light skin tone"]])
    for seed in range(4):
        rows = next(iter(image_batches(toned, image_size=32, batch_size=2, augment_seed=seed))).numpy()
        assert rows[1][16, 16, 0] == 100.0


def test_mirror_safe_captions_and_the_pipeline_respects_them(tmp_path, vocab):
    assert mirror_safe(["a frog", "A green frog."])
    assert not mirror_safe(["a frog", "A frog facing left."])
    for caption in ("The letter R.", "flag of France", "keycap #", "one o'clock", "up-right arrow",
                    "A stop sign.", "OK button", "clockwise vertical arrows", "waxing gibbous moon",
                    "last quarter moon face"):
        assert not mirror_safe([caption]), caption
    arrow = tf.io.encode_png(tf.cast(_arrow(), tf.uint8)).numpy()
    data = CaptionedImages([arrow] * 3, [["a left arrow"], ["a frog"], ["a frog"]], mirrorable=[True, True, False])
    dataset = caption_batches(data, vocab, image_size=32, batch_size=3, shuffle=False, seed=0, augment=True)
    flips = np.zeros(3, int)
    for _ in range(16):  # the order is kept, the augmentation changes every epoch
        (images, _), _ = next(iter(dataset))
        dark = images.numpy().mean(axis=3) < 128
        flips += dark[:, :, 16:].sum(axis=(1, 2)) > dark[:, :, :16].sum(axis=(1, 2))
    # "left arrow" (its caption) and the "nomirror" frog never flip; the other frog does.
    assert flips[0] == 0 and flips[2] == 0 and 2 <= flips[1] <= 14


def test_pipeline_augmentation_is_reproducible_and_new_every_epoch(data, vocab):
    def first_images(dataset):
        (images, _), _ = next(iter(dataset))
        return images.numpy()

    one = caption_batches(data, vocab, image_size=16, batch_size=6, seed=3, augment=True, shuffle=False)
    two = caption_batches(data, vocab, image_size=16, batch_size=6, seed=3, augment=True, shuffle=False)
    epoch_one = first_images(one)
    np.testing.assert_array_equal(epoch_one, first_images(two))
    assert not np.array_equal(epoch_one, first_images(one))  # the next epoch is augmented anew
    plain = first_images(caption_batches(data, vocab, image_size=16, batch_size=6, shuffle=False))
    assert not np.array_equal(epoch_one, plain)
