"""numpydoc validation of every public object of the package, so the docstring style holds without anyone remembering it.

The checks, the exclusions and the per-check overrides are ``[tool.numpydoc_validation]`` in
``pyproject.toml`` (the same table ``python -m numpydoc lint`` reads). One more check is ours:
``MDC01``, a function that raises an ``MdcError`` subclass names it in a ``Raises`` section.

Known debt is listed in ``tests/numpydoc_baseline.txt`` (``object CHECK`` per line): a violation
that is not listed fails (new code is documented), and a listed one that is fixed fails too until
its line is deleted, so the list only shrinks. Rewrite the list after a deliberate change with
``python tests/test_docstrings.py --write-baseline``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is in the dev extra")
from numpydoc import docscrape as numpydoc_docscrape  # noqa: E402
from numpydoc.hooks.validate_docstrings import parse_config  # noqa: E402

import mdc_widgets  # noqa: E402
from mdc_widgets.errors import MdcError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).with_name("numpydoc_baseline.txt")


class _Validator(numpydoc_validate.Validator):
    """numpydoc's validator, tolerating a property built from a lambda (no ``def`` line to report)."""

    def __init__(self, obj_name: str) -> None:
        super().__init__(numpydoc_docscrape.get_doc_object(numpydoc_validate.Validator._load_obj(obj_name)))

    @property
    def source_file_def_line(self) -> int | None:
        try:
            return super().source_file_def_line
        except StopIteration:
            return None


@cache
def config() -> dict:
    """``[tool.numpydoc_validation]`` of pyproject.toml, parsed as numpydoc's own lint hook parses it."""
    return parse_config(ROOT)


def module_names() -> list[str]:
    """Every module of the package except ``__main__`` (importing it runs the command line)."""
    names = [mdc_widgets.__name__]
    for info in pkgutil.walk_packages(mdc_widgets.__path__, prefix="mdc_widgets."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def public_objects(module_name: str) -> list[str]:
    """Dotted names of the module, its public functions and classes, and their public methods and properties.

    Only what the module defines (not what it imports); nested functions are implementation.
    """
    module = importlib.import_module(module_name)
    names = [module_name]
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        names.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_"):
                    continue
                if isinstance(value, staticmethod | classmethod):
                    value = value.__func__
                if inspect.isfunction(value) or isinstance(value, property):
                    names.append(f"{module_name}.{name}.{member}")
    return names


def _resolve(dotted: str) -> object:
    module_name, _, rest = dotted.partition(".")
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = inspect.getattr_static(obj, attr)
        return obj
    raise ImportError(dotted)


def mdc_errors_raised(obj: object) -> set[str]:
    """Names of the ``MdcError`` subclasses a function raises in its own body (not in nested functions)."""
    func = obj.fget if isinstance(obj, property) else obj
    func = getattr(func, "__func__", func)
    if not inspect.isfunction(func):
        return set()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return set()
    body = tree.body[0]
    raised: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = ast.unparse(target).split(".")[-1]
                cls = func.__globals__.get(name)
                if inspect.isclass(cls) and issubclass(cls, MdcError):
                    raised.add(name)
            visit(child)

    visit(body)
    return raised


def violations(dotted: str) -> list[tuple[str, str, str]]:
    """``(file:line, check, message)`` for one object, after the configured checks, exclusions and overrides."""
    cfg = config()
    if cfg["exclude"] is not None and cfg["exclude"].search(dotted):
        return []
    report = numpydoc_validate.validate(dotted, validator_cls=_Validator)
    obj = _resolve(dotted)
    source = inspect.getsourcefile(inspect.unwrap(getattr(obj, "fget", obj))) if not inspect.ismodule(obj) else None
    where = f"{Path(source or report['file'] or '?').resolve().relative_to(ROOT)}:{report['file_line'] or 1}"
    docstring = report["docstring"] or ""
    found = []
    for check, message in report["errors"]:
        if check not in cfg["checks"]:
            continue
        override = cfg["overrides"].get(check)
        if override is not None and override.search(docstring):
            continue
        found.append((where, check, message))
    if docstring:
        sections = re.search(
            r"^\s*Raises\s*\n\s*-+\s*\n(?P<body>(?:.*\n?)*?)(?:^\s*\n\s*\w[\w ]*\n\s*-+|\Z)", docstring, re.M
        )
        documented = set(re.findall(r"^\s*(\w+)\s*$", sections["body"], re.M)) if sections else set()
        missing = sorted(mdc_errors_raised(obj) - documented)
        if missing:
            found.append((where, "MDC01", f"Raises section does not name {', '.join(missing)}"))
    return found


@cache
def all_violations() -> dict[str, list[tuple[str, str, str]]]:
    """Every violation of the package by object name."""
    result = {}
    for module_name in module_names():
        for dotted in public_objects(module_name):
            result[dotted] = violations(dotted)
    return result


def read_baseline() -> set[tuple[str, str]]:
    if not BASELINE.exists():
        return set()
    pairs = set()
    for line in BASELINE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, check = line.split()
            pairs.add((name, check))
    return pairs


def test_every_public_object_is_visited():
    """The walk finds the package's API (a broken walk would make the check vacuous)."""
    names = {name for module in module_names() for name in public_objects(module)}
    assert "mdc_widgets.mining.score.joint_score" in names
    assert "mdc_widgets.mining.score.CompetitionGroup.models" in names  # a property
    assert "mdc_widgets.data.pool.Pool.read_images" in names  # a method
    definitions = names - set(module_names())
    assert not any(name.rsplit(".", 1)[-1].startswith("_") for name in definitions)  # private and dunder: not API
    assert len(names) > 300


def test_validator_catches_the_old_dialect():
    """``name : description`` with no type is what PR04/PR07 flag; a checker that passed it would be useless."""

    def sample(group, weights=None):  # pragma: no cover - only its docstring is read
        """Score the group.

        Parameters
        ----------
        group : the competitors
        weights : the user's weights
        """

    sample.__module__ = __name__
    globals()["_sample_old_dialect"] = sample
    report = numpydoc_validate.validate(f"{__name__}._sample_old_dialect")
    checks = {check for check, _ in report["errors"]}
    assert "PR07" in checks  # the description sits in the type slot, leaving no description


def test_docstrings_follow_numpydoc():
    """No violation outside the baseline, and no baseline entry that no longer fails."""
    current = {(name, check) for name, found in all_violations().items() for _, check, _ in found}
    baseline = read_baseline()
    new = sorted(
        f"{where}: {name}: {check} {message}"
        for name, found in all_violations().items()
        for where, check, message in found
        if (name, check) not in baseline
    )
    fixed = sorted(f"{name} {check}" for name, check in baseline - current)
    problems = []
    if new:
        problems.append(f"{len(new)} docstring violation(s) (see pyproject.toml [tool.numpydoc_validation]):")
        problems += new
    if fixed:
        problems.append(
            f"{len(fixed)} line(s) of {BASELINE.name} are fixed now; delete them "
            "(or run `python tests/test_docstrings.py --write-baseline`):"
        )
        problems += fixed
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-baseline"]:
        lines = sorted({f"{name} {check}" for name, found in all_violations().items() for _, check, _ in found})
        BASELINE.write_text(
            "# Known numpydoc debt: `object CHECK` per line; tests/test_docstrings.py fails on any violation not\n"
            "# listed here and on any listed one that is fixed. Shrink it; never grow it by hand.\n"
            + "".join(line + "\n" for line in lines)
        )
        print(f"{BASELINE}: {len(lines)} entries")
    else:
        for name, found in all_violations().items():
            for where, check, message in found:
                print(f"{where}: {name}: {check} {message}")
