"""Shared pieces of the benchmarks: the machine, a timer, pools and models that need no download."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdc_widgets.data.pool import BasePool

REPO = Path(__file__).resolve().parents[1]
# the repository's cache holds the trained mini-world zoo when the tests trained it
if "MDC_WIDGETS_HOME" not in os.environ and (REPO / ".mdc_cache" / "weights").exists():
    os.environ["MDC_WIDGETS_HOME"] = str(REPO / ".mdc_cache")

SS_CLASSES = ("background", "disk", "square", "triangle", "ring", "cross")


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {ram:.0f} GiB RAM, {gpu}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, load average {load}, torch threads {torch.get_num_threads()}"
    )


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, float, Any]:
    """(best, median) wall seconds of ``fn`` over ``repeats`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def zoo_or_standins(names: list[str]) -> tuple[list[Any], str]:
    """The mini-world zoo models if their weights are cached (no training here), else small stand-ins."""
    from mdc_widgets.models import get_model
    from mdc_widgets.models.zoo import is_trained

    if all(is_trained(n) for n in names):
        return [get_model(n, device="cpu") for n in names], "mini-world zoo (cached weights)"
    return [standin(n, "ss" if n.endswith("_ss") else "sod") for n in names], "stand-in conv nets (zoo not trained)"


def standin(name: str, task: str, width: int = 16) -> Any:
    """A small random conv net of about the zoo's size (tens of thousands of parameters)."""
    from mdc_widgets.models import Competitor

    torch.manual_seed(zlib.crc32(name.encode()))
    out = len(SS_CLASSES) if task == "ss" else 1
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(width, 2 * width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(2 * width, out, 1),
    )
    return Competitor(name, task, SS_CLASSES if task == "ss" else ("background", "salient"), net)


def miniworld_subset(n: int) -> Any:
    """The first ``n`` images of the cached mini-world pool (64x64)."""
    from mdc_widgets.data import open_pool
    from mdc_widgets.data.pool import DatasetPool

    pool = open_pool("miniworld", (64, 64))
    return DatasetPool(
        pool.dataset.isel(sample=slice(0, n)), name=f"miniworld-{n}", fingerprint=f"{pool.fingerprint}-first{n}"
    )


class SyntheticPool(BasePool):
    """Blob images made on the fly chunk by chunk (deterministic): a pool of any size in no memory."""

    def __init__(self, n: int, size: int = 32, seed: int = 0):
        self.n, self.size, self.seed = int(n), int(size), seed
        self.name = f"synthetic-{n}"
        self.fingerprint = f"synthetic-{n}-{size}-{seed}"
        self.image_size = (self.size, self.size)
        self.classes = None
        self.errors: dict[str, str] = {}
        self.warnings: dict[str, str] = {}
        self._ids = None

    @property
    def sample_ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.char.add("syn-", np.char.zfill(np.arange(self.n).astype(str), 7))
        return self._ids

    def __len__(self) -> int:
        return self.n

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, start])
        m, s = stop - start, self.size
        yy, xx = np.mgrid[:s, :s]
        cy, cx = rng.integers(4, s - 4, (2, m, 1, 1))
        r = rng.integers(3, s // 2, (m, 1, 1))
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        images = np.empty((m, s, s, 3), np.uint8)
        images[..., 0] = np.where(disk, rng.integers(100, 255, (m, 1, 1)), rng.integers(0, 120, (m, 1, 1)))
        images[..., 1] = rng.integers(0, 255, (m, s, s))
        images[..., 2] = 64
        return images, np.ones(m, bool)


class ThresholdModel:
    """A model that costs almost nothing: foreground where red exceeds a threshold (SS class by green)."""

    def __init__(self, name: str, task: str, threshold: float):
        self.name, self.task, self.threshold = name, task, threshold
        self.classes = ("background", "a", "b") if task == "ss" else ("background", "salient")
        self.module = torch.nn.Identity()
        self.cam_layer = None

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        fg = (images[:, 0] > self.threshold).float()
        if self.task == "sod":
            return (0.1 + 0.8 * fg)[:, None]
        labels = torch.where(fg > 0, torch.where(images[:, 1] > 0.5, 2, 1), 0)
        return torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 0.9 + 0.1 / 3


def threshold_models() -> list[ThresholdModel]:
    return [
        ThresholdModel("ss_a", "ss", 0.3),
        ThresholdModel("ss_b", "ss", 0.6),
        ThresholdModel("sod_p", "sod", 0.35),
        ThresholdModel("sod_q", "sod", 0.7),
    ]
