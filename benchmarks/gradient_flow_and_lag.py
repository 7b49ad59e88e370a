"""Vanishing and exploding gradients, clipping, and memory over a lag: issue 12's numbers.

Three measurements with `rnn_toolkit.inspection`, at Keras' initialisation (orthogonal
recurrent kernel, Glorot-uniform input kernel, zero biases except an LSTM's forget gate
at 1):

(a) gradient ratios: `||dL/dh_0|| / ||dL/dh_T||` for T = 10, 50, 100 (`gradient_ratio_sweep`):
    a vanilla tanh RNN with W_hh rescaled to spectral radius 0.9, 1.0 (Keras' orthogonal
    matrix as it is) and 1.5; an LSTM with forget-gate bias 0, 1 (Keras') and 3 (also
    `||dL/dc_0|| / ||dL/dc_T||`); a GRU with update-gate bias 0 (Keras') and 3. 32 units, 8 input features, batch 16, Gaussian inputs of
    standard deviation 0.1 (near the tanh's linear regime) and 1.0 (saturating), loss a
    fixed random projection of the last output.
(b) clipping: a vanilla RNN with W_hh at spectral radius 1.5 trained with plain SGD (0.3)
    on the lag task (lag 20) for 150 steps, without clipping and with clipping at global
    norm 1 (`exploding_gradient_histories`): the pre-clip gradient norm and the loss.
(c) memory: held-out accuracy on the lag task (4 symbols, 4 distractors; chance 0.25)
    for lags 10, 40, 120, 200, every model with the same budget (`lag_accuracy`: 32
    units, Adam 3e-3, clipping at 1, 500 steps of 32 sequences), for three seeds; the
    gated cells twice: with their gates starting open (`gate_bias=3`: forget / update
    gate sigmoid(3) = 0.95) and with Keras' gate biases (forget 1, update 0).

Usage (from the repository root; about 10 minutes on 2 busy cores):

    .venv/bin/python benchmarks/gradient_flow_and_lag.py
    .venv/bin/python benchmarks/gradient_flow_and_lag.py --quick
    .venv/bin/python benchmarks/gradient_flow_and_lag.py --figures /tmp/gradient_flow

`--figures DIR` also draws the four plots of `rnn_toolkit.plots` (gradient norm against
distance in time, ratio against spectral radius, accuracy against lag, clipping) as PNGs.
"""

import argparse
import os
import statistics
import time
from pathlib import Path

# First: it quiets TensorFlow's logging and finds `rnn_toolkit` in this checkout.
import benchmark_support as support

import numpy as np  # noqa: E402

from rnn_toolkit.inspection import (  # noqa: E402
    exploding_gradient_histories,
    gradient_norm_curves,
    gradient_ratio_sweep,
    lag_accuracy,
)

SOLVED = 0.9  # held-out accuracy counted as "learned the task"
QUICK = dict(gradient_lags="5,10", lags="3,6", seeds="0", steps=20, clip_steps=10, input_scales="0.1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gradient-lags", default="10,50,100", help="T values of the gradient ratios")
    parser.add_argument("--spectral-radii", default="0.9,1.0,1.5", help="vanilla-RNN spectral radii")
    parser.add_argument("--input-scales", default="0.1,1.0", help="standard deviations of the inputs in (a)")
    parser.add_argument("--lags", default="10,40,120,200", help="lags of the memory task")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the memory task runs")
    parser.add_argument("--steps", type=int, default=500, help="training steps of every memory model")
    parser.add_argument("--clip-steps", type=int, default=150, help="training steps of each clipping run")
    parser.add_argument("--figures", default=None, help="a folder to draw the four plots into (PNG)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny lags, one seed, few steps")
    parser.add_argument("--output", default=None,
                        help="result file (default benchmarks/results/gradient_flow_and_lag.json)")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def numbers(text, kind=float):
    return [kind(value) for value in text.split(",") if value.strip()]


def gradient_ratios(args):
    """(a): one `gradient_ratio_sweep` table per input scale."""
    tables = {}
    for scale in numbers(args.input_scales):
        table = gradient_ratio_sweep(
            numbers(args.gradient_lags, int), spectral_radii=numbers(args.spectral_radii),
            lstm_forget_biases=(0.0, 1.0, 3.0), gru_update_biases=(0.0, 3.0), input_scale=scale,
        )
        print(f"\n(a) ||dL/dh_0|| / ||dL/dh_T|| at initialisation, inputs {scale:g} x N(0, 1) "
              "(LSTM: also dL/dc; 0 = underflow below float32's 1e-45)")
        print(table)
        tables[f"{scale:g}"] = list(table)
    return tables


