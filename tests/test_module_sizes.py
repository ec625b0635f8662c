"""No module over 500 lines without a reason written at its top, and none whose code alone passes 500.

Docstrings with examples are welcome and may make a module long; the code (lines that are not
blank, comments or docstrings) must stay under 500 lines, where one concept still fits in a head.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mdc_widgets"
REASON = "Why this module is long:"


def code_lines(source: str) -> int:
    """Lines that are neither blank, comments nor docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def test_code_lines_count_only_code():
    assert code_lines('"""Doc.\n\nMore."""\n\n# a comment\nx = 1\n\n\ndef f():\n    """Doc."""\n    return x\n') == 3


def test_every_long_module_says_why_and_its_code_stays_under_500_lines():
    too_long, unexplained = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = str(path.relative_to(PACKAGE.parent))
        if code_lines(source) > 500:
            too_long.append(f"{name}: {code_lines(source)} lines of code")
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if source.count("\n") > 500 and REASON not in docstring:
            unexplained.append(f"{name}: {source.count(chr(10))} lines")
    assert too_long == [], "split these modules: " + "; ".join(too_long)
    assert unexplained == [], f"say at the top of these modules '{REASON} ...': " + "; ".join(unexplained)
