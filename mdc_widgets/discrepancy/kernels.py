"""CPU scoring kernels on uint8 maps: narrow integers, bit-packed binary maps, one pass per model.

The reference formulas live in :mod:`mdc_widgets.discrepancy.ops` (torch,
any device, any dtype). These kernels compute the same numbers for the
common case, uint8 maps on the CPU, without widening pixels to int64 or
float: at 320-512 px the reference spends most of its time building
``int64`` indices and float copies of every map, not counting.

- Adaptive binarisation in exact integer arithmetic: a pixel ``s`` of an
  image with ``P`` pixels summing to ``S`` is salient when
  ``s >= min(ceil(2 S / P), 255)`` and ``s > 0``, which is
  ``s / 255 >= min(2 mean, 1)`` without rounding.
- Binary maps are bit-packed once per model (``np.packbits``); each pair's
  intersection is a popcount of an AND on 1/8 of the bytes.
- SS pairs: one uint16 joint index ``a * C + b`` and a per-image
  ``bincount`` of it give the whole confusion matrix, hence each model's
  class histogram (foreground area, dominant class) in the same pass.
- Each image's intermediates are built in a buffer reused for the next
  image, so they stay in the cache instead of going out to memory and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

__all__ = [
    "binarize_uint8",
    "joint_bincount",
    "map_statistics",
    "pack_binary",
    "packed_counts",
    "per_image_bincount",
    "saliency_thresholds",
]


def saliency_thresholds(saliency: np.ndarray) -> np.ndarray:
    """Smallest salient value ``(n,)`` (1..255) of each uint8 map of ``(n, P)``, exact in integers.

    Parameters
    ----------
    saliency : numpy.ndarray
        ``(n, P)`` uint8 saliency, one flattened map per row.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` uint8 thresholds ``ceil(2 S / P)`` clipped to 1..255 (``S`` the row sum).

    Examples
    --------
    >>> saliency_thresholds(np.array([[0, 10, 200, 255]], np.uint8)).tolist()  # ceil(2 * 465 / 4)
    [233]
    """
    pixels = saliency.shape[1]
    # uint32 accumulates twice as fast as int64 and cannot overflow below 16.8M pixels an image
    total = saliency.sum(axis=1, dtype=np.uint32 if pixels * 255 < 2**32 else np.uint64).astype(np.int64)
    # ceil(2 S / P), capped at 255 (threshold 1) and at least 1 (an all-zero map is background)
    return np.clip(-((-2 * total) // max(pixels, 1)), 1, 255).astype(np.uint8)


def binarize_uint8(saliency: np.ndarray) -> np.ndarray:
    """Adaptive binarisation of uint8 maps ``(n, ...)``: the same as ``binarize_saliency``, without floats.

    Parameters
    ----------
    saliency : numpy.ndarray
        ``(n, ...)`` uint8 saliency maps (0..255).

    Returns
    -------
    numpy.ndarray
        bool, the shape of ``saliency``: pixels at or above their map's threshold.

    Examples
    --------
    >>> binarize_uint8(np.array([[[0, 10], [200, 255]]], np.uint8))[0].tolist()
    [[False, False], [False, True]]
    """
    flat = saliency.reshape(len(saliency), -1)
    threshold = saliency_thresholds(flat)
    return (flat >= threshold[:, None]).reshape(saliency.shape)


def pack_binary(binary: np.ndarray) -> np.ndarray:
    """Bit-pack boolean maps ``(n, P)`` to ``(n, words)`` uint64 (zero padded), for AND + popcount.

    Parameters
    ----------
    binary : numpy.ndarray
        ``(n, ...)`` bool maps, flattened per image to ``P`` pixels.

    Returns
    -------
    numpy.ndarray
        ``(n, ceil(P / 64))`` uint64 words.

    Examples
    --------
    >>> pack_binary(np.ones((2, 70), bool)).shape
    (2, 2)
    """
    packed = np.packbits(binary.reshape(len(binary), -1), axis=1)
    pad = -packed.shape[1] % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def packed_counts(packed: np.ndarray) -> np.ndarray:
    """Number of set bits ``(n,)`` int64 of packed maps ``(n, words)``.

    Parameters
    ----------
    packed : numpy.ndarray
        ``(n, words)`` uint64 from :func:`pack_binary`.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 set-bit counts.

    Examples
    --------
    >>> packed_counts(pack_binary(np.eye(3, 70, dtype=bool))).tolist()
    [1, 1, 1]
    """
    return np.bitwise_count(packed).sum(axis=1, dtype=np.int64)


def per_image_bincount(values: np.ndarray, bins: int) -> np.ndarray:
    """Histogram ``(n, bins)`` int64 of each row of ``values (n, P)`` (uint8 or uint16, all below ``bins``).

    One ``np.bincount`` per image: a batched bincount needs a per-image
    offset and so an 8-byte index per pixel, which measured 6x slower at
    320 px; a row holds 10^5 pixels, so the loop's own cost is negligible.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, P)`` uint8 or uint16 values, each below ``bins``.
    bins : int
        Number of histogram bins (the length of each output row).

    Returns
    -------
    numpy.ndarray
        ``(n, bins)`` int64 counts.

    Examples
    --------
    >>> per_image_bincount(np.array([[0, 2, 2], [1, 1, 1]], np.uint8), 3).tolist()
    [[1, 0, 2], [0, 3, 0]]
    """
    out = np.empty((len(values), bins), np.int64)
    for i, row in enumerate(values):
        out[i] = np.bincount(row, minlength=bins)
    return out


def joint_bincount(a: np.ndarray, b: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts ``(n, C, C)`` int64 of label maps ``a, b (n, P)`` uint8, all labels below ``C``.

    Row ``i`` holds how many pixels have label ``a`` in the first map and
    ``b`` in the second. Each image's joint index ``a * C + b`` is built in
    one uint16 buffer reused for every image (200 KB at 320 px: it stays in
    the cache between its writes and the ``bincount`` that reads it), instead
    of a chunk-wide index that goes out to memory and back.

    Parameters
    ----------
    a, b : numpy.ndarray
        ``(n, P)`` uint8 label maps, every value below ``num_classes``.
    num_classes : int
        ``C``, at most 256.

    Returns
    -------
    numpy.ndarray
        ``(n, C, C)`` int64 counts; row sums are ``a``'s class histogram,
        column sums ``b``'s.

    Examples
    --------
    >>> joint_bincount(np.array([[0, 1, 1]], np.uint8), np.array([[0, 1, 0]], np.uint8), 2)[0].tolist()
    [[1, 0], [1, 1]]
    """
    c = int(num_classes)
    out = np.empty((len(a), c * c), np.int64)
    joint = np.empty(a.shape[1:], np.uint16)
    for i in range(len(a)):
        np.multiply(a[i], c, out=joint, dtype=np.uint16)
        joint += b[i]
        out[i] = np.bincount(joint, minlength=c * c)
    return out.reshape(len(a), c, c)


def _miou_discrepancy(conf: np.ndarray) -> np.ndarray:
    """``1 - mIoU`` over the classes present in either map, from ``(n, C, C)`` counts (1 - 1 when none)."""
    inter = np.diagonal(conf, axis1=1, axis2=2).astype(np.float64)
    union = conf.sum(axis=2) + conf.sum(axis=1) - inter
    present = union > 0
    iou = np.where(present, inter / np.maximum(union, 1), 0.0)
    n_present = present.sum(axis=1)
    miou = np.where(n_present > 0, iou.sum(axis=1) / np.maximum(n_present, 1), 1.0)
    return 1.0 - miou


def _dominant(hist: np.ndarray) -> np.ndarray:
    """Most frequent non-background class of each histogram row; 0 if none (ties: the smallest class)."""
    if hist.shape[1] < 2:
        return np.zeros(len(hist), np.int64)
    counts = hist[:, 1:]
    return np.where(counts.max(axis=1) > 0, counts.argmax(axis=1) + 1, 0).astype(np.int64)


def map_statistics(
    maps: np.ndarray,
    tasks: Sequence[str],
    num_classes: int,
    *,
    sod_measure: str = "iou",
    class_histograms: bool = True,
) -> dict[str, np.ndarray]:
    """All pairwise discrepancies and per-model statistics of one chunk of uint8 maps, in one pass.

    Parameters
    ----------
    maps : np.ndarray
        ``(n, M, H, W)`` uint8: SS labels (below ``num_classes``) or SOD saliency 0..255.
    tasks : sequence of str
        ``"ss"`` or ``"sod"`` per model.
    num_classes : int
        Class count of the SS maps (at most 256).
    sod_measure : str, optional
        ``"iou"`` or ``"mae"`` for SOD-SOD pairs.
    class_histograms : bool, optional
        Also histogram SS models that are in no SS pair (for ``dominant``).

    Returns
    -------
    dict
        ``discrepancy`` ``(n, M, M)`` float64 (0 on the diagonal),
        ``foreground`` ``(n, M)`` float64 fraction of foreground pixels (SS:
        non-background; SOD: adaptively binarised), ``dominant`` ``(n, M)``
        int64 (SS: the most frequent non-background class, 0 if none; SOD: -1)
        and ``max_label`` ``(M,)`` int64 (the largest label of each SS model's maps, 0 for SOD).

    Examples
    --------
    >>> maps = np.zeros((1, 3, 2, 2), np.uint8)
    >>> maps[0, 0, 0] = 2; maps[0, 1, :, 0] = 2; maps[0, 2, 0] = 255
    >>> stats = map_statistics(maps, ["ss", "ss", "sod"], 3)
    >>> stats["discrepancy"][0].round(3).tolist()
    [[0.0, 0.667, 0.0], [0.667, 0.0, 0.667], [0.0, 0.667, 0.0]]
    >>> stats["foreground"][0].tolist(), stats["dominant"][0].tolist()
    ([0.5, 0.5, 0.5], [2, 2, -1])
    """
    if maps.dtype != np.uint8:
        raise TypeError(f"map_statistics takes uint8 maps, got {maps.dtype}")
    n, m = maps.shape[:2]
    flat = maps.reshape(n, m, -1)
    pixels = flat.shape[2]
    c = int(num_classes)
    out = np.zeros((n, m, m), np.float64)
    foreground = np.zeros((n, m), np.float64)
    dominant = np.full((n, m), -1, np.int64)
    ss = [j for j, t in enumerate(tasks) if t == "ss"]
    max_label = np.array([int(flat[:, j].max()) if flat.size and j in ss else 0 for j in range(m)], np.int64)
    if ss and max(int(max_label[j]) for j in ss) >= c:
        # a caller names the model; the joint index below would overflow its class block
        return {"discrepancy": out, "foreground": foreground, "dominant": dominant, "max_label": max_label}
    hist: dict[int, np.ndarray] = {}
    for i, j in combinations(ss, 2):
        conf = joint_bincount(flat[:, i], flat[:, j], c)
        out[:, i, j] = out[:, j, i] = _miou_discrepancy(conf)
        hist.setdefault(i, conf.sum(axis=2))
        hist.setdefault(j, conf.sum(axis=1))
    if class_histograms:
        for j in ss:
            if j not in hist:
                hist[j] = per_image_bincount(flat[:, j], c)
    packed: list[np.ndarray] = []
    area = np.zeros((n, m), np.int64)
    for j, task in enumerate(tasks):
        if task == "ss":
            binary = flat[:, j] > 0
        else:
            binary = flat[:, j] >= saliency_thresholds(flat[:, j])[:, None]
        packed.append(pack_binary(binary))
        area[:, j] = pixels - hist[j][:, 0] if j in hist else packed_counts(packed[j])
        if j in hist:
            dominant[:, j] = _dominant(hist[j])
    foreground[:] = area / max(pixels, 1)
    for i, j in combinations(range(m), 2):
        if tasks[i] == tasks[j] == "ss":
            continue
        if tasks[i] == tasks[j] == "sod" and sod_measure == "mae":
            diff = np.abs(flat[:, i].astype(np.int16) - flat[:, j]).sum(axis=1, dtype=np.int64)
            out[:, i, j] = out[:, j, i] = diff / (255.0 * max(pixels, 1))
            continue
        inter = packed_counts(packed[i] & packed[j])
        union = area[:, i] + area[:, j] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        out[:, i, j] = out[:, j, i] = 1.0 - iou
    return {"discrepancy": out, "foreground": foreground, "dominant": dominant, "max_label": max_label}
