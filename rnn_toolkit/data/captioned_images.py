"""Captioned images for image captioning (one-to-many): data, readers and splits.

`CaptionedImages` holds images (file paths, or encoded bytes for sources without files),
one or more reference captions per image, a near-duplicate group per image and the source
each image came from. Several references per image are first-class: a training pipeline
draws one of them per epoch (`rnn_toolkit.data.caption_batches`), and scores use them all.

Built-in sources (see `rnn_toolkit.data.clip_art`, all offline from package registries):
`"tuxpaint"` (the Tux Paint stamps), `"emoji"` (the Noto colour emoji) and `"clipart"`
(both). A user's own data loads the same way through `load_captioned_images`: a folder of
images with a caption file beside each, a Flickr8k/Flickr30k token file, a COCO
`captions_*.json`, or a TensorFlow Datasets dataset such as `tfds:coco_captions` once
prepared on the machine.

Splits are made by near-duplicate GROUP (`split_captioned_images`): a mirrored stamp, a
recoloured copy, an emoji's skin-tone variants never sit on both sides of a split, so a
held-out score measures captioning of unseen concepts rather than recall of a sibling.

Imports from rnn_toolkit: arguments, data.
"""

import collections
import csv
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import re
import warnings

import numpy as np
import tensorflow as tf

from rnn_toolkit.data.reviews import TFDS_PREFIX
from rnn_toolkit.data.tfds_prepared import load_prepared

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
"""The image files the readers pick up: what `rnn_toolkit.data.images.decode_image` decodes."""

BUILT_IN_SOURCES = ("tuxpaint", "emoji", "openmoji", "clipart", "emoji-scenes")
"""Names `load_captioned_images` accepts besides paths and `tfds:NAME`."""

_SPEC_FORMS = (
    "'tuxpaint', 'emoji', 'openmoji', 'clipart' (Tux Paint + emoji), 'emoji-scenes' (two emoji "
    "per image, captioned with where each is), a folder of images with "
    "a same-named .txt caption file beside each, a Flickr token/captions file (.txt, .token, "
    ".csv), a COCO captions .json (its image folder as `images=`), or 'tfds:NAME[:SPLIT]'"
)
# Tux Paint's translation lines ("es.utf8=Una rana."): not English references.
_LOCALE_LINE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z]{2,4})?(?:\.[\w-]+)?=")
_NOT_WORD = re.compile(r"[\W_]+")
# Flickr8k's "1000268201_693b08cb0e.jpg#0": the number after '#' counts the references.
_FLICKR_REFERENCE = re.compile(r"#\d+$")


def caption_key(caption):
    """A caption reduced to lower-case words: captions equal up to case, spacing, quotes and
    punctuation share a key (used to group images that share a caption)."""
    return " ".join(_NOT_WORD.sub(" ", caption.lower()).split())


