"""(e) Real resolution: photos at 320/512 px, real networks, layout-matched baselines, alternated runs.

Four parts, each printing the load average it ran under:

- ``scoring``: all-pairs ``compute_discrepancies`` on the models' real maps
  (from the store the ``e2e`` part wrote, else from one ``predict_pool``),
  the uint8 CPU kernels alternated with the torch reference path; figures in
  pixel-pairs per second (images x pairs x H x W / s).
- ``store``: bytes per image of each model's prediction store (maps +
  entropy), the figure that sizes compression and entropy precision.
- ``e2e``: ``predict_pool`` + ``mine`` vs inference alone, both in the same
  input layout (NCHW or channels-last on both sides), alternated, median and
  best; ``--layouts both`` runs both layouts.
- ``memory``: ``mine`` on a simulated store of ``--memory-n`` images (see
  ``bench_memory.py`` for the full sweep).

Models: ESPNetv2 and DiCENet with the real EdgeNets checkpoints (folders of
``MDC_WIDGETS_WEIGHTS``), torchvision segmenters with *random* weights (none
can be downloaded here; ``--tv-native`` keeps their 520 px resize), and the
classic saliency models. Photos: SOD-300 (``--images``) or any folder.

    MDC_WIDGETS_WEIGHTS=../shared/weights/edgenets \\
    python benchmarks/bench_real_resolution.py --sizes 320 512 --n 64 [--device cuda --amp --batch-size 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from _common import machine

from mdc_widgets.config import resolve_device
from mdc_widgets.discrepancy import compute_discrepancies
from mdc_widgets.discrepancy.pairwise import _chunk_matrix, _num_classes
from mdc_widgets.mining import CompetitionGroup, mine
from mdc_widgets.predictions import RunOptions, predict_pool

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sod300" / "images"
DEFAULT_MODELS = ["espnetv2_s2.0_voc384", "dicenet_s1.0_voc384", "spectral_residual_sod", "frequency_tuned_sod"]


def load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def build_models(names: list[str], device: str, tv_native: bool) -> list:
    from mdc_widgets.models import get_model
    from mdc_widgets.models.torchvision_adapters import at_working_resolution

    models = []
    for name in names:
        if name.startswith("tv_"):
            model = get_model(name, checkpoint=None, device=device)  # random weights: nothing can be downloaded
            if not tv_native:
                at_working_resolution(model)
        else:
            model = get_model(name, device=device)
        models.append(model)
    return models


def inference_alone(pool, models, batch_size: int, chunk_size: int, device: str, amp: bool, layout) -> None:
    """Read the pool chunk by chunk and run every model batch by batch, keeping nothing (same layout as e2e)."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device == "cuda") else None
    with torch.inference_mode():
        for start in range(0, len(pool), chunk_size):
            images, _ = pool.read_images(start, min(start + chunk_size, len(pool)))
            batch = torch.from_numpy(images).permute(0, 3, 1, 2)
            for model in models:
                for lo in range(0, len(batch), batch_size):
                    x = batch[lo : lo + batch_size].to(device).float().div_(255).contiguous(memory_format=layout)
                    if autocast is None:
                        model.predict(x)
                    else:
                        with autocast:
                            model.predict(x)
            if device == "cuda":
                torch.cuda.synchronize()


def group_of(models) -> CompetitionGroup:
    ss = tuple(m.name for m in models if m.task == "ss")
    sod = tuple(m.name for m in models if m.task == "sod")
    return CompetitionGroup(ss=ss, sod=sod)


def store_bytes(store: Path, models) -> dict[str, int]:
    return {m.name: sum(f.stat().st_size for f in (store / f"{m.name}.zarr").rglob("*") if f.is_file()) for m in models}


def run_e2e(args, pool, models, size: int, device: str, layout_name: str) -> Path:
    """Alternate inference alone and predict_pool + mine; returns a store left for the other parts."""
    layout = torch.channels_last if layout_name == "channels_last" else torch.contiguous_format

    def set_layout() -> None:
        # predict_pool restores NCHW weights after a channels-last run: convert again before each baseline
        for m in models:
            if m.module is not None:
                m.module.to(memory_format=layout)

    set_layout()
    group = group_of(models)
    options = RunOptions(
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        amp=args.amp,
        channels_last=layout_name == "channels_last",
    )
    inference_alone(pool, models, args.batch_size, args.chunk_size, device, args.amp, layout)  # warm-up
    alone, e2e, loads = [], [], []
    keep = Path(tempfile.mkdtemp(prefix=f"bench_real_{size}_"))
    for rep in range(args.repeats):
        loads.append(os.getloadavg()[0])
        set_layout()
        t = time.perf_counter()
        inference_alone(pool, models, args.batch_size, args.chunk_size, device, args.amp, layout)
        alone.append(time.perf_counter() - t)
        store = keep / f"run{rep}"
        t = time.perf_counter()
        preds = predict_pool(pool, models, store, options, device=device, progress=False, overwrite=True)
        mine(preds, group, k=min(16, len(pool)))
        e2e.append(time.perf_counter() - t)
        loads.append(os.getloadavg()[0])
    ma, me = statistics.median(alone), statistics.median(e2e)
    print(
        f"  e2e {size}px {layout_name:13s}: inference alone median {ma:6.2f} s (best {min(alone):6.2f}) | "
        f"predict_pool + mine median {me:6.2f} s (best {min(e2e):6.2f}) | ratio median {me / ma:.3f}x, "
        f"best/best {min(e2e) / min(alone):.3f}x (target <= 1.05x) | {len(pool) / ma:.1f} images/s alone | "
        f"load {min(loads):.1f}-{max(loads):.1f}"
    )
    return keep / f"run{args.repeats - 1}"


