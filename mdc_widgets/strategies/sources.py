"""Where a strategy reads its inputs from: given arrays, the prediction store, or live competitors.

Every strategy is ``func(inputs, **own_params)``: :func:`score_pool` builds
one :class:`StrategyInputs` from the uniform keywords (``pool``,
``predictions``, ``models``, ``ground_truth``, ...) and the strategy asks it
for batches of the maps it needs. It prefers what is already computed:
probabilities passed in, then the prediction store, then running the
competitor on the pool's images.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import xarray as xr

from mdc_widgets.config import resolve_device
from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError, ShapeError, UnknownModelError

__all__ = ["DEFAULT_BATCH_SIZE", "UNIFORM_INPUTS", "StrategyInputs", "batch_generator", "scores_array"]

DEFAULT_BATCH_SIZE = 64
"""Images per vectorised pass when neither the caller nor the strategy asks for another size."""


def _name(model: Any) -> str:
    return model if isinstance(model, str) else str(model.name)


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values.values if isinstance(values, xr.DataArray) else values)


def batch_generator(seed: int, start: int) -> torch.Generator:
    """A CPU generator for the batch starting at ``start``: a run reproduces for the same seed and batch size.

    Parameters
    ----------
    seed : int
        The run's seed.
    start : int
        The batch's first image.

    Returns
    -------
    torch.Generator
        A CPU generator seeded from ``(seed, start)``.
    """
    state = np.random.SeedSequence([int(seed), int(start)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@dataclass(kw_only=True)
class StrategyInputs:
    """The uniform strategy inputs, resolved once per scoring run and handed to every strategy.

    Parameters
    ----------
    pool : Pool, optional
        The images; needed to run competitors live.
    predictions : xarray.Dataset, optional
        ``open_predictions`` output (``prediction``, ``entropy``, ``valid``).
    models : sequence, optional
        Competitors (or model names) taking part.
    ground_truth : xarray.Dataset, optional
        ``semantic`` / ``saliency (sample, y, x)`` uint8, aligned to the scored
        samples by id when a strategy first reads labels.
    seed : int, optional
        Seeds the random strategies and perturbations.
    probabilities : mapping, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    batch_size : int, optional
        Images per vectorised pass; None lets each strategy choose
        (:data:`DEFAULT_BATCH_SIZE`, fewer for Grad-CAM erasing).
    device : str, optional
        Where to compute (``"auto"``: CUDA when present).
    _stored : dict, optional
        Internal: stored arrays opened so far, by model; not for callers.
    _aligned_truth : xarray.Dataset, optional
        Internal: ``ground_truth`` aligned to the scored samples; not for callers.

    Raises
    ------
    MdcError
        ``batch_size`` < 1, or the pool and the predictions hold different numbers of images.

    Examples
    --------
    >>> probs = np.full((3, 2, 4, 4), 0.5, np.float32)
    >>> inputs = StrategyInputs(probabilities={"m": probs}, batch_size=2, device="cpu")
    >>> inputs.n, list(inputs.batches()), inputs.model_names()
    (3, [(0, 2), (2, 3)], ['m'])
    """

    pool: Pool | None = None
    predictions: xr.Dataset | None = None
    models: Sequence[Any] = ()
    ground_truth: xr.Dataset | None = None
    seed: int = 0
    probabilities: Mapping[str, Any] | None = None
    batch_size: int | None = None
    device: str | None = "auto"
    _stored: dict[str, Any] = field(default_factory=dict, repr=False)
    _aligned_truth: xr.Dataset | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.models = list(self.models or ())
        self.probabilities = dict(self.probabilities or {})
        self.device = resolve_device(self.device)
        if self.batch_size is not None and self.batch_size < 1:
            raise MdcError(f"batch_size must be at least 1; got {self.batch_size}.")
        if self.pool is not None and self.predictions is not None and len(self.pool.sample_ids) != self.n:
            raise MdcError(
                f"The pool has {len(self.pool.sample_ids)} images but the predictions {self.n}; "
                "pass the pool the predictions were made on."
            )

    # ---- what is there -------------------------------------------------------------------------
    @property
    def sample_ids(self) -> np.ndarray:
        """``(sample,)`` ids of the scored images: the predictions', else the pool's, else the given probabilities'.

        Bare probability arrays get ``sample-000000``, ... .

        Raises
        ------
        MdcError
            There is neither a pool, nor predictions, nor probabilities.
        """
        if self.predictions is not None:
            return np.asarray(self.predictions["sample"].values)
        if self.pool is not None:
            return np.asarray(self.pool.sample_ids)
        if self.probabilities:
            values = next(iter(self.probabilities.values()))
            if isinstance(values, xr.DataArray) and "sample" in values.coords:
                return np.asarray(values["sample"].values)
            return np.array([f"sample-{i:06d}" for i in range(len(values))])
        raise MdcError("A strategy needs images to score: pass pool=, predictions= or probabilities=.")

    @property
    def n(self) -> int:
        """Number of scored images."""
        if self.predictions is not None:
            return int(self.predictions.sizes["sample"])
        return len(self.sample_ids)

    def batches(self, default_size: int = DEFAULT_BATCH_SIZE) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of each batch: ``batch_size`` images, or ``default_size`` when it is None.

        Parameters
        ----------
        default_size : int, optional
            The batch size when ``batch_size`` is None.

        Yields
        ------
        tuple of 2 int
            ``(start, stop)``.
        """
        size = self.batch_size or default_size
        for start in range(0, self.n, size):
            yield start, min(start + size, self.n)

    def model_names(self, task: str | None = None) -> list[str]:
        """Every model available (given probabilities, stored predictions, competitors), first seen first.

        Parameters
        ----------
        task : {"ss", "sod"} or None, optional
            Only models of this task; None: all.

        Returns
        -------
        list of str
            Model names.
        """
        names: list[str] = []
        for name in [*self.probabilities, *self._stored_names(), *map(_name, self.models)]:
            if name not in names and (task is None or self._task_or_none(name) == task):
                names.append(name)
        return names

    def _task_or_none(self, name: str) -> str | None:
        try:
            return self.task(name)
        except UnknownModelError:  # a bare name with neither predictions nor a competitor behind it
            return None

    def _stored_names(self) -> list[str]:
        return [] if self.predictions is None else [str(m) for m in self.predictions["model"].values]

    def competitor(self, name: str) -> Any | None:
        """The live competitor called ``name`` among ``models``, if one was passed.

        Parameters
        ----------
        name : str
            A model name.

        Returns
        -------
        Competitor or None
            The competitor, or None when ``name`` was not passed as an object.
        """
        for model in self.models:
            if not isinstance(model, str) and model.name == name:
                return model
        return None

    def task(self, name: str) -> str:
        """``"ss"`` or ``"sod"`` of a model: its competitor's, its stored predictions', or its probabilities' shape.

        Parameters
        ----------
        name : str
            A model among the inputs.

        Returns
        -------
        str
            ``"ss"`` or ``"sod"`` (probabilities with one channel, or ``(n, H, W)``, are SOD).

        Raises
        ------
        UnknownModelError
            ``name`` is not among the inputs.
        """
        comp = self.competitor(name)
        if comp is not None:
            return comp.task
        if name in self._stored_names():
            return str(self.predictions["task"].sel(model=name).values)
        if name in self.probabilities:
            values = self.probabilities[name]
            return "ss" if len(values.shape) == 4 and values.shape[1] > 1 else "sod"
        raise UnknownModelError(
            f"Model {name!r} is not among the inputs (known: {self.model_names()}); "
            "pass it in models= or predict it into the store first."
        )

    def classes(self, name: str) -> tuple[str, ...]:
        """Class names of a model; SOD models have ``("background", "salient")``.

        Parameters
        ----------
        name : str
            A model among the inputs.

        Returns
        -------
        tuple of str
            The competitor's or the store's names; for bare SS probabilities
            the channel indices as text.
        """
        comp = self.competitor(name)
        if comp is not None:
            return tuple(comp.classes)
        if name in self._stored_names():
            from mdc_widgets.predictions import model_classes

            return tuple(model_classes(self.predictions)[name])
        if self.task(name) == "sod":
            return ("background", "salient")
        return tuple(str(c) for c in range(self.probabilities[name].shape[1]))

    def choose_model(self, model: Any = None, task: str | None = None) -> str:
        """The model a one-model strategy scores: ``model`` if given, else the first available (of ``task``).

        Parameters
        ----------
        model : str or Competitor or None, optional
            The model asked for (a Competitor is added to ``models``); None: the first available.
        task : {"ss", "sod"} or None, optional
            Without ``model``: the first model of this task.

        Returns
        -------
        str
            The model's name.

        Raises
        ------
        MdcError
            No model (of ``task``) is available; an unknown ``model`` raises
            ``UnknownModelError`` (from :meth:`task`).
        """
        if model is not None:
            name = _name(model)
            if not isinstance(model, str) and self.competitor(name) is None:
                self.models.append(model)
            self.task(name)  # raises UnknownModelError with the known names
            return name
        names = self.model_names(task)
        if not names:
            what = f"{task.upper()} model" if task else "model"
            raise MdcError(f"This strategy needs a {what}; pass models=[...] or predictions with one.")
        return names[0]

    def live_competitor(self, name: str) -> Any:
        """The competitor ``name`` ready to run on the pool's images, moved to the inputs' device.

        Parameters
        ----------
        name : str
            A model passed as a Competitor in ``models``.

        Returns
        -------
        Competitor
            The competitor, with its torch module.

        Raises
        ------
        MdcError
            ``name`` was not passed as a Competitor with a module, or there is no pool.
        """
        comp = self.competitor(name)
        if comp is None or getattr(comp, "module", None) is None:
            raise MdcError(
                f"This strategy runs model {name!r} on (perturbed) images; pass the Competitor itself in models=."
            )
        if self.pool is None:
            raise MdcError(f"This strategy runs model {name!r} on the pool's images; pass pool=.")
        if hasattr(comp, "to") and str(getattr(comp, "device", self.device)) != self.device:
            comp.to(self.device)
        return comp

    @property
    def valid(self) -> np.ndarray:
        """``(sample,)`` bool: the images the predictions could read (all, without predictions)."""
        if self.predictions is not None and "valid" in self.predictions:
            return np.asarray(self.predictions["valid"].values, bool)
        return np.ones(self.n, bool)

    # ---- batches -------------------------------------------------------------------------------
    def images(self, start: int, stop: int) -> tuple[torch.Tensor, np.ndarray]:
        """``(b, 3, H, W)`` float images in [0, 1] on the device and which of them decoded.

        Parameters
        ----------
        start : int
            First image of the batch (a position in the scored images).
        stop : int
            One past the batch's last image.

        Returns
        -------
        images : torch.Tensor
            ``(b, 3, H, W)`` float32 in [0, 1] on the device.
        valid : numpy.ndarray
            ``(b,)`` bool, the images that decoded.

        Raises
        ------
        MdcError
            There is no pool.
        """
        if self.pool is None:
            raise MdcError("This strategy needs the images; pass pool=.")
        images, valid = self.pool.read_images(start, stop)
        x = torch.as_tensor(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        return x, np.asarray(valid, bool)

    def probabilities_of(self, name: str, start: int, stop: int) -> tuple[torch.Tensor, np.ndarray]:
        """``(b, C, H, W)`` probabilities of a model (SOD ``(b, 1, H, W)``) and the valid images of the batch.

        Parameters
        ----------
        name : str
            A model among the inputs.
        start : int
            First image of the batch (a position in the scored images).
        stop : int
            One past the batch's last image.

        Returns
        -------
        probabilities : torch.Tensor
            ``(b, C, H, W)`` (SOD ``(b, 1, H, W)``) float32 in [0, 1] on the device,
            from the given probabilities, the store, or the live competitor.
        valid : numpy.ndarray
            ``(b,)`` bool, the images that could be scored.

        Raises
        ------
        MdcError
            The model has neither given nor stored probabilities, and cannot be run live.
        """
        valid = self.valid[start:stop]
        if name in self.probabilities:
            values = torch.as_tensor(np.ascontiguousarray(_as_numpy(self.probabilities[name])[start:stop])).float()
            return (values[:, None] if values.ndim == 3 else values).to(self.device), valid
        stored = self._stored_probabilities(name)
        if stored is not None:
            values = torch.as_tensor(np.ascontiguousarray(stored.isel(sample=slice(start, stop)).values)).float()
            if self.task(name) == "sod":
                values = values[:, None] / 255.0
            return values.to(self.device), valid
        comp = self.competitor(name)
        if comp is None or self.pool is None:
            raise MdcError(
                f"No probabilities of model {name!r}: pass probabilities={{{name!r}: ...}}, run predict_pool "
                "with probabilities=True, or pass the Competitor in models= and the pool in pool=."
            )
        comp = self.live_competitor(name)
        x, read_ok = self.images(start, stop)
        with torch.inference_mode():
            probs = comp.predict(x).float()
        return probs, valid & read_ok

    def _stored_probabilities(self, name: str) -> xr.DataArray | None:
        if name not in self._stored_names():
            return None
        if name not in self._stored:
            if self.task(name) == "sod":
                # the stored saliency map is the model's salient-class probability (uint8)
                self._stored[name] = self.predictions["prediction"].sel(model=name)
            else:
                self._stored[name] = self._open_stored_ss(name)
        return self._stored[name]

    def _open_stored_ss(self, name: str) -> xr.DataArray | None:
        store = self.predictions.attrs.get("store")
        if not store:
            return None
        from mdc_widgets.predictions import open_probabilities

        try:
            return open_probabilities(store, name)
        except MdcError:
            return None

    def entropy_of(self, name: str, start: int, stop: int) -> tuple[torch.Tensor, np.ndarray]:
        """``(b, H, W)`` normalised entropy of a model: the stored map, else computed from its probabilities.

        Parameters
        ----------
        name : str
            A model among the inputs.
        start : int
            First image of the batch (a position in the scored images).
        stop : int
            One past the batch's last image.

        Returns
        -------
        entropy : torch.Tensor
            ``(b, H, W)`` float32 in [0, 1] on the device.
        valid : numpy.ndarray
            ``(b,)`` bool, the images that could be scored.
        """
        if (
            self.predictions is not None
            and "entropy" in self.predictions
            and name in self._stored_names()
            and name not in self.probabilities
        ):
            values = self.predictions["entropy"].sel(model=name).isel(sample=slice(start, stop)).values
            return torch.as_tensor(np.ascontiguousarray(values)).float().to(self.device), self.valid[start:stop]
        from mdc_widgets.strategies.ops import normalized_entropy

        probs, valid = self.probabilities_of(name, start, stop)
        return normalized_entropy(probs), valid

    def labels(self, task: str, start: int, stop: int) -> torch.Tensor:
        """Ground-truth class indices ``(b, H, W)``: SS classes (255 = ignore), SOD 0 / 1.

        Parameters
        ----------
        task : {"ss", "sod"}
            Which ground truth: ``semantic`` (SS) or ``saliency`` (SOD, thresholded at 128).
        start : int
            First image of the batch (a position in the scored images).
        stop : int
            One past the batch's last image.

        Returns
        -------
        torch.Tensor
            ``(b, H, W)`` int64 on the device.

        Raises
        ------
        MdcError
            There is no ground truth, it lacks the task's maps, or it lacks scored samples.
        """
        if self.ground_truth is None:
            raise MdcError("This strategy compares predictions with labels; pass ground_truth= (or a labelled pool).")
        if self._aligned_truth is None:
            # aligned on first use: a strategy that reads no labels ignores ground truth of other samples
            self._aligned_truth = self._aligned(self.ground_truth)
        var = "semantic" if task == "ss" else "saliency"
        if var not in self._aligned_truth:
            raise MdcError(f"The ground truth has no {var!r} maps, which a {task.upper()} model's loss needs.")
        values = torch.as_tensor(np.ascontiguousarray(self._aligned_truth[var].isel(sample=slice(start, stop)).values))
        labels = values.long() if task == "ss" else (values >= 128).long()
        return labels.to(self.device)

    def _aligned(self, ground_truth: xr.Dataset) -> xr.Dataset:
        ids = self.sample_ids if (self.predictions is not None or self.pool is not None) else None
        if ids is None or "sample" not in ground_truth.coords:
            return ground_truth
        have = np.asarray(ground_truth["sample"].values).astype(str)
        want = np.asarray(ids).astype(str)
        if len(have) == len(want) and (have == want).all():
            return ground_truth
        missing = sorted(str(s) for s in set(want) - set(have))
        if missing:
            raise MdcError(
                f"The ground truth lacks {len(missing)} of the scored samples (e.g. {missing[0]!r}); "
                "pass the labels of the same pool."
            )
        return ground_truth.assign_coords(sample=have).sel(sample=list(want))


def scores_array(
    values: np.ndarray, inputs: StrategyInputs, valid: np.ndarray | None, name: str, **attrs: Any
) -> xr.DataArray:
    """A strategy's result: ``(sample,)`` float64, NaN where the image could not be scored.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` scores, one per scored image.
    inputs : StrategyInputs
        The inputs (for the sample ids).
    valid : numpy.ndarray or None
        ``(n,)`` bool; False scores NaN. None: every image valid.
    name : str
        The strategy's name (the array's name and ``strategy`` attr).
    **attrs : object
        Parameters to record as attrs (non-scalars as text, None dropped).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64.

    Raises
    ------
    ShapeError
        ``values`` is not ``(n,)``.
    """
    values = np.asarray(values, np.float64)
    if values.shape != (inputs.n,):
        raise ShapeError(f"Strategy {name!r} produced {values.shape} scores for {inputs.n} images.")
    if valid is not None:
        values = np.where(valid, values, np.nan)
    clean = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in attrs.items() if v is not None}
    return xr.DataArray(
        values, dims=("sample",), coords={"sample": inputs.sample_ids}, name=name, attrs={"strategy": name, **clean}
    )


UNIFORM_INPUTS = tuple(f.name for f in fields(StrategyInputs) if not f.name.startswith("_"))
"""Keywords every call site may pass to any strategy (the fields of :class:`StrategyInputs`)."""
