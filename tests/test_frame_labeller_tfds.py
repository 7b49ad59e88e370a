"""Tests for rnn_toolkit.data.tfds_clips and the frame labeller's `--data tfds:NAME`: the real
`moving_mnist` builder with TFDS' mock data, and a tiny test-only builder with per-frame
labels prepared in a temporary folder (no network)."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from rnn_toolkit.data.tfds_clips import tfds_clip_splits, tfds_labelled_clips
from rnn_toolkit.runs import RunSetupError
from rnn_toolkit.tasks.frame_labeller.run import FrameLabellerRunConfig, load_clips

ACTIONS = ("stand", "walk", "jump")


class TinyLabelledVideos(tfds.core.GeneratorBasedBuilder):
    """Clips of 3-5 RGB frames of 8x8 whose brightness is 40 x the frame's action, with an
    action per frame, a step count per frame, a clip-level scene, and a second video."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="three_splits", description="train, validation and test"),
        tfds.core.BuilderConfig(name="train_test", description="train and test only"),
        tfds.core.BuilderConfig(name="test_only", description="one split, as moving_mnist"),
    ]

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Video(shape=(None, 8, 8, 3)),
                "action": tfds.features.Sequence(tfds.features.ClassLabel(names=ACTIONS)),
                "steps": tfds.features.Tensor(shape=(None,), dtype=np.int64),
                "scene": tfds.features.ClassLabel(names=("indoor", "outdoor")),
                "extra": {"thumbnails": tfds.features.Video(shape=(None, 4, 4, 1))},
            })
        )

    def _split_generators(self, dl_manager):
        counts = {"train": 6, "validation": 2, "test": 3}
        if self.builder_config.name == "train_test":
            del counts["validation"]
        if self.builder_config.name == "test_only":
            counts = {"test": 7}
        return {split: self._generate_examples(split, count) for split, count in counts.items()}

    def _generate_examples(self, split, count):
        for index in range(count):
            length = 3 + index % 3
            actions = (np.arange(length) + index) % len(ACTIONS)
            yield f"{split}{index}", {
                "video": np.repeat(40 * actions, 8 * 8 * 3).reshape(length, 8, 8, 3).astype(np.uint8),
                "action": actions,
                "steps": np.arange(length) % 2,
                "scene": index % 2,
                "extra": {"thumbnails": np.zeros((length, 4, 4, 1), np.uint8)},
            }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tensorflow_datasets")
    for config in ("three_splits", "train_test", "test_only"):
        TinyLabelledVideos(config=config, data_dir=str(folder)).download_and_prepare()
    return folder


def config(**changes):
    return FrameLabellerRunConfig(**{"train_clips": 100, "validation_clips": 100, "test_clips": 100, **changes})


# --- moving_mnist: a video and no label ----------------------------------------------------


def test_moving_mnist_is_refused_naming_its_features_and_what_is_needed():
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError) as error:
            tfds_labelled_clips("moving_mnist", split="test")
        with pytest.raises(RunSetupError) as run_error:  # the run's message is the same
            load_clips(config(data="tfds:moving_mnist"))
    message = str(error.value)
    assert "image_sequence (Video uint8 [20, 64, 64, 1])" in message
    assert "no label" in message and "a label for every frame" in message and "moving_digits" in message
    assert run_error.value.setting == "data" and "image_sequence" in str(run_error.value)


def test_naming_a_label_moving_mnist_lacks_is_refused():
    with tfds.testing.mock_data(num_examples=1):
        with pytest.raises(ValueError, match="names 'label', which is no label"):
            tfds_labelled_clips("moving_mnist", split="test", label_features=["label"])


# --- A dataset with per-frame labels -------------------------------------------------------


def test_per_frame_class_labels_are_found_by_themselves(data_dir):
    clips = tfds_labelled_clips("tiny_labelled_videos/three_splits", split="train", data_dir=data_dir,
                                video_feature="video")
    assert len(clips) == 6 and clips.class_names == {"action": ACTIONS}
    for frames, actions in zip(clips.frames, clips.labels["action"]):
        assert frames.dtype == np.uint8 and frames.shape[1:] == (8, 8, 3)
        assert (frames[:, 0, 0, 0] == 40 * actions).all()  # each frame with its own label
    assert sorted(len(f) for f in clips.frames) == [3, 3, 4, 4, 5, 5]
    assert clips.clip_ids[0] == "train:0"


def test_two_videos_need_video_feature(data_dir):
    with pytest.raises(ValueError, match=r"several videos \(video, extra/thumbnails\); name the one to label with `video_feature`"):
        tfds_labelled_clips("tiny_labelled_videos/three_splits", data_dir=data_dir)


