"""No function in the service packages grows past 60 lines: past that it stops fitting in a reader's head,
and it is usually several steps that want names of their own (STYLE.md)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "core", "worker", "ml")
MAX_LINES = 60


def _functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_over_the_limit():
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, line, length in _functions(path)
        if length > MAX_LINES
    ]
    assert not too_long, f"functions over {MAX_LINES} lines: " + "; ".join(too_long)


def test_the_check_sees_a_long_function(tmp_path):
    """The walk above finds a function of 61 lines (so the test can fail)."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert [length for _, _, length in _functions(sample)] == [MAX_LINES + 1]
