"""(c) Peak memory of prediction, scoring and mining for pools of 10k, 100k and 1M images.

Synthetic 32x32 images made chunk by chunk (no pool in memory) and four
near-free threshold models (2 SS, 2 SOD), so the figures are the pipeline's
own memory, not a model's. Each phase runs in a fresh process; it reports
the RSS after imports, the peak RSS (``getrusage``) and the peak of
Python/numpy allocations (``tracemalloc``; torch's own allocator is not
traced, the RSS covers it).

    python benchmarks/bench_memory.py [--sizes 10000 100000 1000000] [--store-root /tmp] [--no-entropy]

Flat means: what grows with the pool is O(n) per-sample vectors (ids, scores,
the ``(sample, M, M)`` discrepancy matrix), reported as bytes per sample of
the RSS peak; no step may hold O(n * H * W) maps or O(n * d) features.
The 1M-image store is ~2 GB without entropy (chunks of 8192 images); the
temporary folder is deleted after each size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from _common import SyntheticPool, current_rss_mib, machine, peak_rss_mib, threshold_models

GROUP = dict(ss=("ss_a", "ss_b"), sod=("sod_p", "sod_q"))


def phase_predict(n: int, store: str, entropy: bool, chunk_size: int) -> dict:
    from mdc_widgets.predictions import RunOptions, predict_pool

    pool = SyntheticPool(n, size=32)
    base = current_rss_mib()
    tracemalloc.start()
    t = time.perf_counter()
    options = RunOptions(batch_size=min(chunk_size, 1024), chunk_size=chunk_size, entropy=entropy)
    predict_pool(pool, threshold_models(), store, options, device="cpu", progress=False)
    seconds = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"predict": {"seconds": seconds, "rss_base": base, "rss_peak": peak_rss_mib(), "traced_peak": traced}}


def phase_simulate(n: int, store: str, entropy: bool, chunk_size: int) -> dict:
    """Write a store of ``n`` images without running inference on each: the real maps of the first chunk,
    shuffled and shifted differently for every other chunk (so no two chunks are alike).

    The store is created by ``predict_pool`` (its real layout and attrs) and filled by the runner's own
    chunk writer, so ``open_predictions`` and ``mine`` read it as any other store.
    """
    from mdc_widgets.predictions import RunCancelled, RunOptions, predict_pool, prediction_store_path
    from mdc_widgets.predictions._layout import open_arrays
    from mdc_widgets.predictions._runner import _write_chunk, predict_maps

    pool, models = SyntheticPool(n, size=32), threshold_models()
    options = RunOptions(batch_size=1024, chunk_size=chunk_size, entropy=entropy)
    t = time.perf_counter()
    try:  # creates every model's empty store, then stops before the first chunk
        predict_pool(pool, models, store, options, device="cpu", progress=False, cancel=lambda: True)
    except RunCancelled:
        pass
    first = min(chunk_size, n)
    images = torch.from_numpy(pool.read_images(0, first)[0]).permute(0, 3, 1, 2)
    rng = np.random.default_rng(0)
    for model in models:
        base = predict_maps(model, images, options, "cpu")
        path = prediction_store_path(Path(store), model.name)
        arrays = open_arrays(path)
        for chunk, start in enumerate(range(0, n, chunk_size)):
            stop = min(start + chunk_size, n)
            order = rng.integers(0, first, stop - start)
            shift = tuple(int(v) for v in rng.integers(0, 32, 2))
            maps = {k: np.roll(v[order], shift, axis=(-2, -1)) for k, v in base.items()}
            _write_chunk(path, arrays, chunk, start, stop, maps, np.ones(stop - start, bool))
    return {
        "simulate store": {"seconds": time.perf_counter() - t, "rss_base": 0.0, "rss_peak": 0.0, "traced_peak": 0.0}
    }


def phase_score(n: int, store: str, entropy: bool, chunk_size: int) -> dict:
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.mining import CompetitionGroup, Constraints, mine
    from mdc_widgets.predictions import open_predictions

    group = CompetitionGroup(**GROUP)
    base = current_rss_mib()
    out = {}
    tracemalloc.start()

    def step(name, fn):
        tracemalloc.reset_peak()
        t = time.perf_counter()
        result = fn()
        out[name] = {
            "seconds": time.perf_counter() - t,
            "rss_base": base,
            "rss_peak": peak_rss_mib(),
            "traced_peak": tracemalloc.get_traced_memory()[1] / 2**20,
        }
        return result

    preds = step("open_predictions", lambda: open_predictions(store))
    disc = step("compute_discrepancies", lambda: compute_discrepancies(preds, device="cpu"))
    step(
        "mine (no dedup)",
        lambda: mine(
            preds, group, k=100, constraints=Constraints(dedup_threshold=None), discrepancy=disc, key="nodedup"
        ),
    )
    step("mine (default constraints)", lambda: mine(preds, group, k=100, discrepancy=disc, key="default"))
    tracemalloc.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000, 1000000])
    parser.add_argument("--chunk-size", type=int, default=8192, help="images per store chunk")
    parser.add_argument("--no-entropy", action="store_true", help="store labels/saliency only (half the disk)")
    parser.add_argument("--store-root", default=None)
    parser.add_argument("--phase", choices=["predict", "simulate", "score"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="fill the store from one predicted chunk instead of predicting every image (for 1M images)",
    )
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable figures on a shared machine, see RESULTS.md)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.phase:
        # imported before the baseline, so the figures are the pipeline's memory, not the modules' code
        import dask.array  # noqa: F401
        import scipy.stats  # noqa: F401

        import mdc_widgets.discrepancy
        import mdc_widgets.mining
        import mdc_widgets.predictions  # noqa: F401

        fn = {"predict": phase_predict, "simulate": phase_simulate, "score": phase_score}[args.phase]
        print(json.dumps(fn(args.sizes[0], args.store, not args.no_entropy, args.chunk_size)))
        return
    print(machine())
    stored = "labels/saliency only" if args.no_entropy else "entropy stored"
    print(f"pool: synthetic 32x32 images, 4 threshold models (2 SS, 2 SOD), chunk {args.chunk_size}, {stored}")
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.store_root) as tmp:
            store = str(Path(tmp) / "store")
            results = {}
            for phase in ("simulate" if args.simulate else "predict", "score"):
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--phase",
                        phase,
                        "--sizes",
                        str(n),
                        "--store",
                        store,
                        "--threads",
                        str(args.threads),
                        "--chunk-size",
                        str(args.chunk_size),
                        *(["--no-entropy"] if args.no_entropy else []),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            # uint8 maps (+ float16 entropy) of four models
            maps_mib = n * 4 * 32 * 32 * (1 if args.no_entropy else 3) / 2**20
            disk = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())
            print(f"n={n:>7} store on disk {disk / 2**20:.0f} MiB ({disk / n:.0f} B/sample)", flush=True)
            for step, r in results.items():
                if step == "simulate store":
                    print(f"n={n:>7} {step:28s} {r['seconds']:7.2f} s", flush=True)
                    continue
                grown = r["rss_peak"] - r["rss_base"]
                rows.append((n, step, r["seconds"], grown, r["traced_peak"], maps_mib))
                print(
                    f"n={n:>7} {step:28s} {r['seconds']:7.2f} s  RSS peak above imports {grown:7.1f} MiB"
                    f" ({grown * 2**20 / n:6.0f} B/sample)  traced peak {r['traced_peak']:7.1f} MiB"
                    f" ({r['traced_peak'] * 2**20 / n:6.0f} B/sample)  (stored maps {maps_mib:7.1f} MiB)",
                    flush=True,
                )
    # what grows with n: the slope between sizes (a block-bound peak divided by n says nothing)
    steps = dict.fromkeys(step for _, step, *_ in rows)
    for step in steps:
        points = [(n, rss, traced) for n, name, _, rss, traced, _ in rows if name == step]
        for (n0, rss0, tr0), (n1, rss1, tr1) in zip(points, points[1:]):
            scale = 2**20 / (n1 - n0)
            print(
                f"{step:28s} {n0:>7} -> {n1:>7}: RSS {(rss1 - rss0) * scale:+7.0f} B/sample, "
                f"traced {(tr1 - tr0) * scale:+7.0f} B/sample",
                flush=True,
            )


if __name__ == "__main__":
    main()
