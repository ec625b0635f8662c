"""Shared fixtures: tiny stand-in pools and competitors that need no training."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

os.environ.setdefault("MDC_WIDGETS_HOME", os.path.join(os.path.dirname(__file__), "..", ".mdc_cache"))
torch.set_num_threads(1)


@dataclass
class ArrayPool:
    """A pool over an in-memory array; ``bad`` indices fail to decode."""

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


@pytest.fixture
def blob_pool() -> ArrayPool:
    return ArrayPool(random_blob_images(40))


@pytest.fixture
def threshold_models() -> list[ThresholdCompetitor]:
    return [
        ThresholdCompetitor("ss_a", "ss", 0.3),
        ThresholdCompetitor("ss_b", "ss", 0.6),
        ThresholdCompetitor("sod_p", "sod", 0.35),
        ThresholdCompetitor("sod_q", "sod", 0.7),
    ]


@pytest.fixture(scope="session")
def trained_zoo():
    """The six mini-world models, trained once per cache (a lock keeps xdist workers from training twice)."""
    from filelock import FileLock

    from mdc_widgets.config import cache_dir
    from mdc_widgets.models import train_zoo

    with FileLock(str(cache_dir() / "train_zoo.lock")):
        return train_zoo()
