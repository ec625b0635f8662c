"""Run every competitor once over a pool and keep its maps in a resumable zarr store.

Layout: ``<store>/<model>.zarr`` per competitor, so a new pairing of models
never recomputes anything. Each store holds

- ``prediction (sample, y, x)`` uint8: SS class index or SOD saliency 0..255,
- ``entropy (sample, y, x)`` float16: per-pixel predictive entropy in [0, 1]
  (normalised by ``log C``; SOD as a Bernoulli), unless run with ``entropy=False``,
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
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import zarr

from mdc_widgets._atomic import atomic_write_dir
from mdc_widgets._locking import file_lock, storage_errors
from mdc_widgets.config import resolve_device
from mdc_widgets.errors import MdcError, ShapeError

__all__ = [
    "PredictionRunError",
    "RunCancelled",
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
# attrs that stores written before an option existed lack; they were made with its default
_ATTR_DEFAULTS = {"entropy": True, "source": ""}


class RunCancelled(MdcError):
    """Raised when a run is cancelled; every finished chunk is already on disk."""


class PredictionRunError(MdcError):
    """One or more competitors failed; the others' predictions were stored.

    ``failures`` maps each failed model to why (the chunk and the message).
    """

    def __init__(self, message: str, failures: dict[str, str] | None = None):
        super().__init__(message)
        self.failures = dict(failures or {})


class StoreDamagedError(MdcError):
    """A prediction store whose chunk files are missing, altered or cannot be decoded."""


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
        }


@dataclass(frozen=True)
class _RunOptions:
    """How to run inference; travels to Dask workers, so only plain values."""

    batch_size: int
    chunk_size: int
    entropy: bool
    probabilities: bool
    amp: bool
    channels_last: bool


def prediction_store_path(store: str | Path, model_name: str) -> Path:
    """Where the predictions of ``model_name`` live inside ``store``."""
    return Path(store) / f"{model_name}.zarr"


def _as_pool(pool: Any) -> Any:
    if hasattr(pool, "read_images"):
        return pool
    from mdc_widgets.data import open_pool

    return open_pool(pool)


def _split_reference(model: Any) -> tuple[str, Any] | None:
    """``(name, weights)`` for a registered-model reference (a name or a pair), else None."""
    if isinstance(model, str):
        return model, "default"
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], str):
        return model[0], model[1]
    return None


def _as_competitors(models: Iterable[Any], device: str) -> list[Any]:
    competitors = []
    for model in models:
        reference = _split_reference(model)
        if reference is not None:
            from mdc_widgets.models import get_model

            model = get_model(reference[0], weights=reference[1], device=device)
        elif hasattr(model, "to"):
            model = model.to(device) or model
        competitors.append(model)
    _check_unique([c.name for c in competitors])
    return competitors


def _check_unique(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise MdcError(f"Model names must be unique within one store; got {list(names)}.")


def _template(spec: _StoreSpec, sample_ids: np.ndarray) -> xr.Dataset:
    import dask.array as da

    n, h, w, c = spec.n_samples, spec.height, spec.width, spec.chunk_size
    n_chunks = -(-n // c)
    data_vars: dict[str, Any] = {
        "prediction": (("sample", "y", "x"), da.zeros((n, h, w), dtype=np.uint8, chunks=(c, h, w))),
        "valid": (("sample",), da.zeros((n,), dtype=bool, chunks=(c,))),
        # one zarr chunk per flag, so setting one flag never rewrites another
        "chunk_done": (("chunk",), da.zeros((n_chunks,), dtype=bool, chunks=(1,))),
        "chunk_bytes": (
            ("chunk", "part"),
            da.zeros((n_chunks, len(_MAP_VARIABLES)), dtype=np.int64, chunks=(1, len(_MAP_VARIABLES))),
        ),
    }
    if spec.entropy:
        data_vars["entropy"] = (("sample", "y", "x"), da.zeros((n, h, w), dtype=np.float16, chunks=(c, h, w)))
    # object strings are stored as variable-length UTF-8, which zarr v3 specifies
    coords = {"sample": np.asarray(sample_ids).astype(str).astype(object)}
    if spec.probabilities and spec.task == "ss":
        n_cls = len(spec.classes)
        data_vars["probability"] = (
            ("sample", "class", "y", "x"),
            da.zeros((n, n_cls, h, w), dtype=np.float16, chunks=(c, n_cls, h, w)),
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


_MAP_VARIABLES = ("prediction", "entropy", "probability", "valid")  # the parts of chunk_bytes, in order


def _chunk_file(path: Path, name: str, array: zarr.Array, chunk: int) -> Path:
    """The file that holds sample-chunk ``chunk`` of array ``name`` of the store at ``path``."""
    return path / name / array.metadata.encode_chunk_key((int(chunk),) + (0,) * (array.ndim - 1))


def _chunk_sizes(path: Path, arrays: dict[str, zarr.Array], chunk: int) -> np.ndarray:
    """``(parts,)`` byte sizes of the files of ``chunk`` (-1 for an array the store does not have)."""
    return np.array(
        [
            _chunk_file(path, name, arrays[name], chunk).stat().st_size if name in arrays else -1
            for name in _MAP_VARIABLES
        ],
        np.int64,
    )


def _chunk_problem(path: Path, arrays: dict[str, zarr.Array], chunk: int, recorded: np.ndarray | None) -> str | None:
    """Why the finished chunk ``chunk`` cannot be trusted, or None when its files are as written."""
    for part, name in enumerate(_MAP_VARIABLES):
        if name not in arrays:
            continue
        file = _chunk_file(path, name, arrays[name], chunk)
        if not file.exists():
            return f"{file} is missing"
        # -1: no record (a store made before the records existed), so existence is all that is known
        if recorded is not None and recorded[part] >= 0 and recorded[part] != file.stat().st_size:
            return f"{file} has {file.stat().st_size} bytes where {int(recorded[part])} were written"
    return None


def damaged_chunks(path: str | Path) -> dict[int, str]:
    """The finished chunks of one model's store whose files are missing or altered: ``{chunk: why}``.

    Each done chunk's files are compared with the byte sizes recorded when
    they were written (stores made before those records: the files must exist).
    Only file metadata is read, so the check is cheap on any pool size.

    Examples
    --------
    >>> import tempfile
    >>> damaged_chunks(tempfile.mkdtemp())
    {}
    """
    path = Path(path)
    if not (path / "chunk_done").exists():
        return {}
    group = zarr.open_group(str(path), mode="r")
    arrays = {name: group[name] for name in _MAP_VARIABLES if name in group}
    try:
        records = group["chunk_bytes"][:] if "chunk_bytes" in group else None
    except Exception:  # a damaged record proves nothing either way; existence is still checked
        records = None
    damaged = {}
    for chunk in np.flatnonzero(group["chunk_done"][:]):
        problem = _chunk_problem(path, arrays, int(chunk), None if records is None else records[chunk])
        if problem is not None:
            damaged[int(chunk)] = problem
    return damaged


_IDENTITIES: dict[tuple[str, int, int], str] = {}


def model_identity(weights: Any) -> str:
    """What a store remembers of a model's weights: the SHA-256 of its checkpoint file, else "".

    The digest is cached per (path, size, modification time), so a run hashes
    each checkpoint once.

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
        mismatched = [key for key, value in spec.attrs().items() if attrs.get(key) != value]
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


