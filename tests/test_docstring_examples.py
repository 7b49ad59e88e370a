"""Every `Example:` in a docstring runs: a broken example is a broken promise."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_toolkit

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(rnn_toolkit.__path__, prefix="rnn_toolkit.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("module_name", ["rnn_toolkit", *MODULES])
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    # Examples may use the usual short names without importing them.
    extraglobs = {"rnn_toolkit": rnn_toolkit, "tf": tf, "np": np, "keras": keras}
    for test in finder.find(module, module_name, extraglobs=extraglobs):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) failed in {module_name}"
