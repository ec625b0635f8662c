"""Image pools: the embedded mini-world, real image folders, manifests with checksums."""

from mdc_widgets.data.io import decode_image, decode_mask, to_rgb_uint8
from mdc_widgets.data.manifest import Manifest, load_manifest, verify_manifest, write_miniworld_manifest
from mdc_widgets.data.miniworld import (
    GENERATOR_VERSION,
    MINIWORLD_CLASSES,
    NUISANCE_FACTORS,
    generate_miniworld,
    miniworld_checksum,
)
from mdc_widgets.data.pool import BasePool, DatasetPool, FilePool, Pool, open_pool, skimage_pool
from mdc_widgets.data.preview import overlay_ground_truth, preview_grid, save_preview

__all__ = [
    "GENERATOR_VERSION",
    "MINIWORLD_CLASSES",
    "NUISANCE_FACTORS",
    "BasePool",
    "DatasetPool",
    "FilePool",
    "Manifest",
    "Pool",
    "decode_image",
    "decode_mask",
    "generate_miniworld",
    "load_manifest",
    "miniworld_checksum",
    "open_pool",
    "overlay_ground_truth",
    "preview_grid",
    "save_preview",
    "skimage_pool",
    "to_rgb_uint8",
    "verify_manifest",
    "write_miniworld_manifest",
]
