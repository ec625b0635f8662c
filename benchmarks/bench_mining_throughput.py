"""(a) End-to-end MAD mining throughput vs running the same models alone over the same pool.

Inference alone: read each chunk of the pool, run every model on it batch by
batch (same batch size), keep nothing. End to end: ``predict_pool`` (maps and
entropy to zarr) + ``mine`` (all-pairs discrepancies, joint score,
constrained top-k, result stored). Runs alternate, best of ``--repeats``.

    python benchmarks/bench_mining_throughput.py [--n 2048] [--repeats 3] [--device auto] [--amp --channels-last]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from _common import machine, miniworld_subset, standin, zoo_or_standins

from mdc_widgets.config import resolve_device
from mdc_widgets.discrepancy import compute_discrepancies
from mdc_widgets.mining import CompetitionGroup, mine
from mdc_widgets.predictions import predict_pool

NAMES = ["mw_unet_ss", "mw_fcn_ss", "mw_unet_sod", "mw_fcn_sod"]


def inference_alone(
    pool, models, batch_size: int, chunk_size: int, device: str, amp: bool, channels_last: bool
) -> None:
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if (amp and device == "cuda")
        else torch.autocast("cpu", enabled=False)
    )
    layout = torch.channels_last if channels_last else torch.contiguous_format
    with torch.inference_mode():
        for start in range(0, len(pool), chunk_size):
            images, _ = pool.read_images(start, min(start + chunk_size, len(pool)))
            batch = torch.from_numpy(images).permute(0, 3, 1, 2)
            for model in models:
                for lo in range(0, len(batch), batch_size):
                    x = batch[lo : lo + batch_size].to(device).float().div_(255).contiguous(memory_format=layout)
                    with autocast:
                        model.predict(x)
            if device == "cuda":
                torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--standin-width",
        type=int,
        default=None,
        help="use random stand-in conv nets of this width instead of the zoo (a heavier model)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable figures on a shared machine, see RESULTS.md)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    pool = miniworld_subset(args.n)
    if args.standin_width:
        models = [standin(n, "ss" if n.endswith("_ss") else "sod", width=args.standin_width) for n in NAMES]
        n_params = sum(p.numel() for p in models[0].module.parameters())
        kind = f"stand-in conv nets of width {args.standin_width} ({n_params} parameters each)"
    else:
        models, kind = zoo_or_standins(NAMES)
    for m in models:
        m.to(device)
        if args.channels_last:
            m.module.to(memory_format=torch.channels_last)
    group = CompetitionGroup(ss=("mw_unet_ss", "mw_fcn_ss"), sod=("mw_unet_sod", "mw_fcn_sod"))
    print(machine())
    print(
        f"pool: {args.n} mini-world images 64x64; models: {kind} {NAMES}; device {device}, batch {args.batch_size}, "
        f"chunk {args.chunk_size}, amp {args.amp}, channels_last {args.channels_last}"
    )

    inference_alone(pool, models, args.batch_size, args.chunk_size, device, args.amp, args.channels_last)  # warm-up
    # wall and CPU seconds (all threads of this process): CPU time is less sensitive to other users of a shared machine
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("alone", "predict", "mine", "score", "e2e")}

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def since(t0: tuple[float, float]) -> tuple[float, float]:
        t1 = clock()
        return t1[0] - t0[0], t1[1] - t0[1]

    for _ in range(args.repeats):
        t = clock()
        inference_alone(pool, models, args.batch_size, args.chunk_size, device, args.amp, args.channels_last)
        runs["alone"].append(since(t))
        with tempfile.TemporaryDirectory() as store:
            t = clock()
            preds = predict_pool(
                pool,
                models,
                store,
                batch_size=args.batch_size,
                chunk_size=args.chunk_size,
                device=device,
                amp=args.amp,
                channels_last=args.channels_last,
                progress=False,
            )
            runs["predict"].append(since(t))
            t_mine = clock()
            result = mine(preds, group, k=50)
            runs["mine"].append(since(t_mine))
            runs["e2e"].append(since(t))
            t = clock()
            compute_discrepancies(preds, device=device)
            runs["score"].append(since(t))
            assert int(result["selected"].sum()) == 50

    def stats(key: str, which: int) -> tuple[float, float]:
        values = [r[which] for r in runs[key]]
        return min(values), float(np.median(values))

    labels = {
        "alone": "inference alone",
        "predict": "predict_pool",
        "mine": "mine (incl. scoring)",
        "score": "compute_discrepancies",
        "e2e": "end to end (predict + mine)",
    }
    for key, label in labels.items():
        (wb, wm), (cb, cm) = stats(key, 0), stats(key, 1)
        rate = f"  {args.n / wm:7.1f} images/s (median wall)" if key in ("alone", "e2e") else ""
        print(f"{label:28s}: wall best {wb:7.2f} s median {wm:7.2f} s | CPU best {cb:7.2f} s median {cm:7.2f} s{rate}")
    for which, name in ((0, "wall"), (1, "CPU")):
        (ab, am), (eb, em) = stats("alone", which), stats("e2e", which)
        print(
            f"overhead over inference alone ({name}): best vs best {100 * (eb / ab - 1):+.1f} %, "
            f"median vs median {100 * (em / am - 1):+.1f} % (target <= 10 %)"
        )


if __name__ == "__main__":
    main()