def _open_arrays(path: Path) -> dict[str, zarr.Array]:
    group = zarr.open_group(str(path), mode="r+")
    names = (*_MAP_VARIABLES, "chunk_bytes", "chunk_done")
    # every written chunk gets its file, even all-background ones, so a missing file always means damage
    return {name: group[name].with_config({"write_empty_chunks": True}) for name in names if name in group}


def _entropy_map(output: torch.Tensor, task: str) -> torch.Tensor:
    """Normalised per-pixel entropy in [0, 1] of class probabilities or saliency."""
    eps = 1e-8
    if task == "ss":
        n_cls = output.shape[1]
        # entr(p) = -p log p (0 at 0) in one kernel, instead of clamp, log, multiply
        return torch.special.entr(output).sum(dim=1) / float(np.log(max(n_cls, 2)))
    p = output[:, 0].clamp(eps, 1 - eps)
    ent = -(p * torch.log(p) + (1 - p) * torch.log(1 - p))
    return ent / float(np.log(2))


def _check_output(output: torch.Tensor, competitor: Any, n: int, h: int, w: int) -> None:
    n_cls = len(competitor.classes) if competitor.task == "ss" else 1
    expected = (n, n_cls, h, w)
    if tuple(output.shape) != expected:
        raise ShapeError(
            f"Model {competitor.name!r} returned a prediction of shape {tuple(output.shape)}; "
            f"expected {expected} ({competitor.task}: batch, {'classes' if competitor.task == 'ss' else 'one saliency channel'}, "
            "height, width). Fix its wrapper (Competitor.from_module) so predict() returns that shape."
        )
    # a Competitor has checked its own output; the check reads every value once more
    if not _checks_itself(competitor) and not torch.isfinite(output).all():
        raise MdcError(
            f"Model {competitor.name!r} returned NaN or infinite values; check its weights "
            "and input normalisation before mining with it."
        )


