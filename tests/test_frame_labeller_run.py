"""Tests for rnn_toolkit.data.clip_batches and rnn_toolkit.tasks.frame_labeller.run."""

import json

import numpy as np
import pytest

from rnn_toolkit.data.clip_batches import clip_batches, resize_frames
from rnn_toolkit.data.labelled_clips import LabelledClips
from rnn_toolkit.runs import RunSetupError
from rnn_toolkit.tasks.frame_labeller.run import (
    FrameLabellerRunConfig,
    format_results,
    frame_scores,
    macro_f1,
    train_frame_labeller_run,
)

TINY = dict(train_clips=24, validation_clips=8, test_clips=8, frames=6, min_frames=4, frame_size=32,
            units=8, epochs=2, batch_size=8, patience=3)


def clips(lengths=(3, 5, 2), size=40, channels=1):
    rng = np.random.default_rng(0)
    return LabelledClips(
        frames=tuple(rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8) for n in lengths),
        labels={"action": tuple(rng.integers(0, 3, n) for n in lengths), "side": tuple(np.ones(n, int) for n in lengths)},
        class_names={"action": ("stand", "run", "jump"), "side": ("left", "right")},
        subsets={"odd": tuple(np.arange(n) % 2 == 1 for n in lengths)},
        clip_ids=tuple(f"c{i}" for i in range(len(lengths))),
    )


def test_batches_pad_frames_with_black_and_labels_with_minus_one():
    data = clips()
    batches = list(clip_batches(data, batch_size=2, frame_size=32, shuffle=False))
    inputs, labels = batches[0]
    assert inputs["frames"].dtype == "uint8" and tuple(inputs["frames"].shape) == (2, 5, 32, 32, 1)
    assert inputs["lengths"].numpy().tolist() == [3, 5]
    assert (inputs["frames"].numpy()[0, 3:] == 0).all()
    assert labels["action"].numpy()[0].tolist() == data.labels["action"][0].tolist() + [-1, -1]
    assert labels["side"].numpy()[1].tolist() == [1] * 5
    assert batches[1][0]["lengths"].numpy().tolist() == [2]


def test_shuffled_batches_are_seeded_and_hold_every_clip_once():
    data = clips(lengths=(1, 2, 3, 4, 5, 6))

    def order(seed):
        return [n for x, _ in clip_batches(data, batch_size=4, frame_size=40, seed=seed) for n in x["lengths"].numpy()]

    assert sorted(order(1)) == [1, 2, 3, 4, 5, 6] and order(1) == order(1)


def test_frames_of_another_size_are_resized_in_the_pipeline():
    frames = np.full((2, 80, 60, 3), 200, np.uint8)
    out = resize_frames(frames, 32).numpy()
    assert out.shape == (2, 32, 32, 3) and (out == 200).all()
    small = resize_frames(np.full((1, 10, 10, 1), 7, np.uint8), 32).numpy()
    assert small.shape == (1, 32, 32, 1) and (small == 7).all()


def test_bad_clips_are_refused():
    with pytest.raises(ValueError, match="channels"):
        mixed = clips()
        clip_batches(LabelledClips(mixed.frames[:1] + (np.zeros((2, 40, 40, 3), np.uint8),),
                                   {k: v[:1] + (np.zeros(2, int),) for k, v in mixed.labels.items()},
                                   mixed.class_names), batch_size=2, frame_size=32)
    with pytest.raises(ValueError, match="no frames"):
        clip_batches(clips(lengths=(2, 0)), batch_size=2, frame_size=32)
    with pytest.raises(ValueError, match="batch_size"):
        clip_batches(clips(), batch_size=0, frame_size=32)


