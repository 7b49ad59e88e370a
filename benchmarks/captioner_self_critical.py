"""Self-critical sequence training (SCST) of a finished captioner run: does optimising
CIDEr-D directly, after the cross-entropy training, lift the held-out scores?

SCST (Rennie et al., 2017, "Self-critical sequence training for image captioning", with
the leave-one-out baseline of Luo, 2020) is the usual second stage of captioning
systems: sample `--samples` captions per training image from the model, score each
against the image's references with CIDEr-D (document frequencies from the training
references), and raise the log-probability of the samples that score above the mean of
the image's other samples (REINFORCE with that baseline), at a small learning rate.

The model starts from a finished `train captioner` run (frozen encoder, cached
features); the run folder is only read. Every epoch prints the training samples' mean
reward and the validation greedy CIDEr-D, and scores the held-out images (greedy and
beam 4): they are scored every epoch to see the trend, and no epoch is picked by them.
Before training, the reward's CIDEr-D is checked against `pycocoevalcap`'s on the
validation captions (same document frequencies: the validation references).

This is a probe, not a library feature: on the clip-art data (concepts held out by
near-duplicate group) the cross-entropy model already reproduces its training captions
(training reward near 2.3, i.e. CIDEr-D 230, against ~40 on validation), so the sampled
captions of training images carry almost no signal about unseen concepts. Its result is
reported in the README.

Usage (from the repository root; ~15 s per epoch on the 602 Tux Paint training images):

    .venv/bin/python benchmarks/captioner_self_critical.py
    .venv/bin/python benchmarks/captioner_self_critical.py --run runs/benchmarks/captioner-emoji-soft --epochs 4
"""

import argparse
import collections
import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import keras
import tensorflow as tf

from rnn_toolkit.decoding.samplers import sampling_function
from rnn_toolkit.metrics import caption_scores, caption_tokens
from rnn_toolkit.runs.folder import load_run_model
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, cached_features, load_data, split_data

MAX_SAMPLE_LENGTH = 16
MAX_N = 4
SIGMA = 6.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/benchmarks/captioner-tuxpaint-soft", help="a finished captioner run folder")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--samples", type=int, default=5, help="sampled captions per image (>= 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step")
    parser.add_argument("--clip-norm", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="result file (default benchmarks/results/captioner_self_critical.json)")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error("--samples must be >= 2 (the baseline is the mean of an image's other samples)")
    if args.epochs < 1 or args.batch_size < 1 or args.learning_rate <= 0:
        parser.error("--epochs, --batch-size and --learning-rate must be positive")
    return args


def ngram_counts(tokens):
    counts = collections.Counter()
    for n in range(1, MAX_N + 1):
        for start in range(len(tokens) - n + 1):
            counts[tuple(tokens[start:start + n])] += 1
    return counts


class CiderDReward:
    """CIDEr-D of token lists against one image's references, as `pycocoevalcap`'s
    `Cider` computes it (clipped tf-idf cosines of 1- to 4-grams, Gaussian length
    penalty, x10), with document frequencies fixed by `references` (the training
    captions) instead of recomputed from each scored set."""

    def __init__(self, references):
        tokenized = [[caption_tokens(caption) for caption in captions] for captions in references]
        frequency = collections.Counter()
        for captions in tokenized:
            frequency.update({gram for tokens in captions for gram in ngram_counts(tokens)})
        self.frequency = frequency
        self.log_images = math.log(float(len(tokenized)))
        self.references = [[(*self._vector(tokens), len(tokens)) for tokens in captions] for captions in tokenized]

    def _vector(self, tokens):
        vector = [{} for _ in range(MAX_N)]
        norm = [0.0] * MAX_N
        for gram, count in ngram_counts(tokens).items():
            weight = count * (self.log_images - math.log(max(1.0, self.frequency[gram])))
            vector[len(gram) - 1][gram] = weight
            norm[len(gram) - 1] += weight * weight
        return vector, [math.sqrt(value) for value in norm]

    def __call__(self, image, tokens):
        vector, norm = self._vector(tokens)
        total = 0.0
        for reference, reference_norm, length in self.references[image]:
            penalty = math.exp(-((len(tokens) - length) ** 2) / (2 * SIGMA**2))
            for n in range(MAX_N):
                overlap = sum(min(w, reference[n].get(g, 0.0)) * reference[n].get(g, 0.0) for g, w in vector[n].items())
                if norm[n] and reference_norm[n]:
                    overlap /= norm[n] * reference_norm[n]
                total += overlap * penalty / MAX_N
        return 10.0 * total / len(self.references[image])


