"""Run every competitor once over a pool and keep its maps in a resumable zarr store.

Layout: ``<store>/<model>.zarr`` per competitor, so a new pairing of models
never recomputes anything. Each store holds

- ``prediction (sample, y, x)`` uint8: SS class index or SOD saliency 0..255,
- ``entropy (sample, y, x)`` float16: per-pixel predictive entropy in [0, 1]
  (normalised by ``log C``; SOD as a Bernoulli),
- ``probability (sample, class, y, x)`` float16 (SS, only when asked),
- ``valid (sample)`` bool: False where the pool could not decode the image,
- ``chunk_done (chunk)`` bool: written *after* a chunk's maps, so a run killed
  mid-chunk recomputes that chunk and nothing else.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import xarray as xr
import zarr

from mdc_widgets.config import resolve_device
from mdc_widgets.errors import MdcError, ShapeError

__all__ = [
    "RunCancelled",
    "PredictionRunError",
    "predict_pool",
    "open_predictions",
    "prediction_store_path",
    "completed_fraction",
    "open_probabilities",
    "model_classes",
]

STORE_FORMAT = 1


class RunCancelled(MdcError):
    """Raised when a run is cancelled; every finished chunk is already on disk."""


class PredictionRunError(MdcError):
    """One or more competitors failed; the others' predictions were stored."""


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

    def attrs(self) -> dict[str, Any]:
        return {
            "store_format": STORE_FORMAT,
            "model": self.model,
            "task": self.task,
            "classes": list(self.classes),
            "pool_fingerprint": self.pool_fingerprint,
            "chunk_size": self.chunk_size,
            "probabilities": self.probabilities,
        }


def prediction_store_path(store: str | Path, model_name: str) -> Path:
    """Where the predictions of ``model_name`` live inside ``store``."""
    return Path(store) / f"{model_name}.zarr"


def _as_pool(pool: Any) -> Any:
    if hasattr(pool, "read_images"):
        return pool
    from mdc_widgets.data import open_pool

    return open_pool(pool)


def _as_competitors(models: Iterable[Any], device: str) -> list[Any]:
    competitors = []
    for model in models:
        if isinstance(model, str):
            from mdc_widgets.models import get_model

            model = get_model(model, device=device)
        elif hasattr(model, "to"):
            model = model.to(device) or model
        competitors.append(model)
    names = [c.name for c in competitors]
    if len(set(names)) != len(names):
        raise MdcError(f"Model names must be unique within one store; got {names}.")
    return competitors


