"""Rooms that stay readable in one sitting (issue 13): no module of the package over 450 lines,
no function over 50, no class with more than 20 public methods. Migrations live outside the
package (migrations/), so the generated ones are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scheduler"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 50
MAX_PUBLIC_METHODS = 20


def _sources() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(PACKAGE.parent)), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))
    ]


def oversized(name: str, text: str) -> list[str]:
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
        elif isinstance(node, ast.ClassDef):
            public = [
                f.name
                for f in node.body
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                and not f.name.startswith("_")
            ]
            if len(public) > MAX_PUBLIC_METHODS:
                found.append(f"{name}:{node.lineno} {node.name}: {len(public)} public methods")
    return found


def test_modules_functions_and_classes_stay_small() -> None:
    assert [problem for name, text in _sources() for problem in oversized(name, text)] == []


def test_the_size_check_sees_each_kind_of_excess() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    methods = "\n".join(f"    def m{i}(self): ..." for i in range(MAX_PUBLIC_METHODS + 1))
    text = f"def long():\n{body}\n\nclass Wide:\n{methods}\n" + "\n" * MAX_MODULE_LINES
    found = oversized("x.py", text)
    assert len(found) == 3, found
