"""Stand-ins shared by the tests: tiny pools and competitors that need no training or download.

A plain module (``from _helpers import ...``), so no conftest is ever imported
as a module; the fixtures built from these live in ``conftest.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mdc_widgets.data import BasePool


@dataclass
class ArrayPool(BasePool):
    """A pool over an in-memory array; ``bad`` indices fail to decode (the other Pool members: BasePool's)."""

    images: np.ndarray
    bad: tuple[int, ...] = ()
    name: str = "array"
    reads: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sample_ids = np.array([f"s{i:04d}" for i in range(len(self.images))])
        self.image_size = self.images.shape[1:3]
        self.fingerprint = hashlib.sha256(self.images.tobytes()).hexdigest()[:16]
        self.errors: dict[str, str] = {}
        self.classes = None

    def __len__(self) -> int:
        return len(self.images)

    def read_images(self, start: int, stop: int):
        self.reads.append((start, stop))
        valid = np.ones(stop - start, bool)
        for i in self.bad:
            if start <= i < stop:
                valid[i - start] = False
                self.errors[self.sample_ids[i]] = f"{self.sample_ids[i]}: cannot decode"
        imgs = self.images[start:stop].copy()
        imgs[~valid] = 0
        return imgs, valid


class ThresholdCompetitor:
    """Foreground where the red channel exceeds ``threshold``: simple, deterministic, shape-correct."""

    def __init__(self, name: str, task: str, threshold: float, n_classes: int = 3):
        self.name, self.task, self.threshold = name, task, threshold
        self.classes = tuple(f"c{i}" for i in range(n_classes)) if task == "ss" else ("background", "salient")
        self.module = torch.nn.Identity()
        self.cam_layer = None
        self.calls = 0

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        red = images[:, 0]
        fg = (red > self.threshold).float()
        if self.task == "sod":
            return (0.1 + 0.8 * fg)[:, None]
        n_cls = len(self.classes)
        cls = torch.where(images[:, 1] > 0.5, 2, 1) if n_cls > 2 else torch.ones_like(red, dtype=torch.long)
        labels = torch.where(fg > 0, cls, torch.zeros_like(cls))
        probs = torch.nn.functional.one_hot(labels.long(), n_cls).permute(0, 3, 1, 2).float()
        return probs * 0.9 + 0.1 / n_cls


def random_blob_images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, size, size, 3), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx, r = rng.integers(3, size - 3), rng.integers(3, size - 3), rng.integers(2, size // 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        imgs[i, ..., 0] = np.where(disk, rng.integers(100, 255), rng.integers(0, 120))
        imgs[i, ..., 1] = rng.integers(0, 255)
    return imgs


MODELS = {"ss": ("ss_a", "ss_b"), "sod": ("sod_p", "sod_q")}


def threshold_competitors() -> list[ThresholdCompetitor]:
    return [
        ThresholdCompetitor("ss_a", "ss", 0.3),
        ThresholdCompetitor("ss_b", "ss", 0.6),
        ThresholdCompetitor("sod_p", "sod", 0.35),
        ThresholdCompetitor("sod_q", "sod", 0.7),
    ]


def tiny_conv_competitor(name: str, task: str, n_classes: int = 6, seed: int = 0) -> Any:
    """A two-layer convolutional competitor with fixed random weights (Grad-CAM-able)."""
    from mdc_widgets.models import Competitor

    torch.manual_seed(seed)
    out = n_classes if task == "ss" else 1
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, out, 1))
    classes = ["background"] + [f"c{i}" for i in range(1, n_classes)] if task == "ss" else None
    return Competitor.from_module(net, task, classes, name=name, cam_layer="0")


class RecordingSession:
    """A Session whose public actions are recorded in ``calls`` (name, args, kwargs) before running."""

    RECORDED = ("predict", "mine", "ranked_table", "sample_detail", "explain", "label", "accept_mask", "ranking")

    def __init__(self, session: Any):
        self._session = session
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._session, name)
        if name in self.RECORDED:

            def recorded(*args: Any, **kwargs: Any) -> Any:
                self.calls.append((name, args, kwargs))
                return attr(*args, **kwargs)

            return recorded
        return attr

    def called(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


BLOB_POOL = ArrayPool(random_blob_images(40, size=16))


def conv_competitors() -> list[Any]:
    return [
        tiny_conv_competitor("conv_ss_1", "ss", seed=1),
        tiny_conv_competitor("conv_ss_2", "ss", seed=2),
        tiny_conv_competitor("conv_sod_1", "sod", seed=3),
        tiny_conv_competitor("conv_sod_2", "sod", seed=4),
    ]


def blob_images(n: int = 40, size: int = 16) -> np.ndarray:
    return random_blob_images(n, size=size)
