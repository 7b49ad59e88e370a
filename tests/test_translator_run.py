"""Tests for rnn_toolkit.tasks.translator.run: data split, vocabularies, a tiny real run (resuming: tests/test_tasks.py)."""

import collections
import csv
import dataclasses
import json

import pytest

from rnn_toolkit.data import WordVocabulary
from rnn_toolkit.data.parallel_text import ParallelTexts
from rnn_toolkit.runs.folder import RunSetupError
from rnn_toolkit.tasks.translator.run import (
    TRANSLATIONS_FILE,
    TranslatorRunConfig,
    load_data,
    split_data,
    token_counts,
    train_translator_run,
)

# What the brief calls a tiny run: seconds of training on real Bible verses.
TINY_RUN = dict(max_pairs=600, epochs=1, units=16, embedding_dim=16, ood_sentences=20)


def synthetic_pairs(count=200):
    """Pair i: a word only it has ("src7" / "tgt7"), shared words, and i % 9 extra words."""
    sources = [f"the house src{i} " + "very " * (i % 9) for i in range(count)]
    targets = [f"la casa tgt{i} " + "muy " * (i % 9) for i in range(count)]
    return ParallelTexts(sources, targets, "en", "es", "synthetic")


def _pairs(texts):
    return set(zip(texts.sources, texts.targets))


# --- Split and vocabularies (fast) ----------------------------------------------------------


def test_split_is_disjoint_and_vocabularies_come_from_training_pairs():
    data = synthetic_pairs()
    config = TranslatorRunConfig(min_count=1, heldout_fraction=0.1, validation_fraction=0.1)
    split = split_data(data, config)
    assert len(split.heldout) == 20 and len(split.validation) == 18 and len(split.train) == 162
    assert _pairs(split.train) | _pairs(split.validation) | _pairs(split.heldout) == _pairs(data)
    assert _pairs(split.train).isdisjoint(_pairs(split.heldout))
    assert _pairs(split.validation).isdisjoint(_pairs(split.heldout))
    assert _pairs(split.train).isdisjoint(_pairs(split.validation))
    train_words = {w for s in split.train.sources for w in s.split()}
    assert set(split.source_vocabulary.words) == train_words
    assert set(split.target_vocabulary.words) == {w for s in split.train.targets for w in s.split()}
    # Words of held-out (and validation) pairs only are unknown to the model.
    heldout_only = {s.split()[2] for s in split.heldout.sources}
    assert heldout_only.isdisjoint(split.source_vocabulary.words)
    assert split.target_vocabulary.sequence_markers and not split.source_vocabulary.sequence_markers
    # Training pairs are never cut; serving reads sources up to 4x the training limit.
    assert split.target_vocabulary.max_length >= config.max_target_length
    assert split.source_vocabulary.max_length == 4 * config.max_source_length


def test_split_is_deterministic_for_a_seed():
    data = synthetic_pairs()
    config = TranslatorRunConfig(min_count=1)
    first, again = split_data(data, config), split_data(data, config)
    assert first.heldout == again.heldout and first.validation == again.validation
    assert first.train == again.train
    assert first.source_vocabulary.words == again.source_vocabulary.words
    other = split_data(data, dataclasses.replace(config, split_seed=1))
    assert other.heldout != first.heldout


def test_length_filter_drops_long_training_pairs_only():
    data = synthetic_pairs()
    config = TranslatorRunConfig(min_count=1, max_source_length=6, max_target_length=8)
    split = split_data(data, config)
    for part in (split.train, split.validation):
        assert max(token_counts(list(part.sources))) <= 6
        assert max(token_counts(list(part.targets))) <= 8
    # Held-out pairs are all kept, long ones included.
    assert max(token_counts(list(split.heldout.sources))) > 6
    kept = len(split.train) + len(split.validation) + len(split.heldout)
    assert split.dropped_long == len(data) - kept > 0
    # Word ids of the training pairs, encoded once.
    source_ids, target_ids = split.ids("train")
    assert int(source_ids.nrows()) == int(target_ids.nrows()) == len(split.train)
    assert split.ids("train")[0] is source_ids


def test_too_strict_length_limits_are_a_setup_error():
    with pytest.raises(RunSetupError, match="raise the limits") as error:
        split_data(synthetic_pairs(), TranslatorRunConfig(min_count=1, max_source_length=2))
    assert error.value.setting == "max_source_length"


def test_load_data_samples_max_pairs_and_refuses_tiny_data(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"go {i}.\tve {i}.\n" for i in range(30)), encoding="utf-8")
    sample = load_data(TranslatorRunConfig(data=str(path), max_pairs=25))
    assert len(sample) == 25 and sample == load_data(TranslatorRunConfig(data=str(path), max_pairs=25))
    # A sample keeps the file's order.
    numbers = [int(s.split()[1].rstrip(".")) for s in sample.sources]
    assert numbers == sorted(numbers)
    with pytest.raises(RunSetupError, match="at least 20") as error:
        load_data(TranslatorRunConfig(data=str(path), max_pairs=19))
    assert error.value.setting == "data"
    with pytest.raises(RunSetupError) as error:
        load_data(TranslatorRunConfig(data=str(tmp_path / "missing.tsv")))
    assert error.value.setting == "data"


