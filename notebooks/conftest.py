"""pytest configuration for the notebooks (run with `--nbval-lax`).

The notebooks read `RNN_TOOLKIT_QUICK` to choose small settings. nbval starts each kernel
from this process, and the kernel inherits its environment, so setting the variable here,
when pytest imports this file, makes every notebook test run in QUICK mode.
"""

import os

os.environ["RNN_TOOLKIT_QUICK"] = "1"