def _checks_itself(competitor: Any) -> bool:
    from mdc_widgets.models import Competitor

    return type(competitor).predict is Competitor.predict


def _is_cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _chunk_bounds(chunk: int, chunk_size: int, n: int) -> tuple[int, int]:
    return chunk * chunk_size, min((chunk + 1) * chunk_size, n)


@contextmanager
def _memory_format(competitors: Sequence[Any], channels_last: bool) -> Iterator[None]:
    """Convolution weights in channels-last layout for the run, restored afterwards."""
    modules = [c.module for c in competitors if isinstance(getattr(c, "module", None), torch.nn.Module)]
    if not channels_last:
        yield
        return
    for module in modules:
        module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for module in modules:
            module.to(memory_format=torch.contiguous_format)


def _empty_maps(comp: Any, n: int, h: int, w: int, options: _RunOptions) -> dict[str, np.ndarray]:
    maps = {"prediction": np.zeros((n, h, w), dtype=np.uint8)}
    if options.entropy:
        maps["entropy"] = np.zeros((n, h, w), dtype=np.float16)
    if options.probabilities and comp.task == "ss":
        maps["probability"] = np.zeros((n, len(comp.classes), h, w), dtype=np.float16)
    return maps


def _store_output(maps: dict[str, np.ndarray], lo: int, hi: int, out: torch.Tensor, comp: Any) -> None:
    """Write one batch of competitor output ``(n, C, H, W)`` (probabilities) into the chunk's maps."""
    # post-processing in float32 whatever the autocast did inside the model
    out = out.float()
    if comp.task == "ss":
        # max().indices is argmax (first maximum) without argmax's slow strided CPU kernel (7x here)
        maps["prediction"][lo:hi] = out.max(dim=1).indices.to(torch.uint8).cpu().numpy()
    else:
        maps["prediction"][lo:hi] = (out[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    if "entropy" in maps:
        maps["entropy"][lo:hi] = _entropy_map(out, comp.task).half().cpu().numpy()
    if "probability" in maps:
        maps["probability"][lo:hi] = out.half().cpu().numpy()


def _predict_maps(comp: Any, images: torch.Tensor, options: _RunOptions, device: str) -> dict[str, np.ndarray]:
    """The stored maps of one chunk ``images (n, 3, H, W)`` uint8, batch by batch on ``device``."""
    n, _, h, w = images.shape
    maps = _empty_maps(comp, n, h, w, options)
    on_cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (options.amp and on_cuda) else nullcontext()
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    with torch.inference_mode():
        for lo in range(0, n, options.batch_size):
            hi = min(lo + options.batch_size, n)
            x = images[lo:hi].to(device, non_blocking=True).float().div_(255.0).contiguous(memory_format=layout)
            with autocast:
                out = comp.predict(x)
            _check_output(out.float(), comp, hi - lo, h, w)
            _store_output(maps, lo, hi, out, comp)
    return maps


def _read_released_maps(
    comp: Any, pool: Any, start: int, stop: int, options: _RunOptions
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The stored maps of one chunk of a released-maps competitor: read from its files, no inference."""
    out, ok = comp.predict_samples(pool, start, stop)
    h, w = (int(s) for s in pool.image_size)
    _check_output(out, comp, stop - start, h, w)
    maps = _empty_maps(comp, stop - start, h, w, options)
    _store_output(maps, 0, stop - start, out, comp)
    return maps, np.asarray(ok, bool)


def _clear_padding(maps: dict[str, np.ndarray], boxes: np.ndarray) -> None:
    """Letterbox pads are background in every map, so they never count as disagreement or foreground."""
    h, w = maps["prediction"].shape[-2:]
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        if (y0, y1, x0, x1) == (0, h, 0, w):
            continue
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        for values in maps.values():
            values[i][..., ~inside] = 0


def _write_chunk(
    path: Path,
    arrays: dict[str, zarr.Array],
    chunk: int,
    start: int,
    stop: int,
    maps: dict[str, np.ndarray],
    valid: np.ndarray,
) -> None:
    invalid = ~valid
    with storage_errors(path):
        for name, values in maps.items():
            if name in arrays:
                values[invalid] = 0
                arrays[name][start:stop] = values
        arrays["valid"][start:stop] = valid
        # the sizes as written, so a file deleted or replaced later is noticed on open
        if "chunk_bytes" in arrays:
            arrays["chunk_bytes"][chunk] = _chunk_sizes(path, arrays, chunk)
        arrays["chunk_done"][chunk] = True  # last: marks the chunk complete


def _run_chunks(
    pool: Any,
    competitors: Sequence[Any],
    arrays: dict[str, dict[str, zarr.Array]],
    todo: dict[str, Sequence[int]],
    options: _RunOptions,
    device: str,
    *,
    on_chunk: Callable[[str, int], None] | None = None,
    cancel: Any = None,
    store: Path,
) -> dict[str, str]:
    """Predict the chunks ``todo[model]`` and write them; returns ``{model: why}`` of failed models.

    Chunk-major: each chunk of images is decoded once for all models. Reading
    the next chunk and writing the previous one overlap with inference (one
    I/O thread each); a chunk's done flag is written after its maps, and all
    queued writes reach the disk before this returns or raises.
    """
    n = len(pool)
    wanted = {name: {int(c) for c in chunks} for name, chunks in todo.items()}
    chunk_order = sorted(set().union(*wanted.values())) if wanted else []
    total = sum(len(v) for v in wanted.values())
    pin = device.startswith("cuda") and torch.cuda.is_available()
    failures: dict[str, str] = {}

    def read(chunk: int) -> tuple[torch.Tensor, np.ndarray]:
        images, valid = pool.read_images(*_chunk_bounds(chunk, options.chunk_size, n))
        batch = torch.from_numpy(np.ascontiguousarray(images))
        if pin:
            batch = batch.pin_memory()
        return batch.permute(0, 3, 1, 2), np.asarray(valid, dtype=bool).copy()

    done = 0
    # at most two chunks wait for the disk, so memory stays a few chunks whatever the pool size
    max_queued = 2
    with (
        ThreadPoolExecutor(1, thread_name_prefix="mdc-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="mdc-write") as writer,
    ):
        queued: deque[Future] = deque()
        next_read = reader.submit(read, chunk_order[0]) if chunk_order else None
        try:
            for position, chunk in enumerate(chunk_order):
                if _is_cancelled(cancel):
                    raise RunCancelled(
                        f"Prediction cancelled; {done} of {total} chunks were stored in {store}. "
                        "Run predict_pool again to resume."
                    )
                images, valid = next_read.result()
                following = position + 1
                next_read = reader.submit(read, chunk_order[following]) if following < len(chunk_order) else None
                start, stop = _chunk_bounds(chunk, options.chunk_size, n)
                boxes = pool.content_boxes(start, stop) if hasattr(pool, "content_boxes") else None
                for comp in competitors:
                    if comp.name in failures or chunk not in wanted.get(comp.name, ()):
                        continue
                    chunk_valid = valid
                    try:
                        if hasattr(comp, "predict_samples"):
                            maps, ok = _read_released_maps(comp, pool, start, stop, options)
                            chunk_valid = valid & ok
                        else:
                            maps = _predict_maps(comp, images, options, device)
                    except Exception as exc:  # any model's failure is its own; the others go on
                        failures[comp.name] = _failure(comp.name, chunk, start, stop, exc)
                        continue
                    if boxes is not None:
                        _clear_padding(maps, boxes)
                    while len(queued) >= max_queued:
                        queued.popleft().result()
                    queued.append(
                        writer.submit(
                            _write_chunk,
                            prediction_store_path(store, comp.name),
                            arrays[comp.name],
                            chunk,
                            start,
                            stop,
                            maps,
                            chunk_valid,
                        )
                    )
                    done += 1
                    if on_chunk is not None:
                        on_chunk(comp.name, chunk)
        finally:
            while queued:
                queued.popleft().result()
    return failures


def _failure(model: str, chunk: int, start: int, stop: int, exc: BaseException) -> str:
    """Why ``model`` failed on a chunk, for :class:`PredictionRunError` and ``attrs["failures"]``.

    Examples
    --------
    >>> _failure("unet", 3, 768, 1024, RuntimeError("expected 4 channels"))
    'chunk 3 (samples 768-1023): RuntimeError: expected 4 channels'
    """
    why = str(exc) if isinstance(exc, MdcError) else f"{type(exc).__name__}: {exc}"
    return f"chunk {chunk} (samples {start}-{stop - 1}): {why}"


def predict_pool(
    pool: Any,
    models: Sequence[Any],
    store: str | Path,
    *,
    batch_size: int = 64,
    chunk_size: int = 256,
    device: str | None = "auto",
    entropy: bool = True,
    probabilities: bool = False,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool | Callable[[int, int], None] = True,
    cancel: threading.Event | Callable[[], bool] | None = None,
    overwrite: bool = False,
    errors: str = "raise",
    client: Any = None,
    shard_size: int | None = None,
) -> xr.Dataset:
    """Run each competitor once over ``pool`` and store its maps in ``store``.

    The pool is read chunk by chunk and every chunk goes to disk as soon as it
    is predicted, so memory stays a few chunks whatever the pool size.
    Finished chunks are never recomputed: calling again after an interruption
    (a crash, ``kill -9`` or ``cancel``) resumes at the unfinished chunks.

    Parameters
    ----------
    pool : Pool or anything ``mdc_widgets.data.open_pool`` accepts
    models : competitors, registered model names, or ``(name, weights)`` pairs
    store : folder that holds one ``<model>.zarr`` per competitor (with a
        ``client``, a folder every worker can write to)
    batch_size : images per forward pass
    chunk_size : images per stored chunk (the unit of resumption)
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``; with a
        ``client`` it is resolved on each worker
    entropy : also store the per-pixel predictive entropy
    probabilities : also store SS class probabilities (float16), used by
        loss- and ensemble-based strategies
    amp : bf16 autocast on CUDA (ignored on the CPU)
    channels_last : run convolutions in channels-last layout (faster with
        tensor cores; the models are restored to their layout afterwards)
    progress : a tqdm bar (True), none (False), or ``callback(done, total)``
    cancel : an Event or callable; checked between chunks (with a
        ``client``: between shards, and shards not yet started are dropped)
    overwrite : recompute stores made for another pool or setting
    errors : ``"raise"`` (after every other model finished) or ``"skip"``
    client : a ``dask.distributed.Client``: each worker runs inference on its
        shards and writes their chunks itself. Registered names are rebuilt on
        the workers from their name and weights file; other competitors are
        shipped pickled. The pool is sent once to each worker.
    shard_size : chunks per Dask task (default: about four shards per worker)

    Returns
    -------
    xr.Dataset
        ``open_predictions(store, models)`` of the models that succeeded:
        lazy, dask-backed, one dask chunk per stored chunk.

    Examples
    --------
    >>> import tempfile
    >>> from mdc_widgets.data import open_pool
    >>> from mdc_widgets.models import Competitor
    >>> net = torch.nn.Conv2d(3, 3, 1)
    >>> tiny = Competitor.from_module(net, "ss", ["background", "a", "b"], name="tiny")
    >>> pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"),
    ...                                        np.zeros((5, 8, 8, 3), np.uint8))}), image_size=(8, 8))
    >>> ds = predict_pool(pool, [tiny], tempfile.mkdtemp(), chunk_size=2, progress=False)
    >>> ds["prediction"].dims, ds["prediction"].shape
    (('sample', 'model', 'y', 'x'), (5, 1, 8, 8))
    """
    if errors not in ("raise", "skip"):
        raise MdcError(f"errors must be 'raise' or 'skip'; got {errors!r}.")
    for option, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MdcError(f"{option} takes a whole number of at least 1; got {value!r}.")
    pool = _as_pool(pool)
    n = len(pool)
    h, w = (int(s) for s in pool.image_size)
    store = Path(store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    options = _RunOptions(
        int(batch_size), int(chunk_size), bool(entropy), bool(probabilities), bool(amp), bool(channels_last)
    )

    if client is None:
        run_device = resolve_device(device)
        competitors = _as_competitors(models, run_device)
        for comp in competitors:
            if hasattr(comp, "check_pool"):  # released maps: every image's map is checked before anything runs
                comp.check_pool(pool)
        described = [(c.name, c.task, tuple(c.classes)) for c in competitors]
        sources = {c.name: getattr(c, "source", "") for c in competitors}
        identities = {c.name: model_identity(getattr(c, "weights_file", None)) for c in competitors}
    else:
        from mdc_widgets.predictions.distributed import model_sources

        model_refs = model_sources(models)
        described = [(s.name, s.task, s.classes) for s in model_refs]
        _check_unique([name for name, _, _ in described])
        shipped = [s.competitor for s in model_refs if getattr(s, "competitor", None) is not None]
        for comp in shipped:
            if hasattr(comp, "check_pool"):
                comp.check_pool(pool)
        sources = {c.name: getattr(c, "source", "") for c in shipped}
        identities = {
            s.name: model_identity(s.weights if s.competitor is None else getattr(s.competitor, "weights_file", None))
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
            )
            todo[name] = _open_or_create(prediction_store_path(store, name), spec, pool.sample_ids, overwrite)
        total = sum(len(v) for v in todo.values())

        bar = None
        if progress is True and total:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="predict", unit="chunk")
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
                arrays = {name: _open_arrays(prediction_store_path(store, name)) for name, _, _ in described}
                with _memory_format(competitors, options.channels_last):
                    failures = _run_chunks(
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
                from mdc_widgets.predictions.distributed import run_on_cluster

                failures = run_on_cluster(
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
    return result


def completed_fraction(store: str | Path, model_name: str) -> float:
    """Fraction of chunks of ``model_name`` already stored (0 when absent)."""
    path = prediction_store_path(store, model_name)
    if not path.exists():
        return 0.0
    done = zarr.open_group(str(path), mode="r")["chunk_done"][:]
    return float(done.mean()) if done.size else 1.0


def open_predictions(store: str | Path, models: Sequence[Any] | None = None) -> xr.Dataset:
    """Open stored predictions lazily as one Dataset with dims ``(sample, model, y, x)``.

    Nothing but the ``(sample,)`` vectors is read: the maps are dask arrays with
    one dask chunk per stored chunk, so any pool-wide step can stream them.

    Parameters
    ----------
    store : the folder given to :func:`predict_pool`
    models : names (or competitors) to open, in this order; default all in the store

    Raises
    ------
    MdcError
        when a model has no store or an unfinished one (the message says how to resume).
    """
    store = Path(store)
    if models is None:
        names = sorted(p.name[: -len(".zarr")] for p in store.glob("*.zarr"))
    else:
        names = [m if isinstance(m, str) else (_split_reference(m) or (m.name,))[0] for m in models]
    if not names:
        raise MdcError(f"No predictions in {store}; run predict_pool(pool, models, store={str(store)!r}) first.")
    parts = []
    classes: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    fingerprints = set()
    for name in names:
        path = prediction_store_path(store, name)
        if not path.exists():
            raise MdcError(f"No predictions of model {name!r} in {store}; run predict_pool with that model first.")
        damaged = damaged_chunks(path)
        if damaged:
            chunk, why = next(iter(damaged.items()))
            raise StoreDamagedError(
                f"The predictions of {name!r} in {path} are damaged: {len(damaged)} finished chunk(s) no longer "
                f"hold what was written (chunk {chunk}: {why}). Run predict_pool again with the same pool and "
                "store to recompute them (or pass overwrite=True, or delete the store)."
            )
        with _decoding(path, "opening"):
            # the sample ids are read once, from the first store: same pool, same ids (checked by fingerprint)
            ds = _guarded(
                xr.open_zarr(str(path), consolidated=False, drop_variables=["sample"] if parts else None), path
            )
            done = ds["chunk_done"].values
        if not bool(done.all()):
            raise MdcError(
                f"The predictions of {name!r} in {store} are unfinished ({int((~done).sum())} chunks missing); "
                "run predict_pool again with the same pool and store to resume."
            )
        classes[name] = list(ds.attrs["classes"])
        sources[name] = str(ds.attrs.get("source", ""))
        fingerprints.add(ds.attrs["pool_fingerprint"])
        part = ds.drop_vars(
            ["chunk_done", "chunk_bytes"] + (["probability", "class"] if "probability" in ds else []), errors="ignore"
        )
        part = part.expand_dims(model=[name]).assign_coords(task=("model", [ds.attrs["task"]]))
        part.attrs = {}
        parts.append(part)
    if len(fingerprints) > 1:
        raise MdcError(
            f"The stores of {names} in {store} were made for different pools; "
            "predict every model on the same pool (one store folder per pool)."
        )
    with_entropy = all("entropy" in p for p in parts)
    # a model run with entropy=False leaves the entropy of the others out rather than misaligned
    parts = [p if with_entropy else p.drop_vars("entropy", errors="ignore") for p in parts]
    # an image is valid when every model could predict it (released maps may skip some)
    valid = parts[0]["valid"].isel(model=0, drop=True).load()
    for part in parts[1:]:
        valid = valid & part["valid"].isel(model=0, drop=True).load().values
    combined = xr.concat(
        [p.drop_vars("valid") for p in parts], dim="model", coords="minimal", compat="override", join="override"
    )
    combined["valid"] = valid
    for var in ("prediction", "entropy"):
        if var in combined:
            combined[var] = combined[var].transpose("sample", "model", "y", "x")
    # zarr hands strings back as numpy's StringDType; plain str objects work everywhere
    combined = combined.assign_coords(sample=np.array([str(s) for s in combined["sample"].values], dtype=object))
    combined.attrs = {
        "classes": classes,
        "pool_fingerprint": fingerprints.pop(),
        "store": str(store),
        "sources": {m: src for m, src in sources.items() if src},
    }
    return combined


class _GuardedChunks:
    """A zarr array whose read errors name the store, the array and the chunk, and say the fix.

    A chunk file replaced by garbage of the right size passes the open-time
    check; decoding it then fails in zstd or another codec, deep inside a dask
    computation. This turns that into a :class:`StoreDamagedError`.
    """

    def __init__(self, array: zarr.Array, path: Path, name: str):
        self.array, self.path, self.name = array, path, name
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return self.array[key]
        except MdcError:
            raise
        except Exception as exc:
            first = key[0] if isinstance(key, tuple) else key
            start = first.start or 0 if isinstance(first, slice) else int(first)
            chunk = start // self.array.chunks[0]
            raise StoreDamagedError(
                f"Chunk {chunk} of {self.name!r} in the prediction store {self.path} cannot be decoded "
                f"({type(exc).__name__}: {exc}); run predict_pool with overwrite=True to recompute the store, "
                "or delete it."
            ) from exc


def _guarded(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds`` with its stored maps read through :class:`_GuardedChunks` (same dask chunks, same values)."""
    import uuid

    import dask.array as da

    group = zarr.open_group(str(path), mode="r")
    for name in _MAP_VARIABLES:
        if name in ds and name in group:
            chunks = ds[name].data.chunks if hasattr(ds[name].data, "chunks") else group[name].chunks
            data = da.from_array(
                _GuardedChunks(group[name], path, name),
                chunks=chunks,
                lock=False,
                name=f"mdc-{name}-{uuid.uuid4().hex}",
                meta=np.empty((0,) * group[name].ndim, group[name].dtype),
            )
            ds[name] = (ds[name].dims, data, ds[name].attrs)
    return ds


