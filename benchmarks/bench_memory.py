"""(c) Peak memory of prediction, scoring and mining for pools of 1k, 10k and 100k images.

Synthetic 32x32 images made chunk by chunk (no pool in memory) and four
near-free threshold models (2 SS, 2 SOD), so the figures are the pipeline's
own memory, not a model's. Each phase runs in a fresh process; it reports
the RSS after imports, the peak RSS (``getrusage``) and the peak of
Python/numpy allocations (``tracemalloc``; torch's own allocator is not
traced, the RSS covers it).

    python benchmarks/bench_memory.py [--sizes 1000 10000 100000] [--store-root /tmp]
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

import torch
from _common import SyntheticPool, current_rss_mib, machine, peak_rss_mib, threshold_models

GROUP = dict(ss=("ss_a", "ss_b"), sod=("sod_p", "sod_q"))


def phase_predict(n: int, store: str) -> dict:
    from mdc_widgets.predictions import predict_pool

    pool = SyntheticPool(n, size=32)
    base = current_rss_mib()
    tracemalloc.start()
    t = time.perf_counter()
    predict_pool(pool, threshold_models(), store, batch_size=256, chunk_size=1024, device="cpu", progress=False)
    seconds = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"predict": {"seconds": seconds, "rss_base": base, "rss_peak": peak_rss_mib(), "traced_peak": traced}}


def phase_score(n: int, store: str) -> dict:
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--store-root", default=None)
    parser.add_argument("--phase", choices=["predict", "score"], help=argparse.SUPPRESS)
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

        fn = phase_predict if args.phase == "predict" else phase_score
        print(json.dumps(fn(args.sizes[0], args.store)))
        return
    print(machine())
    print("pool: synthetic 32x32 images, 4 threshold models (2 SS, 2 SOD), chunk 1024, entropy stored")
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.store_root) as tmp:
            store = str(Path(tmp) / "store")
            results = {}
            for phase in ("predict", "score"):
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
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            maps_mib = n * 4 * 32 * 32 * 3 / 2**20  # uint8 maps + float16 entropy of four models
            for step, r in results.items():
                rows.append((n, step, r["seconds"], r["rss_peak"] - r["rss_base"], r["traced_peak"], maps_mib))
                print(
                    f"n={n:>7} {step:28s} {r['seconds']:7.2f} s  RSS peak above imports {r['rss_peak'] - r['rss_base']:7.1f} MiB"
                    f"  traced peak {r['traced_peak']:7.1f} MiB  (stored maps {maps_mib:7.1f} MiB)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
