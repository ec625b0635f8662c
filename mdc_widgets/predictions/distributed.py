"""Predict a pool on a Dask cluster: each worker runs inference on its shards and writes their chunks itself.

A *shard* is a run of consecutive chunks, one Dask task. The pool and the
model sources are sent once to every worker (``scatter(broadcast=True)``);
a worker builds each model once and keeps it for all its shards. Workers
write distinct chunk files of the same zarr stores (done flag last), so the
client only creates the stores, hands out shards and collects failures.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mdc_widgets.config import resolve_device
from mdc_widgets.data.pool import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.predictions._layout import open_arrays, prediction_store_path, split_reference
from mdc_widgets.predictions._runner import RunCancelled, RunOptions, is_cancelled, memory_format, run_chunks

__all__ = ["ModelSource", "model_sources", "run_on_cluster", "split_shards"]


@dataclass
class ModelSource:
    """How a worker gets a competitor: rebuilt from a registered name and checkpoint file, or unpickled.

    ``competitor`` is set for shipped models; ``checkpoint`` (a path) and
    ``spec`` for registered ones. ``spec`` lets a worker register a model
    that only the client's session registered.

    Parameters
    ----------
    name : str
        The competitor's name (the ``model`` coordinate).
    task : {"ss", "sod"}
        Its task.
    classes : tuple of str
        Its class names.
    checkpoint : object, optional
        Path (str) of the checkpoint file a registered model loads on the
        worker; None for shipped models.
    spec : object, optional
        The :class:`~mdc_widgets.models.spec.ModelSpec` of a registered model.
    competitor : object, optional
        The competitor itself, pickled to the workers (unregistered models,
        random or in-memory weights).
    _built : dict, optional
        Per-process cache of built competitors by device; never pickled.
    """

    name: str
    task: str
    classes: tuple[str, ...]
    checkpoint: Any = None
    spec: Any = None
    competitor: Any = None
    _built: dict = field(default_factory=dict, repr=False, compare=False)

    def build(self, device: str) -> Any:
        """The competitor on ``device``, built once per worker process.

        Parameters
        ----------
        device : str
            The worker's torch device (``"cpu"``, ``"cuda"``).

        Returns
        -------
        object
            The competitor (a shipped one moved to ``device``, or a registered
            one rebuilt with ``get_model`` from its name and checkpoint).
        """
        if device not in self._built:
            if self.competitor is not None:
                competitor = self.competitor
                if hasattr(competitor, "to"):
                    competitor = competitor.to(device) or competitor
            else:
                from mdc_widgets.models import get_model, list_models, register_model

                if self.name not in list_models():
                    s = self.spec
                    register_model(
                        s.name,
                        s.builder,
                        s.task,
                        s.classes,
                        description=s.description,
                        cam_layer=s.cam_layer,
                        preprocess=s.preprocess,
                        output=s.output,
                        tags=s.tags,
                        overwrite=True,
                    )
                competitor = get_model(self.name, checkpoint=self.checkpoint, device=device)
            self._built[device] = competitor
        return self._built[device]

    def __getstate__(self) -> dict:
        # a built model stays on its worker; only the recipe travels
        return {**self.__dict__, "_built": {}}


def model_sources(models: Sequence[Any]) -> list[ModelSource]:
    """Resolve what each worker needs to get the competitors ``models`` (on the client, once).

    A registered name (or ``(name, checkpoint)``) whose checkpoint is a file
    is shipped as name + path, so workers load the same weights without
    training or downloading anything; anything else is built here and
    shipped pickled (random initialisation must be the same everywhere).

    Parameters
    ----------
    models : sequence of object
        Competitors, registered names, or ``(name, checkpoint)`` pairs.

    Returns
    -------
    list of ModelSource
        One per model, in order.

    Raises
    ------
    UnknownModelError
        When a name is not registered.
    MdcError
        When a checkpoint path does not exist.
    """
    sources = []
    for model in models:
        reference = split_reference(model)
        if reference is None:
            sources.append(ModelSource(model.name, model.task, tuple(model.classes), competitor=model))
            continue
        from mdc_widgets.models import get_model
        from mdc_widgets.models.registry import model_spec

        name, checkpoint = reference
        spec = model_spec(name)
        if isinstance(checkpoint, str) and checkpoint == "default":
            # trains or fetches the default checkpoint here, once, not on every worker
            checkpoint = spec.default_weights() if spec.default_weights else None
        if isinstance(checkpoint, (str, Path)):
            path = Path(checkpoint).resolve()
            if not path.exists():
                raise MdcError(f"Checkpoint file {path} for model {name!r} not found; check the path.")
            sources.append(ModelSource(name, spec.task, tuple(spec.classes), checkpoint=str(path), spec=spec))
        else:
            competitor = get_model(name, checkpoint=checkpoint, device="cpu")
            sources.append(ModelSource(name, competitor.task, tuple(competitor.classes), competitor=competitor))
    return sources


def split_shards(chunks: Sequence[int], n_workers: int, shard_size: int | None = None) -> list[list[int]]:
    """Consecutive runs of ``chunks``: about four per worker, so a slow worker does not hold up the end.

    Parameters
    ----------
    chunks : sequence of int
        Chunk indices still to compute, in order.
    n_workers : int
        Workers of the cluster (at least 1 is assumed).
    shard_size : int or None, optional
        Chunks per shard; default ``ceil(len(chunks) / (4 * n_workers))``.

    Returns
    -------
    list of list of int
        The shards, in order; empty for no chunks.

    Examples
    --------
    >>> split_shards(range(10), n_workers=1, shard_size=4)
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> [len(s) for s in split_shards(range(20), n_workers=2)]
    [3, 3, 3, 3, 3, 3, 2]
    """
    chunks = [int(c) for c in chunks]
    if not chunks:
        return []
    size = int(shard_size) if shard_size else max(1, -(-len(chunks) // (4 * max(1, n_workers))))
    return [chunks[lo : lo + size] for lo in range(0, len(chunks), size)]


@dataclass
class _Payload:
    pool: Pool
    sources: list[ModelSource]
    store: str
    options: RunOptions
    device: str | None


_MALLOC_RELAXED = False


def _relax_malloc_trim() -> None:
    """Undo the side effect of Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` on inference, once per worker.

    Setting that variable also pins glibc's mmap threshold at 128 KiB, so
    every activation tensor is mmapped and page-faulted anew at each batch:
    CPU inference ran 2-3x slower on a worker than in the client process.
    glibc's own upper limits (32 MiB mmap, 64 MiB trim) keep the buffers
    reusable; the worker still returns memory above that to the system.
    """
    global _MALLOC_RELAXED
    if _MALLOC_RELAXED or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 64 * 2**20)
    except (OSError, AttributeError):  # not glibc
        pass
    _MALLOC_RELAXED = True


def _run_shard(payload: _Payload, todo: dict[str, list[int]]) -> dict[str, Any]:
    """One Dask task: predict and write the chunks ``todo[model]`` of one shard."""
    _relax_malloc_trim()
    device = resolve_device(payload.device)
    names = [name for name, chunks in todo.items() if len(chunks)]
    competitors, not_built = [], {}
    for source in payload.sources:
        if source.name in names:
            try:
                competitors.append(source.build(device))
            except Exception as exc:  # one model that cannot be built on a worker does not stop the others
                not_built[source.name] = f"building it on a worker failed: {type(exc).__name__}: {exc}"
    arrays = {name: open_arrays(prediction_store_path(payload.store, name)) for name in names}
    with memory_format(competitors, payload.options.channels_last):
        failures = run_chunks(
            payload.pool, competitors, arrays, todo, payload.options, device, store=Path(payload.store)
        )
    failures.update(not_built)
    done = sum(len(chunks) for name, chunks in todo.items() if name not in failures)
    return {"done": done, "failures": failures, "errors": dict(payload.pool.errors)}


def run_on_cluster(
    client: Any,
    pool: Pool,
    sources: Sequence[ModelSource],
    store: Path,
    todo: dict[str, np.ndarray],
    options: RunOptions,
    device: str | None,
    *,
    shard_size: int | None = None,
    on_chunks: Callable[[int], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> dict[str, str]:
    """Run the unfinished chunks ``todo`` on ``client``'s workers; returns ``{model: why}`` of failed models.

    The pool, sources and options are scattered once to every worker; each
    shard is one Dask task that writes its chunks into the shared store.

    Parameters
    ----------
    client : distributed.Client
        A connected Dask client.
    pool : Pool
        The images (pickled to the workers).
    sources : sequence of ModelSource
        From :func:`model_sources`.
    store : pathlib.Path
        The store folder, writable by every worker.
    todo : dict of {str: numpy.ndarray}
        The chunk indices each model still needs.
    options : RunOptions
        Chunk and batch size, what to store, how to run.
    device : str or None
        Resolved on each worker (``"auto"``/None: CUDA when present).
    shard_size : int or None, optional
        Chunks per Dask task (see :func:`split_shards`).
    on_chunks : callable or None, optional
        ``on_chunks(k)`` when a shard finished ``k`` chunks (progress).
    cancel : threading.Event or callable or None, optional
        Checked while waiting; shards not yet started are dropped.

    Returns
    -------
    dict of {str: str}
        ``{model: why}`` of the models that failed (their first failure);
        ``pool.errors`` gains the workers' undecodable images.

    Raises
    ------
    RunCancelled
        When ``cancel`` asks to stop (running shards finish their chunks).
    """
    from distributed import TimeoutError as DaskTimeoutError
    from distributed import wait

    chunk_order = sorted({int(c) for chunks in todo.values() for c in chunks})
    if not chunk_order:
        return {}
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    shards = split_shards(chunk_order, n_workers, shard_size)
    wanted = {name: {int(c) for c in chunks} for name, chunks in todo.items()}
    [payload] = client.scatter([_Payload(pool, list(sources), str(store), options, device)], broadcast=True, hash=False)
    futures = []
    for shard in shards:
        shard_todo = {name: [c for c in shard if c in chunks] for name, chunks in wanted.items()}
        futures.append(client.submit(_run_shard, payload, shard_todo, pure=False))
    failures: dict[str, str] = {}
    pending = set(futures)
    total_done = 0
    try:
        while pending:
            if is_cancelled(cancel):
                raise RunCancelled(
                    f"Prediction cancelled; {total_done} chunks were stored in {store} (shards already "
                    "running finish their chunks). Run predict_pool again to resume."
                )
            try:
                finished, pending = wait(list(pending), timeout=0.2, return_when="FIRST_COMPLETED")
            except (DaskTimeoutError, TimeoutError):
                continue
            pending = set(pending)
            for future in finished:
                result = future.result()  # a worker's unexpected error ends the run here
                for name, why in result["failures"].items():
                    failures.setdefault(name, why)
                pool.errors.update(result["errors"])
                total_done += result["done"]
                if on_chunks is not None and result["done"]:
                    on_chunks(result["done"])
    finally:
        if pending:
            client.cancel(list(pending))
        client.cancel([payload])
    return failures
