"""Executes the notebooks in place, so that their stored outputs are real and current.

    python notebooks/execute.py                     # every notebooks/*.ipynb, FULL settings
    python notebooks/execute.py 01_char_language_model.ipynb
    python notebooks/execute.py --quick             # RNN_TOOLKIT_QUICK=1: a smoke run

Each notebook runs top to bottom in a fresh kernel (its own folder as the working directory).
The stored result keeps what a reader should see and nothing that changes from run to run
without meaning anything:

* stderr streams are dropped (TensorFlow's C++ start-up lines are written to stderr before its
  logging can be configured, so they cannot all be silenced from inside the notebook);
* cell timing metadata is not recorded.

A notebook is written back only if every cell ran without error; a failing cell aborts with
its traceback and leaves the stored notebook untouched.

`make notebooks` runs this script with the FULL settings (RNN_TOOLKIT_QUICK is removed from the
kernel's environment unless `--quick` is given).
"""

import argparse
import os
import pathlib
import sys
import time

import nbclient
import nbformat

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parent
QUICK_ENV_VAR = "RNN_TOOLKIT_QUICK"


def strip_run_noise(notebook):
    """Removes stderr stream outputs and timing metadata, and joins consecutive stdout chunks.

    How a cell's printing is cut into stream messages depends on timing; joining the chunks
    keeps a re-run's diff down to what really changed.

    Returns:
        The number of stderr outputs dropped.
    """
    dropped = 0
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.get("output_type") == "stream":
                if output.get("name") == "stderr":
                    dropped += 1
                    continue
                previous = kept[-1] if kept else None
                if previous is not None and previous.get("output_type") == "stream" and previous.get("name") == output.get("name"):
                    previous["text"] += output["text"]
                    continue
            kept.append(output)
        cell.outputs = kept
    return dropped


def execute(path, *, timeout, kernel_name):
    """Runs one notebook in place; returns the elapsed seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name or notebook.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - start
    dropped = strip_run_noise(notebook)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    print(f"{path.name}: executed in {elapsed / 60:.1f} min; {dropped} stderr output(s) dropped", flush=True)
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=pathlib.Path,
        help="notebooks to run (default: every notebooks/*.ipynb); names are looked up in notebooks/",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"run with {QUICK_ENV_VAR}=1 (small settings, for a smoke test; don't commit the result)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=3600,
        help="seconds one cell may run before the run is aborted (default: 3600)",
    )
    parser.add_argument("--kernel", default=None, help="kernel name (default: the notebook's own)")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    paths = [p if p.exists() else NOTEBOOK_DIR / p for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")

    # The kernel inherits this process's environment.
    if args.quick:
        os.environ[QUICK_ENV_VAR] = "1"
    else:
        os.environ.pop(QUICK_ENV_VAR, None)

    total = 0.0
    for path in paths:
        print(f"{path.name}: running ({'QUICK' if args.quick else 'FULL'} settings) ...", flush=True)
        total += execute(path.resolve(), timeout=args.timeout, kernel_name=args.kernel)
    print(f"done: {len(paths)} notebook(s) in {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
