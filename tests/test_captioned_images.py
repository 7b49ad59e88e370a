"""Tests for rnn_toolkit.data.captioned_images: the data class, the readers and the splits."""

import collections
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

from rnn_toolkit.data import captioned_images, clip_art
from rnn_toolkit.data.captioned_images import (
    CaptionedImages,
    caption_key,
    group_by_shared_captions,
    load_captioned_images,
    read_caption_folder,
    read_coco_captions,
    read_flickr_tokens,
    split_captioned_images,
    tfds_captioned_images,
)


def _png(path, value=0, size=(4, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(np.full(size + (3,), value, np.uint8)).numpy())
    return path


def _data(n=6, **kwargs):
    return CaptionedImages(
        [f"{i}.png" for i in range(n)], [[f"thing {i}", f"object {i}"] for i in range(n)], **kwargs
    )


# --- CaptionedImages ------------------------------------------------------------------------------


def test_defaults_validation_and_normalisation():
    data = CaptionedImages(["a.png", b"\x89PNG..."], ["A  frog.", ["A cat.", "  ", "A grey cat."]])
    assert data.captions == [["A frog."], ["A cat.", "A grey cat."]]  # spaces folded, blanks gone
    assert data.groups[0] == "a.png" and data.groups[1].startswith("sha1:")
    assert data.source == ["custom", "custom"] and data.mirrorable == [True, True]
    with pytest.raises(ValueError, match="one entry per image; got 1 for 2 images"):
        CaptionedImages(["a.png", "b.png"], [["x"]])
    with pytest.raises(ValueError, match=r"`captions\[0\]` holds no non-empty caption"):
        CaptionedImages(["a.png"], [["", " "]])
    with pytest.raises(TypeError, match=r"`images\[0\]` must be a file path or encoded image bytes"):
        CaptionedImages([3], [["x"]])
    with pytest.raises(TypeError, match="not one image"):
        CaptionedImages("a.png", [["x"]])
    with pytest.raises(ValueError, match="`groups` must have one entry per image"):
        CaptionedImages(["a.png"], [["x"]], groups=["g", "h"])
    with pytest.raises(TypeError, match="`source` must hold non-empty strings"):
        CaptionedImages(["a.png"], [["x"]], source=[""])
    with pytest.raises(AttributeError):
        data.images = []  # frozen


def test_subset_concatenate_in_groups_and_summary():
    left = _data(4, groups=["g0", "g0", "g1", "g2"], source="tuxpaint", notes={"tuxpaint": {"svg_refused": 1}})
    right = CaptionedImages([b"png-bytes"], [["A cat."]], groups=["cat"], source=["emoji"],
                            mirrorable=[False], notes={"emoji": {"rendered": 1}})
    both = left + right
    assert len(both) == 5 and both.images[-1] == b"png-bytes" and both.mirrorable == [True] * 4 + [False]
    assert both.notes == {"tuxpaint": {"svg_refused": 1}, "emoji": {"rendered": 1}}
    assert both.concatenate(right).source.count("emoji") == 2
    part = both.subset([4, 0])
    assert part.captions == [["A cat."], ["thing 0", "object 0"]] and part.groups == ["cat", "g0"]
    assert part.notes == both.notes
    assert both.in_groups(["g0", "cat"]).images == ["0.png", "1.png", b"png-bytes"]
    summary = both.summary()
    assert (summary["images"], summary["references"], summary["groups"]) == (5, 9, 4)
    assert summary["by_source"]["tuxpaint"] == {"images": 4, "references": 8, "groups": 3}
    assert summary["by_source"]["emoji"] == {"images": 1, "references": 1, "groups": 1}
    assert summary["caption_words"] == {"median": 2.0, "max": 2}
    assert "5 images, 9 references, 4 groups; tuxpaint: 4, emoji: 1" in repr(both)
    with pytest.raises(IndexError):
        both.subset([5])
    with pytest.raises(TypeError):
        both + ["x"]


def test_groups_merge_images_that_share_a_caption():
    keys = group_by_shared_captions(
        ["b", "a", "c", "d"], [["A frog."], ["a FROG!"], ["A cat."], ["A dog.", "a CAT"]]
    )
    assert keys == ["a", "a", "c", "c"]
    assert caption_key("A ‘Fuji’ apple.") == caption_key('A "Fuji" apple') == "a fuji apple"


# --- Readers ------------------------------------------------------------------------------------------


def test_caption_folder_reads_several_references_and_groups(tmp_path):
    _png(tmp_path / "animals" / "frog.png")
    _png(tmp_path / "animals" / "frog_mirror.png")
    (tmp_path / "animals" / "frog.txt").write_text("A frog.\nes.utf8=Una rana.\n\nA green frog.\n", encoding="utf-8")
    (tmp_path / "animals" / "frog_mirror.txt").write_text("A frog facing left.\n", encoding="utf-8")
    _png(tmp_path / "toad.jpg")
    (tmp_path / "toad.txt").write_bytes(b"\xef\xbb\xbfa Frog\r\n")  # BOM, CRLF, shares a caption
    _png(tmp_path / "cat.png")
    (tmp_path / "cat.txt").write_text("A cat.\n", encoding="utf-8")
    _png(tmp_path / "uncaptioned.png")
    (tmp_path / "notes.txt").write_text("not a caption of anything\n", encoding="utf-8")
    data = read_caption_folder(tmp_path, source="mine")
    names = [p.rsplit("/", 1)[1] for p in data.images]
    assert names == ["frog.png", "frog_mirror.png", "cat.png", "toad.jpg"]
    assert data.captions[0] == ["A frog.", "A green frog."]
    assert data.captions[3] == ["a Frog"]
    # frog, its mirror copy and the toad (same caption) form one group; the cat its own.
    assert len({data.groups[0], data.groups[1], data.groups[3]}) == 1 and data.groups[2] != data.groups[0]
    assert data.source == ["mine"] * 4
    assert data.notes == {"mine": {"images_without_captions": 1}}


def test_caption_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be a folder"):
        read_caption_folder(tmp_path / "nowhere")
    _png(tmp_path / "a.png")
    with pytest.raises(ValueError, match="put NAME.txt"):
        read_caption_folder(tmp_path)


def test_flickr_token_file_in_its_three_layouts(tmp_path):
    images = tmp_path / "Images"
    for name in ("1.jpg", "2.jpg"):
        _png(images / name)
    token = tmp_path / "Flickr8k.token.txt"
    token.write_text(
        "1.jpg#0\tA dog runs .\n1.jpg#1\tA  brown dog .\n2.jpg#0\tA girl .\n"
        "3.jpg.1#0\tA missing photo .\n", encoding="utf-8",
    )
    with pytest.warns(UserWarning, match="1 of the 3 images named .* were left out"):
        data = read_flickr_tokens(token, images)
    assert data.captions == [["A dog runs .", "A brown dog ."], ["A girl ."]]
    assert data.images == [str(images / "1.jpg"), str(images / "2.jpg")]
    assert data.notes == {str(token): {"missing_images": 1}}
    kaggle = tmp_path / "captions.txt"
    kaggle.write_text('image,caption\n1.jpg,"A dog, running ."\n2.jpg,A girl .\n1.jpg,A dog .\n', encoding="utf-8")
    assert read_flickr_tokens(kaggle, images).captions == [["A dog, running .", "A dog ."], ["A girl ."]]
    pipes = tmp_path / "results.csv"
    pipes.write_text("image_name| comment_number| comment\n1.jpg| 0| A dog .\n2.jpg| 0| A girl .\n", encoding="utf-8")
    assert read_flickr_tokens(pipes, images).captions == [["A dog ."], ["A girl ."]]
    unknown = tmp_path / "other.txt"
    unknown.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no known Flickr layout"):
        read_flickr_tokens(unknown, images)
    ghosts = tmp_path / "ghosts.txt"
    ghosts.write_text("nothere.jpg#0\tA ghost .\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="None of the 1 images"):
        read_flickr_tokens(ghosts, images)


def _coco(tmp_path):
    images = tmp_path / "coco" / "val2017"
    _png(images / "000001.jpg")
    _png(images / "000002.jpg")
    annotations = tmp_path / "coco" / "annotations" / "captions_val2017.json"
    annotations.parent.mkdir(parents=True)
    annotations.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "000001.jpg"}, {"id": 2, "file_name": "000002.jpg"},
                   {"id": 3, "file_name": "000003.jpg"}, {"id": 4, "file_name": "000004.jpg"}],
        "annotations": [{"id": 10, "image_id": 2, "caption": "Two cats on a sofa."},
                        {"id": 11, "image_id": 1, "caption": " A man riding a horse. "},
                        {"id": 12, "image_id": 2, "caption": "Cats sleeping."},
                        {"id": 13, "image_id": 3, "caption": "A missing image."}],
    }), encoding="utf-8")
    return annotations, images


