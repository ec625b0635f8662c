"""(b) Scoring throughput: all model pairs with ``compute_discrepancies`` vs a per-image loop over torchmetrics.

Synthetic maps of 4 models (2 SS with 6 classes, 2 SOD) at 64x64: 6 pairs
(1 SS-SS, 1 SOD-SOD, 4 cross-task). The baseline is the straightforward
loop a user would write with a standard metric library: for every image and
pair, ``multiclass_jaccard_index`` (SS) or ``binary_jaccard_index`` (SOD,
cross, on adaptively binarised saliency) from ``torchmetrics.functional``.
Both give the same numbers (checked below).

    python benchmarks/bench_scoring.py [--n 4000] [--loop-n 500] [--device auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import combinations

import numpy as np
import torch
import xarray as xr
from _common import SS_CLASSES, machine

from mdc_widgets.config import resolve_device
from mdc_widgets.discrepancy import binarize_saliency, compute_discrepancies


def synthetic_predictions(n: int, size: int = 64, seed: int = 0) -> xr.Dataset:
    """Blobby label and saliency maps that partly agree, like real competitors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centre = rng.integers(8, size - 8, (n, 1, 1, 2))
    maps = np.empty((n, 4, size, size), np.uint8)
    for m in range(4):
        jitter = rng.integers(-4, 5, (n, 1, 1, 2))
        r = rng.integers(4, size // 3, (n, 1, 1))
        d2 = (yy - centre[..., 0] - jitter[..., 0]) ** 2 + (xx - centre[..., 1] - jitter[..., 1]) ** 2
        inside = d2 <= r * r
        if m < 2:
            maps[:, m] = np.where(inside, rng.integers(1, len(SS_CLASSES), (n, 1, 1)), 0)
        else:
            maps[:, m] = np.clip(255 * np.exp(-d2 / (2.0 * r * r)) + rng.normal(0, 8, (n, size, size)), 0, 255)
    models = ["ss_a", "ss_b", "sod_p", "sod_q"]
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps)},
        coords={
            "sample": np.array([f"s{i:06d}" for i in range(n)], dtype=object),
            "model": np.array(models, dtype=object),
            "task": ("model", np.array(["ss", "ss", "sod", "sod"], dtype=object)),
        },
        attrs={
            "classes": {
                "ss_a": list(SS_CLASSES),
                "ss_b": list(SS_CLASSES),
                "sod_p": ["background", "salient"],
                "sod_q": ["background", "salient"],
            }
        },
    )


def loop_baseline(maps: np.ndarray, tasks: list[str]) -> np.ndarray:
    """Per image, per pair: torchmetrics' functional Jaccard index, as a user would write it."""
    from torchmetrics.functional.classification import binary_jaccard_index, multiclass_jaccard_index

    n, m = maps.shape[:2]
    out = np.zeros((n, m, m))
    for i in range(n):
        image = torch.from_numpy(maps[i])
        binary = [
            image[k] > 0 if tasks[k] == "ss" else torch.from_numpy(binarize_saliency(maps[i, k][None])[0])
            for k in range(m)
        ]
        for a, b in combinations(range(m), 2):
            if tasks[a] == tasks[b] == "ss":
                iou = multiclass_jaccard_index(image[a].long(), image[b].long(), num_classes=len(SS_CLASSES))
            else:
                # both maps empty: they agree (IoU 1), as the method note defines it
                iou = binary_jaccard_index(binary[a].int(), binary[b].int(), zero_division=1.0)
            out[i, a, b] = out[i, b, a] = 1.0 - float(iou)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--loop-n", type=int, default=500, help="images for the (slow) per-image loop")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable figures on a shared machine, see RESULTS.md)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(machine())
    preds = synthetic_predictions(args.n)
    tasks = [str(t) for t in preds["task"].values]
    n_pairs = len(list(combinations(range(4), 2)))
    print(f"{args.n} images 64x64, 4 models, {n_pairs} pairs; device {device}")

    def best(fn):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
        return min(times), result

    t_mem, disc = best(lambda: compute_discrepancies(preds, device=device))
    with tempfile.TemporaryDirectory() as tmp:
        # the same maps as a chunked zarr store, read lazily like open_predictions
        preds.chunk({"sample": 256}).to_zarr(f"{tmp}/p.zarr", consolidated=False)
        lazy = xr.open_zarr(f"{tmp}/p.zarr", consolidated=False)
        lazy.attrs = preds.attrs
        t_zarr, _ = best(lambda: compute_discrepancies(lazy, device=device))
    t_down, _ = best(lambda: compute_discrepancies(preds, device=device, downsample=2))

    loop_n = min(args.loop_n, args.n)
    maps = preds["prediction"].values[:loop_n]
    t = time.perf_counter()
    reference = loop_baseline(maps, tasks)
    t_loop = time.perf_counter() - t

    diff = np.abs(reference - disc.values[:loop_n]).max()
    rate = {name: args.n / t for name, t in (("mem", t_mem), ("zarr", t_zarr), ("down", t_down))}
    loop_rate = loop_n / t_loop
    print(
        f"compute_discrepancies, in memory : {t_mem:6.2f} s  {rate['mem']:9.0f} images/s  "
        f"({rate['mem'] * n_pairs:9.0f} pairs/s)"
    )
    print(f"compute_discrepancies, zarr store: {t_zarr:6.2f} s  {rate['zarr']:9.0f} images/s (reads included)")
    print(f"compute_discrepancies, downsample 2: {t_down:6.2f} s  {rate['down']:9.0f} images/s")
    print(f"torchmetrics per-image loop      : {t_loop:6.2f} s for {loop_n} images  {loop_rate:9.1f} images/s")
    print(
        f"speed-up: {rate['mem'] / loop_rate:.0f}x in memory, {rate['zarr'] / loop_rate:.0f}x from zarr "
        f"(target >= 20x); max |difference| of the discrepancies {diff:.2e}"
    )


if __name__ == "__main__":
    main()
