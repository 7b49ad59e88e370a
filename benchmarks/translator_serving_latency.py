"""Measures serving latency of an exported translator, called from a fresh plain-TensorFlow process.

The trained translator of a run folder (`--run-dir`, `model.keras` + `run.json`) is
exported with `rnn_toolkit.export.export_translator` (the run's beam width and length
penalty) to a temporary folder. A fresh Python process then loads it with
`tf.saved_model.load`, importing nothing of `rnn_toolkit` (it reports its imports, and
the script fails if rnn_toolkit got imported). That process receives the
requests from this script over a pipe and times every call itself, as a serving process
would see it: a list of strings goes in (`tf.constant`), the `translation` strings come
out (`.numpy()`), and both conversions are inside the timed call.

The requests are the run's own held-out source sentences: `load_data` / `split_data`
with the run's settings rebuild its seeded held-out share (1,554 Bible verses for the
default run), in a seeded shuffled order, cycling. Calls, at batch 1 and batch 32:

* `serving_default`: the model's default beam search (beam 4 for the default run);
* `translate` with `beam_width` 1: greedy search, for contrast. It is greedy search run
  by the beam-search bookkeeping with one hypothesis (the SavedModel has no separate
  greedy sampler); `translator_decoding_throughput.py` measures what that bookkeeping
  costs against the in-process greedy sampler.

Both signatures decode up to their default length (twice the batch's longest source
plus 10 words) and stop as soon as every row has ended, so a batch costs as much as its
longest translation: the mean translation length of each phase is reported. The four
phases (signature x batch size) run interleaved in a shuffled order every round (see
`benchmark_support`), each on the same sentences, after untimed warm-up calls of each
phase (tracing and first-call costs excluded). Latency is per call, one caller, one call
at a time: p50 / p90 / p99 / mean / max over all calls; sentences/s is the batch size
over the mean latency.

Every phase runs twice, against two serving processes: one with the default export,
whose decoding loop is XLA-compiled, and one exported with `jit_compile=False`; the
compiled one first replays the SavedModel's warm-up requests
(`assets.extra/tf_serving_warmup_requests`, as TF Serving does at load), each timed,
with the number of programs XLA compiled for it and their compile times (TensorFlow logs
one line per compilation with `TF_CPP_VMODULE=device_compiler=1`: the lines are counted). The same count is taken over the timed phases,
and over a mixed-size load (`--mixed-requests` serving_default calls of 1 to 32
sentences) after them. The compiled and uncompiled translations of the same requests
are compared.

Usage (from the repository root):

    .venv/bin/python benchmarks/translator_serving_latency.py --run-dir runs/benchmarks/translator-additive
    .venv/bin/python benchmarks/translator_serving_latency.py --run-dir RUN --quick   # smoke test

The numbers are written as JSON to `benchmarks/results/` (for `--quick`, to the
temporary folder).

The serving process (`ServingProcess`, `serve_from_stdin`) is also used by
`translator_decoding_throughput.py`.
"""

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import numpy as np

import rnn_toolkit
from rnn_toolkit.runs.folder import RunSetupError, load_run_model
from rnn_toolkit.tasks.translator.run import TranslatorRunConfig, describe_model, load_data, split_data, token_counts

DEFAULT_RUN_DIR = "runs/benchmarks/translator-additive"
BATCH_SIZES = (1, 32)


# --- The serving process: TensorFlow only ------------------------------------------------


def serve_from_stdin():
    """The body of the fresh serving process; it imports TensorFlow and nothing of rnn_toolkit.

    Run as `python -c <this function's source> SAVED_MODEL INTRA_OP_THREADS INTER_OP_THREADS`
    (see `ServingProcess`). It loads the SavedModel, answers with one JSON line about
    itself, then for each JSON request line on standard input makes the calls and answers
    with one JSON line. A request: `signature` ("serving_default" or "translate"),
    `batches` (lists of sentences, one call each), `beam_width` and `max_length` (for
    "translate"). The answer: `seconds` (per call), `wall_seconds` (all calls) and
    `translations`, or `error`.
    """
    import json
    import os
    import sys
    import time
    import traceback

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    answers = sys.stdout
    sys.stdout = sys.stderr  # anything else printed must not mix with the answers

    def answer(record):
        answers.write(json.dumps(record) + "\n")
        answers.flush()

    import tensorflow as tf

    path, intra_op_threads, inter_op_threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    start = time.perf_counter()
    loaded = tf.saved_model.load(path)
    answer({
        "tensorflow": tf.__version__,
        "load_seconds": time.perf_counter() - start,
        "signatures": sorted(loaded.signatures),
        "rnn_toolkit_imported": any(name.split(".")[0] == "rnn_toolkit" for name in sys.modules),
        "keras_imported": "keras" in sys.modules,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    })
    for line in sys.stdin:
        try:
            request = json.loads(line)
            signature = loaded.signatures[request["signature"]]
            seconds, translations = [], []
            all_start = time.perf_counter()
            for batch in request["batches"]:
                call_start = time.perf_counter()
                inputs = {"text": tf.constant(batch, tf.string)}
                if request["signature"] == "translate":
                    inputs["beam_width"] = tf.constant(request["beam_width"], tf.int32)
                    inputs["max_length"] = tf.constant(request.get("max_length", 0), tf.int32)
                texts = signature(**inputs)["translation"].numpy()
                seconds.append(time.perf_counter() - call_start)
                translations.extend(t.decode("utf-8", "replace") for t in texts.tolist())
            answer({
                "seconds": seconds,
                "wall_seconds": time.perf_counter() - all_start,
                "translations": translations,
            })
        except Exception:  # noqa: BLE001 -- reported to the parent, which fails the run
            answer({"error": traceback.format_exc()})