def test_coco_captions(tmp_path):
    annotations, images = _coco(tmp_path)
    with pytest.warns(UserWarning, match="1 of the 3 images"):
        data = read_coco_captions(annotations, images)
    assert data.captions == [["A man riding a horse."], ["Two cats on a sofa.", "Cats sleeping."]]
    assert data.groups == [f"{annotations}:1", f"{annotations}:2"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not JSON"):
        read_coco_captions(bad, images)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="not a COCO captions file"):
        read_coco_captions(bad, images)


def _fake_coco_tfds(count=3):
    """A `tfds.testing.mock_data` reader serving `count` real coco_captions examples: the
    builder's own features encode and decode them (so `decoders` work as in TFDS)."""
    import tree

    def as_dataset(builder, split, decoders=None, read_config=None, shuffle_files=False, **kwargs):
        features = builder.info.features
        serialized = features.get_serialized_info()

        def tensor(info, value):
            value = np.asarray(value)
            value = value.tolist() if value.dtype == object else value
            shape = [-1 if d is None else d for d in info.shape]
            result = tf.constant(value, info.tf_dtype)
            return tf.reshape(result, shape) if shape else result

        dataset = None
        for i in range(count):
            example = features.encode_example({
                "image": np.full((5, 7, 3), 40 * i, np.uint8),
                "image/filename": f"COCO_{i}.jpg",
                "image/id": 100 + i,
                "captions": [{"id": 10 * i + j, "text": f"Caption {j} of image {i}."} for j in range(i + 1)],
                "objects": [],
            })
            one = tf.data.Dataset.from_tensors(tree.map_structure_up_to(serialized, tensor, serialized, example))
            dataset = one if dataset is None else dataset.concatenate(one)
        return dataset.map(lambda example: features.decode_example(example, decoders=decoders))

    return as_dataset


