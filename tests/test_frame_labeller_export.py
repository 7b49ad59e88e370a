"""Tests for rnn_toolkit.tasks.frame_labeller.export: the SavedModel's signatures, edge cases
and a fresh process with plain TensorFlow."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras
from rnn_toolkit.tasks.frame_labeller.export import export_frame_labeller
from rnn_toolkit.tasks.frame_labeller.model import build_frame_labeller

KINDS = {"digit": list("0123456789"), "direction": ["up-left", "up-right", "down-left", "down-right"]}


def tiny(direction="causal"):
    keras.utils.set_random_seed(0)
    return build_frame_labeller(KINDS, direction=direction, frame_size=32, units=8, dropout=0.0, dtype_policy="float32")


def frames(batch=2, time=6, size=32, channels=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, time, size, size, channels), dtype=np.uint8)


def names(model, kind, logits):
    return np.array(KINDS[kind])[np.argmax(logits[kind].numpy(), axis=-1)]


def export_and_load(model, tmp_path_factory):
    """`(model, export path, loaded SavedModel)`."""
    path = export_frame_labeller(model, tmp_path_factory.mktemp("saved"))
    return model, path, tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_and_load(tiny(), tmp_path_factory)


def test_signatures_and_assets(exported):
    _, path, loaded = exported
    assert set(loaded.signatures) == {"serving_default", "label_clips", "video", "step"}
    assets = json.loads((path / "assets" / "labels.json").read_text())
    assert assets["label_kinds"] == ["digit", "direction"] and assets["class_names"]["direction"][0] == "up-left"


def test_serving_gives_the_models_labels(exported):
    model, _, loaded = exported
    clip = frames()
    out = loaded.signatures["serving_default"](frames=tf.constant(clip))
    logits = model(clip.astype("float32"))
    assert out["labels"].shape == (2, 6) and out["probabilities"].shape == (2, 6, 10)
    assert (out["labels"].numpy().astype(str) == names(model, "digit", logits)).all()
    assert (out["direction_labels"].numpy().astype(str) == names(model, "direction", logits)).all()
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_other_sizes_and_channel_counts(exported):
    _, _, loaded = exported
    serve = loaded.signatures["serving_default"]
    grey = frames(size=32)
    rgb = np.repeat(grey, 3, axis=-1)
    rgba = np.concatenate([rgb, np.full_like(grey, 255)], axis=-1)
    same = [serve(frames=tf.constant(x))["labels"].numpy() for x in (grey, rgb, rgba)]
    assert (same[0] == same[1]).all() and (same[0] == same[2]).all()
    assert serve(frames=tf.constant(frames(size=80)))["labels"].shape == (2, 6)
    assert serve(frames=tf.constant(frames(size=7)))["labels"].shape == (2, 6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 \\(grey\\), 2"):
        serve(frames=tf.constant(frames(channels=5)))


def test_empty_inputs_return_empty_outputs(exported):
    _, _, loaded = exported
    serve = loaded.signatures["serving_default"]
    assert serve(frames=tf.zeros([0, 6, 32, 32, 1], tf.uint8))["labels"].shape == (0, 6)
    out = serve(frames=tf.zeros([2, 0, 32, 32, 1], tf.uint8))
    assert out["labels"].shape == (2, 0) and out["probabilities"].shape == (2, 0, 10)


def test_lengths_blank_the_padding_and_keep_the_real_frames(exported):
    _, _, loaded = exported
    clip = frames()
    full = loaded.signatures["serving_default"](frames=tf.constant(clip))
    out = loaded.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant([6, 3]))
    assert (out["labels"].numpy()[0] == full["labels"].numpy()[0]).all()
    assert (out["labels"].numpy()[1, :3] == full["labels"].numpy()[1, :3]).all()
    assert (out["labels"].numpy()[1, 3:] == b"").all() and (out["probabilities"].numpy()[1, 3:] == 0).all()
    zero = loaded.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant([0, 9]))
    assert (zero["labels"].numpy()[0] == b"").all() and (zero["labels"].numpy()[1] == full["labels"].numpy()[1]).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per clip"):
        loaded.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant([6]))


def test_streaming_step_gives_the_offline_labels(exported):
    _, _, loaded = exported
    clip = frames(time=8)
    offline = loaded.signatures["serving_default"](frames=tf.constant(clip))
    step = loaded.signatures["step"]
    state = tf.zeros([2, step.structured_input_signature[1]["state"].shape[1]])
    assert state.shape[1] == 16  # LSTM 8 units: h and c
    for t in range(8):
        out = step(frame=tf.constant(clip[:, t]), state=state)
        state = out["state"]
        assert (out["labels"].numpy() == offline["labels"].numpy()[:, t]).all()
        np.testing.assert_allclose(out["probabilities"], offline["probabilities"][:, t], atol=1e-5)


def _png(frame):
    buffer = io.BytesIO()
    Image.fromarray(frame[..., 0]).save(buffer, format="PNG")
    return buffer.getvalue()


def test_video_of_encoded_frames(exported):
    _, _, loaded = exported
    clip = frames(batch=1, time=4)
    encoded = [[_png(frame) for frame in clip[0]]]
    out = loaded.signatures["video"](encoded_frames=tf.constant(encoded))
    direct = loaded.signatures["serving_default"](frames=tf.constant(clip))
    assert (out["labels"].numpy() == direct["labels"].numpy()).all() and out["error"].numpy()[0] == b""
    encoded[0][2] = b"not an image"
    bad = loaded.signatures["video"](encoded_frames=tf.constant(encoded))
    assert bad["labels"].numpy()[0, 2] == b"" and bad["error"].numpy()[0].decode().startswith("frame 2: ")


@pytest.mark.parametrize("height, width", [(32, 32), (24, 40), (50, 70)])
def test_video_frames_are_resized_as_served_frames_are(exported, height, width):
    """The same frames, as PNG bytes or as uint8 pixels, of any size and aspect: the same pixels reach the model."""
    _, _, loaded = exported
    clip = np.random.default_rng(1).integers(0, 256, (1, 3, height, width, 3), dtype=np.uint8)
    encoded = [[tf.io.encode_png(frame).numpy() for frame in clip[0]]]
    video = loaded.signatures["video"](encoded_frames=tf.constant(encoded))
    direct = loaded.signatures["serving_default"](frames=tf.constant(clip))
    np.testing.assert_allclose(video["probabilities"].numpy(), direct["probabilities"].numpy(), atol=1e-6)


def test_a_bidirectional_model_has_no_step(tmp_path):
    loaded = tf.saved_model.load(str(export_frame_labeller(tiny("bidirectional"), tmp_path)))
    assert "step" not in loaded.signatures
    assert loaded.signatures["serving_default"](frames=tf.constant(frames()))["labels"].shape == (2, 6)


@pytest.mark.slow
def test_a_long_clip_and_a_fresh_process_with_plain_tensorflow(exported, tmp_path):
    _, path, _ = exported
    script = tmp_path / "client.py"
    script.write_text(
        "import sys, numpy as np, tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "clip = np.random.default_rng(0).integers(0, 256, (1, 10000, 32, 32, 1), dtype=np.uint8)\n"
        "out = loaded.signatures['serving_default'](frames=tf.constant(clip))\n"
        "print(out['labels'].shape, 'rnn_toolkit' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(1, 10000) False" in result.stdout


# --- A model with a clip label ---------------------------------------------------------------


def tiny_with_clip(direction="causal"):
    keras.utils.set_random_seed(0)
    return build_frame_labeller(KINDS, clip_class_names={"digit": KINDS["digit"]}, direction=direction,
                                frame_size=32, units=8, dropout=0.0, dtype_policy="float32")


@pytest.fixture(scope="module")
def clip_exported(tmp_path_factory):
    return export_and_load(tiny_with_clip(), tmp_path_factory)


def test_every_signature_gives_the_clip_label(clip_exported):
    model, path, loaded = clip_exported
    assets = json.loads((path / "assets" / "labels.json").read_text())
    assert assets["clip_label_kinds"] == ["digit"] and assets["clip_class_names"]["digit"][3] == "3"
    clip = frames()
    out = loaded.signatures["serving_default"](frames=tf.constant(clip))
    logits = model(clip.astype("float32"))
    assert out["clip_digit"].shape == (2,) and out["clip_digit_probabilities"].shape == (2, 10)
    np.testing.assert_allclose(out["clip_digit_probabilities"], tf.nn.softmax(logits["clip_digit"]), atol=1e-5)
    assert (out["clip_digit"].numpy().astype(str) == np.array(KINDS["digit"])[np.argmax(logits["clip_digit"], -1)]).all()
    assert (out["labels"].numpy().astype(str) == names(model, "digit", logits)).all()  # the frames' as before
    # Lengths: the clip label of the real frames; a clip of no frames has none.
    out = loaded.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant([0, 3]))
    short = model({"frames": clip.astype("float32"), "lengths": np.array([1, 3])})
    assert out["clip_digit"].numpy()[0] == b"" and (out["clip_digit_probabilities"].numpy()[0] == 0).all()
    np.testing.assert_allclose(out["clip_digit_probabilities"][1], tf.nn.softmax(short["clip_digit"][1]), atol=1e-5)
    encoded = [[_png(frame) for frame in clip[0]]]
    video = loaded.signatures["video"](encoded_frames=tf.constant(encoded))
    assert video["clip_digit"].numpy()[0] == loaded.signatures["serving_default"](
        frames=tf.constant(clip[:1]))["clip_digit"].numpy()[0]
    empty = loaded.signatures["serving_default"](frames=tf.zeros([2, 0, 32, 32, 1], tf.uint8))
    assert empty["clip_digit"].shape == (2,) and empty["clip_digit_probabilities"].shape == (2, 10)


def test_a_models_without_clip_labels_export_has_none(exported):
    _, path, loaded = exported
    assert "clip_label_kinds" not in json.loads((path / "assets" / "labels.json").read_text())
    assert not any(key.startswith("clip_") for key in loaded.signatures["serving_default"].structured_outputs)


def test_the_streams_clip_label_is_the_offline_one_of_the_frames_so_far(clip_exported):
    _, _, loaded = clip_exported
    clip = frames(time=5)
    step = loaded.signatures["step"]
    state = tf.zeros([2, 16])
    for t in range(5):
        out = step(frame=tf.constant(clip[:, t]), state=state)
        state = out["state"]
        offline = loaded.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant([t + 1, t + 1]))
        assert (out["clip_digit"].numpy() == offline["clip_digit"].numpy()).all()
        np.testing.assert_allclose(out["clip_digit_probabilities"], offline["clip_digit_probabilities"], atol=1e-5)


def test_chunks_give_the_clip_label_of_the_whole_clip(clip_exported, tmp_path, monkeypatch):
    from rnn_toolkit.tasks.frame_labeller import export

    monkeypatch.setattr(export, "CHUNK_FRAMES", 2)  # 7 frames: 4 chunks, the last one short
    clip, lengths = frames(time=7), np.array([7, 5])
    for model in (clip_exported[0], tiny_with_clip("none")):  # the last real frame; the mean
        chunked = tf.saved_model.load(str(export_frame_labeller(model, tmp_path / model.direction)))
        out = chunked.signatures["label_clips"](frames=tf.constant(clip), lengths=tf.constant(lengths, tf.int32))
        offline = model({"frames": clip.astype("float32"), "lengths": lengths})
        np.testing.assert_allclose(out["clip_digit_probabilities"], tf.nn.softmax(offline["clip_digit"]), atol=1e-5)
    # A frame-only model's stream carries the sum and count of its frame outputs: 8 + 1.
    step = chunked.signatures["step"]
    assert step.structured_input_signature[1]["state"].shape[1] == 9
    state = tf.zeros([2, 9])
    for t in range(7):
        out = step(frame=tf.constant(clip[:, t]), state=state)
        state = out["state"]
    full = chunked.signatures["serving_default"](frames=tf.constant(clip))
    np.testing.assert_allclose(out["clip_digit_probabilities"], full["clip_digit_probabilities"], atol=1e-5)


def test_the_label_command_prints_the_clip_label(clip_exported, tmp_path):
    from cli_helpers import run_cli
    from tiny_data import write_frame_folder

    _, path, loaded = clip_exported
    folder = write_frame_folder(tmp_path / "frames", count=4)
    status, out, err = run_cli(["label", path, folder, "--csv", tmp_path / "labels.csv"])
    assert status == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 5 and lines[-1].split("\t")[:2] == [str(folder), "clip"]
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    assert rows[0] == "video,frame,digit,direction,clip_digit"
    assert {row.split(",")[-1] for row in rows[1:]} == {lines[-1].split("\t")[2]}