class ServingProcess:
    """A fresh Python process serving a translator SavedModel with plain TensorFlow.

    It runs only `serve_from_stdin`'s source (`python -c`), from the temporary folder,
    so nothing of this checkout is imported there; `info` holds its first answer (its
    TensorFlow version, load time, signatures, and whether rnn_toolkit or Keras got
    imported). Use as a context manager; `calls` makes one request.
    """

    def __init__(self, saved_model, intra_op_threads=0, inter_op_threads=0, compile_log=None):
        source = inspect.getsource(serve_from_stdin) + "\nserve_from_stdin()\n"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.compile_log = compile_log
        stderr = None
        if compile_log is not None:
            # TensorFlow logs one line per XLA compilation, with its time, at this level.
            env.update(TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_compiler=1")
            stderr = open(compile_log, "w", encoding="utf-8")  # noqa: SIM115 -- closed in close()
        self.stderr = stderr
        self.process = subprocess.Popen(
            [sys.executable, "-c", source, str(saved_model), str(intra_op_threads), str(inter_op_threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, encoding="utf-8",
            cwd=tempfile.gettempdir(), env=env,
        )
        self.info = self._answer()
        if self.info["rnn_toolkit_imported"]:
            self.close()
            raise RuntimeError("the serving process imported rnn_toolkit: it must not need it")

    def _answer(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the serving process ended (exit status {self.process.wait()})")
        record = json.loads(line)
        if "error" in record:
            raise RuntimeError(f"the serving process failed:\n{record['error']}")
        return record

    def calls(self, signature, batches, beam_width=None, max_length=0):
        """Calls `signature` once per batch there; returns `seconds`, `wall_seconds`, `translations`."""
        request = {"signature": signature, "batches": batches}
        if signature == "translate":
            request.update(beam_width=int(beam_width), max_length=int(max_length))
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def compilations(self):
        """The milliseconds of each XLA compilation in the serving process so far (None
        without `compile_log`)."""
        if self.compile_log is None:
            return None
        self.stderr.flush()
        text = pathlib.Path(self.compile_log).read_text(encoding="utf-8", errors="replace")
        return [float(ms) for ms in re.findall(r"Compilation of XLA executable time: ([0-9.]+) ms", text)]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        if self.stderr is not None and not self.stderr.closed:
            self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# --- The run: model, settings and held-out sentences --------------------------------------


@dataclasses.dataclass
class TranslatorBenchmarkRun:
    """A trained run folder as the translator benchmarks use it."""

    model: object
    info: dict
    config: TranslatorRunConfig
    heldout_sources: list
    heldout_targets: list

    def describe(self):
        """A one-line description of the model, for the output."""
        return (
            f"{describe_model(self.config)}, embedding {self.config.embedding_dim}, "
            f"{self.model.dtype_policy_name}; vocabularies {self.model.source_vocabulary.size:,} / "
            f"{self.model.target_vocabulary.size:,}; {self.model.count_params():,} parameters"
        )

    def model_record(self, run_dir):
        """What the result file says about the model."""
        heldout = self.info.get("heldout") or {}
        return {
            "run_dir": str(run_dir),
            "description": self.describe(),
            "settings": self.info.get("settings"),
            "dtype_policy": self.model.dtype_policy_name,
            "parameters": int(self.model.count_params()),
            "vocabulary_sizes": {
                "source": self.model.source_vocabulary.size,
                "target": self.model.target_vocabulary.size,
            },
            "heldout_scores_in_training": {
                name: {"bleu": scores.get("bleu"), "chrf": scores.get("chrf")}
                for name, scores in heldout.items()
                if isinstance(scores, dict)
            },
        }


def load_benchmark_run(run_dir):
    """The run's model, run.json, settings and held-out sentence pairs (rebuilt from the settings)."""
    try:
        model, info = load_run_model(run_dir)
    except RunSetupError as error:
        raise SystemExit(
            f"{error}\n(the default run is trained by: .venv/bin/python benchmarks/translator_attention.py "
            "--variants additive)"
        ) from None
    if info is None:
        raise SystemExit(f"{run_dir} has no run.json: its held-out share cannot be rebuilt")
    fields = {field.name for field in dataclasses.fields(TranslatorRunConfig)}
    config = TranslatorRunConfig(**{k: v for k, v in info["settings"].items() if k in fields})
    split = split_data(load_data(config), config)
    expected = (info.get("split") or {}).get("heldout")
    if expected is not None and expected != len(split.heldout):
        raise SystemExit(
            f"the rebuilt held-out share has {len(split.heldout)} pairs, run.json says {expected}: "
            "the data changed since training"
        )
    return TranslatorBenchmarkRun(model, info, config, list(split.heldout.sources), list(split.heldout.targets))


def mean_tokens(texts, lowercase=True):
    """Mean tokens per text as the word tokenizer counts them (0 for no texts)."""
    return float(np.mean(token_counts(list(texts), lowercase))) if texts else 0.0


# --- Benchmark ------------------------------------------------------------------------------

# What is called: the default beam search, and greedy search through `translate`, each
# from a SavedModel whose loop is XLA-compiled and from one exported with jit_compile=False.
SIGNATURES = {"serving_default": "serving_default", "translate_beam1": "translate"}
PHASES = tuple(
    (decoding, batch_size, compiled)
    for decoding in SIGNATURES for batch_size in BATCH_SIZES for compiled in (True, False)
)
MIXED_BATCH_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def phase_name(phase):
    signature, batch_size, compiled = phase
    return f"{signature}:batch{batch_size}{'' if compiled else ':uncompiled'}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=pathlib.Path, default=pathlib.Path(DEFAULT_RUN_DIR),
                        help=f"a finished translator run folder (model.keras, run.json); default {DEFAULT_RUN_DIR}")
    parser.add_argument("--quick", action="store_true", help="a few calls, to check that the script works")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--calls-batch1", type=int, default=200, help="timed batch-1 calls per signature, in all")
    parser.add_argument("--calls-batch32", type=int, default=50, help="timed batch-32 calls per signature, in all")
    parser.add_argument("--warmup-calls", type=int, default=3, help="untimed calls per signature and batch size")
    parser.add_argument("--seed", type=int, default=0, help="order of the requests and of the phases")
    parser.add_argument("--mixed-requests", type=int, default=1000,
                        help="requests of the mixed-size load whose compilations are counted")
    support.add_thread_options(parser)
    parser.add_argument("--output", type=pathlib.Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls_batch1, args.calls_batch32, args.warmup_calls = 2, 8, 2, 1
        args.mixed_requests = 20
    if min(args.rounds, args.calls_batch1, args.calls_batch32) < 1 or args.warmup_calls < 0:
        parser.error("counts must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    support.set_thread_pools(args)  # before the first TensorFlow op
    started = time.perf_counter()
    load_before = os.getloadavg()

    run = load_benchmark_run(args.run_dir)
    order = np.random.default_rng(args.seed).permutation(len(run.heldout_sources))
    texts = [run.heldout_sources[i] for i in order]
    print(f"model: {args.run_dir}: {run.describe()}")
    print(
        f"requests: the {len(texts):,} held-out sentences of {run.config.data!r} (split seed "
        f"{run.config.split_seed}), shuffled with seed {args.seed}; "
        f"{mean_tokens(texts, run.config.lowercase):.1f} source tokens on average"
    )

    scratch = tempfile.TemporaryDirectory()
    paths = {
        compiled: rnn_toolkit.export.export_translator(
            run.model, scratch.name, version=1 if compiled else 2, beam_width=run.config.beam_width,
            length_penalty=run.config.length_penalty, jit_compile=compiled,
        )
        for compiled in (True, False)
    }
    beam = {"serving_default": run.config.beam_width, "translate_beam1": 1}
    counts = {1: args.calls_batch1, 32: args.calls_batch32}
    compile_log = pathlib.Path(scratch.name) / "compiled_server.log"
    with contextlib.ExitStack() as stack:
        servers = {
            compiled: stack.enter_context(ServingProcess(
                paths[compiled], args.intra_op_threads, args.inter_op_threads,
                compile_log=compile_log if compiled else None,
            ))
            for compiled in (True, False)
        }
        server = servers[True]
        print(
            f"serving processes: plain TensorFlow {server.info['tensorflow']} (rnn_toolkit imported: "
            f"{server.info['rnn_toolkit_imported']}, keras: {server.info['keras_imported']}); "
            f"SavedModels loaded in {server.info['load_seconds']:.1f} s (compiled) and "
            f"{servers[False].info['load_seconds']:.1f} s; signatures {server.info['signatures']}"
        )

        # TF Serving's warm-up: the compiled SavedModel's requests, one per compiled size,
        # replayed before any timed call; each one's time is mostly its compilation.
        warmup_requests = rnn_toolkit.saved_model.read_warmup_requests(paths[True])
        replay = []
        for signature, inputs in warmup_requests:
            batch = [t.decode("utf-8") for t in inputs["text"].tolist()]
            before = len(server.compilations())
            result = server.calls(signature, [batch], beam_width=int(inputs.get("beam_width", 1)))
            compile_ms = server.compilations()[before:]
            replay.append({
                "signature": signature,
                "beam_width": int(inputs["beam_width"]) if "beam_width" in inputs else run.config.beam_width,
                "batch_size": len(batch),
                "source_words": len(batch[0].split()),
                "seconds": result["seconds"][0],
                "compilations": len(compile_ms),
                "compile_ms": compile_ms,
            })
        warmup_compilations = sum(r["compilations"] for r in replay)
        compile_ms = [ms for r in replay for ms in r["compile_ms"]]
        print(
            f"warm-up: {len(replay)} requests, {warmup_compilations} compilations "
            f"({statistics.median(compile_ms) if compile_ms else 0:.0f} ms median, "
            f"{max(compile_ms, default=0):.0f} ms max, {sum(compile_ms) / 1000:.1f} s in all), "
            f"{sum(r['seconds'] for r in replay):.1f} s with the calls"
        )

        def call(phase, batches):
            decoding, _, compiled = phase
            return servers[compiled].calls(SIGNATURES[decoding], batches, beam_width=beam[decoding])

        # More untimed calls at the timed batch sizes: first-call allocations.
        warmup = {
            phase: call(phase, support.request_batches(texts, phase[1], args.warmup_calls, start=len(texts) // 2))
            for phase in PHASES if args.warmup_calls
        }
        # The exported default beam search must translate as the model does in process.
        check_texts = texts[: min(32, len(texts))]
        exported = server.calls("serving_default", [check_texts])["translations"]
        in_process = run.model.translate(
            check_texts, beam_width=run.config.beam_width, length_penalty=run.config.length_penalty, batch_size=32
        )
        identical = sum(a == b for a, b in zip(exported, in_process))
        print(f"serving_default vs model.translate: {identical}/{len(check_texts)} translations identical")

        seconds = {phase: [] for phase in PHASES}
        translations = {phase: [] for phase in PHASES}
        calls_done = {phase: 0 for phase in PHASES}
        compilations_before = len(server.compilations())
        for round_index, order in support.interleaved_rounds(PHASES, args.rounds, args.seed):
            for phase in order:
                batch_size = phase[1]
                count = support.calls_in_round(counts[batch_size], args.rounds, round_index)
                batches = support.request_batches(texts, batch_size, count, calls_done[phase] * batch_size)
                result = call(phase, batches)
                seconds[phase].extend(result["seconds"])
                translations[phase].extend(result["translations"])
                calls_done[phase] += count
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        timed_compilations = len(server.compilations()) - compilations_before

        # A mixed-size load: batch sizes drawn from MIXED_BATCH_SIZES, sentences in order.
        rng = np.random.default_rng(args.seed + 1)
        sizes = rng.choice(MIXED_BATCH_SIZES, size=args.mixed_requests)
        mixed_batches, position = [], 0
        for size in sizes:
            mixed_batches.append([texts[(position + i) % len(texts)] for i in range(size)])
            position += size
        before = len(server.compilations())
        mixed = server.calls("serving_default", mixed_batches)
        mixed_compilations = len(server.compilations()) - before
        print(
            f"mixed load: {len(mixed_batches)} serving_default requests of {sizes.min()}-{sizes.max()} "
            f"sentences ({int(sizes.sum()):,} in all) in {mixed['wall_seconds']:.1f} s: "
            f"{mixed_compilations} compilations"
        )

    same = {}
    for phase in PHASES:
        if phase[2]:
            twin = (phase[0], phase[1], False)
            pairs = list(zip(translations[phase], translations[twin]))
            same[phase_name(phase)] = {"identical": sum(a == b for a, b in pairs), "sentences": len(pairs)}
    print("compiled vs uncompiled SavedModel, same requests: " + ", ".join(
        f"{name} {v['identical']}/{v['sentences']}" for name, v in same.items()))

    summary = {}
    for phase in PHASES:
        values = seconds[phase]
        batch_size = phase[1]
        n = len(values) * batch_size
        summary[phase_name(phase)] = {
            "signature": SIGNATURES[phase[0]],
            "compiled": phase[2],
            "beam_width": beam[phase[0]],
            "batch_size": batch_size,
            **support.latency_summary(values, (50, 90, 99)),
            "sentences_per_s": batch_size / statistics.fmean(values),
            "mean_source_tokens": mean_tokens(
                [t for b in support.request_batches(texts, batch_size, len(values)) for t in b],
                run.config.lowercase,
            ),
            "mean_translation_tokens": mean_tokens(translations[phase], run.config.lowercase),
            "sentences": n,
        }
    ratios = {
        f"batch{b}:serving_default/translate_beam1 (p50)":
            summary[f"serving_default:batch{b}"]["p50_ms"] / summary[f"translate_beam1:batch{b}"]["p50_ms"]
        for b in BATCH_SIZES
    }
    for decoding in SIGNATURES:
        for b in BATCH_SIZES:
            ratios[f"{decoding}:batch{b}:uncompiled/compiled (p50)"] = (
                summary[f"{decoding}:batch{b}:uncompiled"]["p50_ms"] / summary[f"{decoding}:batch{b}"]["p50_ms"]
            )

    support.print_table(
        f"latency per call, one caller, plain tf.saved_model.load in a fresh process "
        f"({args.rounds} interleaved rounds)",
        f"{'signature':<16} {'xla':>3} {'beam':>4} {'batch':>5} {'calls':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'mean ms':>8} {'max ms':>8} {'sent/s':>7} {'out tok':>7}",
        [
            f"{SIGNATURES[phase[0]]:<16} {'on' if phase[2] else 'off':>3} {beam[phase[0]]:>4} {phase[1]:>5} {s['calls']:>6} "
            f"{s['p50_ms']:>8.1f} {s['p90_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['mean_ms']:>8.1f} "
            f"{s['max_ms']:>8.1f} {s['sentences_per_s']:>7.1f} {s['mean_translation_tokens']:>7.1f}"
            for phase, s in zip(PHASES, summary.values())
        ],
    )
    print("(sent/s: batch size / mean latency; out tok: mean tokens per translation)")
    support.print_ratios(ratios, name_width=46, value_format="6.2f")

    record = {
        **support.run_metadata(
            "translator_serving_latency", args, load_before, started=started,
            intra_op_threads=server.info["intra_op_threads"], inter_op_threads=server.info["inter_op_threads"],
        ),
        "model": run.model_record(args.run_dir),
        "serving_process": server.info,
        "requests": {
            "texts": len(texts),
            "source": "held-out share of the run's split (load_data / split_data with run.json's settings), "
                      f"shuffled with seed {args.seed}",
        },
        "check": {"texts": len(check_texts), "identical_to_model_translate": identical},
        "compiled_vs_uncompiled": same,
        "warmup_replay": {
            "requests": replay,
            "compilations": warmup_compilations,
            "compile_ms": {
                "median": statistics.median(compile_ms) if compile_ms else None,
                "max": max(compile_ms, default=None),
                "total": sum(compile_ms),
            },
            "seconds": sum(r["seconds"] for r in replay),
        },
        "compilations_during_timed_phases": timed_compilations,
        "mixed_load": {
            "requests": len(mixed_batches),
            "batch_sizes": sorted(int(b) for b in set(sizes.tolist())),
            "sentences": int(sizes.sum()),
            "wall_seconds": mixed["wall_seconds"],
            "compilations": mixed_compilations,
            "p50_ms": 1000 * float(np.percentile(mixed["seconds"], 50)),
            "p99_ms": 1000 * float(np.percentile(mixed["seconds"], 99)),
        },
        "summary": summary,
        "ratios": ratios,
        "latency_seconds": {phase_name(p): v for p, v in seconds.items()},
        "warmup_seconds": {phase_name(p): r["seconds"] for p, r in warmup.items()},
        "sample_translations": {
            phase_name(p): [{"source": s, "translation": t} for s, t in zip(texts[:3], translations[p][:3])]
            for p in PHASES if p[1] == 1
        },
    }
    output = args.output or support.results_path("translator_serving_latency", args.quick)
    support.write_results(record, output)
    scratch.cleanup()


if __name__ == "__main__":
    main()