@dataclasses.dataclass(frozen=True, repr=False)
class CaptionedImages:
    """Images with their reference captions, near-duplicate groups and sources.

    Attributes:
        images: `n` images: file paths (str), or encoded image bytes (PNG, JPEG, GIF,
            BMP) for sources without files; the two may be mixed.
        captions: `n` lists of reference captions (at least one each).
        groups: `n` near-duplicate group keys (str): images sharing a key (a mirrored
            copy, a recoloured copy, skin-tone variants) stay on one side of a split.
            Default: each image its own group.
        source: `n` source names (str) such as `"tuxpaint"`, `"emoji"` or a folder.
            Default: `"custom"`.
        mirrorable: `n` booleans: may the image be mirrored left-right without making its
            captions wrong (False for Tux Paint's "nomirror" stamps: letters, signs, clocks).
            Default: all True (`caption_batches` also checks the captions' words).
        notes: facts the loaders report, by source (e.g. how many SVG files could not be
            rasterised); kept through `subset` and merged by `concatenate`.

    Example:

    >>> from rnn_toolkit.data.captioned_images import CaptionedImages
    >>> data = CaptionedImages(["a.png", "b.png", "c.png"],
    ...                        [["A frog.", "A green frog."], ["A cat."], ["A frog!"]],
    ...                        groups=["frog", "cat", "frog"], source=["demo"] * 3)
    >>> len(data), data.summary()["references"], data.summary()["groups"]
    (3, 4, 2)
    >>> (data + data.subset([1])).captions[-1]
    ['A cat.']
    >>> data.in_groups(["frog"]).images
    ['a.png', 'c.png']
    """

    images: list
    captions: list
    groups: list = None
    source: list = None
    mirrorable: list = None
    notes: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.images, (str, bytes, os.PathLike)):
            raise TypeError("`images` must be a list of images (paths or bytes), not one image.")
        images = [_as_image(image, i) for i, image in enumerate(self.images)]
        count = len(images)
        captions = self.captions
        if isinstance(captions, (str, bytes)):
            raise TypeError("`captions` must be a list with one list of captions per image.")
        captions = [_as_references(references, i) for i, references in enumerate(captions)]
        if len(captions) != count:
            raise ValueError(
                f"`captions` must have one entry per image; got {len(captions)} for {count} images."
            )
        groups = (
            [_default_group(image) for image in images] if self.groups is None else list(self.groups)
        )
        source = ["custom"] * count if self.source is None else (
            [self.source] * count if isinstance(self.source, str) else list(self.source)
        )
        mirrorable = [True] * count if self.mirrorable is None else [bool(m) for m in self.mirrorable]
        for name, values in (("groups", groups), ("source", source), ("mirrorable", mirrorable)):
            if len(values) != count:
                raise ValueError(
                    f"`{name}` must have one entry per image; got {len(values)} for {count} images."
                )
        for name, values in (("groups", groups), ("source", source)):
            bad = next((v for v in values if not isinstance(v, str) or not v), None)
            if bad is not None:
                raise TypeError(f"`{name}` must hold non-empty strings; found {bad!r}.")
        if not isinstance(self.notes, dict):
            raise TypeError(f"`notes` must be a dict; received {type(self.notes).__name__}.")
        # Frozen: normalised values go in through object.__setattr__.
        for name, value in (("images", images), ("captions", captions), ("groups", groups),
                            ("source", source), ("mirrorable", mirrorable),
                            ("notes", dict(self.notes))):
            object.__setattr__(self, name, value)

    def __len__(self):
        return len(self.images)

    def __repr__(self):
        summary = self.summary()
        sources = ", ".join(f"{name}: {s['images']:,}" for name, s in summary["by_source"].items())
        return (
            f"CaptionedImages({summary['images']:,} images, {summary['references']:,} "
            f"references, {summary['groups']:,} groups; {sources or 'empty'})"
        )

    def subset(self, indices):
        """The images at `indices` (ints, in that order; repeats allowed)."""
        indices = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        for i in indices:
            if not -len(self) <= i < len(self):
                raise IndexError(f"`indices`: {i} is out of range for {len(self)} images.")
        return dataclasses.replace(
            self,
            images=[self.images[i] for i in indices],
            captions=[list(self.captions[i]) for i in indices],
            groups=[self.groups[i] for i in indices],
            source=[self.source[i] for i in indices],
            mirrorable=[self.mirrorable[i] for i in indices],
        )

    def in_groups(self, groups):
        """The images whose group is one of `groups`, in order (e.g. the OpenMoji drawings
        of the emoji groups a split held out)."""
        wanted = {groups} if isinstance(groups, str) else set(groups)
        return self.subset([i for i, group in enumerate(self.groups) if group in wanted])

    def concatenate(self, other):
        """These images followed by `other`'s (sources combine; group keys are global, so
        loaders prefix them with their source where a clash would be wrong)."""
        if not isinstance(other, CaptionedImages):
            raise TypeError(f"Cannot concatenate CaptionedImages with {type(other).__name__}.")
        notes = dict(self.notes)
        for key, value in other.notes.items():
            notes[key] = value if key not in notes or notes[key] == value else [notes[key], value]
        return CaptionedImages(
            images=self.images + other.images,
            captions=[list(c) for c in self.captions + other.captions],
            groups=self.groups + other.groups,
            source=self.source + other.source,
            mirrorable=self.mirrorable + other.mirrorable,
            notes=notes,
        )

    def __add__(self, other):
        if not isinstance(other, CaptionedImages):
            return NotImplemented
        return self.concatenate(other)

    def summary(self):
        """Counts: images, references, distinct captions, groups, and the same per source.

        Returns:
            A dict with `images`, `references`, `distinct_captions`, `groups`,
            `caption_words` (median and max words of a reference), `by_source`
            (per source: `images`, `references`, `groups`) and `notes`.
        """
        by_source = {}
        for i, name in enumerate(self.source):
            entry = by_source.setdefault(name, {"images": 0, "references": 0, "groups": set()})
            entry["images"] += 1
            entry["references"] += len(self.captions[i])
            entry["groups"].add(self.groups[i])
        for entry in by_source.values():
            entry["groups"] = len(entry["groups"])
        words = [len(caption.split()) for captions in self.captions for caption in captions]
        return {
            "images": len(self),
            "references": len(words),
            "distinct_captions": len({c for captions in self.captions for c in captions}),
            "groups": len(set(self.groups)),
            "caption_words": {
                "median": float(np.median(words)) if words else 0.0,
                "max": max(words, default=0),
            },
            "by_source": by_source,
            "notes": dict(self.notes),
        }


