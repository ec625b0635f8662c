"""Models' maps as pre-annotations: one class map per image, the form every annotation tool starts from.

SS maps are class maps already; a SOD map becomes the binary mask an
annotator would draw (ARCHITECTURE.md's adaptive binarisation), class 1
``"salient"``. Importers map the tool's label names back to class indices
with :func:`class_index`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = ["SALIENT", "class_index", "prelabels", "semantic_classes"]

SALIENT = ("background", "salient")


def semantic_classes(mined: xr.Dataset) -> list[str]:
    """The class list of a mined set's semantic masks: the first SS model's, else the ground truth's.

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`~mdc_widgets.export.mined_set`.

    Returns
    -------
    list of str
        Class names by index; ``[]`` when neither is known.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"model": ["m"], "task": ("model", ["ss"])}, attrs={"classes": {"m": ["bg", "cat"]}})
    >>> semantic_classes(ds)
    ['bg', 'cat']
    """
    for model, task in zip(mined["model"].values, mined["task"].values):
        if str(task) == "ss":
            return list((mined.attrs.get("classes") or {}).get(str(model), []))
    return list(mined.attrs.get("gt_classes") or [])


def prelabels(mined: xr.Dataset) -> dict[str, tuple[str, np.ndarray, list[str]]]:
    """``{model: (kind, class maps (sample, y, x) uint8, class names)}``; kind ``"semantic"`` or ``"saliency"``.

    The maps have the mined set's layout: crop image ``i`` to
    :func:`~mdc_widgets.export.mined.sample_extent` ``(mined, i)``.

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`~mdc_widgets.export.mined_set`.

    Returns
    -------
    dict of {str: tuple}
        SS models give their label maps and class names; SOD models the adaptively
        binarised saliency (1 = salient) with ``["background", "salient"]``.

    Examples
    --------
    >>> maps = np.array([[[[0, 255], [0, 255]]]], np.uint8)   # one image, one SOD model
    >>> ds = xr.Dataset({"prediction": (("sample", "model", "y", "x"), maps)},
    ...                 coords={"model": ["p"], "task": ("model", ["sod"])})
    >>> kind, labels, names = prelabels(ds)["p"]
    >>> kind, labels[0].tolist(), names
    ('saliency', [[0, 1], [0, 1]], ['background', 'salient'])
    """
    from mdc_widgets.discrepancy import binarize_saliency
    from mdc_widgets.export.mined import sample_array

    out = {}
    maps = np.asarray(mined["prediction"].values)
    for j, (model, task) in enumerate(zip(mined["model"].values, mined["task"].values)):
        if str(task) == "ss":
            out[str(model)] = ("semantic", maps[:, j], list((mined.attrs.get("classes") or {}).get(str(model), [])))
        elif "image_height" in mined:
            # images of their own sizes: each map is binarised on its own pixels (the pad would lower its mean)
            binary = np.zeros(maps[:, j].shape, np.uint8)
            for i in range(len(binary)):
                own = sample_array(mined, "prediction", i, j)
                binary[i, : own.shape[0], : own.shape[1]] = np.asarray(binarize_saliency(own[None]))[0]
            out[str(model)] = ("saliency", binary, list(SALIENT))
        else:
            binary = np.asarray(binarize_saliency(maps[:, j])).astype(np.uint8)
            out[str(model)] = ("saliency", binary, list(SALIENT))
    return out


def class_index(name: str, classes: Sequence[str], where: str) -> int:
    """The index of label ``name`` in ``classes`` (``MdcError`` naming the file and the known names).

    Parameters
    ----------
    name : str
        A label name from an annotation file.
    classes : sequence of str
        The class names by index.
    where : str
        The file, for the error message.

    Returns
    -------
    int
        The position of ``name`` in ``classes``.

    Raises
    ------
    MdcError
        When ``name`` is not in ``classes``.

    Examples
    --------
    >>> class_index("cat", ["background", "cat"], "x.json")
    1
    """
    try:
        return list(classes).index(name)
    except ValueError:
        raise MdcError(
            f"{where} uses the label {name!r}, which is not one of the classes {list(classes)}; "
            "rename it in the annotation tool or pass classes=... with it."
        ) from None
