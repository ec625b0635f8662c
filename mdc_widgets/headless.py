"""Run the project's notebooks headless with papermill and collect them into an HTML report."""

from __future__ import annotations

import ast
import html
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mdc_widgets.errors import MdcError

__all__ = [
    "check_parameter",
    "headless_runner",
    "list_notebooks",
    "load_parameters",
    "notebooks_dir",
    "render_notebooks",
    "run_notebook",
    "validate_parameters",
]


# programs that execute a notebook without anyone watching: their kernels have no widget front end
HEADLESS_RUNNERS = ("papermill", "nbconvert", "jupyter-nbconvert", "jupyter-execute", "nbclient", "pytest", "py.test")
# servers that do render widgets: a kernel below one of these has a front end, whoever started the server
FRONTEND_SERVERS = (
    "jupyter-lab",
    "jupyterlab",
    "jupyter-notebook",
    "notebook",
    "jupyter-server",
    "jupyter_server",
    "jupyter-nbclassic",
    "nbclassic",
    "voila",
)


def _process_parent_and_words(pid: int) -> tuple[int, list[str]]:
    """A process's parent id and the base names of its command-line words (Linux /proc, else psutil)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        # the parent id is the 2nd field after the ")" that closes the command name in /proc/<pid>/stat
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        try:
            import psutil

            process = psutil.Process(pid)
            words, parent = process.cmdline(), process.ppid()
        except Exception:  # no /proc and no psutil, or the process is gone: nothing to learn
            return 0, []
    return parent, [Path(w).name.removesuffix(".py").lower() for w in words if w]


def headless_runner(max_depth: int = 6) -> str | None:
    """The program executing this kernel with no widget front end (papermill, nbconvert, nbval), or None.

    A papermill or nbconvert kernel is a ``ZMQInteractiveShell`` like a
    JupyterLab one, so the shell type cannot tell them apart; the processes
    above the kernel can. Walking up from the kernel's parent, the first
    program that is a notebook server (JupyterLab, Notebook, Voila) means a
    front end is there (None); the first headless runner (papermill,
    nbconvert, ``jupyter execute``, pytest with nbval, also through an xdist
    worker) is returned by name. A kernel a Jupyter server started carries
    ``JPY_SESSION_NAME`` and is never headless.

    Parameters
    ----------
    max_depth : int, optional
        How many ancestor processes to look at.

    Returns
    -------
    str or None
        The runner's name, e.g. ``"papermill"``; None where a front end may show widgets.

    Examples
    --------
    >>> headless_runner(max_depth=0) is None
    True
    """
    if os.environ.get("JPY_SESSION_NAME"):
        return None
    pid = os.getppid()
    for _ in range(max_depth):
        if pid <= 1:
            return None
        pid_parent, words = _process_parent_and_words(pid)
        if any(w in FRONTEND_SERVERS for w in words):
            return None
        runner = next((w for w in words if w in HEADLESS_RUNNERS), None)
        if runner is not None:
            return runner
        pid = pid_parent
    return None


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the source checkout."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def list_notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def _find(name: str) -> Path:
    path = Path(name)
    if path.exists():
        return path
    matches = [p for p in list_notebooks() if p.stem == name or p.stem.startswith(name) or p.name == name]
    if not matches:
        known = ", ".join(p.stem for p in list_notebooks())
        raise MdcError(f"No notebook {name!r}; the notebooks are: {known}.")
    return matches[0]


def load_parameters(path: str | Path | None, overrides: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Parameters from a YAML file, then ``key value`` overrides parsed as YAML scalars.

    A YAML file may hold one mapping for every notebook, or a mapping per
    notebook stem under ``notebooks:`` plus shared values at the top level.

    Parameters
    ----------
    path : str or pathlib.Path or None
        The YAML file; None for overrides only.
    overrides : sequence of tuple of 2 str, optional
        ``(key, value)`` pairs (e.g. from ``--param``) set after the file, values parsed with ``yaml.safe_load``.

    Returns
    -------
    dict of {str: object}
        The parameters, ``notebooks`` holding the per-notebook mappings if the file has them.

    Raises
    ------
    MdcError
        When the file cannot be read or parsed, or does not hold a mapping.
    """
    params: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise MdcError(f"Cannot read parameters file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise MdcError(f"The parameters file {path} must hold a mapping of names to values.")
        params.update(loaded)
    for key, value in overrides:
        params[key] = yaml.safe_load(value)
    return params


def _kind(value: Any) -> str | None:
    """The kind a parameter default fixes: "int", "number", "str", "list[<kind>]", or None (anything)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and value:
        kinds = {_kind(v) for v in value}
        if kinds <= {"int", "number"}:
            return "list[number]" if "number" in kinds else "list[int]"
        return f"list[{kinds.pop()}]" if len(kinds) == 1 else None
    return None


def _fits(value: Any, kind: str) -> bool:
    if kind.startswith("list["):
        return isinstance(value, list) and all(_fits(v, kind[5:-1]) for v in value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool}[kind])


def check_parameter(name: str, value: Any, default: Any, where: str = "the notebook") -> None:
    """Refuse a parameter value of another kind than its default, or a negative (or zero) size.

    A default of ``None`` or an expression accepts anything. Counts and sizes
    (whole-number defaults) must be at least 1, seeds at least 0, numbers at
    least 0.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        The value given.
    default : object
        The notebook's default, which fixes the kind.
    where : str, optional
        What declares the parameter, for the message.

    Raises
    ------
    MdcError
        When the value's kind differs from the default's or it is below its least value.

    Examples
    --------
    >>> check_parameter("pool_size", 400, 3000)
    >>> check_parameter("pool_size", -5, 3000)
    Traceback (most recent call last):
    ...
    mdc_widgets.errors.MdcError: Parameter 'pool_size' of the notebook must be at least 1; got -5.
    >>> check_parameter("seeds", [1, "x"], [1, 2, 3])
    Traceback (most recent call last):
    ...
    mdc_widgets.errors.MdcError: Parameter 'seeds' of the notebook takes a list of whole numbers (like [1, 2, 3]); got [1, 'x'].
    """
    kind = _kind(default)
    if kind is None:
        return
    if not _fits(value, kind):
        words = {"int": "a whole number", "number": "a number", "str": "a string", "bool": "true or false"}
        wanted = f"a list of {words[kind[5:-1]].split(' ', 1)[1]}s" if kind.startswith("list[") else words[kind]
        raise MdcError(f"Parameter {name!r} of {where} takes {wanted} (like {default!r}); got {value!r}.")
    least = 0 if (name.startswith("seed") or kind.endswith("number]") or kind == "number") else 1
    numbers = value if isinstance(value, list) else [value]
    if kind.replace("list[", "").rstrip("]") in ("int", "number") and any(v < least for v in numbers):
        raise MdcError(f"Parameter {name!r} of {where} must be at least {least}; got {value!r}.")


def validate_parameters(notebooks: Sequence[Path], parameters: Mapping[str, Any]) -> None:
    """Check every parameter against the defaults the notebooks declare, before anything runs.

    Parameters
    ----------
    notebooks : sequence of pathlib.Path
        The notebooks that will run.
    parameters : mapping of {str: object}
        :func:`load_parameters`' dict (shared values and a ``notebooks:`` mapping per stem).

    Raises
    ------
    MdcError
        Naming the parameter: one no notebook declares (a typo), or a value of
        the wrong kind or out of range (see :func:`check_parameter`).
    """
    import papermill as pm

    def declared_by(notebook: Path) -> dict[str, str]:
        return {p["name"]: p["default"] for p in pm.inspect_notebook(str(notebook)).values()}

    # one YAML file may serve every notebook: a name is a typo only when no notebook at all declares it
    declared_anywhere = {name for notebook in {*list_notebooks(), *notebooks} for name in declared_by(notebook)}
    for notebook in notebooks:
        declared = declared_by(notebook)
        for name, value in _params_for(notebook, parameters).items():
            if name in declared:
                try:
                    default = ast.literal_eval(declared[name])
                except (ValueError, SyntaxError):  # an expression (an f-string, a comprehension): not checked
                    continue
                check_parameter(name, value, default, f"notebook {notebook.stem}")
    unknown = sorted(set(parameters) - declared_anywhere - {"notebooks"})
    if unknown:
        raise MdcError(
            f"No notebook takes the parameter(s) {unknown}; the notebooks take: {', '.join(sorted(declared_anywhere))}."
        )


def _params_for(notebook: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    shared = {k: v for k, v in params.items() if k != "notebooks"}
    own = (params.get("notebooks") or {}).get(notebook.stem, {})
    return {**shared, **own}


def run_notebook(
    notebook: str | Path,
    output_dir: str | Path,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: int = 3600,
) -> Path:
    """Execute one notebook with papermill; returns the executed copy in ``output_dir``.

    Only the parameters the notebook declares in its ``parameters`` cell are
    passed, so one YAML file can serve every notebook.

    Parameters
    ----------
    notebook : str or pathlib.Path
        A path, or a notebook's stem (or its start) among :func:`list_notebooks`.
    output_dir : str or pathlib.Path
        Where the executed copy is written (created); also passed as ``output_dir`` if declared.
    parameters : mapping of {str: object} or None, optional
        Values for the notebook's parameters; undeclared ones are dropped.
    kernel_name : str or None, optional
        Jupyter kernel; None for the notebook's own.
    timeout : int, optional
        Seconds a cell may run.

    Returns
    -------
    pathlib.Path
        ``output_dir / <notebook file name>``.

    Raises
    ------
    MdcError
        When no notebook matches ``notebook``.
    """
    import papermill as pm

    source = _find(str(notebook))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    declared = {p["name"] for p in pm.inspect_notebook(str(source)).values()}
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    if "output_dir" in declared:
        params.setdefault("output_dir", str(output_dir.resolve()))
    target = output_dir / source.name
    # a papermill kernel cannot tell it has no front end: ask the widgets for static figures
    os.environ.setdefault("MDC_WIDGETS_STATIC", "1")
    pm.execute_notebook(
        str(source),
        str(target),
        parameters=params,
        kernel_name=kernel_name,
        cwd=str(source.parent),
        progress_bar=False,
        request_save_on_cell_execute=True,
        execution_timeout=timeout,
    )
    return target


def render_notebooks(
    notebooks: Sequence[str | Path] | None = None,
    output_dir: str | Path = "reports",
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
) -> Path:
    """Run notebooks headless and write a static site: one page per notebook and an entry ``index.html``.

    Every page shows its notebook's figures without a kernel (plotly.js is
    written once into ``output_dir``); the entry page lists the notebooks in
    the learning order with each one's goal and first figure
    (:func:`mdc_widgets.site.build_site`). A failing notebook is reported in the index (with its error) and the
    others still run; the call raises at the end so scripts and CI notice.

    Parameters
    ----------
    notebooks : sequence of str or pathlib.Path or None, optional
        Paths or stems; None for every notebook in learning order.
    output_dir : str or pathlib.Path, optional
        The site's folder (created).
    parameters : mapping of {str: object} or None, optional
        :func:`load_parameters`' dict, validated before anything runs.
    kernel_name : str or None, optional
        Jupyter kernel; None for each notebook's own.

    Returns
    -------
    pathlib.Path
        ``output_dir / "index.html"``.

    Raises
    ------
    MdcError
        When a parameter is refused (:func:`validate_parameters`), a notebook is not found, or,
        after every notebook ran and the site is written, when any notebook failed.
    """
    from mdc_widgets.site import NotebookPage, build_site, write_page

    output_dir = Path(output_dir)
    selected = [_find(str(n)) for n in notebooks] if notebooks else list_notebooks()
    validate_parameters(selected, parameters or {})  # a bad value fails here, not an hour into a run
    pages, failures = [], []
    for nb in selected:
        t0 = time.perf_counter()
        try:
            executed = run_notebook(nb, output_dir, _params_for(nb, parameters or {}), kernel_name)
            page = write_page(executed, executed.with_suffix(".html"))
        except Exception as exc:  # a notebook's failure must not hide the others'
            failures.append(f"{nb.name}: {exc}")
            page = NotebookPage(stem=nb.stem, title=nb.stem, goal="", error=str(exc))
        page.seconds = time.perf_counter() - t0
        pages.append(page)
    tables = [p for p in sorted(output_dir.glob("*.md"))]
    table_html = "".join(f"<h2>{html.escape(p.stem)}</h2><pre>{html.escape(p.read_text())}</pre>" for p in tables)
    index = build_site(pages, output_dir, extra_html=table_html)
    if failures:
        raise MdcError("Some notebooks failed (see " + str(index) + "): " + "; ".join(failures))
    return index