def _as_image(image, index):
    if isinstance(image, (bytes, bytearray, memoryview)):
        if not len(image):
            raise ValueError(f"`images[{index}]` is empty bytes.")
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not path:
            raise ValueError(f"`images[{index}]` is an empty path.")
        return path
    raise TypeError(
        f"`images[{index}]` must be a file path or encoded image bytes; got {type(image).__name__}."
    )


def _as_references(references, index):
    if isinstance(references, str):
        references = [references]
    if isinstance(references, bytes) or not isinstance(references, (list, tuple)):
        raise TypeError(
            f"`captions[{index}]` must be a list of caption strings; got {type(references).__name__}."
        )
    cleaned = []
    for caption in references:
        if not isinstance(caption, str):
            raise TypeError(f"`captions[{index}]` must hold strings; found {caption!r:.60}.")
        caption = " ".join(caption.split())
        if caption:
            cleaned.append(caption)
    if not cleaned:
        raise ValueError(f"`captions[{index}]` holds no non-empty caption.")
    return cleaned


def _default_group(image):
    if isinstance(image, bytes):
        return "sha1:" + hashlib.sha1(image).hexdigest()
    return image


def group_by_shared_captions(keys, captions):
    """Merges the groups `keys[i]` of images that share a caption (up to `caption_key`).

    Args:
        keys: one initial group key per image.
        captions: one list of references per image.

    Returns:
        A list of group keys: within each connected set of images, the smallest key.
    """
    parent = {}

    def find(key):
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(a, b):
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_with_caption = {}
    for key, references in zip(keys, captions):
        find(key)
        for caption in references:
            other = first_with_caption.setdefault(caption_key(caption), key)
            union(key, other)
    return [find(key) for key in keys]


# --- A user's own data ---------------------------------------------------------------------


def _image_files(root):
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def _caption_lines(data):
    lines = data.decode("utf-8-sig", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not _LOCALE_LINE.match(line)]


