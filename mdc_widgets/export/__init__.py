"""Hand a mined set on: a plain folder, COCO and Label Studio for annotation (and back), FiftyOne.

Every exporter takes a Session (its latest mining result, or ``result=``), a
mining result with its ``pool`` and ``predictions``, or a :func:`mined_set`
Dataset, and writes the same images in the same order (best first).
Importers return an xarray Dataset ``semantic``/``saliency (sample, y, x)``
that :meth:`mdc_widgets.session.Session.set_ground_truth` evaluates on, or
that :func:`write_mask_folder` writes for ``open_pool(..., ground_truth=...)``.
"""

from mdc_widgets.export.coco import export_coco, import_coco
from mdc_widgets.export.fiftyone import export_fiftyone
from mdc_widgets.export.folder import contact_sheet_html, export_folder
from mdc_widgets.export.label_studio import brush_decode, brush_encode, export_label_studio, import_label_studio
from mdc_widgets.export.masks import masks_dataset, pool_ground_truth, to_working_canvas, write_mask_folder
from mdc_widgets.export.mined import SIZES, file_stem, mined_set, ranked_frame, sample_array, sample_extent

__all__ = [
    "EXPORTERS",
    "SIZES",
    "brush_decode",
    "brush_encode",
    "contact_sheet_html",
    "export_as",
    "export_coco",
    "export_fiftyone",
    "export_folder",
    "export_label_studio",
    "file_stem",
    "import_coco",
    "import_label_studio",
    "masks_dataset",
    "mined_set",
    "pool_ground_truth",
    "ranked_frame",
    "sample_array",
    "sample_extent",
    "to_working_canvas",
    "write_mask_folder",
]

# the formats a Session, a widget or ``mine --export`` names; each takes (source, target, **options)
EXPORTERS = {
    "folder": export_folder,
    "coco": export_coco,
    "label-studio": export_label_studio,
    "fiftyone": export_fiftyone,
}


def export_as(format: str, source, target, **options):
    """Run the exporter of ``format`` (a key of :data:`EXPORTERS`) on ``source``, writing to ``target``.

    ``target`` is a folder, or the dataset name for ``"fiftyone"``; ``options``
    go to the exporter (``result=``, ``selected_only=``, ``size=``, ...).

    Parameters
    ----------
    format : str
        ``"folder"``, ``"coco"``, ``"label-studio"`` or ``"fiftyone"``.
    source : object
        A Session, a mining result (with ``pool=`` and ``predictions=`` in ``options``)
        or a :func:`mined_set` Dataset.
    target : str or pathlib.Path
        The folder, or the FiftyOne dataset name.
    **options : object
        Keyword arguments of the exporter.

    Returns
    -------
    object
        What the exporter returns (a path, ``{model: path}``, or a FiftyOne dataset).

    Raises
    ------
    MdcError
        When ``format`` is unknown (or the exporter refuses its input).

    Examples
    --------
    >>> export_as("pdf", None, "out")
    Traceback (most recent call last):
    ...
    mdc_widgets.errors.MdcError: Unknown export format 'pdf'; use one of folder, coco, label-studio, fiftyone.
    """
    from mdc_widgets.errors import MdcError

    if format not in EXPORTERS:
        raise MdcError(f"Unknown export format {format!r}; use one of {', '.join(EXPORTERS)}.")
    return EXPORTERS[format](source, target, **options)
