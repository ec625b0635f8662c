"""What the explanation panel shows: Grad-CAM (SS) or saliency + CAM (SOD) of one model on one image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mdc_widgets.errors import MdcError
from mdc_widgets.views.sample import prediction_view
from mdc_widgets.viz.colors import overlay_heatmap, overlay_saliency

__all__ = ["explanation", "resolve_target_class", "target_class_of"]


def resolve_target_class(target_class: int | str | None, classes: Sequence[str], model: str) -> int | None:
    """A class index from an index or a class name (``MdcError`` naming the model's classes when unknown).

    Parameters
    ----------
    target_class : int or str or None
        A class index (returned as it is), a class name, or None (returned as None).
    classes : sequence of str
        The model's class names.
    model : str
        The model's name, for the error message.

    Returns
    -------
    int or None
        The class index, or None.

    Raises
    ------
    MdcError
        When ``target_class`` is a name that is not among ``classes``.

    Examples
    --------
    >>> resolve_target_class("cat", ["background", "cat"], "m"), resolve_target_class(None, [], "m")
    (1, None)
    """
    if isinstance(target_class, str):
        if target_class not in classes:
            raise MdcError(f"Model {model!r} has no class {target_class!r}; its classes are {list(classes)}.")
        return list(classes).index(target_class)
    return target_class


def target_class_of(prediction: np.ndarray, num_classes: int) -> int:
    """The class a label map shows most, background aside (0 when it shows only background).

    Parameters
    ----------
    prediction : numpy.ndarray
        Integer label map of any shape, values in ``0..num_classes-1``.
    num_classes : int
        The model's number of classes (class 0 is background).

    Returns
    -------
    int
        The most frequent non-background class, or 0.

    Examples
    --------
    >>> target_class_of(np.array([[0, 0, 2], [2, 1, 0]]), 3)
    2
    """
    counts = np.bincount(np.asarray(prediction).ravel(), minlength=num_classes)
    counts[0] = 0
    return int(counts.argmax()) if counts.max() > 0 else 0


def _predicted_labels(competitor: Any, image: np.ndarray) -> np.ndarray:
    """The competitor's label map of one image, computed now (the store has none for it)."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(image[None]).permute(0, 3, 1, 2).float().div(255).to(getattr(competitor, "device", "cpu"))
        return competitor.predict(x).argmax(1)[0].cpu().numpy().astype(np.uint8)


def explanation(
    competitor: Any,
    image: np.ndarray,
    sample_id: str,
    *,
    prediction: np.ndarray | None = None,
    target_class: int | str | None = None,
    layer: str | None = None,
) -> dict[str, Any]:
    """Grad-CAM (SS) or saliency + CAM (SOD) of one competitor on one image.

    Parameters
    ----------
    competitor : Competitor or MapCompetitor
        The model (a folder of released maps has no network: its map is shown
        as released, with a note).
    image : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    sample_id : str
        The image's id (reported back).
    prediction : numpy.ndarray, optional
        The stored map of this image, when the model has predicted it
        (required for released maps; SS models compute it otherwise).
    target_class : int or str, optional
        A class index or name (default: the class the model predicts most).
    layer : str, optional
        A name from ``layers`` (default: the model's CAM layer).

    Returns
    -------
    dict
        ``cam`` ``(H, W)`` in [0, 1], ``cam_overlay``, ``prediction_overlay``,
        ``legend``, ``layers``, ``layer``, ``target_class``, ``target_name``
        and, for SOD, ``saliency``/``saliency_overlay``.
    """
    from mdc_widgets.explain import grad_cam, list_cam_layers, saliency_explanation  # torch

    model, task, classes = competitor.name, competitor.task, list(competitor.classes)
    target_class = resolve_target_class(target_class, classes, model)
    out: dict[str, Any] = {
        "sample": str(sample_id),
        "model": model,
        "task": task,
        "image": image,
        "layers": list_cam_layers(competitor),
        "layer": layer or competitor.cam_layer,
    }
    if hasattr(competitor, "predict_samples"):
        # released maps have no network to open: the map itself is all there is to show
        view = prediction_view(image, prediction, task, classes)
        out.update(
            cam=None,
            cam_overlay=None,
            prediction_overlay=view["overlay"],
            legend=view["legend"],
            target_class=None,
            target_name=None,
            note=f"{model} is a folder of released maps: there is no network, so no class activation "
            "map; the map is shown as released.",
        )
        if task == "sod":
            out.update(saliency=prediction / 255.0, saliency_overlay=view["overlay"])
        return out
    if task == "sod":
        explained = saliency_explanation(competitor, image[None], layer=layer)
        saliency = np.asarray(explained["saliency"][0])
        cam = np.asarray(explained["cam"][0])
        out.update(
            saliency=saliency, saliency_overlay=overlay_saliency(image, saliency), target_class=1, target_name="salient"
        )
        prediction = (np.clip(saliency, 0, 1) * 255).round().astype(np.uint8)
    else:
        cam = np.asarray(grad_cam(competitor, image[None], target_class=target_class, layer=layer)[0])
        if prediction is None:
            prediction = _predicted_labels(competitor, image)
        if target_class is None:
            target_class = target_class_of(prediction, len(classes))
        out.update(target_class=int(target_class), target_name=classes[int(target_class)])
    view = prediction_view(image, prediction, task, classes)
    return {
        **out,
        "cam": cam,
        "cam_overlay": overlay_heatmap(image, cam, alpha=0.55),
        "prediction_overlay": view["overlay"],
        "legend": view["legend"],
    }
