"""The `rnn-toolkit` command line (also `python -m rnn_toolkit`); see `rnn_toolkit.cli.main`.

Imports from rnn_toolkit: cli, runs. The tasks come from the registry
(`rnn_toolkit.cli.tasks`), which imports them by name when asked: the command line's
shared modules import no task, and only the registry names one.
"""

from rnn_toolkit.cli.main import build_parser, main, parse_args

__all__ = ["build_parser", "main", "parse_args"]