def test_named_integer_and_clip_level_labels(data_dir):
    with pytest.warns(UserWarning, match="scene once per clip.*repeated for every frame"):
        parts = tfds_clip_splits("tiny_labelled_videos/three_splits", {"train": 4, "test": None}, data_dir=data_dir,
                                 video_feature="video", label_features=["steps", "scene"])
    train, test = parts["train"], parts["test"]
    assert len(train) == 4 and len(test) == 3
    assert train.class_names == test.class_names == {"steps": ("0", "1"), "scene": ("indoor", "outdoor")}
    for clips in (train, test):
        for frames, steps, scene in zip(clips.frames, clips.labels["steps"], clips.labels["scene"]):
            assert steps.tolist() == (np.arange(len(frames)) % 2).tolist()
            assert len(scene) == len(frames) and len(set(scene.tolist())) == 1  # a clip's scene at every frame
    assert sorted(scene[0] for scene in test.labels["scene"]) == [0, 0, 1]


def test_a_run_uses_the_datasets_own_splits_at_most_the_clip_counts(data_dir, monkeypatch):
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(data_dir))  # TFDS' default folder
    parts = load_clips(config(data="tfds:tiny_labelled_videos/three_splits", video_feature="video", train_clips=5))
    assert {part: len(clips) for part, clips in parts.items()} == {"train": 5, "validation": 2, "test": 3}
    assert parts["validation"].clip_ids == ("validation:0", "validation:1")
    assert parts["train"].class_names == parts["test"].class_names == {"action": ACTIONS}


def test_a_missing_validation_split_is_drawn_from_train(data_dir, monkeypatch):
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(data_dir))
    run = config(data="tfds:tiny_labelled_videos/train_test", video_feature="video", train_clips=4, validation_clips=2)
    parts = load_clips(run)
    assert {part: len(clips) for part, clips in parts.items()} == {"train": 4, "validation": 2, "test": 3}
    assert set(parts["train"].clip_ids) | set(parts["validation"].clip_ids) == {f"train:{i}" for i in range(6)}
    assert load_clips(run)["validation"].clip_ids == parts["validation"].clip_ids  # seeded
    other = load_clips(dataclasses.replace(run, split_seed=1))["validation"].clip_ids
    assert set(other) != set(parts["validation"].clip_ids)
    # A train split shorter than asked for: the validation share is --validation-fraction of it.
    short = load_clips(dataclasses.replace(run, train_clips=100, validation_fraction=0.34))
    assert {part: len(clips) for part, clips in short.items()} == {"train": 4, "validation": 2, "test": 3}


def test_a_dataset_without_a_train_split_is_pooled_and_split(data_dir, monkeypatch):
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(data_dir))
    run = config(data="tfds:tiny_labelled_videos/test_only", video_feature="video", train_clips=3,
                 validation_clips=1, test_clips=2, validation_fraction=0.2, heldout_fraction=0.4)
    parts = load_clips(run)  # at most 3 + 1 + 2 of the 7 clips, split 20% / 40% by split_clips
    assert {part: len(clips) for part, clips in parts.items()} == {"train": 3, "validation": 1, "test": 2}
    ids = [clip_id for clips in parts.values() for clip_id in clips.clip_ids]
    assert sorted(ids) == [f"all:{i}" for i in range(6)]


@pytest.mark.slow
def test_a_tiny_run_on_a_tfds_dataset(data_dir, tmp_path, monkeypatch):
    from rnn_toolkit.tasks.frame_labeller.run import train_frame_labeller_run

    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(data_dir))
    run = config(data="tfds:tiny_labelled_videos/three_splits", video_feature="video", frame_size=16, units=4,
                 epochs=1, batch_size=4, baseline=False, precision="float32")
    _, info = train_frame_labeller_run(run, tmp_path / "run", verbose=0, print_fn=lambda line: None)
    assert info["status"] == "finished" and info["clips"] == {"train": 6, "validation": 2, "test": 3}
    assert info["class_names"] == {"action": list(ACTIONS)} and 0 <= info["test"]["causal"]["action"]["accuracy"] <= 1


def test_a_split_in_the_name_and_an_unprepared_dataset_are_refused(data_dir, tmp_path, monkeypatch):
    with pytest.raises(RunSetupError, match="no split"):
        load_clips(config(data="tfds:tiny_labelled_videos/three_splits:train"))
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))  # an empty folder: nothing prepared
    with pytest.raises(RunSetupError, match="not prepared.*set TFDS_DATA_DIR"):
        load_clips(config(data="tfds:tiny_labelled_videos/three_splits"))
