"""Atomic writes: a result on disk is either the old one or the new one, never half.

A failing write (a full disk, no permission) raises
:class:`mdc_widgets._locking.StorageError` naming the path and the fix; it is
also an ``OSError``, so existing handlers still catch it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdc_widgets._locking import storage_error, storage_errors
from mdc_widgets.errors import MdcError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder is created, an existing file is
        replaced only once the new content is on disk (fsynced), mode 0o644.
    data : bytes
        The whole new content.

    Raises
    ------
    StorageError
        When the disk refuses the write (no space, no permission, read-only);
        the message names the folder. ``path`` is then left as it was.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; results are meant to be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (see :func:`atomic_write_bytes`).
    text : str
        The whole new content, encoded as UTF-8.

    Raises
    ------
    StorageError
        When the disk refuses the write; ``path`` is then left as it was.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (see :func:`atomic_write_bytes`).
    obj : object
        Anything ``json.dumps`` takes; keys are sorted, and values it cannot
        encode (paths, numpy scalars) are written as ``str(value)``.

    Raises
    ------
    StorageError
        When the disk refuses the write; ``path`` is then left as it was.
    """
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Build a directory (e.g. a zarr store) with ``write(tmp_dir)``, then move it into place.

    An existing directory at ``path`` is replaced only after ``write`` succeeded.

    Parameters
    ----------
    path : str or os.PathLike
        The directory to create or replace.
    write : callable
        ``write(tmp_dir)`` fills a fresh temporary directory beside ``path``
        (same file system, so the final rename is atomic); if it raises, the
        temporary directory is removed and ``path`` is untouched.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StorageError
        When the disk fails while the directory is built or moved into place.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except MdcError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:  # a full disk while the directory was built or moved into place
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(exc, path) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
