"""(e) The runner's SS post-processing per image, before and after fusing it, next to the network's forward pass.

Alternated, median of ``--repeats``: the forward pass of a real network
(ESPNetv2 s2.0 with its EdgeNets checkpoint; random weights when the
checkpoint is absent), the previous post-processing of its 21-class output
(softmax, ``max().indices``, ``entr`` entropy, float16 copies) and the fused
:func:`~mdc_widgets.predictions._runner.store_logits`, in NCHW and
channels-last. The overhead figure is ``(forward + post) / forward``, the
end-to-end ratio's share that the runner itself adds.

    MDC_WIDGETS_WEIGHTS=../shared/weights/edgenets python benchmarks/bench_postprocess.py --size 320 --batch 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from _common import machine

from mdc_widgets._kernels import normalized_entropy
from mdc_widgets.predictions._runner import store_logits


def previous(maps: dict[str, np.ndarray], logits: torch.Tensor) -> None:
    """The runner before issue 11b: softmax in the Competitor, then label, entropy and float16 copies."""
    out = logits.float().softmax(dim=1)
    maps["prediction"][:] = out.max(dim=1).indices.to(torch.uint8).cpu().numpy()
    maps["entropy"][:] = normalized_entropy(out).half().cpu().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="espnetv2_s2.0_voc384")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mdc_widgets.models import get_model

    print(machine())
    model = get_model(args.model, device="cpu")
    x = torch.rand(args.batch, 3, args.size, args.size)
    n, s = args.batch, args.size
    for layout_name, layout in (("NCHW", torch.contiguous_format), ("channels-last", torch.channels_last)):
        model.module.to(memory_format=layout)
        xl = x.contiguous(memory_format=layout)
        times: dict[str, list[float]] = {"forward": [], "previous": [], "fused": []}
        loads = []
        with torch.inference_mode():
            logits = model.forward_logits(xl)  # warm-up
            scratch: dict[str, torch.Tensor] = {}
            for _ in range(args.repeats):
                loads.append(os.getloadavg()[0])
                t = time.perf_counter()
                logits = model.forward_logits(xl)
                times["forward"].append(time.perf_counter() - t)
                maps = {"prediction": np.zeros((n, s, s), np.uint8), "entropy": np.zeros((n, s, s), np.float16)}
                t = time.perf_counter()
                previous(maps, logits)
                times["previous"].append(time.perf_counter() - t)
                maps = {"prediction": np.zeros((n, s, s), np.uint8), "entropy": np.zeros((n, s, s), np.uint8)}
                t = time.perf_counter()
                store_logits(maps, 0, n, logits, scratch)
                times["fused"].append(time.perf_counter() - t)
        model.module.to(memory_format=torch.contiguous_format)
        med = {k: statistics.median(v) / n * 1e3 for k, v in times.items()}
        print(
            f"{args.model} {s}px batch {n} {layout_name:13s}: forward {med['forward']:6.1f} ms/image | "
            f"post-processing previous {med['previous']:5.1f} ms, fused {med['fused']:5.1f} ms "
            f"({med['previous'] / med['fused']:.1f}x) | (forward + post) / forward: previous "
            f"{(med['forward'] + med['previous']) / med['forward']:.3f}x, fused "
            f"{(med['forward'] + med['fused']) / med['forward']:.3f}x | load {min(loads):.1f}-{max(loads):.1f}"
        )


if __name__ == "__main__":
    main()
