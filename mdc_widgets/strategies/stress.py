"""Strategies that stress a live competitor: prediction change under perturbation, adversarial erasing.

An image is hard when a small change to it changes the model's answer: the
model's prediction on the clean image is compared with its prediction on a
perturbed copy (``1 - mIoU`` for SS, ``1 - IoU`` of the binarised saliency
for SOD), or the evidence Grad-CAM finds is erased until the prediction flips.

The strategies are ``score_<name>(inputs, **own_params)`` over one
:class:`~mdc_widgets.strategies.sources.StrategyInputs`; the functions named
after the registry entries (``occlusion_stress(pool, models, ...)``) are their
keyword forms.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.strategies.ops import dominant_class_index
from mdc_widgets.strategies.perturb import perturb, pool_mean_pixel
from mdc_widgets.strategies.sources import StrategyInputs, batch_generator, scores_array

__all__ = [
    "adversarial_erasing_depth",
    "blur_stress",
    "erase_until_flip",
    "hide_and_seek_stress",
    "occlusion_stress",
    "perturbation_stress",
    "prediction_change",
    "score_adversarial_erasing_depth",
    "score_blur_stress",
    "score_hide_and_seek_stress",
    "score_occlusion_stress",
    "score_perturbation_stress",
]

_DRAWS_NOTHING = {"blur"}

ERASING_BATCH_SIZE = 16
"""Images per Grad-CAM erasing pass unless the caller asks otherwise: each keeps a backward graph."""


def prediction_change(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """How much a model's answer moved, per image in [0, 1]: ``1 - mIoU`` of SS labels, ``1 - IoU`` of SOD masks.

    ``clean`` and ``perturbed`` are ``predict`` outputs: ``(n, C, H, W)``
    class probabilities or ``(n, 1, H, W)`` saliency.

    Parameters
    ----------
    clean : torch.Tensor
        ``(n, C, H, W)`` probabilities (or ``(n, 1, H, W)`` saliency) on the clean images.
    perturbed : torch.Tensor
        The same on the perturbed images.

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 in [0, 1].

    Examples
    --------
    >>> p = torch.zeros(1, 2, 2, 2); p[:, 1] = 1.0
    >>> q = p.flip(1)
    >>> prediction_change(p, p).tolist(), prediction_change(p, q).tolist()
    ([0.0], [1.0])
    """
    from mdc_widgets.discrepancy import sod_discrepancy, ss_discrepancy

    if clean.shape[1] == 1:
        return sod_discrepancy(clean[:, 0].float(), perturbed[:, 0].float()).float()
    return ss_discrepancy(clean.argmax(1), perturbed.argmax(1), clean.shape[1]).float()


def score_perturbation_stress(
    inputs: StrategyInputs, perturbation: str, model: Any = None, **params: Any
) -> xr.DataArray:
    """Prediction change of one competitor between each clean image and a perturbed copy.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool, the competitor in ``models``, and the ``seed`` of the
        perturbations (a run reproduces for the same seed and batch size).
    perturbation : str
        A name of :data:`mdc_widgets.strategies.perturb.PERTURBATIONS`.
    model : str or Competitor, optional
        The competitor (default the first in ``models``).
    **params : object
        The perturbation's parameters.
    """
    name = inputs.choose_model(model)
    comp = inputs.live_competitor(name)
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches():
        x, ok = inputs.images(start, stop)
        perturbed = perturb(x, perturbation, batch_generator(inputs.seed, start), **params)
        with torch.inference_mode():
            both = comp.predict(torch.cat([x, perturbed])).float()
        scores[start:stop] = prediction_change(both[: len(x)], both[len(x) :]).cpu().numpy()
        valid[start:stop] = ok
    seed = None if perturbation in _DRAWS_NOTHING else inputs.seed  # a blur's scores do not depend on the seed
    return scores_array(scores, inputs, valid, f"{perturbation}_stress", model=name, seed=seed, **params)


def score_occlusion_stress(inputs: StrategyInputs, model: Any = None, size_fraction: float = 0.3) -> xr.DataArray:
    """Prediction change when one random rectangle of random colour covers part of the image.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool, the competitor in ``models``, the seed.
    model : str or Competitor, optional
        The competitor (default the first in ``models``).
    size_fraction : float, optional
        The rectangle's side as a fraction of the image's side.
    """
    return score_perturbation_stress(inputs, "occlusion", model, size_fraction=size_fraction)


def score_hide_and_seek_stress(
    inputs: StrategyInputs, model: Any = None, grid_size: int = 4, hide_prob: float = 0.5, fill: Any = None
) -> xr.DataArray:
    """Prediction change when Hide-and-Seek hides random grid patches with the pool's mean pixel.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool, the competitor in ``models``, the seed.
    model : str or Competitor, optional
        The competitor (default the first in ``models``).
    grid_size : int, optional
        Patches per side.
    hide_prob : float, optional
        Probability that a patch is hidden.
    fill : float or sequence of float or None, optional
        The fill colour in [0, 1]; default the pool's mean pixel (one extra pass).

    References
    ----------
    .. [1] K. K. Singh and Y. J. Lee, "Hide-and-Seek: Forcing a network to be meticulous for
           weakly-supervised object and action localization," ICCV 2017, pp. 3544-3553. arXiv:1704.04232
    """
    fill = pool_mean_pixel(inputs.pool) if fill is None and inputs.pool is not None else fill
    fill = fill if fill is not None else 0.5
    return score_perturbation_stress(
        inputs,
        "hide_and_seek",
        model,
        grid_size=grid_size,
        hide_prob=hide_prob,
        fill=torch.as_tensor(fill, dtype=torch.float32).tolist(),
    )


def score_blur_stress(inputs: StrategyInputs, model: Any = None, sigma: float = 2.0) -> xr.DataArray:
    """Prediction change under a Gaussian blur of ``sigma`` pixels.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool and the competitor in ``models``.
    model : str or Competitor, optional
        The competitor (default the first in ``models``).
    sigma : float, optional
        Blur strength in pixels.
    """
    return score_perturbation_stress(inputs, "blur", model, sigma=sigma)


def _top_ranked(values: torch.Tensor, candidates: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per image, the ``counts`` candidate pixels with the largest values (ties broken by position)."""
    n = values.shape[0]
    flat = torch.where(candidates, values, torch.full_like(values, -torch.inf)).reshape(n, -1)
    order = flat.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand(n, -1))
    return (rank < counts[:, None]).reshape(values.shape) & candidates


