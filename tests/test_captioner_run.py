"""The captioner's run: feature cache, retrieval baseline, split and vocabulary, early stopping on
CIDEr-D, scores that `evaluate` reproduces."""

import dataclasses
import json

import numpy as np
import pytest

from rnn_toolkit.data.captioned_images import CaptionedImages
from rnn_toolkit.runs import RunSetupError
from rnn_toolkit.tasks.captioner import run as captioner_run
from rnn_toolkit.tasks.captioner.run import (
    CaptionerRunConfig,
    cached_features,
    feature_cache_key,
    load_data,
    retrieval_captions,
    sample_images,
    split_data,
    train_captioner_run,
)

from cli_helpers import run_cli
from tiny_data import write_caption_folder


def tiny_config(folder, **changes):
    settings = dict(
        data=str(write_caption_folder(folder / "images")), image_encoder="small_cnn", image_size=32,
        units=8, embedding_dim=4, batch_size=8, min_count=1, precision="float32", sample_every=0,
        cross_style="none", epochs=2,
    )
    settings.update(changes)
    return CaptionerRunConfig(**settings)


def test_retrieval_returns_the_nearest_training_images_first_caption():
    train = CaptionedImages(["a", "b", "c"], [["red one", "crimson"], ["green one"], ["blue one"]])
    features = np.zeros((3, 2, 2, 4), np.float32)
    for i in range(3):
        features[i, ..., i] = 1.0
    queries = np.zeros((2, 2, 2, 4), np.float32)
    queries[0, ..., 2] = 1.0
    queries[1, ..., 0] = 2.0  # the scale does not matter: cosine similarity
    assert retrieval_captions(features, train, queries) == ["blue one", "red one"]
    assert retrieval_captions(features, train, queries[:0]) == []


def test_sample_images_spread_over_the_share():
    data = CaptionedImages([f"{i}.png" for i in range(10)], [["x"]] * 10)
    assert sample_images(data) == ["0.png", "4.png", "9.png"]  # evenly spaced, ends included
    assert sample_images(data.subset([3])) == ["3.png"]


def test_split_is_by_group_and_the_vocabulary_from_training_captions(tmp_path):
    config = tiny_config(tmp_path)
    split = split_data(load_data(config), config)
    assert not set(split.train.groups) & set(split.test.groups)
    assert not set(split.train.groups) & set(split.validation.groups)
    train_words = {w for c in split.train.captions for caption in c for w in caption.split()}
    assert set(split.vocabulary.words) <= train_words


def test_bad_data_is_a_setup_error_naming_the_option(tmp_path):
    with pytest.raises(RunSetupError) as error:
        load_data(tiny_config(tmp_path, data=str(tmp_path / "missing")))
    assert error.value.setting == "data"
    (tmp_path / "few").mkdir()
    with pytest.raises(RunSetupError, match="only 5 captioned images"):
        load_data(tiny_config(tmp_path, data=str(write_caption_folder(tmp_path / "few", count=5))))


def test_frozen_features_are_computed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TOOLKIT_CACHE", str(tmp_path / "cache"))
    config = tiny_config(tmp_path)
    split = split_data(load_data(config), config)
    model = captioner_run.build_model(split, config)
    first = cached_features(model, split.train, config, print_fn=lambda *_: None)
    assert first.shape == (len(split.train),) + model.grid_shape and first.dtype == np.float16
    calls = []
    monkeypatch.setattr(model, "encode_images", lambda *a, **k: calls.append(1))
    np.testing.assert_array_equal(cached_features(model, split.train, config, print_fn=print), first)
    assert not calls
    # Another image size, encoder or image list is another file.
    other = dataclasses.replace(config, image_size=48)
    assert feature_cache_key(split.train, other) != feature_cache_key(split.train, config)
    assert feature_cache_key(split.validation, config) != feature_cache_key(split.train, config)
    # An augmented view is its own file, computed from augmented pixels, and as fixed as view 0.
    assert feature_cache_key(split.train, config, view=1) not in {
        feature_cache_key(split.train, config), feature_cache_key(split.train, config, view=2)
    }
    monkeypatch.undo()
    monkeypatch.setenv("RNN_TOOLKIT_CACHE", str(tmp_path / "cache"))
    view = cached_features(model, split.train, config, print_fn=lambda *_: None, view=1)
    assert view.shape == first.shape and not np.array_equal(view, first)
    again = cached_features(model, split.train, config, print_fn=lambda *_: None, view=1)
    np.testing.assert_array_equal(again, view)
    assert list(captioner_run.training_views(config)) == list(range(config.feature_views))
    assert list(captioner_run.training_views(dataclasses.replace(config, augment=False))) == [0]


@pytest.mark.slow
def test_a_frozen_encoder_run_early_stops_on_cider_and_evaluate_reproduces_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TOOLKIT_CACHE", str(tmp_path / "cache"))
    # A randomly initialised EfficientNet-Lite0 kept frozen: the features path without a
    # download (the pretrained weights are tested in test_image_encoders).
    monkeypatch.setattr(captioner_run, "encoder_trains", lambda config: False)
    config = tiny_config(tmp_path, epochs=3, patience=9, feature_views=2)
    run_dir = tmp_path / "run"
    model, info = train_captioner_run(config, run_dir, print_fn=lambda *_: None, verbose=0)
    history = json.loads((run_dir / "history.json").read_text())
    assert "val_cider_d" in history and "val_bleu_4" in history and "val_images" not in history
    assert info["best_epoch"] == int(np.argmax(history["val_cider_d"])) + 1
    assert info["best_val_cider_d"] == pytest.approx(max(history["val_cider_d"]))
    assert set(info["test"]) == {"greedy", "beam3", "retrieval"}
    assert (run_dir / "captions.tsv").read_text().count("\n") == info["split"]["test"] + 1

    status, out, err = run_cli(["evaluate", run_dir])
    assert status == 0, err
    greedy = info["test"]["greedy"]
    assert f"{greedy['bleu_4']:.1f}" in out and f"{greedy['cider_d']:.1f}" in out


def test_a_run_on_images_without_files_prints_its_samples(tmp_path, monkeypatch):
    # Two-object scenes are PNG bytes, not files: training samples them, scores them.
    from rnn_toolkit.data.scenes import compose_scenes
    from test_scenes import COLOURS, _square

    monkeypatch.setenv("RNN_TOOLKIT_CACHE", str(tmp_path / "cache"))
    objects = CaptionedImages([_square(n) for n in COLOURS], [[f"{n} square"] for n in COLOURS], groups=list(COLOURS))
    scenes = compose_scenes(objects, count=40, seed=0, canvas=32)
    monkeypatch.setattr(captioner_run, "load_captioned_images", lambda spec: scenes)
    config = tiny_config(tmp_path, data="scenes", epochs=1, sample_every=1)
    printed = []
    _, info = train_captioner_run(config, tmp_path / "run", print_fn=printed.append, verbose=0)
    assert info["status"] == "finished" and info["test"]["greedy"]["images"] == info["split"]["test"]
    headings = [line for line in printed if "--- sample after epoch 1" in line]
    assert headings and all("-byte image>" in line for line in headings)