def read_caption_folder(path, *, source=None):
    """Reads images that each have a same-named `.txt` caption file beside them.

    `photos/cat.jpg` is captioned by `photos/cat.txt`: one caption per line, so a file of
    several lines gives several references. Subfolders are read too. Images without a
    caption file are skipped (and counted in `notes`); translation lines such as
    `es.utf8=...` (the Tux Paint stamp layout) are skipped. Images sharing a caption, and
    `NAME_mirror.png` with `NAME.png`, are put in one near-duplicate group.

    Args:
        path: the folder.
        source: the source name recorded for these images (default: the folder path).

    Returns:
        `CaptionedImages` in sorted file order.

    Raises:
        FileNotFoundError: `path` is not a folder.
        ValueError: no image in it has a caption file.

    Example:

    >>> import pathlib, tempfile
    >>> from rnn_toolkit.data.captioned_images import read_caption_folder
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cat.png").write_bytes(b"(png bytes)")
    >>> _ = (folder / "cat.txt").write_text("A cat.\\nA cat asleep.\\n", encoding="utf-8")
    >>> read_caption_folder(folder).captions
    [['A cat.', 'A cat asleep.']]
    """
    root = pathlib.Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"`path` must be a folder of images; {str(root)!r} is not one.")
    images, captions, keys, skipped = [], [], [], 0
    for image in _image_files(root):
        caption_file = image.with_suffix(".txt")
        references = _caption_lines(caption_file.read_bytes()) if caption_file.is_file() else []
        if not references:
            skipped += 1
            continue
        images.append(str(image))
        captions.append(references)
        stem = image.relative_to(root).with_suffix("").as_posix()
        keys.append(stem[: -len("_mirror")] if stem.endswith("_mirror") else stem)
    if not images:
        raise ValueError(
            f"No image in {str(root)!r} has a caption file: put NAME.txt (one caption per "
            f"line) beside each NAME.png/.jpg/.jpeg/.gif/.bmp."
        )
    source = str(root) if source is None else source
    notes = {source: {"images_without_captions": skipped}} if skipped else {}
    return CaptionedImages(
        images, captions, groups=[f"{source}:{k}" for k in group_by_shared_captions(keys, captions)],
        source=[source] * len(images), notes=notes,
    )


def _existing_images(names, references, image_dir, what):
    """Keeps the images that exist in `image_dir`; returns (paths, captions, names, missing)."""
    paths, kept_captions, kept_names, missing = [], [], [], []
    for name in names:
        path = image_dir / name
        if path.is_file():
            paths.append(str(path))
            kept_captions.append(references[name])
            kept_names.append(name)
        else:
            missing.append(name)
    if not paths:
        raise FileNotFoundError(
            f"None of the {len(names):,} images named in {what} is in {str(image_dir)!r} "
            f"(first: {names[0]!r}); pass the folder holding them."
            if names else f"{what} names no image with a caption."
        )
    if missing:
        warnings.warn(
            f"{len(missing):,} of the {len(names):,} images named in {what} are not in "
            f"{str(image_dir)!r} and were left out (first: {missing[0]!r}).",
            stacklevel=3,
        )
    return paths, kept_captions, kept_names, missing


def read_flickr_tokens(token_file, image_dir, *, source=None):
    """Reads a Flickr8k / Flickr30k caption file: several references per photo.

    Three layouts are recognised from the first line:

    * `Flickr8k.token.txt` / `results_20130124.token`: `NAME.jpg#0<TAB>caption`;
    * Kaggle's `captions.txt`: a CSV with header `image,caption`;
    * Kaggle's Flickr30k `results.csv`: `image_name| comment_number| comment`.

    Captions are kept as written (Flickr8k's are tokenised: "a dog ."). Images missing
    from `image_dir` are left out with a warning (Flickr8k names one image that does not
    exist, `2258277193_586949ec62.jpg.1`).

    Args:
        token_file: the caption file.
        image_dir: the folder holding the photos (`Flicker8k_Dataset`, `Images`).
        source: the source name recorded (default: the caption file's path).

    Returns:
        `CaptionedImages` in the file's order, each photo its own group.

    Example:

    >>> import pathlib, tempfile
    >>> from rnn_toolkit.data.captioned_images import read_flickr_tokens
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "1.jpg").write_bytes(b"(jpeg bytes)")
    >>> tokens = folder / "Flickr8k.token.txt"
    >>> _ = tokens.write_text("1.jpg#0\\tA dog runs .\\n1.jpg#1\\tA brown dog .\\n", encoding="utf-8")
    >>> read_flickr_tokens(tokens, folder).captions
    [['A dog runs .', 'A brown dog .']]
    """
    token_file = pathlib.Path(token_file).expanduser()
    image_dir = pathlib.Path(image_dir).expanduser()
    if not token_file.is_file():
        raise FileNotFoundError(f"`token_file` {str(token_file)!r} is not a file.")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"`image_dir` {str(image_dir)!r} is not a folder.")
    text = token_file.read_bytes().decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"`token_file` {str(token_file)!r} is empty.")
    header = lines[0].strip().lower()
    if "\t" in lines[0]:
        rows = (line.split("\t", 1) for line in lines)
    elif header.replace(" ", "").startswith("image,caption"):
        rows = (row[:2] for row in csv.reader(io.StringIO("\n".join(lines[1:]))) if row)
    elif "|" in header and header.startswith("image"):
        rows = ((parts[0], parts[-1]) for parts in (line.split("|") for line in lines[1:]))
    else:
        raise ValueError(
            f"`token_file` {str(token_file)!r} is in no known Flickr layout: expected "
            f"'NAME.jpg#0<TAB>caption' lines, a CSV with header 'image,caption' or "
            f"'image_name| comment_number| comment'; the first line is {lines[0][:80]!r}."
        )
    references = collections.OrderedDict()
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise ValueError(f"{str(token_file)!r}: row {number} has no caption: {row!r:.80}.")
        name, caption = _FLICKR_REFERENCE.sub("", row[0].strip()), " ".join(row[1].split())
        if name and caption:
            references.setdefault(name, []).append(caption)
    paths, captions, names, missing = _existing_images(
        list(references), references, image_dir, f"{str(token_file)!r}"
    )
    source = str(token_file) if source is None else source
    return CaptionedImages(
        paths, captions, groups=[f"{source}:{name}" for name in names], source=[source] * len(paths),
        notes={source: {"missing_images": len(missing)}} if missing else {},
    )