@contextmanager
def _decoding(path: Path, doing: str) -> Iterator[None]:
    """Any error reading a store's metadata or vectors becomes a :class:`StoreDamagedError` naming it."""
    try:
        yield
    except MdcError:
        raise
    except Exception as exc:
        raise StoreDamagedError(
            f"The prediction store {path} is damaged ({doing} it failed with {type(exc).__name__}: {exc}); "
            "run predict_pool with overwrite=True to recompute it, or delete it."
        ) from exc


def open_probabilities(store: str | Path, model_name: str) -> xr.DataArray:
    """Stored SS class probabilities ``(sample, class, y, x)`` of one model, lazily.

    Raises ``MdcError`` when the model was run without ``probabilities=True``.
    """
    path = prediction_store_path(store, model_name)
    with _decoding(path, "opening"):
        ds = _guarded(xr.open_zarr(str(path), consolidated=False), path) if path.exists() else None
    if ds is None or "probability" not in ds:
        raise MdcError(
            f"No class probabilities of {model_name!r} in {store}; run predict_pool(..., "
            "probabilities=True, overwrite=True) for that model."
        )
    return ds["probability"]


def model_classes(predictions: xr.Dataset) -> dict[str, list[str]]:
    """The class list of each model of an :func:`open_predictions` dataset."""
    raw = predictions.attrs.get("classes", "{}")
    return json.loads(raw) if isinstance(raw, str) else dict(raw)
