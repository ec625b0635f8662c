"""Run every competitor once over a pool and keep its maps in a resumable zarr store.

Layout: ``<store>/<model>.zarr`` per competitor, so a new pairing of models
never recomputes anything. Each store holds

- ``prediction (sample, y, x)`` uint8: SS class index or SOD saliency 0..255,
- ``entropy (sample, y, x)`` uint8: per-pixel predictive entropy in [0, 1]
  (normalised by ``log C``; SOD as a Bernoulli) quantised to ``round(255 H)``,
  unless run with ``entropy=False``. ``attrs["entropy_dtype"]`` says so; stores
  made before hold float16 (no attr) and keep it when resumed. Readers get
  float16 ``H`` either way (:func:`open_predictions` divides by 255). uint8 is
  6x smaller after compression for trained networks (ESPNetv2 at 320 px: 172
  vs 27 KiB an image; ``benchmarks/RESULTS.md`` (e)) for an error of at most
  1/510, which moves no image's mean-entropy rank there,
- ``probability (sample, class, y, x)`` float16 (SS, only when asked),
- ``valid (sample)`` bool: False where the pool could not decode the image,
- ``chunk_done (chunk)`` bool: written *after* a chunk's maps, so a run killed
  mid-chunk recomputes that chunk and nothing else,
- ``chunk_bytes (chunk, part)`` int64: the byte size of each of the chunk's
  files (parts: prediction, entropy, probability, valid; -1 none), written
  between the maps and the done flag. Opening a store checks every
  done chunk against it (or, for stores made before it existed, that its
  files exist): a deleted, truncated or replaced chunk file is recomputed by
  :func:`predict_pool` and refused by :func:`open_predictions`, never read as
  zeros; a chunk that fails to decode later raises :class:`StoreDamagedError`.

The attrs name the pool (its fingerprint), the options and the model's
identity (``model_identity``: the SHA-256 of a registered model's checkpoint
file); a store made for anything else is refused on open. A lock file
``<store>/.predict.lock`` makes a second writer of the same store folder wait
for the first, then resume from its chunks instead of recomputing them.

Every sample-chunk of every array is its own file, written atomically by
zarr (temporary file + rename), so a ``kill -9`` leaves each chunk either
old or new, and writers on different machines (Dask workers) never touch the
same file. The store itself is created in a temporary folder and renamed
into place, so a run killed while creating it leaves nothing half-made.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from mdc_widgets._atomic import atomic_write_dir
from mdc_widgets._locking import file_lock, storage_errors
from mdc_widgets.config import resolve_device
from mdc_widgets.data.pool import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.predictions import distributed
from mdc_widgets.predictions._layout import (
    MAP_VARIABLES,
    StoreDamagedError,
    damaged_chunks,
    open_arrays,
    prediction_store_path,
    split_reference,
)
from mdc_widgets.predictions._runner import RunCancelled, RunOptions, memory_format, run_chunks
from mdc_widgets.predictions.reading import completed_fraction, model_classes, open_predictions, open_probabilities

__all__ = [
    "PredictionRunError",
    "RunCancelled",
    "RunOptions",
    "StoreDamagedError",
    "completed_fraction",
    "damaged_chunks",
    "model_classes",
    "model_identity",
    "open_predictions",
    "open_probabilities",
    "predict_pool",
    "prediction_store_path",
]

STORE_FORMAT = 1
# the stored entropy: round(255 H) in uint8 (see the module docstring for the measurement)
ENTROPY_DTYPE = "uint8"
# attrs that describe how a store is written, not what it holds: a store resumes whatever they say
_NOT_IDENTITY = {"entropy_dtype"}
_log = logging.getLogger("mdc_widgets.predictions")
# attrs that stores written before an option existed lack; they were made with its default
_ATTR_DEFAULTS = {"entropy": True, "source": ""}


class PredictionRunError(MdcError):
    """One or more competitors failed; the others' predictions were stored.

    ``failures`` maps each failed model to why (the chunk and the message).

    Parameters
    ----------
    message : str
        The error message (names every failed model and the fix).
    failures : dict of {str: str} or None, optional
        ``{model: "chunk N (samples a-b): message"}``; kept as ``failures``.
    """

    def __init__(self, message: str, failures: dict[str, str] | None = None):
        super().__init__(message)
        self.failures = dict(failures or {})


@dataclass(frozen=True)
class _StoreSpec:
    model: str
    task: str
    classes: tuple[str, ...]
    pool_fingerprint: str
    n_samples: int
    height: int
    width: int
    chunk_size: int
    probabilities: bool
    entropy: bool = True
    # "" for a network; JSON naming the folder for released maps (metrics at native size read them there)
    source: str = ""
    # the SHA-256 of the checkpoint file ("" when the weights are not a file: random, a state_dict, maps)
    model_identity: str = ""
    # how entropy is stored; not part of the identity: a resumed store keeps the dtype it was made with
    entropy_dtype: str = ENTROPY_DTYPE

    def attrs(self) -> dict[str, Any]:
        return {
            "store_format": STORE_FORMAT,
            "model": self.model,
            "task": self.task,
            "classes": list(self.classes),
            "pool_fingerprint": self.pool_fingerprint,
            "chunk_size": self.chunk_size,
            "probabilities": self.probabilities,
            "entropy": self.entropy,
            "source": self.source,
            "model_identity": self.model_identity,
            "entropy_dtype": self.entropy_dtype,
        }


def _as_pool(pool: Any) -> Pool:
    if isinstance(pool, Pool):
        return pool
    from mdc_widgets.data import open_pool

    return open_pool(pool)


def _as_competitors(models: Iterable[Any], device: str) -> list[Any]:
    competitors = []
    for model in models:
        reference = split_reference(model)
        if reference is not None:
            from mdc_widgets.models import get_model

            model = get_model(reference[0], checkpoint=reference[1], device=device)
        elif hasattr(model, "to"):
            model = model.to(device) or model
        competitors.append(model)
    _check_unique([c.name for c in competitors])
    return competitors


def _check_unique(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise MdcError(f"Model names must be unique within one store; got {list(names)}.")


def _lazy_zeros(variable: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]) -> Any:
    """Unwritten zeros for the template; named, because dask would otherwise hash (pickle) the call each time."""
    import dask.array as da

    name = f"mdc-template-{variable}-{'x'.join(map(str, shape))}-{'x'.join(map(str, chunks))}-{np.dtype(dtype).str}"
    return da.zeros(shape, dtype=dtype, chunks=chunks, name=name)


def _template(spec: _StoreSpec, sample_ids: np.ndarray) -> xr.Dataset:
    n, h, w, c = spec.n_samples, spec.height, spec.width, spec.chunk_size
    n_chunks = -(-n // c)
    data_vars: dict[str, Any] = {
        "prediction": (("sample", "y", "x"), _lazy_zeros("prediction", (n, h, w), np.uint8, (c, h, w))),
        "valid": (("sample",), _lazy_zeros("valid", (n,), bool, (c,))),
        # one zarr chunk per flag, so setting one flag never rewrites another
        "chunk_done": (("chunk",), _lazy_zeros("chunk_done", (n_chunks,), bool, (1,))),
        "chunk_bytes": (
            ("chunk", "part"),
            _lazy_zeros("chunk_bytes", (n_chunks, len(MAP_VARIABLES)), np.int64, (1, len(MAP_VARIABLES))),
        ),
    }
    if spec.entropy:
        data_vars["entropy"] = (
            ("sample", "y", "x"),
            _lazy_zeros("entropy", (n, h, w), np.dtype(spec.entropy_dtype), (c, h, w)),
        )
    # object strings are stored as variable-length UTF-8, which zarr v3 specifies
    coords = {"sample": np.asarray(sample_ids).astype(str).astype(object)}
    if spec.probabilities and spec.task == "ss":
        n_cls = len(spec.classes)
        data_vars["probability"] = (
            ("sample", "class", "y", "x"),
            _lazy_zeros("probability", (n, n_cls, h, w), np.float16, (c, n_cls, h, w)),
        )
        coords["class"] = np.asarray(spec.classes).astype(str).astype(object)
    return xr.Dataset(data_vars, coords=coords, attrs=spec.attrs())


def _create_store(tmp: Path, spec: _StoreSpec, sample_ids: np.ndarray) -> None:
    os.chmod(tmp, 0o755)  # Dask workers of another user may write into it
    _template(spec, sample_ids).to_zarr(str(tmp), mode="w", compute=False, consolidated=False)
    # the template wrote sample ids eagerly but left the dask-backed zeros unwritten;
    # make the flags explicit so a reader never mistakes fill values for results
    group = zarr.open_group(str(tmp), mode="r+")
    group["chunk_done"][:] = False
    group["chunk_bytes"][:] = -1


_IDENTITIES: dict[tuple[str, int, int], str] = {}


def model_identity(weights: Any) -> str:
    """What a store remembers of a model's weights: the SHA-256 of its checkpoint file, else "".

    The digest is cached per (path, size, modification time), so a run hashes
    each checkpoint once.

    Parameters
    ----------
    weights : object
        The competitor's checkpoint: a path to a file, or anything else
        (a state_dict, None, ``"default"`` unresolved), which has no identity.

    Returns
    -------
    str
        ``"sha256:<64 hex digits>"`` for an existing file, else ``""``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> _ = open(path, "wb").write(b"weights")
    >>> model_identity(path)[:12], model_identity(None)
    ('sha256:9a129', '')
    """
    if not isinstance(weights, (str, Path)) or not Path(weights).is_file():
        return ""
    stat = Path(weights).stat()
    key = (str(Path(weights).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _IDENTITIES:
        from mdc_widgets.data.manifest import sha256_file

        _IDENTITIES[key] = f"sha256:{sha256_file(weights)}"
    return _IDENTITIES[key]


def _remove_partial_files(path: Path) -> None:
    """Drop the temporary files of chunk writes a killed run left behind (never read by zarr)."""
    for leftover in path.rglob("*.partial"):
        leftover.unlink(missing_ok=True)


def _open_or_create(path: Path, spec: _StoreSpec, sample_ids: np.ndarray, overwrite: bool) -> np.ndarray:
    """Open (checking it fits) or create the store of one model; returns its unfinished chunks."""
    if path.exists() and not overwrite:
        try:
            group = zarr.open_group(str(path), mode="r+")
            # a store made before model identities were recorded is taken to hold this model's weights
            attrs = {**_ATTR_DEFAULTS, "model_identity": spec.model_identity, **dict(group.attrs)}
            shape = group["prediction"].shape
        except Exception as exc:  # zarr reports damaged metadata with many exception types
            raise StoreDamagedError(
                f"The prediction store {path} is unreadable ({type(exc).__name__}: {exc}); delete it, "
                "or pass overwrite=True."
            ) from exc
        mismatched = [
            key for key, value in spec.attrs().items() if key not in _NOT_IDENTITY and attrs.get(key) != value
        ]
        if mismatched or shape != (spec.n_samples, spec.height, spec.width):
            raise MdcError(
                f"The prediction store {path} was made for another pool or setting "
                f"(differs in: {', '.join(mismatched) or 'shape'}). Use another store folder, "
                "or pass overwrite=True to recompute it."
            )
        _remove_partial_files(path)
        damaged = damaged_chunks(path)
        if damaged:
            warnings.warn(
                f"The prediction store {path} has {len(damaged)} damaged chunk(s) marked finished "
                f"({'; '.join(list(damaged.values())[:3])}); they are recomputed.",
                stacklevel=3,
            )
            flags = group["chunk_done"]
            for chunk in damaged:
                flags[chunk] = False
        return np.flatnonzero(~group["chunk_done"][:])
    with storage_errors(path):
        atomic_write_dir(path, lambda tmp: _create_store(tmp, spec, sample_ids))
    return np.arange(-(-spec.n_samples // spec.chunk_size))


def predict_pool(
    pool: Pool | Any,
    models: Sequence[Any],
    store: str | Path,
    options: RunOptions | None = None,
    *,
    device: str | None = "auto",
    progress: bool | Callable[[int, int], None] = True,
    cancel: threading.Event | Callable[[], bool] | None = None,
    overwrite: bool = False,
    errors: str = "raise",
    client: Any = None,
    shard_size: int | None = None,
    **deprecated_options: Any,
) -> xr.Dataset:
    """Run each competitor once over ``pool`` and store its maps in ``store``.

    The pool is read chunk by chunk and every chunk goes to disk as soon as it
    is predicted, so memory stays a few chunks whatever the pool size.
    Finished chunks are never recomputed: calling again after an interruption
    (a crash, ``kill -9`` or ``cancel``) resumes at the unfinished chunks.

    Parameters
    ----------
    pool : Pool or object
        Pool or anything ``mdc_widgets.data.open_pool`` accepts.
    models : sequence of object
        Competitors, registered model names, or ``(name, checkpoint)`` pairs.
    store : str or pathlib.Path
        Folder that holds one ``<model>.zarr`` per competitor (with a
        ``client``, a folder every worker can write to).
    options : RunOptions or None, optional
        Batch and chunk size, what to store (entropy, probabilities) and how
        to run (amp, channels-last). Default: the stored options of
        ``RunOptions()`` and the batch size, layout, precision and torch
        threads that :func:`~mdc_widgets.predictions.autotune.choose_run_settings`
        picks for these models, image size and device; its one-line summary
        goes to the ``mdc_widgets.predictions`` logger (INFO) and to the
        result's ``attrs["run_settings"]`` (with a ``client``: ``RunOptions()``
        as it is, each worker keeps its threads). The same
        names as keywords (``batch_size=64, chunk_size=256, ...``) still work
        for one release and warn (``DeprecationWarning``).
    device : str or None, optional
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``; with a
        ``client`` it is resolved on each worker.
    progress : bool or callable, optional
        A tqdm bar (True), none (False), or ``callback(done, total)``.
    cancel : threading.Event or callable or None, optional
        An Event or callable; checked between chunks (with a
        ``client``: between shards, and shards not yet started are dropped).
    overwrite : bool, optional
        Recompute stores made for another pool or setting.
    errors : str, optional
        ``"raise"`` (after every other model finished) or ``"skip"``.
    client : object or None, optional
        A ``dask.distributed.Client``: each worker runs inference on its
        shards and writes their chunks itself. Registered names are rebuilt on
        the workers from their name and checkpoint file; other competitors are
        shipped pickled. The pool is sent once to each worker.
    shard_size : int or None, optional
        Chunks per Dask task (default: about four shards per worker).
    **deprecated_options : object
        ``batch_size``, ``chunk_size``, ``entropy``, ``probabilities``,
        ``amp``, ``channels_last`` as keywords (deprecated; use ``options``).

    Returns
    -------
    xr.Dataset
        ``open_predictions(store, models)`` of the models that succeeded:
        lazy, dask-backed, one dask chunk per stored chunk.

    Raises
    ------
    PredictionRunError
        Under ``errors="raise"``, after the other models finished, when any
        model failed; ``.failures`` says which chunk and why.
    MdcError
        When ``errors`` is not ``"raise"``/``"skip"``, ``options`` is not a
        :class:`RunOptions`, model names repeat, or a store was made for
        another pool or setting and ``overwrite`` is False.
    StoreDamagedError
        When an existing store's metadata is unreadable and ``overwrite`` is False.
    RunCancelled
        When ``cancel`` asks to stop; finished chunks stay on disk.
    TypeError
        For an unknown keyword argument.

    Examples
    --------
    >>> import tempfile, torch
    >>> from mdc_widgets.data import open_pool
    >>> from mdc_widgets.models import Competitor
    >>> net = torch.nn.Conv2d(3, 3, 1)
    >>> tiny = Competitor.from_module(net, "ss", ["background", "a", "b"], name="tiny")
    >>> pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"),
    ...                                        np.zeros((5, 8, 8, 3), np.uint8))}), image_size=(8, 8))
    >>> ds = predict_pool(pool, [tiny], tempfile.mkdtemp(), RunOptions(chunk_size=2), progress=False)
    >>> ds["prediction"].dims, ds["prediction"].shape
    (('sample', 'model', 'y', 'x'), (5, 1, 8, 8))
    """
    if errors not in ("raise", "skip"):
        raise MdcError(f"errors must be 'raise' or 'skip'; got {errors!r}.")
    autotuned = options is None and not deprecated_options and client is None
    settings = None
    options = _with_deprecated_options(options, deprecated_options)
    chunk_size, probabilities, entropy = options.chunk_size, options.probabilities, options.entropy
    pool = _as_pool(pool)
    n = len(pool)
    h, w = (int(s) for s in pool.image_size)
    store = Path(store).resolve()
    store.mkdir(parents=True, exist_ok=True)

    if client is None:
        run_device = resolve_device(device)
        competitors = _as_competitors(models, run_device)
        for comp in competitors:
            if hasattr(comp, "check_pool"):  # released maps: every image's map is checked before anything runs
                comp.check_pool(pool)
        described = [(c.name, c.task, tuple(c.classes)) for c in competitors]
        sources = {c.name: getattr(c, "source", "") for c in competitors}
        identities = {c.name: model_identity(getattr(c, "weights_file", None)) for c in competitors}
        if autotuned:
            settings = _autotuned_settings(competitors, (h, w), run_device)
            # only how it runs is chosen; what is stored (chunk_size, entropy, probabilities) stays the default,
            # so a store made with the defaults resumes under autotune and the reverse
            options = replace(
                options, batch_size=settings.batch_size, channels_last=settings.channels_last, amp=settings.amp
            )
    else:
        model_refs = distributed.model_sources(models)
        described = [(s.name, s.task, s.classes) for s in model_refs]
        _check_unique([name for name, _, _ in described])
        shipped = [s.competitor for s in model_refs if getattr(s, "competitor", None) is not None]
        for comp in shipped:
            if hasattr(comp, "check_pool"):
                comp.check_pool(pool)
        sources = {c.name: getattr(c, "source", "") for c in shipped}
        identities = {
            s.name: model_identity(
                s.checkpoint if s.competitor is None else getattr(s.competitor, "weights_file", None)
            )
            for s in model_refs
        }

    def say_waiting() -> None:
        warnings.warn(
            f"Another process is writing the prediction store {store}; waiting for it to finish, "
            "then resuming from its chunks.",
            stacklevel=3,
        )

    # one writer per store folder: a second one waits, then finds the first one's chunks done
    with file_lock(store / ".predict.lock", what=f"the prediction store {store}", on_wait=say_waiting):
        todo: dict[str, np.ndarray] = {}
        for name, task, classes in described:
            spec = _StoreSpec(
                name,
                task,
                classes,
                pool.fingerprint,
                n,
                h,
                w,
                int(chunk_size),
                bool(probabilities and task == "ss"),
                bool(entropy),
                sources.get(name, ""),
                identities.get(name, ""),
                entropy_dtype=ENTROPY_DTYPE,
            )
            todo[name] = _open_or_create(prediction_store_path(store, name), spec, pool.sample_ids, overwrite)
        total = sum(len(v) for v in todo.values())

        bar = None
        if progress is True and total:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="predict", unit="chunk")
            if settings is not None:
                bar.write(settings.summary())
        report = progress if callable(progress) else None
        counter = {"done": 0}

        def on_chunks(count: int) -> None:
            counter["done"] += count
            if bar is not None:
                bar.update(count)
            if report is not None:
                report(counter["done"], total)

        try:
            if client is None:
                arrays = {name: open_arrays(prediction_store_path(store, name)) for name, _, _ in described}
                threads = settings.threads if settings is not None and run_device == "cpu" and total else None
                with memory_format(competitors, options.channels_last), _torch_threads(threads):
                    failures = run_chunks(
                        pool,
                        competitors,
                        arrays,
                        todo,
                        options,
                        run_device,
                        on_chunk=lambda name, chunk: on_chunks(1),
                        cancel=cancel,
                        store=store,
                    )
            else:
                failures = distributed.run_on_cluster(
                    client,
                    pool,
                    model_refs,
                    store,
                    todo,
                    options,
                    device,
                    shard_size=shard_size,
                    on_chunks=on_chunks,
                    cancel=cancel,
                )
        finally:
            if bar is not None:
                bar.close()

    succeeded = [name for name, _, _ in described if name not in failures]
    details = "; ".join(f"{name}: {why}" for name, why in failures.items())
    if failures and errors == "raise":
        raise PredictionRunError(
            f"{len(failures)} model(s) failed and were skipped ({details}). "
            f"The predictions of {succeeded or 'no model'} are stored in {store}.",
            failures,
        )
    if failures:
        warnings.warn(f"{len(failures)} model(s) failed and were skipped: {details}", stacklevel=2)
    result = open_predictions(store, succeeded) if succeeded else xr.Dataset()
    result.attrs["failures"] = dict(failures)  # errors="skip": which model failed where, and why
    if client is None and settings is not None:
        result.attrs["run_settings"] = settings.summary()
    return result


def _autotuned_settings(competitors: Sequence[Any], image_size: tuple[int, int], device: str) -> Any:
    """``choose_run_settings`` for a run given no options, reported on the ``mdc_widgets.predictions`` log."""
    from mdc_widgets.predictions.autotune import choose_run_settings

    settings = choose_run_settings(competitors, image_size, device=device)
    _log.info("%s (pass options=RunOptions(...) to choose yourself)", settings.summary())
    return settings


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the run, the caller's count restored afterwards (None: unchanged)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _with_deprecated_options(options: RunOptions | None, deprecated: dict[str, Any]) -> RunOptions:
    """``options`` with the run options still passed as keywords (the pre-``RunOptions`` call) folded in.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     _with_deprecated_options(None, {"batch_size": 8}).batch_size
    8
    """
    unknown = sorted(set(deprecated) - set(RunOptions.names()))
    if unknown:
        raise TypeError(f"predict_pool() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    options = RunOptions() if options is None else options
    if not isinstance(options, RunOptions):
        raise MdcError(f"options takes a RunOptions(...); got {type(options).__name__}.")
    if not deprecated:
        return options
    listed = ", ".join(f"{k}={v!r}" for k, v in deprecated.items())
    warnings.warn(
        f"predict_pool({listed}) is deprecated; pass options=RunOptions({listed}) instead "
        "(the keywords are removed in the next release).",
        DeprecationWarning,
        stacklevel=3,
    )
    return replace(options, **deprecated)
