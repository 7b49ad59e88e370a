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


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny()
    path = export_frame_labeller(model, tmp_path_factory.mktemp("saved"))
    return model, path, tf.saved_model.load(str(path))


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
