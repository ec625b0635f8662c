"""The released EdgeNets PASCAL VOC checkpoints, and where to find them on this machine (never downloaded)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mdc_widgets.errors import WeightsNotFoundError

__all__ = ["CHECKPOINTS", "WEIGHTS_ENV", "Checkpoint", "find_checkpoint", "weight_folders"]

WEIGHTS_ENV = "MDC_WIDGETS_WEIGHTS"
_SOURCE = "https://github.com/sacmehta/EdgeNets (model/segmentation/model_zoo/{family}/)"


@dataclass(frozen=True)
class Checkpoint:
    """One released file: its network, width multiplier, training crop size and reported quality.

    Parameters
    ----------
    family : {"espnetv2", "dicenet"}
        The network.
    width : float
        Width multiplier ``s`` of the channels (e.g. 2.0 for ``espnetv2_s_2.0``).
    size : int
        Side of the square training crop, 256 or 384.
    params : int
        Learnable parameters (batch-norm statistics excluded).
    voc_miou : float
        Class-wise mIoU in percent on PASCAL VOC 2012 val, as the authors report it.
    """

    family: str  # "espnetv2" or "dicenet"
    width: float
    size: int  # square training crop side, 256 or 384
    params: int  # learnable parameters (batch-norm statistics excluded)
    voc_miou: float  # class-wise mIoU on PASCAL VOC 2012 val, as reported by the authors

    @property
    def file_name(self) -> str:
        """The original file name, e.g. ``espnetv2_s_2.0_pascal_384x384.pth``."""
        return f"{self.family}_s_{self.width}_pascal_{self.size}x{self.size}.pth"

    @property
    def model_name(self) -> str:
        """The registry name, e.g. ``espnetv2_s2.0_voc384``."""
        return f"{self.family}_s{self.width}_voc{self.size}"


def _table(family: str, rows: list[tuple[float, int, float, float]]) -> list[Checkpoint]:
    return [
        Checkpoint(family, width, size, params, miou)
        for width, params, miou256, miou384 in rows
        for size, miou in ((256, miou256), (384, miou384))
    ]


# (width, params, mIoU of the 256x256 file, mIoU of the 384x384 file), from the model zoo's README
CHECKPOINTS: list[Checkpoint] = _table(
    "espnetv2",
    [
        (0.5, 80_353, 39.82, 47.18),
        (1.0, 234_021, 54.14, 60.22),
        (1.5, 468_373, 59.39, 63.67),
        (2.0, 789_253, 63.36, 67.01),
    ],
) + _table(
    "dicenet",
    [
        (0.2, 46_927, 33.77, 34.52),
        (0.5, 76_359, 42.48, 47.74),
        (0.75, 189_663, 49.52, 55.67),
        (1.0, 283_387, 54.31, 60.23),
        (1.25, 389_415, 57.59, 62.55),
        (1.75, 807_951, 58.39, 64.76),
    ],
)


def weight_folders() -> list[Path]:
    """The folders listed in ``MDC_WIDGETS_WEIGHTS`` (read now, not at import time)."""
    value = os.environ.get(WEIGHTS_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def find_checkpoint(checkpoint: Checkpoint) -> Path:
    """The checkpoint's path in the first ``MDC_WIDGETS_WEIGHTS`` folder holding it.

    Nothing is downloaded: the file must already be on this machine.

    Parameters
    ----------
    checkpoint : Checkpoint
        The released file to find, by its original name (:attr:`Checkpoint.file_name`).

    Returns
    -------
    pathlib.Path
        The file.

    Raises
    ------
    WeightsNotFoundError
        When no folder of ``MDC_WIDGETS_WEIGHTS`` holds it (or the variable is
        unset); the message says what was looked for where, and how to fix it.
    """
    folders = weight_folders()
    for folder in folders:
        path = folder / checkpoint.file_name
        if path.is_file():
            return path
    if folders:
        where = f"It was looked for in {', '.join(str(f) for f in folders)} (from {WEIGHTS_ENV})"
    else:
        where = f"{WEIGHTS_ENV} is unset, so there was no folder to look in"
    raise WeightsNotFoundError(
        f"Pretrained weights for {checkpoint.model_name!r} are not on this machine and are never downloaded at "
        f"run time: the file {checkpoint.file_name} (from {_SOURCE.format(family=checkpoint.family)}) was not "
        f"found. {where}. Set {WEIGHTS_ENV} to a folder holding {checkpoint.file_name} (several folders: "
        f"separate them with {os.pathsep!r}), or pass checkpoint='/path/to/{checkpoint.file_name}', "
        "or checkpoint=None for random weights."
    )
