"""Is a registered model ready to run here? A cheap check of its checkpoint, before any run fails on it."""

from __future__ import annotations

from mdc_widgets.errors import MdcError

__all__ = ["missing_weights"]


def missing_weights(name: str) -> str | None:
    """Why ``name``'s default checkpoint cannot be loaded on this machine, or None when it can (or needs none).

    Cheap: it looks for files and loads nothing. Mini-world zoo models are
    never missing (they are trained on first use), nor are weight-free
    methods and released maps; torchvision models need their hub checkpoint,
    EdgeNets models their release file in ``MDC_WIDGETS_WEIGHTS``. Models
    registered by users are assumed ready (their loader may be costly).

    Parameters
    ----------
    name : str
        A registered model name.

    Returns
    -------
    str or None
        A sentence naming the file that is missing, or None.

    Examples
    --------
    >>> missing_weights("mw_unet_ss") is None
    True
    """
    from mdc_widgets.models import model_spec

    try:
        spec = model_spec(name)
    except MdcError:
        return None
    if spec.default_weights is None or "miniworld" in spec.tags:
        return None
    if "torchvision" in spec.tags:
        from mdc_widgets.models.torchvision_adapters import TORCHVISION_SEGMENTATION, hub_checkpoint_path

        entry = TORCHVISION_SEGMENTATION.get(name.removeprefix("tv_"))
        if entry is None:
            return None
        path = hub_checkpoint_path(entry[1].DEFAULT)
        return None if path.exists() else f"checkpoint {path.name} is not in {path.parent}"
    if "edgenets" in spec.tags:
        try:
            spec.default_weights()
        except MdcError as exc:
            # the first sentence names the file; the rest speaks of code arguments the picker replaces
            text = str(exc)
            if "the file " in text:
                return "checkpoint " + text.split("the file ", 1)[1].split(" (from", 1)[0] + " was not found"
            return text.split(". ")[0]
    return None