def test_scores_per_kind_subset_and_frame_index():
    data = clips(lengths=(3, 2))
    perfect = {kind: list(values) for kind, values in data.labels.items()}
    scores = frame_scores(data, perfect)
    assert scores["action"]["accuracy"] == 1.0 and scores["action"]["macro_f1"] == 1.0
    assert scores["action"]["odd_accuracy"] == 1.0 and scores["action"]["odd_frames"] == 2
    assert scores["side"]["by_frame"] == [1.0, 1.0, 1.0]
    wrong = {"action": [(v + 1) % 3 for v in data.labels["action"]], "side": [1 - v for v in data.labels["side"]]}
    assert frame_scores(data, wrong)["side"]["accuracy"] == 0.0
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3) == pytest.approx((2 / 3 + 0.8) / 2)


@pytest.mark.slow
def test_a_tiny_run_scores_the_recurrent_model_and_the_frame_only_baseline(tmp_path):
    config = FrameLabellerRunConfig(**TINY, clip_labels="digit")  # and the digit once per clip
    lines = []
    model, info = train_frame_labeller_run(config, tmp_path / "run", verbose=0, print_fn=lines.append)
    assert info["status"] == "finished" and info["clips"] == {"train": 24, "validation": 8, "test": 8}
    assert set(info["test"]) == {"causal", "none"}
    for scores in info["test"].values():
        assert set(scores) == {"digit", "direction", "clip_digit"}
        assert 0 <= scores["digit"]["accuracy"] <= 1 and len(scores["digit"]["by_frame"]) == 6
        assert "hidden_accuracy" in scores["digit"]
        assert scores["clip_digit"]["clips"] == 8 and 0 <= scores["clip_digit"]["macro_f1"] <= 1
    assert model.clip_label_kinds == ("digit",)
    assert (tmp_path / "run" / "baseline.weights.h5").is_file()
    assert any("frame-only" in line for line in lines)  # the report table
    assert any("one label per clip" in line for line in lines)
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["cudnn_eligible"] is True and recorded["settings"]["direction"] == "causal"
    assert recorded["test"]["none"]["clip_digit"] == info["test"]["none"]["clip_digit"]


def test_bad_settings_name_the_setting(tmp_path):
    for change, setting in ((dict(direction="sideways"), "direction"), (dict(data="nowhere"), "data"),
                            (dict(min_frames=9, frames=6), "min_frames"), (dict(clip_labels="colour"), "clip_labels")):
        with pytest.raises(RunSetupError) as error:
            train_frame_labeller_run(FrameLabellerRunConfig(**{**TINY, **change}), tmp_path / "run", verbose=0,
                                     print_fn=lambda line: None)
        assert error.value.setting == setting


def test_a_clip_label_must_stay_the_same_within_every_clip(tmp_path):
    # A moving digit's direction changes when it bounces: it is no label of the whole clip.
    with pytest.raises(RunSetupError, match="direction' changes within clip") as error:
        train_frame_labeller_run(FrameLabellerRunConfig(**TINY, clip_labels="digit, direction"), tmp_path / "run",
                                 verbose=0, print_fn=lambda line: None)
    assert error.value.setting == "clip_labels"


def test_batches_give_a_clip_label_per_clip():
    data = clips()
    _, labels = next(iter(clip_batches(data, batch_size=3, frame_size=32, shuffle=False, clip_kinds=["side"])))
    assert labels["clip_side"].dtype == "int32" and labels["clip_side"].numpy().tolist() == [1, 1, 1]
    assert set(labels) == {"action", "side", "clip_side"}
    assert data.clip_labels("side").tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="'action' changes within clip 'c0'"):
        clip_batches(data, batch_size=3, frame_size=32, clip_kinds=["action"])
    with pytest.raises(ValueError, match="no label kind 'colour'"):
        data.clip_labels("colour")