def erase_until_flip(
    competitor: Any,
    images: torch.Tensor,
    *,
    fraction: float = 0.1,
    max_steps: int = 5,
    fill: Any = 0.5,
    layer: str | None = None,
    return_steps: bool = False,
) -> dict[str, Any]:
    """Adversarial erasing on a batch: erase the most discriminative CAM region until the prediction flips.

    Per image, the dominant predicted class ``c`` and its region ``R`` are
    taken from the clean prediction. Each step erases (fills with ``fill``,
    the pool's mean pixel) the ``fraction * |R|`` not-yet-erased pixels of the
    current ``c`` region with the largest Grad-CAM for ``c``. The prediction
    has flipped when ``c`` covers less than half of ``R``. Images still
    unflipped are processed together at every step.

    Parameters
    ----------
    competitor : Competitor
        An SS Competitor with a torch module.
    images : torch.Tensor
        ``(n, 3, H, W)`` float in [0, 1].
    fraction : float, optional
        Share of the original region erased per step.
    max_steps : int, optional
        The cap on erasures.
    fill : float or sequence of float, optional
        Grey level or RGB triple in [0, 1].
    layer : str or None, optional
        The Grad-CAM layer (default the competitor's ``cam_layer``).
    return_steps : bool, optional
        Also return the images and erased masks after every step.

    Returns
    -------
    dict
        ``depth`` ``(n,)`` int: the erasure after which the prediction flipped,
        ``max_steps`` if it never did (and for images with no foreground);
        ``score`` ``(n,)`` ``1 - depth / max_steps``; ``dominant`` ``(n,)``
        class; with ``return_steps``, ``images`` ``(max_steps + 1, n, H, W, 3)``
        uint8 (step 0 = clean) and ``masks`` ``(max_steps + 1, n, H, W)``
        bool (the pixels erased so far).

    Raises
    ------
    MdcError
        ``competitor`` is not an SS model, or ``max_steps`` < 1 or ``fraction`` outside (0, 1].

    References
    ----------
    .. [1] Y. Wei, J. Feng, X. Liang, M.-M. Cheng, Y. Zhao and S. Yan, "Object region mining with
           adversarial erasing: A simple classification to semantic segmentation approach," CVPR 2017,
           pp. 6488-6496. https://doi.org/10.1109/CVPR.2017.687
    """
    from mdc_widgets.explain import grad_cam

    if competitor.task != "ss":
        raise MdcError(f"Adversarial erasing explains a class region; {competitor.name!r} is not an SS model.")
    if max_steps < 1 or not 0 < fraction <= 1:
        raise MdcError(f"Need max_steps >= 1 and 0 < fraction <= 1; got {max_steps} and {fraction}.")
    x = images.float().clone()
    n = x.shape[0]
    fill_value = torch.as_tensor(fill, dtype=torch.float32, device=x.device).reshape(-1).expand(3).reshape(1, 3, 1, 1)
    with torch.inference_mode():
        labels = competitor.predict(x).argmax(1)
    dominant = dominant_class_index(labels, len(competitor.classes))
    region = labels == dominant[:, None, None]
    region_size = region.reshape(n, -1).sum(1)
    per_step = (region_size.double() * fraction).ceil().long().clamp_min(1)
    depth = torch.full((n,), max_steps, dtype=torch.long, device=x.device)
    active = dominant > 0
    erased = torch.zeros_like(region)
    current = region.clone()
    steps_images = [x.clone()] if return_steps else []
    steps_masks = [erased.clone()] if return_steps else []
    for step in range(1, max_steps + 1):
        idx = active.nonzero().flatten()
        if len(idx):
            cam = torch.as_tensor(
                grad_cam(
                    competitor,
                    x[idx],
                    target_class=dominant[idx].cpu().numpy(),
                    layer=layer,
                    region=current[idx].cpu().numpy(),
                ),
                device=x.device,
            )
            new = _top_ranked(cam, current[idx] & ~erased[idx], per_step[idx])
            erased[idx] |= new
            x[idx] = torch.where(erased[idx][:, None], fill_value, x[idx])
            with torch.inference_mode():
                now = competitor.predict(x[idx]).argmax(1)
            current[idx] = now == dominant[idx, None, None]
            kept = (current[idx] & region[idx]).reshape(len(idx), -1).sum(1)
            flipped = 2 * kept < region_size[idx]
            depth[idx[flipped]] = step
            active[idx[flipped]] = False
        if return_steps:
            steps_images.append(x.clone())
            steps_masks.append(erased.clone())
    out: dict[str, Any] = {
        "depth": depth.cpu().numpy(),
        "score": (1.0 - depth.double() / max_steps).cpu().numpy(),
        "dominant": dominant.cpu().numpy(),
    }
    if return_steps:
        stacked = torch.stack(steps_images)
        out["images"] = (stacked.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        out["masks"] = torch.stack(steps_masks).cpu().numpy()
    return out


def score_adversarial_erasing_depth(
    inputs: StrategyInputs,
    model: Any = None,
    fraction: float = 0.1,
    max_steps: int = 5,
    fill: Any = None,
    layer: str | None = None,
) -> xr.DataArray:
    """``1 - depth / max_steps``: how few CAM-guided erasures flip an SS model's dominant region.

    A model that needs only one erasure of its most discriminative evidence
    to lose the region relies on a small cue: the image is hard for it. Use
    :func:`erase_until_flip` with ``return_steps=True`` on a few images to see
    the steps.

    Parameters
    ----------
    inputs : StrategyInputs
        The pool and the SS competitor in ``models``; without a
        ``batch_size``, :data:`ERASING_BATCH_SIZE` images per pass.
    model : str or Competitor, optional
        The SS competitor (default the first SS one in ``models``).
    fraction : float, optional
        Share of the predicted region erased per step.
    max_steps : int, optional
        The cap on erasures.
    fill : float or sequence of float or None, optional
        Fill colour in [0, 1]; default the pool's mean pixel (one extra pass).
    layer : str, optional
        Grad-CAM layer (default the competitor's ``cam_layer``, else its last conv).

    References
    ----------
    .. [1] Y. Wei, J. Feng, X. Liang, M.-M. Cheng, Y. Zhao and S. Yan, "Object region mining with
           adversarial erasing: A simple classification to semantic segmentation approach," CVPR 2017,
           pp. 6488-6496. https://doi.org/10.1109/CVPR.2017.687
    """
    name = inputs.choose_model(model, task=None if model is not None else "ss")
    comp = inputs.live_competitor(name)
    fill = pool_mean_pixel(inputs.pool) if fill is None else fill
    scores = np.full(inputs.n, np.nan)
    valid = np.zeros(inputs.n, bool)
    for start, stop in inputs.batches(ERASING_BATCH_SIZE):
        x, ok = inputs.images(start, stop)
        result = erase_until_flip(comp, x, fraction=fraction, max_steps=max_steps, fill=fill, layer=layer)
        scores[start:stop] = result["score"]
        valid[start:stop] = ok
    return scores_array(
        scores, inputs, valid, "adversarial_erasing_depth", model=name, fraction=fraction, max_steps=max_steps
    )


# ---- keyword forms: build the inputs, call the strategy -------------------------------------------


def perturbation_stress(
    perturbation: str,
    pool: Pool | None = None,
    models: Sequence[Any] = (),
    model: Any = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | None = "auto",
    **params: Any,
) -> xr.DataArray:
    """:func:`score_perturbation_stress` on these inputs.

    Parameters
    ----------
    perturbation : {"occlusion", "hide_and_seek", "blur"}
        A key of :data:`mdc_widgets.strategies.perturb.PERTURBATIONS`.
    pool : Pool or None, optional
        The images the competitor runs on.
    models : sequence of Competitor, optional
        Live competitors (with their torch modules).
    model : str or Competitor or None, optional
        The competitor to stress (default the first in ``models``).
    seed : int, optional
        Seeds the random perturbations (per batch, so a run reproduces).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to run (``"auto"``: CUDA when present).
    **params : object
        The perturbation's parameters.

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = the prediction moved more; NaN for unreadable images.
    """
    inputs = StrategyInputs(pool=pool, models=models, seed=seed, batch_size=batch_size, device=device)
    return score_perturbation_stress(inputs, perturbation, model, **params)


def occlusion_stress(
    pool: Pool | None = None,
    models: Sequence[Any] = (),
    model: Any = None,
    size_fraction: float = 0.3,
    seed: int = 0,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_occlusion_stress` on these inputs.

    Parameters
    ----------
    pool : Pool or None, optional
        The images the competitor runs on.
    models : sequence of Competitor, optional
        Live competitors (with their torch modules).
    model : str or Competitor or None, optional
        The competitor to stress (default the first in ``models``).
    size_fraction : float, optional
        The rectangle's side as a fraction of the image's side.
    seed : int, optional
        Seeds the random perturbations (per batch, so a run reproduces).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to run (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = the prediction moved more; NaN for unreadable images.
    """
    inputs = StrategyInputs(pool=pool, models=models, seed=seed, batch_size=batch_size, device=device)
    return score_occlusion_stress(inputs, model, size_fraction)


def hide_and_seek_stress(
    pool: Pool | None = None,
    models: Sequence[Any] = (),
    model: Any = None,
    grid_size: int = 4,
    hide_prob: float = 0.5,
    fill: Any = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_hide_and_seek_stress` on these inputs.

    Parameters
    ----------
    pool : Pool or None, optional
        The images the competitor runs on.
    models : sequence of Competitor, optional
        Live competitors (with their torch modules).
    model : str or Competitor or None, optional
        The competitor to stress (default the first in ``models``).
    grid_size : int, optional
        Patches per side.
    hide_prob : float, optional
        Probability that a patch is hidden.
    fill : float or sequence of float or None, optional
        Fill colour in [0, 1]; None: the pool's mean pixel (one extra pass).
    seed : int, optional
        Seeds the random perturbations (per batch, so a run reproduces).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to run (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = the prediction moved more; NaN for unreadable images.

    References
    ----------
    .. [1] K. K. Singh and Y. J. Lee, "Hide-and-Seek: Forcing a network to be meticulous for
           weakly-supervised object and action localization," ICCV 2017, pp. 3544-3553. arXiv:1704.04232
    """
    inputs = StrategyInputs(pool=pool, models=models, seed=seed, batch_size=batch_size, device=device)
    return score_hide_and_seek_stress(inputs, model, grid_size, hide_prob, fill)


def blur_stress(
    pool: Pool | None = None,
    models: Sequence[Any] = (),
    model: Any = None,
    sigma: float = 2.0,
    batch_size: int = 64,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_blur_stress` on these inputs.

    Parameters
    ----------
    pool : Pool or None, optional
        The images the competitor runs on.
    models : sequence of Competitor, optional
        Live competitors (with their torch modules).
    model : str or Competitor or None, optional
        The competitor to stress (default the first in ``models``).
    sigma : float, optional
        Gaussian standard deviation in pixels.
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to run (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = the prediction moved more; NaN for unreadable images.
    """
    inputs = StrategyInputs(pool=pool, models=models, batch_size=batch_size, device=device)
    return score_blur_stress(inputs, model, sigma)


def adversarial_erasing_depth(
    pool: Pool | None = None,
    models: Sequence[Any] = (),
    model: Any = None,
    fraction: float = 0.1,
    max_steps: int = 5,
    fill: Any = None,
    layer: str | None = None,
    batch_size: int = ERASING_BATCH_SIZE,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_adversarial_erasing_depth` on these inputs.

    Parameters
    ----------
    pool : Pool or None, optional
        The images the competitor runs on.
    models : sequence of Competitor, optional
        Live competitors (with their torch modules).
    model : str or Competitor or None, optional
        The competitor to stress (default the first SS one in ``models``).
    fraction : float, optional
        Share of the predicted region erased per step.
    max_steps : int, optional
        The cap on erasures.
    fill : float or sequence of float or None, optional
        Fill colour in [0, 1]; None: the pool's mean pixel (one extra pass).
    layer : str or None, optional
        Grad-CAM layer (default the competitor's ``cam_layer``).
    batch_size : int, optional
        Images per pass.
    device : str or None, optional
        Where to run (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = fewer erasures flip the prediction.

    References
    ----------
    .. [1] Y. Wei, J. Feng, X. Liang, M.-M. Cheng, Y. Zhao and S. Yan, "Object region mining with
           adversarial erasing: A simple classification to semantic segmentation approach," CVPR 2017,
           pp. 6488-6496. https://doi.org/10.1109/CVPR.2017.687
    """
    inputs = StrategyInputs(pool=pool, models=models, batch_size=batch_size, device=device)
    return score_adversarial_erasing_depth(inputs, model, fraction, max_steps, fill, layer)
