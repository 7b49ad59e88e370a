"""Running the command line in-process, shared by the CLI test files."""

import contextlib
import io
import sys

from rnn_toolkit import cli


def run_cli(argv, stdin=None):
    """Runs cli.main in this process; returns (exit status, stdout, stderr).

    `stdin` may be str, or bytes (read through a UTF-8 text wrapper, as a real stdin).
    """
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if isinstance(stdin, bytes):
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    elif stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main([str(arg) for arg in argv])
            except SystemExit as exit_:  # argparse: --help and parse errors
                status = exit_.code
    finally:
        sys.stdin = old_stdin
    return status, out.getvalue(), err.getvalue()


def assert_usage_error(result, option):
    status, _, err = result
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], err


def parse(argv):
    """The parsed arguments of `argv` (unknown options fail the test)."""
    _, args, extras = cli.parse_args(argv)
    assert not extras, extras
    return args


def task_config(args):
    """The run config a `train` (or `demo`) command line asks for."""
    from rnn_toolkit.cli.options import config_from_args
    from rnn_toolkit.cli.tasks import get_task

    return config_from_args(args, get_task(args.task).config)
