"""Tests for video files (decoded with OpenCV) in the frame labeller's label tables and its
`label` verb: `rnn_toolkit.data.labelled_clips.read_video_file`, shared by both."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_toolkit.data.labelled_clips import OPENCV_REQUIREMENT, read_labelled_frames, read_video_file

from cli_helpers import assert_usage_error, run_cli

# Eight distinct colours (RGB): frame i of the test video is COLOURS[i] all over.
COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (128, 128, 128),
           (255, 255, 255))
NAMES = ("red", "green", "blue", "yellow", "cyan", "magenta", "grey", "white")


def write_video(path, colours=COLOURS, size=16):
    """A real MJPG .avi of `size`x`size` frames, one colour each."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8, (size, size))
    assert writer.isOpened()
    for rgb in colours:
        writer.write(np.full((size, size, 3), rgb[::-1], np.uint8))  # OpenCV writes BGR
    writer.release()
    return path


def assert_colours(frames, colours):
    assert frames.dtype == np.uint8 and frames.shape == (len(colours), 16, 16, 3)
    np.testing.assert_allclose(frames.mean(axis=(1, 2)), np.array(colours), atol=4)  # JPEG is lossy


def test_a_video_file_decodes_to_rgb_frames(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    assert_colours(read_video_file(video), COLOURS)
    assert_colours(read_video_file(video, max_frames=3), COLOURS[:3])


def test_a_label_table_of_video_files(tmp_path):
    write_video(tmp_path / "clip.avi")
    write_video(tmp_path / "reversed.avi", COLOURS[::-1])
    rows = ["video,frame,colour,warm"]
    rows += [f"clip.avi,{i},{NAMES[i]},{'yes' if i in (0, 3, 5) else 'no'}" for i in range(8)]
    rows += [f"reversed.avi,{i},{NAMES[7 - i]},no" for i in range(5)]  # only its first 5 frames
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    clips = read_labelled_frames(tmp_path / "labels.csv")
    assert clips.clip_ids == ("clip.avi", "reversed.avi")
    assert clips.class_names == {"colour": tuple(sorted(NAMES)), "warm": ("no", "yes")}
    assert_colours(clips.frames[0], COLOURS)
    assert_colours(clips.frames[1], COLOURS[::-1][:5])  # decoded up to the last labelled frame
    colour = clips.class_names["colour"]
    assert [colour[i] for i in clips.labels["colour"][0]] == list(NAMES)
    assert [colour[i] for i in clips.labels["colour"][1]] == list(NAMES[::-1][:5])
    assert clips.labels["warm"][0].tolist() == [1, 0, 0, 1, 0, 1, 0, 0]


def test_label_table_errors_name_the_video_and_frame(tmp_path):
    write_video(tmp_path / "clip.avi")
    table = tmp_path / "labels.csv"
    table.write_text("video,frame,colour\nclip.avi,0,red\nclip.avi,2,blue\n")
    with pytest.raises(ValueError, match="'clip.avi' frame 1 has no label row"):
        read_labelled_frames(table)
    table.write_text("video,frame,colour\nclip.avi,0,red\nclip.avi,9,blue\n" + "".join(
        f"clip.avi,{i},red\n" for i in range(1, 9)))
    with pytest.raises(ValueError, match="'clip.avi' has 8 frames; frame 8 is out of range"):
        read_labelled_frames(table)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 20)
    table.write_text("video,frame,colour\nbroken.mp4,0,red\n")
    with pytest.raises(ValueError, match="video 'broken.mp4': OpenCV cannot open .*broken.mp4' as a video"):
        read_labelled_frames(table)
    table.write_text("video,frame,colour\nmissing.mp4,0,red\n")
    with pytest.raises(FileNotFoundError, match="no folder of frames or video file for video 'missing.mp4'"):
        read_labelled_frames(table)


def test_without_opencv_the_error_says_what_to_install(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.avi")
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    with pytest.raises(ImportError, match=f"pip install {OPENCV_REQUIREMENT}"):
        read_video_file(video)
    requirements = (Path(__file__).parents[1] / "requirements.txt").read_text()
    assert OPENCV_REQUIREMENT in requirements.splitlines()  # the message names the pinned version


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder holding an untrained tiny frame labeller (what `label` loads)."""
    import keras

    from rnn_toolkit.tasks.frame_labeller.model import build_frame_labeller

    folder = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    model = build_frame_labeller({"colour": list(NAMES)}, frame_size=16, units=4, dropout=0.0, dtype_policy="float32")
    model.save(folder / "model.keras")
    (folder / "run.json").write_text(json.dumps({"task": "frame_labeller", "status": "finished"}))
    return folder


# The tiny model was compiled but never trained: its saved optimizer has no slots yet.
untrained_model = pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")


@untrained_model
def test_the_label_verb_reads_a_video_file(run_dir, tmp_path):
    video = write_video(tmp_path / "clip.avi")
    status, out, err = run_cli(["label", run_dir, video, "--csv", tmp_path / "out.csv"])
    assert status == 0, err
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [line[:2] for line in lines] == [[str(video), str(i)] for i in range(8)]
    assert all(line[2] in NAMES for line in lines)
    assert "Labelling 8 frames" in err
    csv_rows = (tmp_path / "out.csv").read_text().splitlines()
    assert csv_rows[0] == "video,frame,colour" and len(csv_rows) == 9


@untrained_model
def test_the_label_verb_names_an_undecodable_video(run_dir, tmp_path):
    (tmp_path / "broken.mkv").write_bytes(b"\x00" * 100)
    result = run_cli(["label", run_dir, tmp_path / "broken.mkv"])
    assert_usage_error(result, "VIDEO_OR_FOLDER")
    assert "OpenCV cannot open" in result[2] and "broken.mkv" in result[2]
