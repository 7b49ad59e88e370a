"""How many of the held-out captions' words a captioner trained on the training split can
write at all: the ceiling under `captioner_comparison.py`'s scores.

The split keeps near-duplicates together (`split_captioned_images`), so a held-out image is
mostly a concept never seen in training, and its name is often a word no training caption
holds. A word-level decoder writes only words of its vocabulary (the training captions'
words seen at least `min_count` times), and the retrieval baseline only training captions:
neither can name such a concept. This script measures, per data set, on the default
run's split and vocabulary (`CaptionerRunConfig` with `data` changed):

* `content_words_in_vocabulary`: the share of the held-out references' content words
  (tokens as the metrics tokenize them, minus a short list of function words) that are
  vocabulary words;
* `images_unreachable`: the share of held-out images every reference of which holds a
  content word outside the vocabulary (no caption the decoder can write equals any of
  their references);
* `references_equal_to_a_training_caption`: the share of held-out images with a
  reference identical (after tokenization) to some training caption (what retrieval
  could get exactly right).

No model is trained; it takes a few seconds per data set once the data are cached.

Usage (from the repository root):

    .venv/bin/python benchmarks/captioner_heldout_words.py
    .venv/bin/python benchmarks/captioner_heldout_words.py --data tuxpaint,emoji
"""

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

from rnn_toolkit.metrics.captioning import caption_tokens
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, load_data, split_data

DATA = ("tuxpaint", "emoji", "clipart", "emoji-scenes")
# Words every caption language model learns from any data set; the rest name things.
FUNCTION_WORDS = frozenset(
    "a an the of in on with and or to is are its it at for from by as his her their this that "
    "left right above below".split()
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=",".join(DATA), help=f"comma-separated data sets (default: {','.join(DATA)})")
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/captioner_heldout_words.json)")
    return parser.parse_args(argv)


def heldout_words(config):
    """The coverage numbers of the module docstring for one run config's split."""
    run_data = split_data(load_data(config), config)
    vocabulary = set(run_data.vocabulary.words)
    references = [[caption_tokens(caption) for caption in captions] for captions in run_data.test.captions]
    content = [word for captions in references for tokens in captions for word in tokens if word not in FUNCTION_WORDS]
    training = {" ".join(caption_tokens(c)) for captions in run_data.train.captions for c in captions}

    def unreachable(captions):
        return all(any(w not in vocabulary for w in tokens if w not in FUNCTION_WORDS) for tokens in captions)

    return {
        "train_images": len(run_data.train),
        "test_images": len(run_data.test),
        "vocabulary_words": len(vocabulary),
        "content_words_in_vocabulary": float(np.mean([word in vocabulary for word in content])),
        "images_unreachable": float(np.mean([unreachable(captions) for captions in references])),
        "references_equal_to_a_training_caption": float(
            np.mean([any(" ".join(tokens) in training for tokens in captions) for captions in references])
        ),
    }


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    names = support.chosen_subset(args.data, list(DATA), "data")
    results = {}
    for name in names:
        results[name] = heldout_words(dataclasses.replace(CaptionerRunConfig(), data=name))
    rows = [
        f"{name:<13} {r['train_images']:>6,} {r['test_images']:>5,} {r['vocabulary_words']:>6,} "
        f"{r['content_words_in_vocabulary']:>14.1%} {r['images_unreachable']:>12.1%} "
        f"{r['references_equal_to_a_training_caption']:>12.1%}"
        for name, r in results.items()
    ]
    support.print_table(
        "Held-out captions against the training vocabulary",
        f"{'data':<13} {'train':>6} {'test':>5} {'words':>6} {'content known':>14} {'unreachable':>12} "
        f"{'ref = train':>12}",
        rows,
    )
    record = support.run_metadata("captioner_heldout_words", args, load_before, started=started)
    record["function_words"] = sorted(FUNCTION_WORDS)
    record["results"] = results
    support.write_results(record, Path(args.output) if args.output else support.results_path("captioner_heldout_words", False))


if __name__ == "__main__":
    main()
