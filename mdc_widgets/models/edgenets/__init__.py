"""ESPNetv2 and DiCENet PASCAL VOC segmentation networks (the EdgeNets model zoo) as competitors.

Written from the architecture description of github.com/sacmehta/EdgeNets so
that its released checkpoints load with ``strict=True`` and compute the same
function. The registry reads its ``model_specs()``: ``espnetv2_s<width>_voc<size>`` and
``dicenet_s<width>_voc<size>`` for every released file; their default weights
are looked up by original file name in the ``MDC_WIDGETS_WEIGHTS`` folders.

Modules: :mod:`.blocks` (conv/BN/PReLU units), :mod:`.decoder` (the shared
pyramid decoder), :mod:`.espnetv2`, :mod:`.dicenet`, :mod:`.checkpoints` (the
file table and lookup) and :mod:`.registration`.
"""

from mdc_widgets.models.edgenets.checkpoints import CHECKPOINTS, WEIGHTS_ENV, Checkpoint, find_checkpoint
from mdc_widgets.models.edgenets.dicenet import DICENET_CHANNELS, dicenet_seg
from mdc_widgets.models.edgenets.espnetv2 import ESPNETV2_CHANNELS, espnetv2_seg
from mdc_widgets.models.edgenets.registration import CAM_LAYERS, model_specs, preprocess, working_size

__all__ = [
    "CAM_LAYERS",
    "CHECKPOINTS",
    "DICENET_CHANNELS",
    "ESPNETV2_CHANNELS",
    "WEIGHTS_ENV",
    "Checkpoint",
    "dicenet_seg",
    "espnetv2_seg",
    "find_checkpoint",
    "model_specs",
    "preprocess",
    "working_size",
]
