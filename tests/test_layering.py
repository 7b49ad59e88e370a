"""The import rules the packages' docstrings state, checked on the source.

Each package's docstring (or a top-level module's) says "Imports from rnn_toolkit: a, b,
c" (a top-level module that says nothing imports nothing from rnn_toolkit); every `import` and `from ... import` in it, at any depth (imports inside functions
count), must name one of those. The task folders add three rules: no task imports
another, only a task's cli.py imports the command line, and a client imports nothing
from rnn_toolkit.
"""

import ast
import re
from pathlib import Path

import pytest

import rnn_toolkit

ROOT = Path(rnn_toolkit.__file__).parent
RULE = re.compile(r"Imports from rnn_toolkit:\s*([^.(]*)")
EXEMPT = {"__init__", "__main__"}  # the top-level facade and entry point import everything


def _imports(path):
    """`(line, module)` of every import of an rnn_toolkit module in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "rnn_toolkit" or name.startswith("rnn_toolkit."):
                yield node.lineno, name


def _allowed(path):
    """The top-level names `path`'s docstring allows, or None if it states no rule."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = RULE.search(" ".join(docstring.split()))
    if match is None:
        return None
    text = match.group(1).replace(" and ", ",")
    return {word.strip() for word in text.split(",") if word.strip() and word.strip() != "nothing"}


def _rule_file(module):
    """The file whose docstring rules `module`: its package's __init__, or itself."""
    relative = module.relative_to(ROOT)
    if len(relative.parts) == 1:
        return module
    return ROOT / relative.parts[0] / "__init__.py"


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_docstring_rules(module):
    relative = module.relative_to(ROOT)
    if len(relative.parts) == 1 and module.stem in EXEMPT:
        return
    rule_file = _rule_file(module)
    allowed = _allowed(rule_file)
    if allowed is None:
        # A package must state its rule; a top-level module without one imports nothing.
        assert rule_file == module, f"{rule_file.relative_to(ROOT)} states no 'Imports from rnn_toolkit:' rule"
        allowed = set()
    own = relative.parts[0] if len(relative.parts) > 1 else module.stem
    for line, name in _imports(module):
        top = name.split(".")[1] if "." in name else "rnn_toolkit"
        assert top in allowed | {own}, (
            f"{relative}:{line} imports {name}; {rule_file.relative_to(ROOT)} allows "
            f"{sorted(allowed | {own})}"
        )


TASK_MODULES = [p for p in _modules() if p.relative_to(ROOT).parts[0] == "tasks" and len(p.relative_to(ROOT).parts) == 3]


@pytest.mark.parametrize("module", TASK_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_task_imports_no_other_task_and_its_client_nothing(module):
    task = module.parent.name
    for line, name in _imports(module):
        where = f"{module.relative_to(ROOT)}:{line} imports {name}"
        assert module.name != "client.py", f"{where}: a client imports nothing from rnn_toolkit"
        parts = name.split(".")
        if parts[1:2] == ["tasks"]:
            assert parts[2:3] == [task], f"{where}: a task imports no other task"
        if parts[1:2] == ["cli"]:
            assert module.name == "cli.py", f"{where}: only a task's cli.py imports the command line"


def test_the_command_lines_shared_modules_name_no_task():
    from rnn_toolkit.cli.tasks import task_names

    for module in (ROOT / "cli").glob("*.py"):
        if module.name == "tasks.py":
            continue
        source = module.read_text(encoding="utf-8")
        for name in task_names():
            assert not re.search(rf"\b{name}\b", source), f"cli/{module.name} names the task {name!r}"


def test_the_rules_catch_a_forbidden_import(tmp_path):
    # The checker itself: a data module importing a model must be caught.
    module = tmp_path / "bad.py"
    module.write_text('"""Imports from rnn_toolkit: arguments."""\nfrom rnn_toolkit.tasks.char_lm.model import build_char_lm\n')
    assert _allowed(module) == {"arguments"}
    assert [name for _, name in _imports(module)] == ["rnn_toolkit.tasks.char_lm.model"]
