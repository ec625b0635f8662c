"""Cross-process coordination and disk errors: an advisory file lock, and ``OSError`` made into ``MdcError``.

The lock is ``fcntl.flock`` on a small lock file beside the data: the kernel
drops it when its holder exits, even by ``kill -9``, so a crashed writer never
leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mdc_widgets.errors import MdcError

__all__ = ["LockTimeout", "StorageError", "file_lock", "storage_error", "storage_errors"]

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class LockTimeout(MdcError, TimeoutError):
    """Another process held a lock for longer than the caller wanted to wait."""


class StorageError(MdcError, OSError):
    """Writing to (or reading from) the disk failed: no space left, no permission, a read-only folder."""


def storage_error(exc: OSError, path: str | os.PathLike, doing: str = "writing") -> StorageError:
    """The ``StorageError`` for ``exc`` raised while ``doing`` ``path``: names the folder and the fix.

    Parameters
    ----------
    exc : OSError
        The failure; its ``errno`` picks the message (no space or quota,
        no permission or read-only, anything else).
    path : str or os.PathLike
        The file or folder that was being written or read.
    doing : str, optional
        What was being done, as it reads in ``"while <doing> <path>"``.

    Returns
    -------
    StorageError
        The error to raise (``from exc``); it is not raised here.

    Examples
    --------
    >>> import errno
    >>> str(storage_error(OSError(errno.ENOSPC, "No space left on device"), "/data/store/a.zarr"))[:60]
    'No space left on the device of /data/store while writing /da'
    >>> type(storage_error(PermissionError(errno.EACCES, "denied"), "/x/y")).__name__
    'StorageError'
    """
    path = Path(path)
    if exc.errno in _NO_SPACE:
        return StorageError(
            f"No space left on the device of {path.parent} while {doing} {path}; free space there "
            "(or point the store at another disk) and run again: finished work is kept."
        )
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(
            f"No permission for {doing} {path} ({exc.strerror or exc}); make {path.parent} writable "
            "for this user, or choose another folder."
        )
    return StorageError(f"The disk failed while {doing} {path} ({type(exc).__name__}: {exc}); check the folder.")


@contextmanager
def storage_errors(path: str | os.PathLike, doing: str = "writing") -> Iterator[None]:
    """Turn an ``OSError`` inside the block into a :class:`StorageError` naming ``path`` (``MdcError`` pass).

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder the block works on, named in the message.
    doing : str, optional
        What the block does, as it reads in ``"while <doing> <path>"``.

    Yields
    ------
    None
        Control to the block.

    Raises
    ------
    StorageError
        When the block raises an ``OSError`` (an ``MdcError`` passes unchanged).
    """
    try:
        yield
    except MdcError:
        raise
    except OSError as exc:
        raise storage_error(exc, path, doing) from exc


@contextmanager
def file_lock(
    path: str | os.PathLike,
    *,
    timeout: float | None = None,
    poll: float = 0.05,
    what: str = "this file",
    on_wait: Callable[[], None] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block.

    Parameters
    ----------
    path : str or os.PathLike
        The lock file (its content is never read).
    timeout : float or None, optional
        Seconds to wait for another holder; None waits as long as it takes.
    poll : float, optional
        Seconds between tries while waiting.
    what : str, optional
        What the lock protects, for the error message.
    on_wait : callable or None, optional
        Called once when another process holds the lock (e.g. to say why nothing happens).

    Yields
    ------
    pathlib.Path
        The lock file, held until the block exits (normally or by an exception).

    Raises
    ------
    LockTimeout
        When another process still holds the lock after ``timeout`` seconds.
    StorageError
        When the lock file cannot be created (no permission, no space).

    Examples
    --------
    >>> import tempfile, os
    >>> lock = os.path.join(tempfile.mkdtemp(), ".lock")
    >>> with file_lock(lock):
    ...     pass
    """
    path = Path(path)
    with storage_errors(path, "locking"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"Another process is writing {what} (it holds the lock {path}) and did not finish "
                        f"within {timeout:g} s; wait for it to finish, then run again."
                    ) from None
                time.sleep(poll)
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
