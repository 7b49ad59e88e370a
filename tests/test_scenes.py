"""Tests for rnn_toolkit.data.scenes: two-object scenes captioned with where each object is."""

import io

import numpy as np
import pytest
from PIL import Image

from rnn_toolkit.data.captioned_images import CaptionedImages, load_captioned_images, split_captioned_images
from rnn_toolkit.data.scenes import compose_scenes, scene_caption_scores, scene_objects

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0)}


def _square(colour, size=(10, 6)):
    """An RGBA PNG: an opaque square of `colour` on a transparent margin."""
    pixels = np.zeros((size[1] + 4, size[0] + 4, 4), np.uint8)
    pixels[2:-2, 2:-2] = COLOURS[colour] + (255,)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def objects():
    names = list(COLOURS)
    return CaptionedImages([_square(n) for n in names], [[f"{n} square"] for n in names],
                           groups=names, source="demo")


def _centre(pixels, colour):
    """(x, y) centre of the pixels of `colour` in an RGB array."""
    ys, xs = np.nonzero(np.all(np.abs(pixels.astype(int) - COLOURS[colour]) < 60, axis=-1))
    assert len(xs), f"no {colour} pixel"
    return xs.mean(), ys.mean()


def test_every_caption_says_where_each_object_is(objects):
    scenes = compose_scenes(objects, count=40, seed=3, canvas=64)
    assert len(scenes) == 40 and set(scenes.source) == {"scenes"}
    layouts = set()
    for image, captions, group in zip(scenes.images, scenes.captions, scenes.groups):
        pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        assert pixels.shape == (64, 64, 3)
        words = captions[0].split()  # "<first> square left of <second> square" or "... above ..."
        first, relation, second = words[0], words[2], words[-2]
        (x1, y1), (x2, y2) = _centre(pixels, first), _centre(pixels, second)
        if relation == "left":
            assert x1 < 32 <= x2 and captions[1] == f"{second} square right of {first} square"
        else:
            assert relation == "above" and words[3] == second  # "<first> square above <second> square"
            assert y1 < 32 <= y2 and captions[1] == f"{second} square below {first} square"
        layouts.add(relation)
        assert group == "+".join(sorted((first, second)))  # one key per unordered pair
    assert layouts == {"left", "above"}
    assert not any(scenes.mirrorable)  # a mirrored scene would swap left and right


def test_scenes_are_seeded_and_a_split_keeps_each_pair_on_one_side(objects):
    one, again = (compose_scenes(objects, count=30, seed=5, canvas=32) for _ in range(2))
    assert one.images == again.images and one.captions == again.captions
    assert compose_scenes(objects, count=30, seed=6, canvas=32).images != one.images
    train, validation, test = split_captioned_images(one, validation_fraction=0.2, test_fraction=0.3, seed=0)
    assert not set(train.groups) & set(test.groups) and not set(train.groups) & set(validation.groups)


def test_bad_arguments_name_themselves(objects):
    with pytest.raises(TypeError, match="`objects` must be CaptionedImages"):
        compose_scenes(["a.png"], count=2)
    with pytest.raises(ValueError, match="`count` must be a positive integer"):
        compose_scenes(objects, count=0)
    with pytest.raises(ValueError, match="`canvas` must be at least 8"):
        compose_scenes(objects, count=1, canvas=4)
    with pytest.raises(ValueError, match="at least 2 groups"):
        compose_scenes(objects.subset([0]), count=1)


def test_scene_objects_keep_one_short_named_object_per_group():
    emoji = CaptionedImages(
        ["a", "b", "c", "d", "e"],
        [["cat face"], ["cat face medium skin tone"], ["flag of France"], ["keycap 1"], ["rocket"]],
        groups=["cat", "cat", "fr", "k1", "rocket"],
    )
    assert [c[0] for c in scene_objects(emoji).captions] == ["cat face", "rocket"]


def test_load_captioned_images_names_the_scenes(monkeypatch, objects):
    from rnn_toolkit.data import scenes

    monkeypatch.setattr(scenes, "emoji_scenes", lambda **kwargs: compose_scenes(objects, **kwargs))
    loaded = load_captioned_images("emoji-scenes", count=3, seed=1, canvas=16)
    assert len(loaded) == 3


def test_scene_caption_scores_read_objects_layout_and_sides(objects):
    scenes = compose_scenes(objects, count=6, seed=2, canvas=32)
    references = scenes.captions
    perfect = scene_caption_scores([refs[1] for refs in references], references)  # the other reading
    assert perfect == {"exact": 1.0, "both_objects": 1.0, "layout": 1.0, "places_given_objects": 1.0, "scenes": 6}
    swapped = []
    for refs in references:  # both objects, right layout, wrong sides
        words = refs[0].split()
        swapped.append(" ".join(words[-2:] + words[2:-2] + words[:2]))
    scores = scene_caption_scores(swapped, references)
    assert scores["both_objects"] == scores["layout"] == 1.0 and scores["places_given_objects"] == 0.0
    assert scene_caption_scores(["", "black square"] + [r[0] for r in references[2:]], references)["both_objects"] == 4 / 6
    assert scene_caption_scores(["a frog"] * 6, references)["places_given_objects"] is None
    with pytest.raises(ValueError, match="one entry per scene"):
        scene_caption_scores(["a"], references)
    with pytest.raises(ValueError, match="not a scene caption"):
        scene_caption_scores(["a"], [["a frog"]])
