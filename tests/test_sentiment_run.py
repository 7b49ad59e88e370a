import numpy as np
import pytest

from rnn_toolkit.data import LabelledTexts, document_sentences
from rnn_toolkit.runs.folder import RunSetupError
from rnn_toolkit.tasks.sentiment.run import (
    SentimentRunConfig,
    format_results_table,
    pretraining_data,
    split_data,
)


def labelled(texts, labels, names=("negative", "positive"), source="mine"):
    return LabelledTexts(texts=list(texts), labels=np.asarray(labels), class_names=names, source=source)


def write_csv(path, rows):
    path.write_text("text,label\n" + "\n".join(f"{text},{label}" for text, label in rows) + "\n")
    return str(path)


def test_document_sentences_inherit_the_document_label():
    documents = labelled(
        ['A fine film. It moves! Does it drag? no. "Yes, it does." The end credits roll on.',
         "Dull from start to finish , sadly ."],
        [1, 0],
    )
    sentences = document_sentences(documents, min_words=3)
    assert sentences.texts == [
        "A fine film.", "Does it drag?", '"Yes, it does."', "The end credits roll on.",
        "Dull from start to finish , sadly .",
    ]
    assert sentences.labels.tolist() == [1, 1, 1, 1, 0]
    assert sentences.source == "mine:sentences"
    assert sentences.class_names == documents.class_names


def test_auto_pretraining_only_for_binary_negative_positive_classes():
    binary = labelled(["a"] * 20, [0, 1] * 10)
    other = labelled(["a"] * 20, [0, 1] * 10, names=("neg", "pos"))
    assert pretraining_data(SentimentRunConfig(pretrain="none"), binary) is None
    assert pretraining_data(SentimentRunConfig(pretrain="auto"), other) is None
    assert pretraining_data(SentimentRunConfig(pretrain="auto", head="regression"), binary) is None
    pang_lee = labelled(["a"] * 20, [0, 1] * 10, source="pang_lee")
    assert pretraining_data(SentimentRunConfig(data="pang_lee", pretrain="auto"), pang_lee) is None


def test_explicit_pretraining_data_must_match_the_classes(tmp_path):
    extra = write_csv(tmp_path / "extra.csv", [(f"text {i}", "good" if i % 2 else "bad") for i in range(10)])
    data = labelled(["a"] * 20, [0, 1] * 10)
    with pytest.raises(RunSetupError, match="classes") as error:
        pretraining_data(SentimentRunConfig(pretrain=extra), data)
    assert error.value.setting == "pretrain"
    same = labelled(["a"] * 20, [0, 1] * 10, names=("bad", "good"))
    loaded = pretraining_data(SentimentRunConfig(pretrain=extra), same)
    assert len(loaded) == 10  # short texts stay whole


def test_pretraining_refuses_the_task_data_and_the_regression_head(tmp_path):
    rows = [(f"text {i}", "positive" if i % 2 else "negative") for i in range(20)]
    path = write_csv(tmp_path / "data.csv", rows)
    data = labelled([t for t, _ in rows], [i % 2 for i in range(20)], source=path)
    with pytest.raises(RunSetupError, match="held-out"):
        pretraining_data(SentimentRunConfig(data=path, pretrain=path), data)
    with pytest.raises(RunSetupError, match="head"):
        pretraining_data(SentimentRunConfig(pretrain=path, head="regression"), data)


def test_split_keeps_heldout_apart_and_the_vocabulary_from_training_texts():
    texts = [f"common word{i}" for i in range(100)]
    data = labelled(texts, [i % 2 for i in range(100)])
    extra = labelled(["pretraining only vocabulary"] * 3, [0, 1, 0])
    config = SentimentRunConfig()
    plain, with_extra = split_data(data, config), split_data(data, config, pretraining=extra)
    # Pretraining changes the vocabulary, never the split.
    assert plain.heldout.texts == with_extra.heldout.texts
    assert plain.train.texts == with_extra.train.texts
    assert set(plain.train.texts).isdisjoint(plain.heldout.texts)
    assert set(plain.validation.texts).isdisjoint(plain.heldout.texts)
    heldout_only = {text.split()[1] for text in plain.heldout.texts}
    assert heldout_only.isdisjoint(plain.vocabulary.words)
    assert "vocabulary" in with_extra.vocabulary.words and "vocabulary" not in plain.vocabulary.words
    assert with_extra.pretraining is extra


def test_results_table_names_both_models_and_the_pretraining():
    results = {
        "recurrent": {"accuracy": 0.8051, "correct": 851, "examples": 1057, "train_seconds": 95.2},
        "bag_of_words": {"accuracy": 0.7814, "correct": 826, "examples": 1057},
    }
    extra = labelled(["x"] * 4, [0, 1, 0, 1], source="pang_lee:sentences")
    table = format_results_table(results, SentimentRunConfig(), pretraining=extra)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["model", "held-out", "accuracy"]
    assert "biGRU 1x128, final state" in lines[2] and "80.51%" in lines[2] and "95 s" in lines[2]
    assert "bag-of-words logistic regression" in lines[3] and lines[3].rstrip().endswith("-")
    assert "'pang_lee:sentences'" in lines[4]


def test_pretraining_texts_that_occur_in_heldout_or_validation_are_dropped():
    texts = [f"sentence number {i} here" for i in range(100)]
    data = labelled(texts, [i % 2 for i in range(100)])
    config = SentimentRunConfig()
    plain = split_data(data, config)
    overlapping = [plain.heldout.texts[0].upper() + "!", plain.validation.texts[0], plain.train.texts[0]]
    extra = labelled(overlapping + ["something else entirely"], [0, 1, 0, 1])
    split = split_data(data, config, pretraining=extra)
    # Only the training sentence and the new one survive: case and punctuation don't hide a copy.
    assert split.pretraining.texts == [plain.train.texts[0], "something else entirely"]
    assert split.pretraining.labels.tolist() == [0, 1]