def run_scoring(args, preds, size: int, device: str) -> None:
    """The kernels (CPU uint8 path) alternated with the torch reference path on the same in-memory maps."""
    mem = preds.load()
    models = [str(m) for m in mem["model"].values]
    tasks = [str(t) for t in mem["task"].values]
    n, m = mem.sizes["sample"], len(models)
    pairs = len(list(combinations(range(m), 2)))
    pixel_pairs = n * pairs * size * size
    num_classes = _num_classes(mem, [a for a, t in zip(models, tasks) if t == "ss"])
    maps = torch.from_numpy(np.ascontiguousarray(mem["prediction"].transpose("sample", "model", "y", "x").values))

    def reference() -> np.ndarray:
        x = maps.to(device)
        out = [_chunk_matrix(x[lo : lo + 64], tasks, num_classes, "iou").cpu() for lo in range(0, n, 64)]
        if device == "cuda":
            torch.cuda.synchronize()
        return torch.cat(out).numpy()

    for threads in args.score_threads:
        fast_t, ref_t, loads = [], [], []
        fast = ref = None
        for _ in range(args.repeats):
            loads.append(os.getloadavg()[0])
            t = time.perf_counter()
            fast = compute_discrepancies(mem, device=device, chunk_size=64, threads=threads).values
            fast_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref = reference()
            ref_t.append(time.perf_counter() - t)
        diff = float(np.abs(fast - ref).max())
        mf, mr = statistics.median(fast_t), statistics.median(ref_t)
        print(
            f"  scoring {size}px, {n} images x {pairs} pairs on {device}: compute_discrepancies (threads {threads}) "
            f"{pixel_pairs / mf:.3g} pixel-pairs/s median ({pixel_pairs / min(fast_t):.3g} best, {n / mf:.0f} "
            f"images/s) | torch reference path {pixel_pairs / mr:.3g} (best {pixel_pairs / min(ref_t):.3g}) | "
            f"speed-up {mr / mf:.1f}x | max |diff| {diff:.1e} | load {min(loads):.1f}-{max(loads):.1f}"
        )


def copy_bandwidth() -> float:
    a = np.ones(2**27, np.uint8)
    best = min(_timed_copy(a) for _ in range(5))
    return 2 * a.nbytes / best  # read + write


def _timed_copy(a: np.ndarray) -> float:
    t = time.perf_counter()
    a.copy()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="a folder of photos (default SOD-300)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 512])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--tv-native", action="store_true", help="keep torchvision's 520 px resize")
    parser.add_argument("--parts", nargs="+", default=["e2e", "scoring", "store"], choices=["e2e", "scoring", "store"])
    parser.add_argument("--layouts", default="channels_last", choices=["nchw", "channels_last", "both"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", default="auto", help="images per forward pass, or 'auto' (autotune)")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument(
        "--score-threads", type=int, nargs="+", default=[1, 2], help="compute_discrepancies threads, one line each"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    from mdc_widgets.data import open_pool

    print(machine())
    print(f"numpy copy bandwidth {copy_bandwidth() / 1e9:.1f} GB/s (read + write, 1 thread)")
    models = build_models(args.models, device, args.tv_native)
    if args.batch_size == "auto":
        from mdc_widgets.predictions.autotune import choose_run_settings

        settings = choose_run_settings(models, (max(args.sizes),) * 2, device=device, threads=args.threads)
        print(f"autotune at {max(args.sizes)} px: {settings.summary()}")
        args.batch_size = settings.batch_size
    args.batch_size = int(args.batch_size)
    print(
        f"models: {[m.name for m in models]} on {device}; batch {args.batch_size}, chunk {args.chunk_size}, amp {args.amp}"
    )
    layouts = ["nchw", "channels_last"] if args.layouts == "both" else [args.layouts]
    for size in args.sizes:
        pool = open_pool(args.images, (size, size))
        if len(pool) > args.n:
            from mdc_widgets.data.pool import DatasetPool

            images, _ = pool.read_images(0, args.n)
            import xarray as xr

            ds = xr.Dataset(
                {"image": (("sample", "y", "x", "channel"), images)},
                coords={"sample": np.asarray(pool.sample_ids[: args.n], dtype=object)},
            )
            pool = DatasetPool(
                ds, name=f"{Path(args.images).name}-{args.n}", fingerprint=f"{pool.fingerprint}-{args.n}"
            )
        print(f"{len(pool)} photos from {args.images} at {size}x{size} px ({load()})")
        store = None
        if "e2e" in args.parts:
            for layout_name in layouts:
                store = run_e2e(args, pool, models, size, device, layout_name)
        if store is None:
            store = Path(tempfile.mkdtemp(prefix=f"bench_real_{size}_"))
            predict_pool(pool, models, store, RunOptions(batch_size=args.batch_size), device=device, progress=False)
        from mdc_widgets.predictions import open_predictions

        preds = open_predictions(store, [m.name for m in models])
        if "store" in args.parts:
            sizes = store_bytes(store, models)
            per = ", ".join(f"{k} {v / len(pool) / 1024:.1f} KiB" for k, v in sizes.items())
            raw = size * size * 2  # uint8 map + uint8 entropy (float16 before issue 11b: 3 bytes), uncompressed
            print(f"  store {size}px, bytes per image and model (maps + entropy; raw {raw / 1024:.0f} KiB): {per}")
        if "scoring" in args.parts:
            run_scoring(args, preds, size, device)


if __name__ == "__main__":
    main()
