"""`python -m rnn_toolkit`: the `rnn-toolkit` command line (see `rnn_toolkit.cli`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnn_toolkit.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