def read_coco_captions(captions_json, image_dir, *, source=None):
    """Reads a COCO-style captions file (`captions_train2017.json`, nocaps, ...).

    The JSON holds `images` (`id`, `file_name`) and `annotations` (`image_id`,
    `caption`); every annotation of an image is one of its references. Images without
    annotations, or missing from `image_dir`, are left out (the latter with a warning).

    Args:
        captions_json: the annotation file.
        image_dir: the folder holding the images (`train2017/`).
        source: the source name recorded (default: the JSON file's path).

    Returns:
        `CaptionedImages` in the file's image order, grouped by image id.
    """
    captions_json = pathlib.Path(captions_json).expanduser()
    image_dir = pathlib.Path(image_dir).expanduser()
    if not captions_json.is_file():
        raise FileNotFoundError(f"`captions_json` {str(captions_json)!r} is not a file.")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"`image_dir` {str(image_dir)!r} is not a folder.")
    try:
        record = json.loads(captions_json.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"`captions_json` {str(captions_json)!r} is not JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("images"), list) or not isinstance(
        record.get("annotations"), list
    ):
        raise ValueError(
            f"`captions_json` {str(captions_json)!r} is not a COCO captions file: expected an "
            "object with 'images' and 'annotations' lists."
        )
    by_id = collections.defaultdict(list)
    for annotation in record["annotations"]:
        caption = " ".join(str(annotation.get("caption", "")).split())
        if caption and "image_id" in annotation:
            by_id[annotation["image_id"]].append(caption)
    names, references, ids = [], {}, {}
    for image in record["images"]:
        if image.get("id") in by_id and image.get("file_name"):
            names.append(image["file_name"])
            references[image["file_name"]] = by_id[image["id"]]
            ids[image["file_name"]] = image["id"]
    paths, captions, kept, missing = _existing_images(
        names, references, image_dir, f"{str(captions_json)!r}"
    )
    source = str(captions_json) if source is None else source
    return CaptionedImages(
        paths, captions, groups=[f"{source}:{ids[name]}" for name in kept],
        source=[source] * len(paths),
        notes={source: {"missing_images": len(missing)}} if missing else {},
    )


def _find_feature(spec, wanted, what, name):
    """The '/'-joined path of the one string feature of `spec` that `wanted` accepts."""
    found = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}/")
        elif getattr(node, "dtype", None) == tf.string:
            found.append(prefix[:-1])

    walk(spec, "")
    matches = [path for path in found if wanted(path)]
    if len(matches) != 1:
        raise ValueError(
            f"Cannot tell which feature of TFDS dataset {name!r} holds the {what}: string "
            f"features {found}; pass it (e.g. `captions_key='captions/text'`)."
        )
    return matches[0]


