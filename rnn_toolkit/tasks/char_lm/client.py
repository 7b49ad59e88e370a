"""Calls an exported character language model with TensorFlow alone.

This file imports nothing from rnn_toolkit on purpose: it is what a deployer's code
looks like, and `make demo` runs it in a fresh process to prove the SavedModel stands on
its own. Run it by path:

    python rnn_toolkit/tasks/char_lm/client.py saved_models/char_lm/1 \
        --prompt "ROMEO:" --heldout runs/char_lm/heldout.txt

It prints a generated passage and, given held-out text, the loss in nats per character
and the perplexity, computed from the `log_prob` signature.
"""

import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402


def heldout_loss(log_prob_fn, text, chunk_chars=2000, batch_size=32):
    """Mean negative log-likelihood (nats/char) of `text`, scored in chunks.

    Each chunk's first character has no context and is not scored (the signature's
    convention), so the mean is over `len(text) - number_of_chunks` characters.
    """
    chunks = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)]
    total_log_prob, total_scored = 0.0, 0
    for start in range(0, len(chunks), batch_size):
        batch = tf.constant(chunks[start : start + batch_size])
        result = log_prob_fn(text=batch)
        total_log_prob += float(tf.reduce_sum(result["log_prob"]))
        total_scored += int(tf.reduce_sum(tf.maximum(result["num_chars"] - 1, 0)))
    return -total_log_prob / max(total_scored, 1), total_scored


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="a version folder, e.g. saved_models/char_lm/1")
    parser.add_argument("--prompt", default="ROMEO:", help="text to continue")
    parser.add_argument("--max-length", type=int, default=400, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=0, help="top-k filter (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="seed (-1: random)")
    parser.add_argument("--heldout", help="a UTF-8 text file to score (held-out text)")
    parser.add_argument(
        "--max-heldout-chars", type=int, default=200_000, help="score at most this many characters"
    )
    args = parser.parse_args(argv)

    loaded = tf.saved_model.load(args.saved_model)
    print(f"Loaded {args.saved_model}; signatures: {sorted(loaded.signatures)}")
    generate = loaded.signatures["generate"]
    start = time.perf_counter()
    text = generate(
        prompt=tf.constant([args.prompt]),
        max_length=tf.constant(args.max_length, tf.int32),
        temperature=tf.constant(args.temperature, tf.float32),
        top_k=tf.constant(args.top_k, tf.int32),
        seed=tf.constant(args.seed, tf.int32),
    )["text"][0].numpy().decode("utf-8", errors="replace")
    elapsed = time.perf_counter() - start
    print(f"\n--- generated (temperature {args.temperature}, seed {args.seed}, {elapsed:.2f} s) ---")
    print(text)
    print("---")
    if args.heldout:
        with open(args.heldout, encoding="utf-8") as handle:
            heldout = handle.read()[: args.max_heldout_chars]
        loss, scored = heldout_loss(loaded.signatures["log_prob"], heldout)
        print(
            f"held-out loss {loss:.4f} nats/char, perplexity {math.exp(loss):.3f} "
            f"({scored:,} characters scored)"
        )
    assert "rnn_toolkit" not in sys.modules, "the client must not need rnn_toolkit"
    print("(rnn_toolkit was not imported in this process)")


if __name__ == "__main__":
    main()