def _template(spec: _StoreSpec, sample_ids: np.ndarray) -> xr.Dataset:
    import dask.array as da

    n, h, w, c = spec.n_samples, spec.height, spec.width, spec.chunk_size
    n_chunks = -(-n // c)
    data_vars: dict[str, Any] = {
        "prediction": (("sample", "y", "x"), da.zeros((n, h, w), dtype=np.uint8, chunks=(c, h, w))),
        "entropy": (("sample", "y", "x"), da.zeros((n, h, w), dtype=np.float16, chunks=(c, h, w))),
        "valid": (("sample",), da.zeros((n,), dtype=bool, chunks=(c,))),
        # one zarr chunk per flag, so setting one flag never rewrites another
        "chunk_done": (("chunk",), da.zeros((n_chunks,), dtype=bool, chunks=(1,))),
    }
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


def _open_or_create(path: Path, spec: _StoreSpec, sample_ids: np.ndarray, overwrite: bool) -> zarr.Group:
    if path.exists() and not overwrite:
        group = zarr.open_group(str(path), mode="r+")
        attrs = dict(group.attrs)
        expected = spec.attrs()
        mismatched = [key for key, value in expected.items() if attrs.get(key) != value]
        shape = group["prediction"].shape
        if mismatched or shape != (spec.n_samples, spec.height, spec.width):
            raise MdcError(
                f"The prediction store {path} was made for another pool or setting "
                f"(differs in: {', '.join(mismatched) or 'shape'}). Use another store folder, "
                "or pass overwrite=True to recompute it."
            )
        return group
    if path.exists():
        import shutil

        shutil.rmtree(path)
    _template(spec, sample_ids).to_zarr(str(path), mode="w", compute=False, consolidated=False)
    group = zarr.open_group(str(path), mode="r+")
    # the template wrote sample ids eagerly but left the dask-backed zeros unwritten;
    # make the flags explicit so a reader never mistakes fill values for results
    group["chunk_done"][:] = False
    return group


def _entropy_map(output: torch.Tensor, task: str) -> torch.Tensor:
    """Normalised per-pixel entropy in [0, 1] of class probabilities or saliency."""
    eps = 1e-8
    if task == "ss":
        n_cls = output.shape[1]
        ent = -(output * torch.log(output.clamp_min(eps))).sum(dim=1)
        return ent / float(np.log(max(n_cls, 2)))
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
    if not torch.isfinite(output).all():
        raise MdcError(
            f"Model {competitor.name!r} returned NaN or infinite values; check its weights "
            "and input normalisation before mining with it."
        )


def _is_cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def predict_pool(
    pool: Any,
    models: Sequence[Any],
    store: str | Path,
    *,
    batch_size: int = 64,
    chunk_size: int = 256,
    device: str | None = "auto",
    probabilities: bool = False,
    amp: bool = False,
    progress: bool | Callable[[int, int], None] = True,
    cancel: threading.Event | Callable[[], bool] | None = None,
    overwrite: bool = False,
    errors: str = "raise",
) -> xr.Dataset:
    """Run each competitor once over ``pool`` and store its maps in ``store``.

    Finished chunks are never recomputed: calling again after an interruption
    (a crash, ``kill -9`` or ``cancel``) resumes at the first unfinished chunk.

    Parameters
    ----------
    pool : Pool or anything ``mdc_widgets.data.open_pool`` accepts
    models : competitors or registered model names
    store : folder that holds one ``<model>.zarr`` per competitor
    batch_size : images per forward pass
    chunk_size : images per stored chunk (the unit of resumption)
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``
    probabilities : also store SS class probabilities (float16), used by
        loss- and ensemble-based strategies
    amp : bf16 autocast on CUDA
    progress : a tqdm bar (True), none (False), or ``callback(done, total)``
    cancel : an Event or callable; checked between chunks
    overwrite : recompute stores made for another pool or setting
    errors : ``"raise"`` (after every other model finished) or ``"skip"``

    Returns
    -------
    xr.Dataset
        ``open_predictions(store, models)`` of the models that succeeded.
    """
    device = resolve_device(device)
    pool = _as_pool(pool)
    competitors = _as_competitors(models, device)
    n = len(pool)
    h, w = pool.image_size
    n_chunks = -(-n // chunk_size)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)

    groups: dict[str, zarr.Group] = {}
    for comp in competitors:
        spec = _StoreSpec(
            comp.name, comp.task, tuple(comp.classes), pool.fingerprint, n, h, w, chunk_size,
            bool(probabilities and comp.task == "ss"),
        )
        groups[comp.name] = _open_or_create(
            prediction_store_path(store, comp.name), spec, pool.sample_ids, overwrite
        )
    todo = {name: np.flatnonzero(~group["chunk_done"][:]) for name, group in groups.items()}
    total = sum(len(v) for v in todo.values())

    bar = None
    if progress is True and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="predict", unit="chunk")
    report = progress if callable(progress) else None
    done_count = 0
    failures: dict[str, str] = {}

    # chunk-major order: each chunk of images is decoded once for all models
    chunk_order = sorted(set(int(c) for v in todo.values() for c in v))
    try:
        for chunk in chunk_order:
            if _is_cancelled(cancel):
                raise RunCancelled(
                    f"Prediction cancelled; {done_count} of {total} chunks were stored in {store}. "
                    "Run predict_pool again to resume."
                )
            pending = [c for c in competitors if c.name not in failures and chunk in set(todo[c.name])]
            if not pending:
                continue
            start, stop = chunk * chunk_size, min((chunk + 1) * chunk_size, n)
            images, valid = pool.read_images(start, stop)
            batch_images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
            for comp in pending:
                try:
                    _predict_chunk(comp, batch_images, valid, groups[comp.name], start, stop,
                                   batch_size, device, amp, chunk)
                except MdcError as exc:
                    failures[comp.name] = str(exc)
                    if bar is not None:
                        bar.write(f"skipping {comp.name}: {exc}")
                    continue
                done_count += 1
                if bar is not None:
                    bar.update(1)
                if report is not None:
                    report(done_count, total)
    finally:
        if bar is not None:
            bar.close()

    succeeded = [c.name for c in competitors if c.name not in failures]
    if failures and errors == "raise":
        details = "; ".join(f"{name}: {why}" for name, why in failures.items())
        raise PredictionRunError(
            f"{len(failures)} model(s) failed and were skipped ({details}). "
            f"The predictions of {succeeded or 'no model'} are stored in {store}."
        )
    return open_predictions(store, succeeded) if succeeded else xr.Dataset()


def _predict_chunk(
    comp: Any, images: torch.Tensor, valid: np.ndarray, group: zarr.Group, start: int, stop: int,
    batch_size: int, device: str, amp: bool, chunk: int,
) -> None:
    n, _, h, w = images.shape
    labels = np.zeros((n, h, w), dtype=np.uint8)
    entropy = np.zeros((n, h, w), dtype=np.float16)
    probs = group["probability"] if "probability" in group else None
    prob_out = np.zeros((n, len(comp.classes), h, w), dtype=np.float16) if probs is not None else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.startswith("cuda")) else _null()
    with torch.inference_mode(), autocast:
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            x = images[lo:hi].to(device, non_blocking=True).float().div_(255.0)
            out = comp.predict(x).float()
            _check_output(out, comp, hi - lo, h, w)
            if comp.task == "ss":
                labels[lo:hi] = out.argmax(dim=1).to(torch.uint8).cpu().numpy()
                if prob_out is not None:
                    prob_out[lo:hi] = out.half().cpu().numpy()
            else:
                labels[lo:hi] = (out[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            entropy[lo:hi] = _entropy_map(out, comp.task).half().cpu().numpy()
    invalid = ~np.asarray(valid, dtype=bool)
    labels[invalid] = 0
    entropy[invalid] = 0
    group["prediction"][start:stop] = labels
    group["entropy"][start:stop] = entropy
    if probs is not None:
        probs[start:stop] = prob_out
    group["valid"][start:stop] = np.asarray(valid, dtype=bool)
    group["chunk_done"][chunk] = True  # last: marks the chunk complete


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def completed_fraction(store: str | Path, model_name: str) -> float:
    """Fraction of chunks of ``model_name`` already stored (0 when absent)."""
    path = prediction_store_path(store, model_name)
    if not path.exists():
        return 0.0
    done = zarr.open_group(str(path), mode="r")["chunk_done"][:]
    return float(done.mean()) if done.size else 1.0


def open_predictions(store: str | Path, models: Sequence[Any] | None = None) -> xr.Dataset:
    """Open stored predictions lazily as one Dataset with dims ``(sample, model, y, x)``.

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
        names = [m if isinstance(m, str) else m.name for m in models]
    if not names:
        raise MdcError(f"No predictions in {store}; run predict_pool(pool, models, store={str(store)!r}) first.")
    parts = []
    classes: dict[str, list[str]] = {}
    fingerprints = set()
    for name in names:
        path = prediction_store_path(store, name)
        if not path.exists():
            raise MdcError(
                f"No predictions of model {name!r} in {store}; run predict_pool with that model first."
            )
        ds = xr.open_zarr(str(path), consolidated=False)
        if not bool(ds["chunk_done"].all()):
            missing = int((~ds["chunk_done"]).sum())
            raise MdcError(
                f"The predictions of {name!r} in {store} are unfinished ({missing} chunks missing); "
                "run predict_pool again with the same pool and store to resume."
            )
        classes[name] = list(ds.attrs["classes"])
        fingerprints.add(ds.attrs["pool_fingerprint"])
        part = ds.drop_vars(["chunk_done"] + (["probability", "class"] if "probability" in ds else []))
        part = part.expand_dims(model=[name]).assign_coords(task=("model", [ds.attrs["task"]]))
        part.attrs = {}
        parts.append(part)
    if len(fingerprints) > 1:
        raise MdcError(
            f"The stores of {names} in {store} were made for different pools; "
            "predict every model on the same pool (one store folder per pool)."
        )
    valid = parts[0]["valid"].isel(model=0, drop=True)
    combined = xr.concat([p.drop_vars("valid") for p in parts], dim="model")
    combined["valid"] = valid
    combined["prediction"] = combined["prediction"].transpose("sample", "model", "y", "x")
    combined["entropy"] = combined["entropy"].transpose("sample", "model", "y", "x")
    # zarr hands strings back as numpy's StringDType; plain str objects work everywhere
    combined = combined.assign_coords(sample=np.array([str(s) for s in combined["sample"].values], dtype=object))
    combined.attrs = {
        "classes": classes,
        "pool_fingerprint": fingerprints.pop(),
        "store": str(store),
    }
    return combined


def open_probabilities(store: str | Path, model_name: str) -> xr.DataArray:
    """Stored SS class probabilities ``(sample, class, y, x)`` of one model, lazily.

    Raises ``MdcError`` when the model was run without ``probabilities=True``.
    """
    path = prediction_store_path(store, model_name)
    ds = xr.open_zarr(str(path), consolidated=False) if path.exists() else None
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