def _feature(example, path):
    """`example[path]`, where `path` is a key ("image/id") or keys joined by '/'."""
    if path in example:
        return example[path]
    head, _, rest = path.partition("/")
    if rest and head in example and isinstance(example[head], dict):
        return _feature(example[head], rest)
    raise KeyError(path)


def tfds_captioned_images(
    name="coco_captions", *, split="train", data_dir=None, image_key="image",
    captions_key=None, id_key=None, image_folder=None,
):
    """Reads a TensorFlow Datasets captioning dataset prepared on this machine.

    Never downloads. The images are taken as the dataset stores them (the original JPEG or
    PNG bytes, never decoded and re-encoded), kept in memory, or written once to
    `image_folder` as files (advisable for more than ~10,000 images: COCO's train split
    holds 13 GB of JPEG).

    Args:
        name: the TFDS name (with config), e.g. `"coco_captions"` or `"coco_captions/2017"`.
        split: the split, e.g. `"train"` or `"val[:500]"`.
        data_dir: TFDS data folder (default: TFDS's own).
        image_key: the image feature.
        captions_key: the feature holding the reference(s), '/'-separated for nested
            features (default: the one string feature whose name contains "caption", e.g.
            `captions/text` for `coco_captions`).
        id_key: a feature identifying the image, for the groups (default: `image/id` if
            present, else the example's position).
        image_folder: if given, write the image bytes there (`ID.jpg`) and return paths.

    Returns:
        `CaptionedImages` with source `"tfds:NAME:SPLIT"`.
    """
    import tensorflow_datasets as tfds  # heavy, and only this reader needs it

    dataset, info = load_prepared(name, split=split, data_dir=data_dir)
    spec = dataset.element_spec
    if image_key not in spec:
        raise ValueError(
            f"`image_key`={image_key!r} is not a feature of TFDS dataset {name!r}; it has {sorted(spec)}."
        )
    if captions_key is None:
        captions_key = _find_feature(spec, lambda path: "caption" in path.lower(), "captions", name)
    if id_key is None:
        id_key = "image/id" if "image/id" in spec else None
    # The stored bytes, not pixels: no decode + re-encode, and the file is the original.
    dataset = tfds.builder(name, data_dir=data_dir).as_dataset(
        split=split, decoders={image_key: tfds.decode.SkipDecoding()}
    )
    folder = None if image_folder is None else pathlib.Path(image_folder).expanduser()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    images, captions, groups = [], [], []
    source = f"{TFDS_PREFIX}{name}:{split}"
    for index, example in enumerate(tfds.as_numpy(dataset)):
        texts = np.atleast_1d(_feature(example, captions_key)).tolist()
        references = [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else str(t) for t in texts]
        references = [" ".join(r.split()) for r in references if r.strip()]
        if not references:
            continue
        encoded = bytes(example[image_key])
        key = str(_feature(example, id_key)) if id_key else str(index)
        if folder is not None:
            path = folder / f"{key}{_suffix_of(encoded)}"
            if not path.is_file():
                path.write_bytes(encoded)
            encoded = str(path)
        images.append(encoded)
        captions.append(references)
        groups.append(f"{source}:{key}")
    if not images:
        raise ValueError(f"TFDS dataset {name!r} split {split!r} has no captioned image.")
    return CaptionedImages(images, captions, groups=groups, source=[source] * len(images))


def _suffix_of(encoded):
    if encoded.startswith(b"\x89PNG"):
        return ".png"
    if encoded.startswith(b"GIF8"):
        return ".gif"
    if encoded.startswith(b"BM"):
        return ".bmp"
    return ".jpg"


# --- Loading by name, and splits -------------------------------------------------------------


def _coco_image_folder(path):
    """COCO's layout: `annotations/captions_val2017.json` beside `val2017/`."""
    match = re.match(r"captions_(\w+?)\.json$", path.name)
    if match:
        for folder in (path.parent.parent / match.group(1), path.parent / match.group(1)):
            if folder.is_dir():
                return folder
    return None


