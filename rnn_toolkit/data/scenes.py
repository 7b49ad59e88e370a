"""Two-object scenes composed from real captioned clip-art: captions that say where.

The clip-art sets caption one centred object with its name, so a summary of the whole
image says all there is to say, and a captioner with soft attention has nothing to look
for that a captioner without it lacks. `compose_scenes` puts two of those objects on one
canvas, side by side or one above the other, and captions the scene with both names and
where each one is:

    "cat face left of rocket" | "rocket right of cat face"
    "pizza above bicycle" | "bicycle below pizza"

Both readings are references (the metrics use every reference), so a caption may name
either object first, but it must name both and get the side right. The objects and their
names are real (Noto emoji by default); the layout is made up, and seeded.

Every scene's group is its unordered pair of object groups, so `split_captioned_images`
keeps a pair (in either order and either layout) on one side: the held-out scenes are
new pairs of objects that training showed in other company, a test of composing what was
learned. The mean of an encoder's feature grid keeps what is in the image and loses most
of where; an attending decoder reads the grid position by position. `scene_caption_scores`
says what a captioner gets right beyond n-grams: both objects, the layout, and which
object is on which side.

Imports from rnn_toolkit: arguments, data.
"""

import functools
import io
import re

import numpy as np
from PIL import Image

from rnn_toolkit.arguments import check_positive_int
from rnn_toolkit.data.captioned_images import CaptionedImages

RELATIONS = {
    "horizontal": ("{first} left of {second}", "{second} right of {first}"),
    "vertical": ("{first} above {second}", "{second} below {first}"),
}
"""The layouts and their two captions each: `first` is the left (upper) object."""

OBJECT_SCALE = (0.7, 1.0)
"""An object's size relative to its half of the canvas (the rest is random margin)."""


def compose_scenes(objects, *, count, seed=0, canvas=224, background=255, source="scenes"):
    """`count` scenes of two objects each, captioned with both names and their places.

    Args:
        objects: `CaptionedImages` (paths or bytes; RGBA clip-art is composited onto the
            background); an object's first reference is its name in the captions.
        count: how many scenes.
        seed: fixes the pairs, the layouts, the sizes and the positions.
        canvas: the side of the square scene images, in pixels.
        background: the grey level of the canvas (255: white, as the clip-art is shown).
        source: the scenes' source name.

    Returns:
        `CaptionedImages` of PNG bytes with two references each (see the module
        docstring), groups `"<group a>+<group b>"` (sorted: one key per unordered pair).

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from rnn_toolkit.data.captioned_images import CaptionedImages
    >>> from rnn_toolkit.data.scenes import compose_scenes
    >>> dots = [tf.io.encode_png(np.full((8, 8, 3), v, np.uint8)).numpy() for v in (0, 90, 180)]
    >>> objects = CaptionedImages(dots, [["black dot"], ["grey dot"], ["pale dot"]])
    >>> scenes = compose_scenes(objects, count=2, seed=1, canvas=32)
    >>> len(scenes), len(scenes.captions[0]), scenes.captions[0][0].count(" dot")
    (2, 2, 2)
    """
    if not isinstance(objects, CaptionedImages):
        raise TypeError(f"`objects` must be CaptionedImages; got {type(objects).__name__}.")
    count = check_positive_int("count", count)
    canvas = check_positive_int("canvas", canvas)
    if canvas < 8:
        raise ValueError(f"`canvas` must be at least 8 pixels; received canvas={canvas}.")
    if not 0 <= int(background) <= 255:
        raise ValueError(f"`background` must be a grey level in [0, 255]; received background={background!r}.")
    distinct_groups = len(set(objects.groups))
    if distinct_groups < 2:
        raise ValueError(f"`objects` must hold objects of at least 2 groups; it has {distinct_groups}.")
    rng = np.random.default_rng(seed)
    pictures = {}  # object index -> RGBA image, decoded once

    def picture(index):
        if index not in pictures:
            image = objects.images[index]
            handle = io.BytesIO(image) if isinstance(image, bytes) else image
            with Image.open(handle) as opened:
                pictures[index] = opened.convert("RGBA")
        return pictures[index]

    images, captions, groups = [], [], []
    for _ in range(count):
        first, second = rng.choice(len(objects), size=2, replace=False)
        while objects.groups[first] == objects.groups[second]:
            first, second = rng.choice(len(objects), size=2, replace=False)
        layout = "horizontal" if rng.random() < 0.5 else "vertical"
        scene = Image.new("RGBA", (canvas, canvas), (background,) * 3 + (255,))
        half = canvas // 2
        for slot, index in enumerate((first, second)):
            drawing = picture(index)
            cell = (half, canvas) if layout == "horizontal" else (canvas, half)  # (width, height)
            scale = rng.uniform(*OBJECT_SCALE) * min(cell[0] / drawing.width, cell[1] / drawing.height)
            size = (max(1, round(drawing.width * scale)), max(1, round(drawing.height * scale)))
            resized = drawing.resize(size, Image.Resampling.LANCZOS)
            left = int(rng.integers(0, cell[0] - size[0] + 1))
            top = int(rng.integers(0, cell[1] - size[1] + 1))
            if layout == "horizontal":
                left += slot * half
            else:
                top += slot * half
            scene.alpha_composite(resized, (left, top))
        buffer = io.BytesIO()
        scene.convert("RGB").save(buffer, format="PNG")
        images.append(buffer.getvalue())
        names = {"first": objects.captions[first][0], "second": objects.captions[second][0]}
        captions.append([template.format(**names) for template in RELATIONS[layout]])
        groups.append("+".join(sorted((objects.groups[first], objects.groups[second]))))
    return CaptionedImages(
        images, captions, groups=groups, source=source, mirrorable=[False] * count,
        notes={source: {"scenes": count, "objects": len(objects), "seed": seed}},
    )