def test_clip_scores_and_their_table():
    data = clips(lengths=(3, 2, 4))
    predicted = {kind: list(values) for kind, values in data.labels.items()}
    predicted["clip_side"] = np.array([1, 0, 1])
    scores = frame_scores(data, predicted)
    assert scores["clip_side"] == {"accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx((0 + 0.8) / 2),
                                   "clips": 3}
    assert scores["side"]["accuracy"] == 1.0  # the frame labels are scored as before
    table = format_results({"test": {"causal": scores}})
    assert "one label per clip" in table and "66.7%" in table.split("one label per clip")[1]
    del predicted["clip_side"]
    assert "per clip" not in format_results({"test": {"causal": frame_scores(data, predicted)}})


def test_pingus_sequences_hold_out_the_left_facing_clips():
    from rnn_toolkit.data.pingus import pingus, pingus_clips

    clips = pingus_clips()
    assert len(clips) == 43 and sum(len(c["frames"]) for c in clips) == 414
    assert len({c["action"] for c in clips}) == 23
    parts = pingus(clips=(4, 2, 30), min_frames=6, max_frames=8)
    assert len(parts["test"]) == 30 and parts["train"].class_names == parts["test"].class_names
    seen = [c["frames"] for c in clips if c["facing"] != "left"]
    for frame in np.concatenate(parts["test"].frames):  # no held-out frame is a training frame
        assert not any((frame == f).all(axis=(1, 2, 3)).any() for f in seen)
    held_out_actions = {parts["test"].class_names["action"][i] for i in np.concatenate(parts["test"].labels["action"])}
    assert held_out_actions <= {"basher", "boarder", "bridger", "bridger_walk", "climber", "drownfall", "drownwalk",
                                "exit", "miner", "rocketlauncher", "slider", "walker"}
    assert all(6 <= len(x) <= 8 for x in parts["train"].frames)


@pytest.mark.slow
def test_a_tiny_pingus_run(tmp_path):
    config = FrameLabellerRunConfig(**{**TINY, "data": "pingus"})
    _, info = train_frame_labeller_run(config, tmp_path / "run", verbose=0, print_fn=lambda line: None)
    assert set(info["test"]["causal"]) == {"action"} and len(info["class_names"]["action"]) == 23


def _write_label_table(folder, videos=5, frames=4):
    from PIL import Image

    rows = ["video,frame,action,side"]
    for v in range(videos):
        (folder / f"clip{v}").mkdir(parents=True)
        for f in range(frames):
            Image.fromarray(np.full((20, 30, 3), 40 * f, np.uint8)).save(folder / f"clip{v}" / f"{f:02d}.png")
            rows.append(f"clip{v},{f},{'run' if f % 2 else 'stand'},{'left' if v % 2 else 'right'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"


def test_a_label_table_of_frame_folders(tmp_path):
    from rnn_toolkit.data.labelled_clips import read_labelled_frames

    clips = read_labelled_frames(_write_label_table(tmp_path))
    assert len(clips) == 5 and clips.clip_ids[0] == "clip0" and clips.frames[0].shape == (4, 20, 30, 3)
    assert clips.class_names == {"action": ("run", "stand"), "side": ("left", "right")}
    assert clips.labels["action"][0].tolist() == [1, 0, 1, 0] and clips.labels["side"][1].tolist() == [0] * 4
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(table.read_text().splitlines()[:-1]) + "\n")  # the last frame unlabelled
    with pytest.raises(ValueError, match="clip4' frame 3 has no label row"):
        read_labelled_frames(table)
    table.write_text("video,label\nclip0,run\n")
    with pytest.raises(ValueError, match="video,frame"):
        read_labelled_frames(table)


@pytest.mark.slow
def test_a_run_on_a_label_table_splits_by_video(tmp_path):
    table = _write_label_table(tmp_path / "data", videos=8)
    config = FrameLabellerRunConfig(**{**TINY, "data": str(table)})
    _, info = train_frame_labeller_run(config, tmp_path / "run", verbose=0, print_fn=lambda line: None)
    assert sum(info["clips"].values()) == 8 and info["clips"]["test"] >= 1
    assert set(info["test"]["causal"]) == {"action", "side"}
