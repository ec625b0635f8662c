"""(d) predict_pool on a Dask LocalCluster with 1 and 2 workers (one thread each) vs a local run.

Models are passed by registered name, so each worker rebuilds them from
their weights files; every worker writes its own chunks of the store. A
warm-up run on a few images first lets the workers import torch and the
store, which a long-lived cluster pays once.

    python benchmarks/bench_distributed.py [--n 512] [--chunk-size 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from _common import machine, miniworld_subset, zoo_or_standins

from mdc_widgets.predictions import predict_pool

NAMES = ["mw_unet_ss", "mw_unet_sod"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import dask
    from distributed import Client, LocalCluster

    pool = miniworld_subset(args.n)
    warm = miniworld_subset(2 * args.chunk_size)
    models, kind = zoo_or_standins(NAMES)
    # registered names travel as name + weights path; stand-ins travel pickled
    sources = NAMES if kind.startswith("mini-world") else models
    print(machine())
    print(
        f"pool: {args.n} mini-world images 64x64, models {kind} {NAMES}, chunk {args.chunk_size}, "
        f"batch {args.batch_size}, device cpu"
    )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:

        def local(threads: int, label: str):
            torch.set_num_threads(threads)
            t = time.perf_counter()
            ds = predict_pool(
                pool,
                sources,
                f"{tmp}/local-{threads}-{label}",
                chunk_size=args.chunk_size,
                batch_size=args.batch_size,
                device="cpu",
                progress=False,
            )
            rows[f"local, {threads} torch thread(s), {label}"] = time.perf_counter() - t
            return ds

        ref = local(1, "before")["prediction"].values
        for n_workers in args.workers:
            with (
                dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}),
                LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
                ) as cluster,
                Client(cluster) as client,
            ):
                predict_pool(
                    warm,
                    sources,
                    f"{tmp}/warm{n_workers}",
                    chunk_size=args.chunk_size,
                    client=client,
                    device="cpu",
                    progress=False,
                )
                threads = set(client.run(torch.get_num_threads).values())
                t = time.perf_counter()
                ds = predict_pool(
                    pool,
                    sources,
                    f"{tmp}/dask{n_workers}",
                    chunk_size=args.chunk_size,
                    batch_size=args.batch_size,
                    client=client,
                    device="cpu",
                    progress=False,
                )
                rows[f"LocalCluster, {n_workers} worker(s) x 1 thread"] = time.perf_counter() - t
                same = float((ds["prediction"].values == ref).mean())
                print(
                    f"{n_workers} worker(s): torch threads on workers {sorted(threads)}; maps equal to the local "
                    f"1-thread run on {100 * same:.3f} % of pixels",
                    flush=True,
                )
        # bracket the cluster runs: the machine is shared, its load drifts
        local(1, "after")
        local(2, "after")
    base = rows["LocalCluster, 1 worker(s) x 1 thread"] if 1 in args.workers else None
    for name, seconds in rows.items():
        speed = f"  speed-up vs 1 worker {base / seconds:4.2f}x" if base else ""
        print(f"{name:36s}: {seconds:7.2f} s  {args.n / seconds:7.1f} images/s{speed}")


if __name__ == "__main__":
    main()