def test_bible_split_of_a_tiny_run():
    config = TranslatorRunConfig(**TINY_RUN)
    data = load_data(config)
    assert len(data) == 600 and (data.source_language, data.target_language) == ("en", "es")
    assert len(_pairs(data)) == 600  # no duplicate verse pair in this sample
    split = split_data(data, config)
    assert _pairs(split.train).isdisjoint(_pairs(split.heldout))
    assert max(token_counts(list(split.train.sources))) <= config.max_source_length
    assert max(token_counts(list(split.train.targets))) <= config.max_target_length
    # Every vocabulary word occurs at least min_count times in the training pairs.
    counts = collections.Counter(
        w.decode() for row in WordVocabulary.tokenize(list(split.train.sources)).to_list() for w in row
    )
    assert min(counts[w] for w in split.source_vocabulary.words) >= config.min_count


# --- A real run (slow) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("translator_run")
    config = TranslatorRunConfig(**TINY_RUN)
    lines = []
    model, info = train_translator_run(config, run_dir, verbose=0, print_fn=lines.append)
    return config, run_dir, model, info, lines


@pytest.mark.slow
def test_a_tiny_run_records_its_split_and_scores(finished_run):
    config, run_dir, model, info, lines = finished_run
    assert json.loads((run_dir / "run.json").read_text()) == json.loads(json.dumps(info))
    assert info["task"] == "translator" and info["status"] == "finished"
    assert info["settings"] == dataclasses.asdict(config)
    split = split_data(load_data(config), config)
    assert info["split"] == {
        "train": len(split.train), "validation": len(split.validation),
        "heldout": len(split.heldout), "dropped_long": split.dropped_long,
    }
    assert info["vocabulary_sizes"] == {
        "source": split.source_vocabulary.size, "target": split.target_vocabulary.size,
    }
    assert model.target_vocabulary.tokens == split.target_vocabulary.tokens
    # attention_map re-reads whole translations through the target vocabulary.
    assert model.target_vocabulary.max_length >= model.max_output_length
    assert info["epochs_completed"] == 1 and info["best_epoch"] == 1
    for results in (info["heldout"], info["out_of_domain"]):
        assert sorted(k for k in results if k in ("greedy", "beam4")) == ["beam4", "greedy"]
        for name in ("greedy", "beam4"):
            assert 0.0 <= results[name]["bleu"] <= 100.0 and 0.0 <= results[name]["chrf"] <= 100.0
    assert info["out_of_domain"]["pairs"] == 20 and info["out_of_domain"]["source"] == "gcc:es"
    by_length = info["heldout"]["greedy"]["by_length"]
    assert sum(row["sentences"] for row in by_length) == len(split.heldout)
    beam_buckets = [row["bucket"] for row in info["heldout"]["beam4"]["by_length"]]
    assert [row["bucket"] for row in by_length] == beam_buckets
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    assert any("held-out: case-insensitive sacreBLEU" in line for line in lines)


@pytest.mark.slow
def test_translations_table_holds_the_heldout_pairs(finished_run):
    config, run_dir, model, info, _ = finished_run
    with open(run_dir / TRANSLATIONS_FILE, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["source", "reference", "greedy", "beam4"]
    assert len(rows) - 1 == info["split"]["heldout"]
    split = split_data(load_data(config), config)
    assert [row[0] for row in rows[1:]] == list(split.heldout.sources)
    assert [row[1] for row in rows[1:]] == list(split.heldout.targets)
    # The same batch of sentences as the run translated (one batch: 30 < batch_size 64).
    assert [row[2] for row in rows[1:]] == model.translate(list(split.heldout.sources), sampler="greedy")


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(finished_run):
    config, run_dir, *_ = finished_run
    with pytest.raises(RunSetupError, match="finished run") as error:
        train_translator_run(config, run_dir, verbose=0, print_fn=lambda line: None)
    assert error.value.setting == "run_dir"


def test_auto_out_of_domain_data_follows_the_language_pair():
    from rnn_toolkit.data import ParallelTexts
    from rnn_toolkit.tasks.translator.run import out_of_domain_pairs

    pairs = ParallelTexts(("hola",) * 20, ("hello",) * 20, source_language="es", target_language="en")
    # gcc's catalogues hold English messages: nothing to score a Spanish-to-English model on.
    assert out_of_domain_pairs(TranslatorRunConfig(), pairs) is None
    assert out_of_domain_pairs(TranslatorRunConfig(ood_data="none"), pairs.reversed()) is None