def _flickr_image_folder(path):
    for folder in (path.parent / "Images", path.parent / "Flicker8k_Dataset",
                   path.parent / "Flickr8k_Dataset", path.parent.parent / "Flicker8k_Dataset",
                   path.parent.parent / "Flickr8k_Dataset", path.parent / "flickr30k_images",
                   path.parent):
        if folder.is_dir() and any(folder.glob("*.jpg")):
            return folder
    return None


def load_captioned_images(spec, *, images=None, **kwargs):
    """Loads captioned images by name or path.

    Args:
        spec: one of
            * `"tuxpaint"`: the Tux Paint stamps (see `rnn_toolkit.data.clip_art`);
            * `"emoji"`: the Noto colour emoji with their English names;
            * `"openmoji"`: the OpenMoji drawings of the same emoji;
            * `"clipart"`: `"tuxpaint"` and `"emoji"` together;
            * `"emoji-scenes"`: two emoji per image, side by side or stacked, captioned
              with both names and where each one is (`rnn_toolkit.data.scenes`);
            * a folder: images with a same-named `.txt` caption file each
              (`read_caption_folder`);
            * a `.txt` / `.token` / `.csv` file: Flickr8k/30k captions
              (`read_flickr_tokens`), images in `images` or found beside it (`Images/`,
              `Flicker8k_Dataset/`);
            * a `.json` file: COCO captions (`read_coco_captions`), images in `images` or,
              in COCO's layout, `annotations/captions_val2017.json` -> `val2017/`;
            * `"tfds:NAME[:SPLIT]"`: a prepared TFDS dataset (`tfds_captioned_images`).
        images: the image folder of a token file or a COCO json (the command line's
            `--images`).
        **kwargs: passed to the reader or built-in loader.

    Returns:
        `CaptionedImages`.

    Raises:
        ValueError: `spec` is none of the forms above (the message lists them).
        FileNotFoundError: a path that does not exist, or an image folder not found.
    """
    from rnn_toolkit.data import clip_art  # clip_art builds on this module

    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise ValueError(f"`spec` must be {_SPEC_FORMS}; received spec={spec!r}.")
    path = pathlib.Path(spec).expanduser()
    if images is not None and not (path.is_file() and path.suffix.lower() in (
        ".json", ".txt", ".token", ".csv", ".tsv"
    )):
        raise ValueError(
            f"`images` (the image folder) goes only with a Flickr token file or a COCO json; "
            f"received spec={str(spec)!r}, images={str(images)!r}."
        )
    if isinstance(spec, str):
        if spec == "tuxpaint":
            return clip_art.tuxpaint_stamps(**kwargs)
        if spec == "emoji":
            return clip_art.noto_emoji(**kwargs)
        if spec == "openmoji":
            return clip_art.openmoji_drawings(**kwargs)
        if spec == "clipart":
            if kwargs:
                raise TypeError(
                    f"'clipart' takes no options (got {sorted(kwargs)}); load 'tuxpaint' and "
                    "'emoji' with their options and add them."
                )
            return clip_art.tuxpaint_stamps() + clip_art.noto_emoji()
        if spec == "emoji-scenes":
            from rnn_toolkit.data.scenes import emoji_scenes  # scenes builds on this module

            return emoji_scenes(**kwargs)
        if spec.startswith(TFDS_PREFIX):
            name, _, split = spec[len(TFDS_PREFIX):].partition(":")
            if not name:
                raise ValueError(f"`spec` {spec!r} names no TFDS dataset (tfds:NAME[:SPLIT]).")
            return tfds_captioned_images(name, split=split or "train", **kwargs)
    suffix = path.suffix.lower()
    if path.is_dir():
        return read_caption_folder(path, **kwargs)
    if path.is_file() and suffix == ".json":
        folder = images if images is not None else _coco_image_folder(path)
        if folder is None:
            raise FileNotFoundError(
                f"Where are the images of {str(path)!r}? Pass `images=` (`--images`) with their "
                "folder (COCO's layout annotations/captions_NAME.json + NAME/ is found by itself)."
            )
        return read_coco_captions(path, folder, **kwargs)
    if path.is_file() and suffix in (".txt", ".token", ".csv", ".tsv"):
        folder = images if images is not None else _flickr_image_folder(path)
        if folder is None:
            raise FileNotFoundError(
                f"Where are the images of {str(path)!r}? Pass `images=` (`--images`) with their "
                "folder (an 'Images' or 'Flicker8k_Dataset' folder beside the file is found by itself)."
            )
        return read_flickr_tokens(path, folder, **kwargs)
    if path.is_file():
        raise ValueError(
            f"`spec` {str(spec)!r} is a file of unknown kind (suffix {suffix!r}); `spec` must be "
            f"{_SPEC_FORMS}."
        )
    if suffix in (".json", ".txt", ".token", ".csv", ".tsv") or len(path.parts) > 1:
        raise FileNotFoundError(f"`spec` {str(spec)!r} is not an existing file or folder.")
    raise ValueError(f"`spec` must be {_SPEC_FORMS}; received spec={spec!r}.")


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1); received {name}={value!r}.")
    return float(value)


