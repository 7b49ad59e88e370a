"""The captioner's SavedModel: image bytes in, captions out, in a fresh TensorFlow-only process;
bad rows get an error without failing their batch."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import rnn_toolkit
from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.export import export_captioner

SIZE = 32
CLIENT = Path(rnn_toolkit.__file__).parent / "tasks" / "captioner" / "client.py"


def encoded(array, format="PNG", mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=format)
    return buffer.getvalue()


def photo(height, width, channels=3, seed=0):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    vocabulary = WordVocabulary.from_texts(
        ["a red ball", "a blue cat", "the red cat"], min_count=1, sequence_markers=True
    )
    return rnn_toolkit.build_captioner(
        vocabulary, image_encoder="small_cnn", image_size=SIZE, units=8, embedding_dim=4,
        max_output_length=6, dtype_policy="float32",
    )


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_captioner(model, tmp_path_factory.mktemp("saved"), beam_width=2)


def run_fresh(script, *args):
    """Runs `script` in a new Python process that imports TensorFlow and nothing of ours."""
    code = "import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n" + textwrap.dedent(script)
    code += "\nassert 'rnn_toolkit' not in sys.modules\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_signatures_and_the_vocabulary_asset(exported):
    loaded = tf.saved_model.load(str(exported))
    assert set(loaded.signatures) == {"serving_default", "caption", "attention"}
    assert (exported / "assets" / "vocabulary.json").is_file()


def test_a_fresh_process_captions_bytes_as_the_model_does(model, exported, tmp_path):
    images = [
        encoded(photo(40, 60)),  # RGB PNG
        encoded(photo(50, 30, 4), mode="RGBA"),
        encoded(photo(20, 20, 1), mode="L"),
        encoded(photo(64, 48), format="JPEG"),
        encoded(photo(30, 30), format="GIF"),
        encoded(photo(30, 30), format="BMP"),
    ]
    for index, image in enumerate(images):
        (tmp_path / f"{index}.bin").write_bytes(image)
    result = run_fresh(
        """
        import json, pathlib, tensorflow as tf
        folder = pathlib.Path(sys.argv[1])
        loaded = tf.saved_model.load(sys.argv[2])
        images = tf.constant([(folder / f"{i}.bin").read_bytes() for i in range(6)])
        default = loaded.signatures["serving_default"](image=images)
        greedy = loaded.signatures["caption"](image=images, beam_width=tf.constant(1), max_length=tf.constant(0))
        attention = loaded.signatures["attention"](image=images[:2])
        print(json.dumps({
            "default": [c.decode() for c in default["caption"].numpy()],
            "greedy": [c.decode() for c in greedy["caption"].numpy()],
            "errors": [e.decode() for e in default["error"].numpy()],
            "words": [[w.decode() for w in row] for row in attention["words"].numpy()],
            "weights_shape": list(attention["weights"].shape),
            "weight_sums": attention["weights"].numpy().sum(axis=(2, 3)).tolist(),
        }))
        """,
        tmp_path, exported,
    )
    assert result["errors"] == [""] * 6
    assert result["default"] == model.caption(images, beam_width=2)
    assert result["greedy"] == model.caption(images, beam_width=1)
    # One map per word and one for [END]; each sums to 1, padding to 0.
    for words, sums in zip(result["words"], result["weight_sums"]):
        count = words.index("[END]") + 1
        assert words[count:] == [""] * (len(words) - count)
        np.testing.assert_allclose(sums[:count], 1.0, atol=1e-5)
        np.testing.assert_allclose(sums[count:], 0.0, atol=1e-6)
    assert result["weights_shape"][2:] == list(model.grid_shape[:2])


def test_bad_rows_get_an_error_and_the_good_rows_their_caption(model, exported):
    good = encoded(photo(40, 40))
    png = encoded(photo(40, 40, 4), mode="RGBA")
    batch = [good, b"", b"not an image at all", png[: len(png) // 2], encoded(photo(1, 1)), good]
    loaded = tf.saved_model.load(str(exported))
    out = loaded.signatures["serving_default"](image=tf.constant(batch))
    captions = [c.decode() for c in out["caption"].numpy()]
    errors = [e.decode() for e in out["error"].numpy()]
    assert errors[0] == errors[4] == errors[5] == ""
    assert all(errors[i] for i in (1, 2, 3)) and all(captions[i] == "" for i in (1, 2, 3))
    # (Not compared with `model.caption(good)`: an untrained model's near-tied logits may
    # round differently in a batch of another size.)
    assert captions[0] == captions[5]
    attention = loaded.signatures["attention"](image=tf.constant(batch[:3]))
    assert attention["words"].numpy()[1].tolist() == [b""] * attention["words"].shape[1]
    assert float(tf.reduce_sum(attention["weights"][1])) == 0.0


def test_a_batch_of_zero_and_a_huge_image(exported):
    loaded = tf.saved_model.load(str(exported))
    out = loaded.signatures["serving_default"](image=tf.constant([], tf.string))
    assert out["caption"].shape == (0,) and out["error"].shape == (0,)
    big = encoded(np.full((4000, 4000, 3), 200, np.uint8), format="JPEG")
    out = loaded.signatures["caption"](image=tf.constant([big]), beam_width=tf.constant(40), max_length=tf.constant(3))
    assert out["error"].numpy().tolist() == [b""]  # the beam is clamped, the image resized
    assert len(out["caption"].numpy()[0].split()) <= 3


def test_export_refuses_bad_arguments(model, tmp_path):
    with pytest.raises(TypeError, match="Captioner"):
        export_captioner(object(), tmp_path)
    with pytest.raises(ValueError, match="beam_width"):
        export_captioner(model, tmp_path, beam_width=0)


def test_the_plain_tensorflow_client(exported, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded(photo(30, 30)))
    (folder / "b.jpg").write_bytes(b"truncated")
    result = subprocess.run(
        [sys.executable, str(CLIENT), str(exported.parent), str(folder), "--json", "--beam-width", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(row["image"]).name for row in rows] == ["a.png", "b.jpg"]
    assert rows[0]["error"] == "" and rows[1]["error"] and rows[1]["caption"] == ""
    assert "1 unreadable" in result.stderr and "rnn_toolkit was not imported" in result.stderr
    missing = subprocess.run(
        [sys.executable, str(CLIENT), str(exported.parent), str(tmp_path / "nope.png")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert missing.returncode == 2 and "no such image file or folder" in missing.stderr