def scene_objects(emoji, *, max_words=3):
    """The emoji that make good scene objects: one per group (no skin-tone or gender
    variants), no flags, keycaps or other glyph-like symbols, names of at most
    `max_words` words.

    Args:
        emoji: `CaptionedImages` of emoji (`rnn_toolkit.data.clip_art.noto_emoji()`).
        max_words: the longest name kept.

    Returns:
        `CaptionedImages`, a subset of `emoji`.
    """
    excluded = ("flag", "keycap", "button", "sign", "symbol", "letter", "mark", "arrow")
    keep, seen = [], set()
    for index, (captions, group) in enumerate(zip(emoji.captions, emoji.groups)):
        words = captions[0].lower().split()
        if group in seen or len(words) > max_words or any(word in excluded for word in words):
            continue
        seen.add(group)
        keep.append(index)
    return emoji.subset(keep)


@functools.lru_cache(maxsize=2)
def emoji_scenes(*, count=6000, seed=0, canvas=224):
    """`compose_scenes` of the Noto emoji's `scene_objects`: the `"emoji-scenes"` data.

    Rendered once per process and settings (about 40 s for 6,000 scenes), so a run, its
    evaluation and a benchmark's re-scoring share one rendering; treat the result as
    read-only.

    Args:
        count: how many scenes.
        seed: fixes the scenes.
        canvas: the side of the scene images, in pixels.

    Returns:
        `CaptionedImages` with source `"emoji-scenes"`.
    """
    from rnn_toolkit.data.clip_art import noto_emoji

    objects = scene_objects(noto_emoji(skin_tones=False))
    return compose_scenes(objects, count=count, seed=seed, canvas=canvas, source="emoji-scenes")


_RELATION = re.compile(r"^(.+?) (left of|right of|above|below) (.+)$")


def _placed(caption):
    """`(first, layout, second)` of a scene caption, first = the left (upper) object;
    None for a caption that is not "<object> <relation> <object>"."""
    match = _RELATION.match(" ".join(caption.lower().split()))
    if match is None:
        return None
    a, relation, b = match.groups()
    layout = "horizontal" if relation in ("left of", "right of") else "vertical"
    return (b, layout, a) if relation in ("right of", "below") else (a, layout, b)


def scene_caption_scores(captions, references):
    """What captions of `compose_scenes` images get right, as shares of all captions.

    Args:
        captions: one generated caption per scene.
        references: each scene's references (its first one is read for the truth).

    Returns:
        A dict: `exact` (the caption is one of the references), `both_objects` (it names
        the two objects, in either order), `layout` (side by side vs stacked right),
        `places_given_objects` (of the captions naming both objects, the share that puts
        each on its side: 0.5 is chance; None when none names both) and `scenes`.

    Example:

    >>> from rnn_toolkit.data.scenes import scene_caption_scores
    >>> refs = [["cat left of dog", "dog right of cat"], ["sun above tree", "tree below sun"]]
    >>> scores = scene_caption_scores(["dog right of cat", "tree above sun"], refs)
    >>> scores["exact"], scores["both_objects"], scores["places_given_objects"]
    (0.5, 1.0, 0.5)
    """
    if len(captions) != len(references):
        raise ValueError(
            f"`captions` and `references` must have one entry per scene; got {len(captions)} and {len(references)}."
        )
    exact = both = layout = placed = 0
    for caption, refs in zip(captions, references):
        truth = _placed(refs[0])
        if truth is None:
            raise ValueError(f"{refs[0]!r} is not a scene caption ('<object> left of|right of|above|below <object>').")
        exact += " ".join(caption.lower().split()) in {" ".join(r.lower().split()) for r in refs}
        guess = _placed(caption)
        if guess is None:
            continue
        layout += guess[1] == truth[1]
        if {guess[0], guess[2]} == {truth[0], truth[2]}:
            both += 1
            placed += guess == truth
    count = max(len(captions), 1)
    return {
        "exact": exact / count, "both_objects": both / count, "layout": layout / count,
        "places_given_objects": placed / both if both else None, "scenes": len(captions),
    }