def split_captioned_images(data, *, validation_fraction=0.1, test_fraction=0.1, seed=0):
    """A seeded train / validation / test split by near-duplicate group.

    Every group lands wholly in one part, so no held-out image has a near-duplicate (a
    mirrored or recoloured copy, a skin-tone variant, a stamp with the same caption) in
    training. Groups are ordered by a hash of `(seed, group key)` and cut by image count,
    separately per source (a group counts for the source of its first image), so each
    source is held out in proportion and a group's side does not change when other
    sources are added.

    Args:
        data: `CaptionedImages`.
        validation_fraction: share of the images for validation, in [0, 1).
        test_fraction: share of the images for the test, in [0, 1).
        seed: the same seed always gives the same split.

    Returns:
        `(train, validation, test)` `CaptionedImages`, each in the original order. A part
        with a non-zero fraction gets at least one group when there are enough groups.

    Example:

    >>> from rnn_toolkit.data.captioned_images import CaptionedImages, split_captioned_images
    >>> data = CaptionedImages([f"{i}.png" for i in range(20)], [[f"thing {i // 2}"] for i in range(20)],
    ...                        groups=[f"g{i // 2}" for i in range(20)])
    >>> train, validation, test = split_captioned_images(
    ...     data, validation_fraction=0.2, test_fraction=0.2, seed=0)
    >>> len(train), len(validation), len(test)
    (12, 4, 4)
    >>> set(train.groups) & set(test.groups)
    set()
    """
    if not isinstance(data, CaptionedImages):
        raise TypeError(f"`data` must be CaptionedImages; got {type(data).__name__}.")
    validation_fraction = _check_fraction("validation_fraction", validation_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"`validation_fraction` + `test_fraction` must be below 1; received "
            f"{validation_fraction} + {test_fraction}."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an integer; received seed={seed!r}.")
    members = collections.OrderedDict()
    for i, group in enumerate(data.groups):
        members.setdefault(group, []).append(i)
    strata = collections.defaultdict(list)
    for group, indices in members.items():
        strata[data.source[indices[0]]].append(group)

    def order(group):
        return hashlib.sha256(f"{int(seed)}\0{group}".encode()).hexdigest()

    part_of = {}
    ranked = []
    for stratum in sorted(strata):
        groups = sorted(strata[stratum], key=order)
        total = sum(len(members[g]) for g in groups)
        cuts = (test_fraction * total, (test_fraction + validation_fraction) * total)
        position = 0
        for group in groups:
            size = len(members[group])
            middle = position + size / 2  # a group goes where most of it falls
            part_of[group] = 2 if middle < cuts[0] else 1 if middle < cuts[1] else 0
            position += size
        ranked.extend(groups)
    # Tiny data: give a requested part one group rather than none (from the training side).
    for part, fraction in ((2, test_fraction), (1, validation_fraction)):
        training = [g for g in ranked if part_of[g] == 0]
        if fraction > 0 and part not in part_of.values() and len(training) > 1:
            part_of[training[0]] = part
    parts = ([], [], [])
    for i, group in enumerate(data.groups):
        parts[part_of[group]].append(i)
    return tuple(data.subset(indices) for indices in parts)
