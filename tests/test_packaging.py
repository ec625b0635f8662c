"""The package builds without warnings and its wheel installs and runs outside the source tree.

Cheap on purpose: the wheel is built once per source state (cached in the
pytest cache, or a temporary folder without one) without build isolation,
and the fresh venv reuses this environment's installed dependencies (torch
included) through a ``.pth`` file, so only the wheel itself is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([ROOT / "pyproject.toml", ROOT / "README.md", *(ROOT / "mdc_widgets").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _clean_env() -> dict[str, str]:
    # PYTHONPATH would import the source tree instead of the installed wheel
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("build")
    cache = getattr(request.config, "cache", None)
    folder = (
        Path(cache.mkdir("mdc_wheel")) if cache is not None else tmp_path_factory.mktemp("wheel")
    ) / _source_digest()
    log = folder / "build.log"
    if not list(folder.glob("*.whl")):
        import shutil

        folder.mkdir(parents=True, exist_ok=True)
        # build from a copy: setuptools writes an egg-info folder into the tree it builds
        source = tmp_path_factory.mktemp("source")
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, source / name)
        shutil.copytree(ROOT / "mdc_widgets", source / "mdc_widgets", ignore=shutil.ignore_patterns("__pycache__"))
        done = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(folder), str(source)],
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=folder,
            timeout=300,
        )
        log.write_text(done.stdout + done.stderr)
        assert done.returncode == 0, done.stderr[-3000:]
    return {"wheel": next(folder.glob("*.whl")), "sdist": next(folder.glob("*.tar.gz")), "log": log}


@pytest.mark.slow
def test_build_has_no_warnings_and_ships_the_typed_marker(built):
    import zipfile

    text = built["log"].read_text().lower()
    # byte-compiling messages only say the environment set PYTHONDONTWRITEBYTECODE
    warnings = [line for line in text.splitlines() if "warning" in line and "byte-compiling" not in line]
    assert not warnings, warnings
    names = zipfile.ZipFile(built["wheel"]).namelist()
    assert "mdc_widgets/py.typed" in names and "mdc_widgets/export/coco.py" in names
    metadata = zipfile.ZipFile(built["wheel"]).read("mdc_widgets-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    for extra in ("widgets", "dask", "annotation", "fiftyone", "dev"):
        assert f"Provides-Extra: {extra}" in metadata
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in core if any(w in line for w in ("ipywidgets", "jupyterlab", "distributed"))]


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs_without_jupyter(built, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # the dependencies (torch, xarray, ...) come from this environment, appended after the venv's own packages
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(built["wheel"])],
        check=True,
        env=_clean_env(),
        timeout=300,
    )
    probe = (
        "import sys, mdc_widgets, mdc_widgets.session, mdc_widgets.export, mdc_widgets.mining.job;"
        "print(mdc_widgets.__file__);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'anywidget', 'distributed')))"
    )
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, env=_clean_env(), cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, widget_modules = done.stdout.splitlines()
    assert where.startswith(str(venv)), where  # the installed wheel, not the source tree
    assert widget_modules == "[]"  # the core never imports the widget layer or the distributed scheduler
    models = subprocess.run(
        [str(python), "-m", "mdc_widgets", "models"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert models.returncode == 0 and "sod: " in models.stdout, models.stderr[-3000:]


def test_environment_yml_lists_the_core_and_the_annotation_extra():
    import re

    import tomllib
    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    listed = set()
    for entry in env:
        for item in entry["pip"] if isinstance(entry, dict) else [entry]:
            listed.add(re.split(r"[<>=!\s\[]", item.strip(), maxsplit=1)[0].lower())
    listed |= {"build"} if "python-build" in listed else set()  # conda-forge's name of `build`
    wanted = project["dependencies"] + project["optional-dependencies"]["annotation"]
    missing = [d for d in wanted if re.split(r"[<>=!\s\[;]", d, maxsplit=1)[0].lower() not in listed]
    assert not missing, f"environment.yml lacks {missing}"