def test_tfds_captioning_dataset_keeps_the_stored_image_bytes(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(as_dataset_fn=_fake_coco_tfds(3)):
        data = tfds_captioned_images("coco_captions", split="val")
        on_disk = tfds_captioned_images("coco_captions", split="val", image_folder=tmp_path / "images")
        loaded = load_captioned_images("tfds:coco_captions:val")
    assert data.captions == [
        ["Caption 0 of image 0."], ["Caption 0 of image 1.", "Caption 1 of image 1."],
        ["Caption 0 of image 2.", "Caption 1 of image 2.", "Caption 2 of image 2."],
    ]
    assert data.groups == ["tfds:coco_captions:val:100", "tfds:coco_captions:val:101", "tfds:coco_captions:val:102"]
    assert data.source == ["tfds:coco_captions:val"] * 3
    assert all(isinstance(image, bytes) and image[:2] == b"\xff\xd8" for image in data.images)  # JPEG as stored
    assert tf.io.decode_jpeg(data.images[1]).shape == (5, 7, 3)
    assert on_disk.images == [str(tmp_path / "images" / f"{100 + i}.jpg") for i in range(3)]
    assert (tmp_path / "images" / "101.jpg").read_bytes() == data.images[1]
    assert loaded.captions == data.captions


def test_tfds_errors(tmp_path):
    import tensorflow_datasets as tfds

    with pytest.raises(FileNotFoundError, match="tfds build coco_captions"):
        tfds_captioned_images("coco_captions", data_dir=str(tmp_path))
    with tfds.testing.mock_data(as_dataset_fn=_fake_coco_tfds(1)):
        with pytest.raises(ValueError, match="`image_key`='photo' is not a feature"):
            tfds_captioned_images("coco_captions", image_key="photo")
    # Without a feature named like "caption", the reader asks for `captions_key`.
    spec = {"image": tf.TensorSpec([None, None, 3], tf.uint8), "text": tf.TensorSpec([], tf.string)}
    with pytest.raises(ValueError, match="pass it .e.g. `captions_key='captions/text'`"):
        captioned_images._find_feature(spec, lambda path: "caption" in path, "captions", "x")


# --- load_captioned_images --------------------------------------------------------------------------


def test_load_dispatches_on_paths(tmp_path):
    _png(tmp_path / "folder" / "a.png")
    (tmp_path / "folder" / "a.txt").write_text("An A.\n", encoding="utf-8")
    assert load_captioned_images(str(tmp_path / "folder")).captions == [["An A."]]
    _png(tmp_path / "flickr" / "Images" / "1.jpg")
    (tmp_path / "flickr" / "captions.txt").write_text("image,caption\n1.jpg,A dog .\n", encoding="utf-8")
    assert load_captioned_images(tmp_path / "flickr" / "captions.txt").captions == [["A dog ."]]
    annotations, images = _coco(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_layout = load_captioned_images(str(annotations))  # COCO layout: ../val2017
        explicit = load_captioned_images(str(annotations), images=images)
    assert by_layout.captions == explicit.captions and len(explicit) == 2
    lonely = tmp_path / "lonely" / "captions.json"
    lonely.parent.mkdir()
    lonely.write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="Pass `images=`"):
        load_captioned_images(str(lonely))


def test_load_names_the_accepted_forms(tmp_path):
    for bad in ("clip-art", "", None, 3):
        with pytest.raises(ValueError, match=r"`spec` must be 'tuxpaint', 'emoji', .*'tfds:NAME\[:SPLIT\]'"):
            load_captioned_images(bad)
    with pytest.raises(FileNotFoundError, match="not an existing file or folder"):
        load_captioned_images(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="`images` .the image folder. goes only with"):
        load_captioned_images(str(tmp_path), images=tmp_path)
    odd = tmp_path / "images.zip"
    odd.write_bytes(b"PK")
    with pytest.raises(ValueError, match="file of unknown kind"):
        load_captioned_images(str(odd))


def test_load_built_in_names(monkeypatch):
    made = collections.Counter()

    def fake(source):
        def load(**kwargs):
            made[source] += 1
            return CaptionedImages([f"{source}.png"], [[source]], source=[source])
        return load

    monkeypatch.setattr(clip_art, "tuxpaint_stamps", fake("tuxpaint"))
    monkeypatch.setattr(clip_art, "noto_emoji", fake("emoji"))
    monkeypatch.setattr(clip_art, "openmoji_drawings", fake("openmoji"))
    assert load_captioned_images("tuxpaint").source == ["tuxpaint"]
    assert load_captioned_images("emoji").source == ["emoji"]
    assert load_captioned_images("openmoji").source == ["openmoji"]
    assert load_captioned_images("clipart").source == ["tuxpaint", "emoji"]
    with pytest.raises(TypeError, match="'clipart' takes no options"):
        load_captioned_images("clipart", letters=True)


# --- Splits ---------------------------------------------------------------------------------------------


def _grouped(sizes, source="s"):
    images, captions, groups = [], [], []
    for g, size in enumerate(sizes):
        for k in range(size):
            images.append(f"{source}{g}_{k}.png")
            captions.append([f"{source} thing {g}"])
            groups.append(f"{source}:{g}")
    return CaptionedImages(images, captions, groups=groups, source=[source] * len(images))


def test_split_keeps_groups_together_and_is_seeded():
    data = _grouped([1, 3, 2, 5, 1, 1, 2, 4, 1, 1] * 10)
    train, validation, test = split_captioned_images(data, validation_fraction=0.15, test_fraction=0.2, seed=7)
    assert len(train) + len(validation) + len(test) == len(data)
    sides = [set(part.groups) for part in (train, validation, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert abs(len(test) - 0.2 * len(data)) <= 5 and abs(len(validation) - 0.15 * len(data)) <= 5
    assert train.images == sorted(train.images, key=data.images.index)  # original order
    again = split_captioned_images(data, validation_fraction=0.15, test_fraction=0.2, seed=7)
    assert [p.images for p in again] == [p.images for p in (train, validation, test)]
    other = split_captioned_images(data, validation_fraction=0.15, test_fraction=0.2, seed=8)
    assert other[2].images != test.images


def test_split_is_stratified_by_source_and_stable_when_sources_are_added():
    tux, emoji = _grouped([1, 2] * 20, "t"), _grouped([3, 1] * 100, "e")
    alone = split_captioned_images(emoji, validation_fraction=0.1, test_fraction=0.1, seed=0)
    train, validation, test = split_captioned_images(tux + emoji, validation_fraction=0.1, test_fraction=0.1, seed=0)
    counts = collections.Counter(test.source)
    assert abs(counts["t"] - 6) <= 2 and abs(counts["e"] - 40) <= 3
    assert set(test.in_groups(set(emoji.groups)).groups) == set(alone[2].groups)


def test_split_gives_tiny_data_a_group_per_part_and_checks_arguments():
    data = _grouped([1, 1, 1])
    parts = split_captioned_images(data, validation_fraction=0.05, test_fraction=0.05, seed=0)
    assert [len(p) for p in parts] == [1, 1, 1]
    no_validation = split_captioned_images(data, validation_fraction=0.0, test_fraction=0.3, seed=0)
    assert len(no_validation[1]) == 0
    with pytest.raises(ValueError, match="`test_fraction` must be a number in"):
        split_captioned_images(data, validation_fraction=0.1, test_fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="must be below 1"):
        split_captioned_images(data, validation_fraction=0.5, test_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="`seed` must be an integer"):
        split_captioned_images(data, seed=0.5)
    with pytest.raises(TypeError, match="`data` must be CaptionedImages"):
        split_captioned_images([1, 2, 3])
