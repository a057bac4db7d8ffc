"""The package's layout: small modules and small functions, so that each can be read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import adain

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # from the ``def`` line to the last line of the body, the docstring not counted


def test_modules_and_functions_stay_small():
    root = Path(adain.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(root.parent).as_posix()
        if len(source.splitlines()) > MAX_MODULE_LINES:
            offenders.append(f"{name}: {len(source.splitlines())} lines (module)")
        scopes = [(node, "") for node in ast.parse(source).body]
        while scopes:
            node, prefix = scopes.pop()
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            qualname = prefix + node.name
            scopes.extend((child, qualname + ".") for child in ast.iter_child_nodes(node))
            if isinstance(node, ast.ClassDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines -= first.end_lineno - first.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                offenders.append(f"{name}:{node.lineno} {qualname}: {lines} lines (function, docstring excluded)")
    assert not offenders, (
        f"modules over {MAX_MODULE_LINES} lines or functions over {MAX_FUNCTION_LINES} lines; split them "
        "along their seams:\n" + "\n".join(offenders)
    )
