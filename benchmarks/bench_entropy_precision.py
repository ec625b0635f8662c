"""(e) Entropy precision of the prediction store: float16 vs uint8 (x/255), bytes per image and effect.

For trained networks (ESPNetv2 s2.0 and DiCENet s1.0 with the EdgeNets
checkpoints) on SOD-300 photos at 320 and 512 px, the runner's own maps
(``predict_maps``) are written as zarr arrays with the store's chunking and
codec (zarr's default) in both precisions, next to the uint8 label map.
Effect on what reads entropy: max |error| against the float32 entropy,
the per-image mean entropy (``score_entropy``) and its ranking, and the
share of pixels above the pool's 80th percentile (U2PL's ``alpha_0 = 20``).

    MDC_WIDGETS_WEIGHTS=../shared/weights/edgenets python benchmarks/bench_entropy_precision.py --sizes 320 512 --n 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.stats
import torch
import zarr
from _common import machine

from mdc_widgets.predictions import RunOptions
from mdc_widgets.predictions._runner import predict_maps

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sod300" / "images"
DEFAULT_MODELS = ["espnetv2_s2.0_voc384", "dicenet_s1.0_voc384"]


def stored_bytes(values: np.ndarray, chunk: int) -> int:
    """Bytes of ``values`` as one zarr v3 array with the store's chunking and default codec."""
    with tempfile.TemporaryDirectory() as tmp:
        array = zarr.create_array(tmp, shape=values.shape, dtype=values.dtype, chunks=(chunk, *values.shape[1:]))
        array[:] = values
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file() and "zarr.json" not in f.name)


def entropy_float32(model, images: torch.Tensor) -> np.ndarray:
    """The unrounded entropy: the float16 path's inputs, kept in float32 (for the error figures)."""
    from mdc_widgets._kernels import normalized_entropy

    with torch.inference_mode():
        x = images.float().div(255.0)
        return np.concatenate([normalized_entropy(model.predict(x[i : i + 4])).numpy() for i in range(0, len(x), 4)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(DEFAULT_IMAGES))
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 512])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mdc_widgets.data import open_pool
    from mdc_widgets.models import get_model

    print(machine())
    models = [get_model(name, device="cpu") for name in args.models]
    for size in args.sizes:
        pool = open_pool(args.images, (size, size))
        images_np, _ = pool.read_images(0, min(args.n, len(pool)))
        images = torch.from_numpy(images_np).permute(0, 3, 1, 2)
        n = len(images)
        print(f"{n} photos at {size} px, load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
        for model in models:
            maps = predict_maps(model, images, RunOptions(batch_size=4, chunk_size=n), "cpu", np.float16)
            exact = entropy_float32(model, images)
            half = maps["entropy"]
            quant = np.round(exact * 255).astype(np.uint8)
            label_b = stored_bytes(maps["prediction"], n) / n
            half_b = stored_bytes(half, n) / n
            quant_b = stored_bytes(quant, n) / n
            as_read = quant.astype(np.float32) / 255
            err_half = float(np.abs(half.astype(np.float32) - exact).max())
            err_quant = float(np.abs(as_read - exact).max())
            mean_half, mean_quant = half.astype(np.float32).mean((1, 2)), as_read.mean((1, 2))
            rho = scipy.stats.spearmanr(mean_half, mean_quant).statistic
            k = max(1, n // 4)
            top_overlap = len(set(np.argsort(-mean_half)[:k]) & set(np.argsort(-mean_quant)[:k])) / k
            threshold_half = np.percentile(half.astype(np.float32), 80)
            threshold_quant = np.percentile(as_read, 80)
            share_half = (half.astype(np.float32) >= threshold_half).mean((1, 2))
            share_quant = (as_read >= threshold_quant).mean((1, 2))
            print(
                f"  {model.name} {size}px: label {label_b / 1024:.1f} KiB/image | entropy float16 "
                f"{half_b / 1024:.1f} KiB, uint8 {quant_b / 1024:.1f} KiB ({half_b / quant_b:.2f}x smaller) | "
                f"store (label + entropy) {(label_b + half_b) / 1024:.1f} -> {(label_b + quant_b) / 1024:.1f} KiB | "
                f"max |err| vs float32: float16 {err_half:.1e}, uint8 {err_quant:.1e} (bound {1 / 510:.1e}) | "
                f"mean-entropy score max |diff| {np.abs(mean_half - mean_quant).max():.1e}, Spearman {rho:.4f}, "
                f"top-{k} overlap {top_overlap:.2f} | U2PL top-20% share max |diff| "
                f"{np.abs(share_half - share_quant).max():.3f}"
            )


if __name__ == "__main__":
    main()
