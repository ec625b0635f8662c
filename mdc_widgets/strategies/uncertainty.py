"""Strategies from one model's (or an ensemble's) probabilities: random, loss, focal, entropy, U2PL, BALD.

Each strategy is ``score_<name>(inputs, **own_params)``: it streams the pool
batch by batch (vectorised within a batch) from one
:class:`~mdc_widgets.strategies.sources.StrategyInputs` and returns
``xr.DataArray (sample,)``, higher = harder. The ``*_scores`` functions are
the keyword forms (``entropy_scores(predictions=..., model=...)``): each
builds the inputs and calls its strategy.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.strategies.ops import (
    entropy_histogram,
    masked_mean,
    mutual_information,
    percentile_from_histogram,
    pixel_cross_entropy,
    pixel_focal_loss,
    top_fraction_mean,
    u2pl_alpha,
    unreliable_ratio,
)
from mdc_widgets.strategies.sources import StrategyInputs, scores_array

__all__ = [
    "ensemble_mutual_information_scores",
    "entropy_scores",
    "focal_scores",
    "loss_scores",
    "random_scores",
    "score_ensemble_mutual_information",
    "score_entropy",
    "score_focal",
    "score_loss",
    "score_random",
    "score_u2pl_unreliable",
    "u2pl_unreliable_scores",
]


def score_random(inputs: StrategyInputs) -> xr.DataArray:
    """Uniform random scores, reproducible for ``inputs.seed``: the baseline every strategy must beat.

    Parameters
    ----------
    inputs : StrategyInputs
        Only ``seed`` and the number of images are used.

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 uniform in [0, 1).

    Examples
    --------
    >>> inputs = StrategyInputs(probabilities={"m": np.zeros((3, 4, 4))}, seed=1, device="cpu")
    >>> bool((score_random(inputs) == score_random(inputs)).all())
    True
    """
    values = np.random.default_rng(inputs.seed).random(inputs.n)
    return scores_array(values, inputs, inputs.valid, "random", seed=inputs.seed)


def _pixel_loss_scores(
    inputs: StrategyInputs,
    pixel_loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    strategy: str,
    *,
    model: Any,
    top_fraction: float,
    **attrs: Any,
) -> xr.DataArray:
    name = inputs.choose_model(model)
    task = inputs.task(name)
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches():
        probs, ok = inputs.probabilities_of(name, start, stop)
        labels = inputs.labels(task, start, stop)
        if labels.shape[-2:] != probs.shape[-2:]:
            raise ShapeError(
                f"The labels are {tuple(labels.shape[-2:])} but the predictions of {name!r} are "
                f"{tuple(probs.shape[-2:])}; open the pool at the predictions' working resolution."
            )
        loss, labelled = pixel_loss(probs, labels)
        scores[start:stop] = top_fraction_mean(loss, labelled, top_fraction).cpu().numpy()
        valid[start:stop] = ok
    return scores_array(scores, inputs, valid, strategy, model=name, top_fraction=top_fraction, **attrs)


def score_loss(inputs: StrategyInputs, model: Any = None, top_fraction: float = 1.0) -> xr.DataArray:
    """Per-image cross-entropy (SS) or binary cross-entropy (SOD) of one model against the labels.

    The top-k images of this score are the OHEM-style selection. With
    ``top_fraction < 1`` each image scores the mean loss of its hardest
    ``top_fraction`` of pixels (OHEM's pixel selection) instead of all pixels.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool, predictions or probabilities, and the ground truth.
    model : str or Competitor, optional
        The model scored (default the first available).
    top_fraction : float, optional
        Share of each image's pixels, hardest first, that are averaged.
    """
    return _pixel_loss_scores(inputs, pixel_cross_entropy, "loss", model=model, top_fraction=top_fraction)


def score_focal(inputs: StrategyInputs, model: Any = None, alpha: float = 0.25, gamma: float = 2.0) -> xr.DataArray:
    """Mean focal loss ``alpha * (1 - p_t)^gamma * CE`` per image: loss that ignores easy pixels.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool, predictions or probabilities, and the ground truth.
    model : str or Competitor, optional
        The model scored (default the first available).
    alpha, gamma : float, optional
        The focal loss' weight and focusing exponent (Lin et al.: 0.25, 2).
    """
    focal = partial(pixel_focal_loss, alpha=alpha, gamma=gamma)
    return _pixel_loss_scores(inputs, focal, "focal", model=model, top_fraction=1.0, alpha=alpha, gamma=gamma)


def score_entropy(inputs: StrategyInputs, model: Any = None) -> xr.DataArray:
    """Mean normalised pixel entropy of one model per image (from the stored entropy maps when present).

    Parameters
    ----------
    inputs : StrategyInputs
        The predictions, probabilities or live models.
    model : str or Competitor, optional
        The model scored (default the first available).
    """
    name = inputs.choose_model(model)
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches():
        entropy, ok = inputs.entropy_of(name, start, stop)
        scores[start:stop] = masked_mean(entropy).cpu().numpy()
        valid[start:stop] = ok
    return scores_array(scores, inputs, valid, "entropy", model=name)


def score_u2pl_unreliable(
    inputs: StrategyInputs, model: Any = None, alpha_0: float = 20.0, step: int = 0, total_steps: int = 1
) -> xr.DataArray:
    """U2PL's unreliable-pixel ratio per image.

    Pixels whose entropy lies in the top ``alpha_t`` percent of all the
    pool's pixels (entropy ``>=`` the ``100 - alpha_t`` percentile) are
    unreliable; ``alpha_t = alpha_0 * (1 - step / total_steps)`` shrinks
    linearly as in U2PL (Wang et al., 2022). The percentile is exact over the
    float16 entropy maps, found in one pass; a second pass counts.

    Parameters
    ----------
    inputs : StrategyInputs
        The predictions, probabilities or live models.
    model : str or Competitor, optional
        The model scored (default the first available).
    alpha_0 : float, optional
        Initial share of unreliable pixels, in percent (U2PL: 20).
    step, total_steps : int, optional
        Where in the schedule the score is taken.

    References
    ----------
    .. [1] Y. Wang, H. Wang, Y. Shen, J. Fei, W. Li, G. Jin, L. Wu, R. Zhao and X. Le, "Semi-supervised
           semantic segmentation using unreliable pseudo-labels," CVPR 2022, pp. 4248-4257.
           arXiv:2203.03884
    .. [2] H. Wang, Y. Wang, Y. Shen, J. Fan, Y. Wang and Z. Zhang, "Using unreliable pseudo-labels for
           label-efficient semantic segmentation," International Journal of Computer Vision, 2024.
           https://doi.org/10.1007/s11263-024-02229-x
    """
    name = inputs.choose_model(model)
    alpha = u2pl_alpha(alpha_0, step, total_steps)
    histogram = None
    for start, stop in inputs.batches():
        entropy, ok = inputs.entropy_of(name, start, stop)
        counts = entropy_histogram(entropy[torch.as_tensor(ok, device=entropy.device)])
        histogram = counts if histogram is None else histogram + counts
    threshold = percentile_from_histogram(histogram, 100.0 - alpha) if alpha > 0 else np.inf
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches():
        entropy, ok = inputs.entropy_of(name, start, stop)
        # compare at the float16 resolution the percentile was found at
        scores[start:stop] = unreliable_ratio(entropy.half(), threshold).cpu().numpy()
        valid[start:stop] = ok
    return scores_array(scores, inputs, valid, "u2pl_unreliable", model=name, alpha_t=alpha, threshold=float(threshold))


def score_ensemble_mutual_information(
    inputs: StrategyInputs, members: Sequence[Any] | None = None, task: str | None = None
) -> xr.DataArray:
    """BALD mutual information of an ensemble per image: mean over pixels of ``H(mean p) - mean H(p)``.

    High where the models are each confident but disagree (epistemic
    uncertainty), zero where they agree. SS members must share one class
    list; SOD members are read as Bernoulli distributions.

    Parameters
    ----------
    inputs : StrategyInputs
        The predictions, probabilities or live models.
    members : sequence, optional
        The models (names or Competitors); default every model of ``task``.
    task : str, optional
        ``"ss"`` or ``"sod"``; default the task of the first member, or SS
        when two SS models are available.

    Raises
    ------
    MdcError
        Fewer than two models, models of two tasks, or SS models with different class lists.
    """
    if members is not None:
        names = [inputs.choose_model(m) for m in members]
    else:
        if task is None:
            task = "ss" if len(inputs.model_names("ss")) >= 2 else "sod"
        names = inputs.model_names(task)
    if len(names) < 2:
        raise MdcError(f"Mutual information needs at least two models of one task; got {names}.")
    tasks = {inputs.task(n) for n in names}
    if len(tasks) > 1:
        raise MdcError(f"Mutual information compares models of one task; {names} mix {sorted(tasks)}.")
    if tasks == {"ss"} and len({inputs.classes(n) for n in names}) > 1:
        raise MdcError(f"The SS models {names} predict different class lists; map them to one list first.")
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches():
        batch = [inputs.probabilities_of(n, start, stop) for n in names]
        mi = mutual_information(torch.stack([probs for probs, _ in batch]))
        scores[start:stop] = masked_mean(mi).cpu().numpy()
        valid[start:stop] = np.logical_and.reduce([ok for _, ok in batch])
    return scores_array(scores, inputs, valid, "ensemble_mutual_information", members=",".join(names))


# ---- keyword forms: build the inputs, call the strategy -------------------------------------------


def random_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    probabilities: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """:func:`score_random` on these inputs.

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    seed : int, optional
        Seeds the scores.

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 uniform in [0, 1).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> pool = SimpleNamespace(sample_ids=np.array(["a", "b", "c"]))
    >>> bool((random_scores(pool, seed=1) == random_scores(pool, seed=1)).all())
    True
    """
    inputs = StrategyInputs(pool=pool, predictions=predictions, probabilities=probabilities, seed=seed, device="cpu")
    return score_random(inputs)


def loss_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    models: Sequence[Any] = (),
    ground_truth: xr.Dataset | None = None,
    probabilities: Mapping[str, Any] | None = None,
    model: Any = None,
    top_fraction: float = 1.0,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_loss` on these inputs (OHEM-style per-image loss against the labels).

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    models : sequence of str or Competitor, optional
        The models taking part (live Competitors or names).
    ground_truth : xarray.Dataset or None, optional
        ``semantic`` / ``saliency (sample, y, x)``; None: the pool's own.
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    model : str or Competitor or None, optional
        The model scored (default the first available).
    top_fraction : float, optional
        Average the hardest share of each image's pixels, in (0, 1] (1: all).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = harder; NaN for images that could not be scored.
    """
    inputs = StrategyInputs(
        pool=pool,
        predictions=predictions,
        models=models,
        ground_truth=ground_truth,
        probabilities=probabilities,
        batch_size=batch_size,
        device=device,
    )
    return score_loss(inputs, model=model, top_fraction=top_fraction)


def focal_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    models: Sequence[Any] = (),
    ground_truth: xr.Dataset | None = None,
    probabilities: Mapping[str, Any] | None = None,
    model: Any = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_focal` on these inputs (mean focal loss per image).

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    models : sequence of str or Competitor, optional
        The models taking part (live Competitors or names).
    ground_truth : xarray.Dataset or None, optional
        ``semantic`` / ``saliency (sample, y, x)``; None: the pool's own.
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    model : str or Competitor or None, optional
        The model scored (default the first available).
    alpha : float, optional
        The focal loss's constant factor.
    gamma : float, optional
        The focusing exponent.
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = harder; NaN for images that could not be scored.
    """
    inputs = StrategyInputs(
        pool=pool,
        predictions=predictions,
        models=models,
        ground_truth=ground_truth,
        probabilities=probabilities,
        batch_size=batch_size,
        device=device,
    )
    return score_focal(inputs, model=model, alpha=alpha, gamma=gamma)


def entropy_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    models: Sequence[Any] = (),
    probabilities: Mapping[str, Any] | None = None,
    model: Any = None,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_entropy` on these inputs (mean normalised pixel entropy of one model).

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    models : sequence of str or Competitor, optional
        The models taking part (live Competitors or names).
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    model : str or Competitor or None, optional
        The model scored (default the first available).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = harder; NaN for images that could not be scored.
    """
    inputs = StrategyInputs(
        pool=pool,
        predictions=predictions,
        models=models,
        probabilities=probabilities,
        batch_size=batch_size,
        device=device,
    )
    return score_entropy(inputs, model=model)


def u2pl_unreliable_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    models: Sequence[Any] = (),
    probabilities: Mapping[str, Any] | None = None,
    model: Any = None,
    alpha_0: float = 20.0,
    step: int = 0,
    total_steps: int = 1,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_u2pl_unreliable` on these inputs (U2PL's unreliable-pixel ratio).

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    models : sequence of str or Competitor, optional
        The models taking part (live Competitors or names).
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    model : str or Competitor or None, optional
        The model scored (default the first available).
    alpha_0 : float, optional
        Initial share of unreliable pixels, percent.
    step : int, optional
        The current step ``t`` of the schedule.
    total_steps : int, optional
        The schedule's length ``T`` (> 0).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = harder; NaN for images that could not be scored.

    References
    ----------
    .. [1] Y. Wang, H. Wang, Y. Shen, J. Fei, W. Li, G. Jin, L. Wu, R. Zhao and X. Le, "Semi-supervised
           semantic segmentation using unreliable pseudo-labels," CVPR 2022, pp. 4248-4257.
           arXiv:2203.03884
    .. [2] H. Wang, Y. Wang, Y. Shen, J. Fan, Y. Wang and Z. Zhang, "Using unreliable pseudo-labels for
           label-efficient semantic segmentation," International Journal of Computer Vision, 2024.
           https://doi.org/10.1007/s11263-024-02229-x
    """
    inputs = StrategyInputs(
        pool=pool,
        predictions=predictions,
        models=models,
        probabilities=probabilities,
        batch_size=batch_size,
        device=device,
    )
    return score_u2pl_unreliable(inputs, model=model, alpha_0=alpha_0, step=step, total_steps=total_steps)


def ensemble_mutual_information_scores(
    pool: Pool | None = None,
    predictions: xr.Dataset | None = None,
    models: Sequence[Any] = (),
    probabilities: Mapping[str, Any] | None = None,
    members: Sequence[Any] | None = None,
    task: str | None = None,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_ensemble_mutual_information` on these inputs (BALD mutual information of an ensemble).

    Parameters
    ----------
    pool : Pool or None, optional
        The images (needed to run live competitors).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output (stored maps, entropy, probabilities).
    models : sequence of str or Competitor, optional
        The models taking part (live Competitors or names).
    probabilities : mapping of {str: array_like} or None, optional
        ``{model: (sample, C, H, W) or (sample, H, W) saliency}`` given directly.
    members : sequence of str or Competitor or None, optional
        The ensemble; default every model of ``task``.
    task : {"ss", "sod"} or None, optional
        The members' task; default SS when two SS models are available.
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = harder; NaN for images that could not be scored.
    """
    inputs = StrategyInputs(
        pool=pool,
        predictions=predictions,
        models=models,
        probabilities=probabilities,
        batch_size=batch_size,
        device=device,
    )
    return score_ensemble_mutual_information(inputs, members=members, task=task)
