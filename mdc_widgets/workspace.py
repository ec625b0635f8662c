"""The data side of an investigation: one pool, its prediction store, its competitors and what is computed from them.

:class:`PoolWorkspace` remembers the pool, the store folder and the
competitors on offer, and computes once (then caches) what every later step
reads: the predictions, the pairwise discrepancies, the thumbnail features,
the ground truth and its per-image evaluation. :class:`mdc_widgets.session.Session`
adds the investigation (mining results, verdicts, rankings, views) on top.

Packages that import torch (models, predictions, discrepancy, metrics) are
imported on first use, so importing a session stays light.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from mdc_widgets import tables
from mdc_widgets.config import cache_dir, resolve_device
from mdc_widgets.data import Pool, open_pool
from mdc_widgets.errors import MdcError
from mdc_widgets.mining import pool_features

__all__ = ["PoolWorkspace", "stored_predictions"]


def _models() -> Any:
    from mdc_widgets import models  # torch: imported on first use, not when a notebook imports the session

    return models


def _predictions() -> Any:
    from mdc_widgets import predictions  # torch, as models

    return predictions


def stored_predictions(store: Path, fingerprint: str) -> dict[str, dict[str, Any]]:
    """What each ``<store>/<model>.zarr`` holds: ``task``, ``classes``, ``complete``, ``this_pool``.

    A store that cannot be read is left out (offered for recomputation, not
    fatal); a damaged chunk counts as unfinished work.

    Parameters
    ----------
    store : pathlib.Path
        The prediction store folder.
    fingerprint : str
        The pool's fingerprint; ``this_pool`` says whether a store matches it.

    Returns
    -------
    dict of {str: dict}
        By model name: ``task`` (str or None), ``classes`` (list of str),
        ``complete`` (bool) and ``this_pool`` (bool).
    """
    found = {}
    for path in sorted(Path(store).glob("*.zarr")):
        try:
            group = zarr.open_group(str(path), mode="r")
            attrs = dict(group.attrs)
            done = bool(np.asarray(group["chunk_done"][:]).all()) and not _predictions().store.damaged_chunks(path)
        except Exception:  # an unreadable store is offered for recomputation, not fatal here
            continue
        found[path.name[: -len(".zarr")]] = {
            "task": attrs.get("task"),
            "classes": list(attrs.get("classes", [])),
            "complete": done,
            "this_pool": attrs.get("pool_fingerprint") == fingerprint,
        }
    return found


class PoolWorkspace:
    """One pool, its prediction store and the competitors on offer; predictions and what follows from them, cached.

    Parameters
    ----------
    pool : Pool or str or path
        A pool, or anything :func:`mdc_widgets.data.open_pool` accepts
        (``"miniworld"``, ``"skimage"``, a folder of photos, ...).
    store : str or path, optional
        Folder of the predictions (default ``<cache>/sessions/<pool fingerprint>``).
    models : sequence, optional
        Competitors (objects) or registered names offered besides the registry.
    device : str, optional
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    use_registry : bool, optional
        Offer every registered model (``list_models``) as well.
    maps : dict, optional
        Released maps that compete like models, ``{name: folder}`` (saliency)
        or ``{name: (folder, "ss", classes)}``.
    **pool_options : object
        Passed to ``open_pool`` when ``pool`` is not a Pool (``image_size``,
        ``fit``, ``ground_truth={"saliency": DIR}``, ...).
    """

    def __init__(
        self,
        pool: Pool | str | Path,
        store: str | Path | None = None,
        *,
        models: Sequence[Any] = (),
        device: str = "auto",
        use_registry: bool = True,
        maps: dict[str, Any] | None = None,
        **pool_options: Any,
    ):
        self.pool = pool if hasattr(pool, "read_images") else open_pool(pool, **pool_options)
        self.store = Path(store) if store is not None else cache_dir() / "sessions" / str(self.pool.fingerprint)
        self.store.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.use_registry = use_registry
        self._competitors: dict[str, Any] = {}
        for model in models:
            if isinstance(model, str):
                self._competitors.setdefault(model, None)
            else:
                self._competitors[model.name] = model
        for name, spec in (maps or {}).items():
            self._competitors[name] = _models().MapCompetitor(
                name, *((spec,) if isinstance(spec, (str, Path)) else spec)
            )
        self._predictions: xr.Dataset | None = None
        self._discrepancy: dict[tuple, xr.DataArray] = {}
        self._features: np.ndarray | None = None
        self._ground_truth: Any = ...
        self._metadata: pd.DataFrame | None = None
        self._evaluation: dict[tuple[str, ...], xr.Dataset] = {}
        self._index = {str(s): i for i, s in enumerate(self.pool.sample_ids)}
        self._lock = threading.RLock()

    @property
    def _pool_name(self) -> str:
        return getattr(self.pool, "name", "?")

    def predicted_models(self, task: str | None = None) -> list[str]:
        """Models whose predictions of this pool are complete in the store (SS first, then SOD).

        Parameters
        ----------
        task : {"ss", "sod"} or None, optional
            Only models of this task; None: both.

        Returns
        -------
        list of str
            Model names.
        """
        stored = stored_predictions(self.store, self.pool.fingerprint)
        names = [n for n, s in stored.items() if s["complete"] and s["this_pool"] and task in (None, s["task"])]
        return sorted(names, key=lambda n: (stored[n]["task"] != "ss", n))

    def model_task(self, name: str) -> str:
        """``"ss"`` or ``"sod"`` of a model the session knows (offered, predicted or registered).

        Parameters
        ----------
        name : str
            A model name.

        Returns
        -------
        str
            ``"ss"`` or ``"sod"``.
        """
        if self._competitors.get(name) is not None:
            return self._competitors[name].task
        stored = stored_predictions(self.store, self.pool.fingerprint).get(name)
        return stored["task"] if stored and stored["task"] else _models().model_spec(name).task

    def task_or_none(self, name: str) -> str | None:
        """:meth:`model_task`, or None for a name the session cannot place.

        Parameters
        ----------
        name : str
            A model name.

        Returns
        -------
        str or None
            ``"ss"``, ``"sod"`` or None.
        """
        try:
            return self.model_task(name)
        except MdcError:  # UnknownModelError is one
            return None

    # -- checkpoints: which models cannot be built here, and building them from a file -------
    def models_without_weights(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: why}`` of the models among ``names`` that cannot be built here for want of a checkpoint.

        Models with stored predictions never run again, so they need none.

        Parameters
        ----------
        names : sequence of str
            Model names to check.

        Returns
        -------
        dict of {str: str}
            Only the models that lack a checkpoint, with the reason.
        """
        from mdc_widgets.state import missing_weights

        found = {n: missing_weights(n) for n in names if self._competitors.get(n) is None}
        found = {n: why for n, why in found.items() if why}
        if found:
            predicted = set(self.predicted_models())
            found = {n: why for n, why in found.items() if n not in predicted}
        return found

    def missing_weights(self, name: str) -> str | None:
        """Why ``name`` cannot be built here (its checkpoint is absent), or None.

        Parameters
        ----------
        name : str
            A model name.

        Returns
        -------
        str or None
            The reason, or None when the model can be built or needs no weights.
        """
        return self.models_without_weights([name]).get(name)

    def use_checkpoint(self, name: str, checkpoint: str | Path | None) -> Any:
        """Build the registered model ``name`` from a checkpoint file, or with random weights (``None``, a dry run).

        The competitor replaces any built before.

        Parameters
        ----------
        name : str
            A registered model.
        checkpoint : str or pathlib.Path or None
            A saved ``state_dict`` (``~`` expanded); None builds random weights.

        Returns
        -------
        Competitor
            The built competitor, now offered as ``name``.

        Raises
        ------
        MdcError
            ``checkpoint`` is not a file (building the model raises for an unfitting one).
        """
        if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
            raise MdcError(f"No checkpoint file at {checkpoint}; give the path of a saved state_dict (.pt, .pth).")
        source = None if checkpoint is None else str(Path(checkpoint).expanduser())
        competitor = _models().get_model(name, checkpoint=source, device=resolve_device(self.device))
        self._competitors[name] = competitor
        return competitor

    def available_models(self, task: str | None = None) -> list[str]:
        """Every model the session can compete: predicted, offered at construction, and registered.

        Parameters
        ----------
        task : {"ss", "sod"} or None, optional
            Only models of this task; None: both.

        Returns
        -------
        list of str
            Predicted models first, then offered ones, then (with ``use_registry``) the registry's.
        """
        names = list(self.predicted_models(task))
        names += [n for n in self._competitors if n not in names and task in (None, self.model_task(n))]
        if self.use_registry:
            names += [n for n in _models().list_models(task) if n not in names]
        return names

    def add_maps(
        self,
        name: str,
        folder: str | Path,
        task: str = "sod",
        classes: Sequence[str] | None = None,
        errors: str = "raise",
    ) -> Any:
        """Offer a folder of released maps as the competitor ``name``, checked against this pool at once.

        Nothing is offered when a check fails.

        Parameters
        ----------
        name : str
            The competitor's name; must be new.
        folder : str or pathlib.Path
            The folder of maps, one image per pool sample.
        task : {"sod", "ss"}, optional
            What the maps are: saliency or label maps.
        classes : sequence of str or None, optional
            SS only: the class names of the label values.
        errors : {"raise", "skip"}, optional
            ``"raise"``: refuse a folder with bad maps; ``"skip"``: mark those
            images invalid (:class:`mdc_widgets.models.MapCompetitor`).

        Returns
        -------
        MapCompetitor
            The offered competitor.

        Raises
        ------
        MdcError
            An empty or taken name (and the folder's own check against the pool
            names a bad folder or bad maps).
        """
        name = str(name).strip()
        if not name:
            raise MdcError("Give the released maps a name (it becomes the model's name).")
        if name in self.available_models():
            raise MdcError(f"A model named {name!r} exists already; choose another name.")
        competitor = _models().MapCompetitor(name, folder, task, classes, errors=errors)
        competitor.check_pool(self.pool)
        self._competitors[name] = competitor
        return competitor

    def competitor(self, name: str) -> Any:
        """The competitor object of ``name`` (built from the registry on first use).

        Parameters
        ----------
        name : str
            A model name.

        Returns
        -------
        Competitor
            The competitor (a network or released maps).
        """
        if self._competitors.get(name) is None:
            self._competitors[name] = _models().get_model(name, device=resolve_device(self.device))
        return self._competitors[name]

    def predict(
        self,
        models: Sequence[Any],
        device: str | None = None,
        progress: bool | Callable[[int, int], None] = False,
        cancel: threading.Event | Callable[[], bool] | None = None,
        *,
        overwrite: bool = False,
        **options: Any,
    ) -> xr.Dataset:
        """Run the models that have no complete predictions of this pool yet; returns every prediction.

        Models already predicted are skipped (their competitor is not even
        built). An interrupted or cancelled run keeps its finished chunks and
        resumes there next time. ``progress``, ``cancel`` and ``options``
        (``batch_size``, ``chunk_size``, ``amp``, ...) go to
        :func:`mdc_widgets.predictions.predict_pool`.

        Parameters
        ----------
        models : sequence of str or Competitor
            Model names or competitor objects (objects are offered under their name).
        device : str or None, optional
            Where the networks run; None: the workspace's device.
        progress : bool or callable, optional
            A progress bar (True) or a ``progress(done, total)`` callback.
        cancel : threading.Event or callable or None, optional
            Set (or returning True) to stop after the current chunk.
        overwrite : bool, optional
            Predict every model again, discarding stored predictions.
        **options : object
            :class:`mdc_widgets.predictions.RunOptions` fields (``batch_size``,
            ``chunk_size``, ``amp``, ...) or ``options=RunOptions(...)``, and other
            keywords of :func:`~mdc_widgets.predictions.predict_pool`.

        Returns
        -------
        xarray.Dataset
            :attr:`predictions`, reopened.
        """
        done = set(self.predicted_models()) if not overwrite else set()
        for model in models:
            if not isinstance(model, str):
                self._competitors[model.name] = model
        todo = [self.competitor(n) for n in (m if isinstance(m, str) else m.name for m in models) if n not in done]
        if todo:
            try:
                device = resolve_device(device or self.device)
                predictions = _predictions()
                # the run options (batch_size, chunk_size, ...) travel as one RunOptions, the rest as keywords
                run_fields = {field.name for field in dataclasses.fields(predictions.RunOptions)}
                run = {name: options.pop(name) for name in list(options) if name in run_fields}
                run_options = dataclasses.replace(options.pop("options", None) or predictions.RunOptions(), **run)
                options.update(device=device, progress=progress, cancel=cancel, overwrite=overwrite)
                predictions.predict_pool(self.pool, todo, self.store, run_options, **options)
            finally:  # even a cancelled run may have finished some models
                self._reset_predictions()
        return self.predictions

    def _reset_predictions(self) -> None:
        with self._lock:
            self._predictions = None
            self._evaluation.clear()

    @property
    def predictions(self) -> xr.Dataset:
        """Every complete prediction of this pool in the store (``open_predictions``), opened once.

        Raises
        ------
        MdcError
            No model has complete predictions of this pool yet.
        """
        with self._lock:
            if self._predictions is None:
                names = self.predicted_models()
                if not names:
                    raise MdcError(
                        f"No predictions of pool {self._pool_name!r} in {self.store} yet; "
                        "call session.predict([...model names...]) first."
                    )
                self._predictions = _predictions().open_predictions(self.store, names)
            return self._predictions

    def _require(self, models: Iterable[str]) -> None:
        missing = [m for m in models if m not in self.predicted_models()]
        if missing:
            raise MdcError(f"Models {missing} have no predictions of this pool yet; call session.predict({missing}).")

    def _stored_map(self, sample_id: str, model: str) -> np.ndarray:
        """One stored prediction map ``(H, W)`` uint8 of a predicted model."""
        self._require([model])
        return np.asarray(self.predictions["prediction"].isel(sample=self.index_of(sample_id)).sel(model=model).values)

    def discrepancy(self, sod_measure: str = "iou") -> xr.DataArray:
        """Pairwise discrepancies ``(sample, model_a, model_b)`` of every predicted model, cached.

        Parameters
        ----------
        sod_measure : {"iou", "mae"}, optional
            The measure of SOD pairs.

        Returns
        -------
        xarray.DataArray
            ``(sample, model_a, model_b)`` float in [0, 1].
        """
        from mdc_widgets.discrepancy import compute_discrepancies  # torch

        predictions = self.predictions
        key = (tuple(str(m) for m in predictions["model"].values), sod_measure)
        with self._lock:
            if key not in self._discrepancy:
                self._discrepancy[key] = compute_discrepancies(predictions, sod_measure=sod_measure, device=self.device)
            return self._discrepancy[key]

    def features(self) -> np.ndarray:
        """Thumbnail features of the pool's images (:func:`mdc_widgets.mining.pool_features`), computed once."""
        with self._lock:
            if self._features is None:
                self._features = pool_features(self.pool)
            return self._features

    def _model_classes(self) -> dict[str, list[str]]:
        return _predictions().model_classes(self.predictions)

    def first_ss_classes(self, group: Any) -> list[str]:
        """Class names of ``group``'s first SS model, the names of a ranked table's dominant classes.

        Parameters
        ----------
        group : CompetitionGroup
            The competition of a mining result.

        Returns
        -------
        list of str
            The model's class names; empty for a group without an SS model.
        """
        return self._model_classes().get(group.ss[0], []) if group.ss else []

    def metadata(self) -> pd.DataFrame:
        """The pool's per-sample metadata as a frame indexed by sample (:func:`mdc_widgets.tables.metadata_frame`)."""
        if self._metadata is None:
            self._metadata = tables.metadata_frame(self.pool)
        return self._metadata

    def index_of(self, sample_id: str) -> int:
        """Position of a sample in the pool (``MdcError`` naming it when unknown).

        Parameters
        ----------
        sample_id : str
            A sample id of the pool.

        Returns
        -------
        int
            Its position.

        Raises
        ------
        MdcError
            ``sample_id`` is not in the pool.
        """
        try:
            return self._index[str(sample_id)]
        except KeyError:
            raise MdcError(f"Sample {sample_id!r} is not in pool {self._pool_name!r}.") from None

    def images(self, sample_ids: Sequence[str]) -> np.ndarray:
        """The RGB images ``(n, H, W, 3)`` uint8 of some samples (one contiguous read where possible).

        Parameters
        ----------
        sample_ids : sequence of str
            Sample ids of the pool, in the order wanted.

        Returns
        -------
        numpy.ndarray
            ``(n, H, W, 3)`` uint8 at the pool's working size.
        """
        idx = np.array([self.index_of(s) for s in sample_ids], np.int64)
        if not len(idx):
            return np.zeros((0, *(int(s) for s in self.pool.image_size), 3), np.uint8)
        if np.all(np.diff(idx) == 1):
            return np.asarray(self.pool.read_images(int(idx[0]), int(idx[-1]) + 1)[0])
        return np.stack([np.asarray(self.pool.read_images(int(i), int(i) + 1)[0][0]) for i in idx])

    def ground_truth(self) -> xr.Dataset | None:
        """The ground truth the session evaluates on (``semantic``, ``saliency``), or None."""
        if self._ground_truth is ...:
            self._ground_truth = self.pool.ground_truth() if hasattr(self.pool, "ground_truth") else None
        return self._ground_truth

    def use_ground_truth(self, ground_truth: xr.Dataset | None) -> xr.Dataset | None:
        """Evaluate on ``ground_truth`` from now on (``None``: the pool's own); cached evaluations are dropped.

        Parameters
        ----------
        ground_truth : xarray.Dataset or None
            ``semantic`` and/or ``saliency (sample, y, x)`` at the working size; None: the pool's own.

        Returns
        -------
        xarray.Dataset or None
            The ground truth now in use.
        """
        if ground_truth is None:
            ground_truth = self.pool.ground_truth() if hasattr(self.pool, "ground_truth") else None
        with self._lock:
            self._ground_truth = ground_truth
            self._evaluation.clear()
        return ground_truth

    def check_working_size(self, masks: xr.Dataset) -> None:
        """Refuse masks that are not at the pool's working size (``MdcError`` naming both sizes).

        Parameters
        ----------
        masks : xarray.Dataset
            Masks with ``y`` and ``x`` dimensions.

        Raises
        ------
        MdcError
            The masks are not at the pool's working size.
        """
        size = tuple(int(s) for s in self.pool.image_size)
        if (masks.sizes.get("y"), masks.sizes.get("x")) != size:
            raise MdcError(
                f"The masks are {masks.sizes.get('y')}x{masks.sizes.get('x')} pixels, the pool's "
                f"working size is {size[0]}x{size[1]}; import masks of images exported from this pool."
            )

    def evaluation(self, samples: Sequence[str] | None = None) -> xr.Dataset:
        """Per-image ground-truth metrics ``(sample, model)`` of every predicted model (cached).

        Parameters
        ----------
        samples : sequence of str or None, optional
            Only these samples; None: the whole pool.

        Returns
        -------
        xarray.Dataset
            :func:`mdc_widgets.metrics.evaluate`'s per-image metrics.

        Raises
        ------
        MdcError
            The workspace has no ground truth.
        """
        from mdc_widgets.metrics import evaluate  # torch

        gt = self.ground_truth()
        if gt is None:
            raise MdcError(f"Pool {self._pool_name!r} has no ground truth to evaluate against.")
        key = tuple(sorted(str(s) for s in samples)) if samples is not None else ("<all>",)
        with self._lock:
            if key not in self._evaluation:
                self._evaluation[key] = evaluate(self.predictions, gt, samples=None if samples is None else list(key))
            return self._evaluation[key]
