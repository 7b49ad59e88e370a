"""One process of the multi-worker tests (`test_distributed.py`), run as a script:

    python distributed_worker.py OUT.json single
    python distributed_worker.py OUT.json WORKER_INDEX HOST:PORT,HOST:PORT

trains a tiny recurrent classifier for a few steps (with gradient clipping that bites)
in one process with Keras' `fit`, or as one worker of a cluster with `fit_on_workers`,
and writes its final weights, its history and the example ids each of its epochs saw.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rnn_toolkit.runs import FitData  # noqa: E402
from rnn_toolkit.runs.distributed import Cluster, fit_on_workers, multi_worker_strategy, shard_by_data  # noqa: E402
from rnn_toolkit.training import GradientClippingModel  # noqa: E402

EXAMPLES, BATCH, EPOCHS = 36, 8, 2  # the last batch of each epoch has 4 examples: 2 per worker


class TinyClassifier(GradientClippingModel):
    """Ids -> embedding -> LSTM -> 3 classes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(20, 8)
        self.recurrent = keras.layers.LSTM(16)
        self.head = keras.layers.Dense(3)

    def call(self, tokens):
        return self.head(self.recurrent(self.embedding(tokens)))


def main(out, mode, workers=None):
    if mode == "single":
        strategy = tf.distribute.get_strategy()
    else:
        strategy = multi_worker_strategy(Cluster(tuple(workers.split(",")), int(mode)), timeout=60)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(EXAMPLES, 12))
    labels = rng.integers(0, 3, size=(EXAMPLES,))
    # A seeded shuffle that keeps its order: every pass, and every process, sees the same batches.
    data = tf.data.Dataset.from_tensor_slices((tokens, labels))
    data = data.shuffle(EXAMPLES, seed=1, reshuffle_each_iteration=False).batch(BATCH)
    results = {}
    # With the number of batches known (taken in the traced step) and unknown (the workers
    # agree before each step whether one is left); and in mixed_float16, whose loss-scale
    # optimizer applies the gradients through its inner optimizer.
    runs = (("known", data, "float32"), ("unknown", data.filter(lambda x, y: True), "float32"),
            ("mixed_float16", data, "mixed_float16"))
    for name, dataset, policy in runs:
        keras.utils.set_random_seed(0)
        keras.config.set_dtype_policy(policy)
        with strategy.scope():
            model = TinyClassifier(clip_norm=0.05)
            optimizer = keras.optimizers.Adam(0.01)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            model(tokens[:2])
        keras.config.set_dtype_policy("float32")
        if mode == "single":
            history = model.fit(dataset, epochs=EPOCHS, verbose=0).history
        else:
            history = fit_on_workers(model, strategy, FitData(dataset), epochs=EPOCHS, callbacks=[], verbose=0).history
        results[name] = {"weights": [w.numpy().astype("float64").tolist() for w in model.weights],
                         "history": history, "steps": int(model.optimizer.iterations.numpy())}

    # The example ids this process gets in each pass over a pipeline that reshuffles at every
    # pass, distributed the way `fit_on_workers` distributes its data.
    ids = tf.data.Dataset.range(EXAMPLES).shuffle(EXAMPLES, seed=2).batch(BATCH)
    if mode != "single":
        ids = strategy.experimental_distribute_dataset(shard_by_data(ids))
    ids_seen = []
    for _ in range(EPOCHS):
        ids_seen.append([int(i) for batch in ids for i in strategy.experimental_local_results(batch)[0].numpy()])

    with open(out, "w") as handle:
        json.dump({**results, "ids": ids_seen, "replicas": strategy.num_replicas_in_sync}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