def run_config(run_info):
    fields = {field.name for field in dataclasses.fields(CaptionerRunConfig)}
    return dataclasses.replace(
        CaptionerRunConfig(), **{k: v for k, v in run_info["settings"].items() if k in fields}
    )


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    model, info = load_run_model(args.run)
    config = run_config(info)
    if config.fine_tune_encoder or config.image_encoder != "efficientnet_lite0":
        raise SystemExit(f"{args.run}: the probe needs a frozen-encoder run (cached features)")
    run_data = split_data(load_data(config), config)
    features = {part: cached_features(None, getattr(run_data, part), config) for part in ("train", "validation", "test")}
    references = {part: [list(c) for c in getattr(run_data, part).captions] for part in ("train", "validation", "test")}
    tokens = np.array(run_data.vocabulary.tokens, dtype=object)
    start_id, end_id = run_data.vocabulary.start_id, run_data.vocabulary.end_id

    def scores(part, beam_width):
        captions = model.caption(features[part], beam_width=beam_width)
        result = caption_scores(captions, references[part])
        return captions, {name: result[name] for name in ("bleu_4", "cider_d")}

    # The reward's CIDEr-D against pycocoevalcap's, with the same document frequencies.
    captions, validation_greedy = scores("validation", 1)
    check = CiderDReward(references["validation"])
    mine = 100 * np.mean([check(i, caption_tokens(c)) for i, c in enumerate(captions)])
    print(f"reward check: CIDEr-D {mine:.3f} here, {validation_greedy['cider_d']:.3f} pycocoevalcap", flush=True)
    if abs(mine - validation_greedy["cider_d"]) > 1e-6 * max(1.0, abs(mine)):
        raise SystemExit("the reward's CIDEr-D differs from pycocoevalcap's")

    reward = CiderDReward(references["train"])
    sampler = sampling_function("temperature", temperature=1.0)
    optimizer = keras.optimizers.Adam(args.learning_rate)
    optimizer.build(model.trainable_variables)

    @tf.function(reduce_retracing=True)
    def sample(grid, seed):
        out = model.caption_tensors(grid, sampler=sampler, seed=seed, max_length=MAX_SAMPLE_LENGTH)
        return out["token_ids"], out["lengths"]

    @tf.function(reduce_retracing=True)
    def train_step(grid, token_ids, lengths, advantages):
        batch = tf.shape(token_ids)[0]
        inputs = tf.concat([tf.fill([batch, 1], start_id), token_ids], axis=1)
        positions = tf.range(tf.shape(inputs)[1])[tf.newaxis, :]
        at_end = positions == lengths[:, tf.newaxis]
        targets = tf.where(at_end, end_id, tf.concat([token_ids, tf.zeros([batch, 1], tf.int32)], axis=1))
        # A caption cut at the length cap has no [END] to learn.
        ended = (lengths < MAX_SAMPLE_LENGTH)[:, tf.newaxis]
        mask = tf.cast((positions < lengths[:, tf.newaxis]) | (at_end & ended), tf.float32)
        inputs = tf.where(positions <= lengths[:, tf.newaxis], inputs, 0)
        with tf.GradientTape() as tape:
            logits = tf.cast(model((grid, inputs), training=True), tf.float32)
            picked = tf.gather(tf.nn.log_softmax(logits), targets, batch_dims=2)
            loss = -tf.reduce_sum(advantages * tf.reduce_sum(picked * mask, axis=1)) / tf.reduce_sum(mask)
        gradients = tape.gradient(loss, model.trainable_variables)
        gradients, norm = tf.clip_by_global_norm(gradients, args.clip_norm)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return norm

    def epoch_record(epoch, mean_reward, seconds):
        record = {"epoch": epoch, "train_reward": mean_reward, "seconds": seconds}
        record["validation_greedy"] = scores("validation", 1)[1]
        record["test_greedy"] = scores("test", 1)[1]
        record["test_beam4"] = scores("test", 4)[1]
        print(
            f"epoch {epoch}: train reward {mean_reward if mean_reward is not None else float('nan'):.3f}, "
            f"validation greedy CIDEr-D {record['validation_greedy']['cider_d']:.1f}; test BLEU-4 / CIDEr-D "
            f"greedy {record['test_greedy']['bleu_4']:.1f} / {record['test_greedy']['cider_d']:.1f}, "
            f"beam 4 {record['test_beam4']['bleu_4']:.1f} / {record['test_beam4']['cider_d']:.1f} ({seconds:.0f} s)",
            flush=True,
        )
        return record

    history = [epoch_record(0, None, 0.0)]
    rng = np.random.default_rng(args.seed)
    train = features["train"]
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        rewards = []
        order = rng.permutation(len(train))
        for step, start in enumerate(range(0, len(train), args.batch_size)):
            images = order[start:start + args.batch_size]
            grid = tf.constant(np.repeat(train[images], args.samples, axis=0))
            token_ids, lengths = sample(grid, tf.constant([args.seed, epoch * 100_000 + step], tf.int32))
            token_ids, lengths = token_ids.numpy(), lengths.numpy()
            values = np.array([
                reward(images[row // args.samples], caption_tokens(" ".join(tokens[token_ids[row, :lengths[row]]])))
                for row in range(len(token_ids))
            ]).reshape(-1, args.samples)
            baseline = (values.sum(axis=1, keepdims=True) - values) / (args.samples - 1)
            train_step(
                grid, tf.constant(token_ids, tf.int32), tf.constant(lengths, tf.int32),
                tf.constant((values - baseline).reshape(-1), tf.float32),
            )
            rewards.append(values.mean())
        history.append(epoch_record(epoch, float(np.mean(rewards)), time.perf_counter() - epoch_started))

    record = support.run_metadata("captioner_self_critical", args, load_before, started=started)
    record["run_settings"] = info["settings"]
    record["reward_check"] = {"here": float(mine), "pycocoevalcap": validation_greedy["cider_d"]}
    record["epochs"] = history
    support.write_results(record, Path(args.output) if args.output else support.results_path("captioner_self_critical", False))


if __name__ == "__main__":
    main()