def clipping(args):
    """(b): the same vanilla RNN trained without and with clipping."""
    runs = exploding_gradient_histories(steps=args.clip_steps)
    rows = []
    summary = {}
    for name, run in runs.items():
        tail = max(len(run["loss"]) // 10, 1)
        summary[name] = {
            "final_loss": statistics.fmean(run["loss"][-tail:]),
            "final_accuracy": statistics.fmean(run["accuracy"][-tail:]),
            "max_grad_norm": max(run["grad_norm"]),
            "median_grad_norm": statistics.median(run["grad_norm"]),
            "steps_above_clip_1": sum(norm > 1.0 for norm in run["grad_norm"]),
        }
        s = summary[name]
        rows.append(f"{name:<12} {s['final_loss']:>10.3f} {s['final_accuracy']:>9.2f} "
                    f"{s['max_grad_norm']:>13.1f} {s['median_grad_norm']:>16.3f}")
    support.print_table(
        f"(b) vanilla RNN, W_hh spectral radius 1.5, SGD 0.3, lag 20, {args.clip_steps} steps "
        "(loss and accuracy: mean of the last tenth of the steps)",
        f"{'run':<12} {'final loss':>10} {'accuracy':>9} {'max grad norm':>13} {'median grad norm':>16}",
        rows,
    )
    return runs, summary


def memory(args):
    """(c): `lag_accuracy` per seed, with open gates and with Keras' gate biases."""
    records = []
    lags = numbers(args.lags, int)
    for seed in numbers(args.seeds, int):
        for gate_bias, cells in ((3.0, ("rnn", "lstm", "gru")), (None, ("lstm", "gru"))):
            table = lag_accuracy(cells=cells, lags=lags, steps=args.steps, gate_bias=gate_bias, seed=seed)
            print(f"\n(c) seed {seed}, gate bias {'Keras' if gate_bias is None else gate_bias}")
            print(table)
            records += list(table)
    summary = []
    for variant, (cell, gate_bias) in {
        "RNN": ("rnn", None), "LSTM, gates open (3)": ("lstm", 3.0), "GRU, gates open (3)": ("gru", 3.0),
        "LSTM, Keras (forget 1)": ("lstm", None), "GRU, Keras (update 0)": ("gru", None),
    }.items():
        for lag in lags:
            accuracies = [r["accuracy"] for r in records
                          if r["cell"] == cell and r["gate_bias"] == gate_bias and r["lag"] == lag]
            summary.append({
                "variant": variant, "cell": cell, "gate_bias": gate_bias, "lag": lag,
                "mean_accuracy": statistics.fmean(accuracies), "accuracies": accuracies,
                "solved": sum(a >= SOLVED for a in accuracies), "runs": len(accuracies),
            })
    header = f"{'model':<24}" + "".join(f"{'T = ' + str(lag):>16}" for lag in lags)
    rows = []
    for variant in dict.fromkeys(row["variant"] for row in summary):
        cells = [row for row in summary if row["variant"] == variant]
        rows.append(f"{variant:<24}" + "".join(
            f"{row['mean_accuracy']:>9.2f} ({row['solved']}/{row['runs']})" for row in cells))
    parameters = {r["cell"]: r["parameters"] for r in records}
    support.print_table(
        f"(c) held-out accuracy on the lag task, mean over seeds (runs with accuracy >= {SOLVED} / runs); "
        f"chance 0.25; {args.steps} steps each; parameters {parameters}",
        header, rows,
    )
    return records, summary


def draw(args, ratio_tables, clipping_runs, memory_records):
    import matplotlib

    matplotlib.use("Agg")
    from rnn_toolkit.plots import (
        plot_clipping_histories,
        plot_gradient_norms,
        plot_gradient_ratios,
        plot_lag_accuracy,
    )

    folder = Path(args.figures)
    folder.mkdir(parents=True, exist_ok=True)
    scale = numbers(args.input_scales)[0]
    length = max(numbers(args.gradient_lags, int))
    curves = gradient_norm_curves(length, spectral_radii=numbers(args.spectral_radii),
                                  lstm_forget_biases=(0.0, 1.0, 3.0), gru_update_biases=(0.0, 3.0),
                                  input_scale=scale)
    ax = plot_gradient_norms(curves, title=f"||dL/dh_t|| at initialisation, T = {length}, inputs {scale:g} N(0, 1)")
    ax.figure.savefig(folder / "gradient_norms.png", dpi=90, bbox_inches="tight")
    radii = np.round(np.arange(0.6, 1.61, 0.1), 2)
    table = gradient_ratio_sweep(numbers(args.gradient_lags, int), spectral_radii=radii, lstm_forget_biases=(),
                                 gru_update_biases=(), input_scale=scale)
    ax = plot_gradient_ratios(table, title=f"vanilla RNN at initialisation, inputs {scale:g} N(0, 1)")
    ax.figure.savefig(folder / "gradient_ratios.png", dpi=90, bbox_inches="tight")
    # One line per cell and gate initialisation.
    labelled = [
        r if r["cell"] == "rnn" else dict(r, cell=f"{r['cell'].upper()}, " + (
            "Keras gate bias" if r["gate_bias"] is None else f"gate bias {r['gate_bias']:g}"))
        for r in memory_records
    ]
    ax = plot_lag_accuracy(labelled, title=f"lag task, equal budget ({args.steps} steps); dots: seeds")
    ax.figure.savefig(folder / "lag_accuracy.png", dpi=90, bbox_inches="tight")
    figure = plot_clipping_histories(clipping_runs, smoothing=10,
                                     title="vanilla RNN, W_hh spectral radius 1.5, SGD 0.3, lag 20")
    figure.savefig(folder / "clipping_histories.png", dpi=90)
    print(f"\nfigures written to {folder}")


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    ratio_tables = gradient_ratios(args)
    clipping_runs, clipping_summary = clipping(args)
    memory_records, memory_summary = memory(args)
    if args.figures:
        draw(args, ratio_tables, clipping_runs, memory_records)
    record = support.run_metadata("gradient_flow_and_lag", args, load_before, started=started)
    record["gradient_ratios_by_input_scale"] = ratio_tables
    record["clipping"] = {"summary": clipping_summary, "histories": clipping_runs}
    record["lag_accuracy"] = {"summary": memory_summary, "records": memory_records}
    print(f"\nwall time {record['wall_seconds']:.0f} s")
    output = Path(args.output) if args.output else support.results_path("gradient_flow_and_lag", args.quick)
    support.write_results(record, output)


if __name__ == "__main__":
    main()
