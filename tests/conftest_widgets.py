"""Fixtures of the session, labeling, viz and widget tests (loaded with ``pytest_plugins``).

Stand-ins only: the blob pool and threshold competitors of ``conftest.py``, a
small mini-world pool with ground truth, and tiny convolutional competitors
that Grad-CAM can explain. Nothing here trains or downloads anything.

PYTEST_DONT_REWRITE (imported by the test modules before pytest loads it as a plugin)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from conftest import ArrayPool, ThresholdCompetitor, random_blob_images

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


@pytest.fixture(scope="session")
def blob_store(tmp_path_factory):
    """A prediction store of the four threshold competitors over 40 blob images, made once."""
    from mdc_widgets.session import Session

    store = tmp_path_factory.mktemp("blob") / "store"
    models = threshold_competitors()
    Session(BLOB_POOL, store, models=models, use_registry=False, device="cpu").predict(
        models, chunk_size=16, batch_size=16
    )
    return store


@pytest.fixture
def blob_session(blob_store, tmp_path):
    """A fresh Session (own labels) on the shared blob store."""
    from mdc_widgets.session import Session

    return Session(
        BLOB_POOL,
        blob_store,
        models=threshold_competitors(),
        use_registry=False,
        device="cpu",
        labels=tmp_path / "labels.jsonl",
    )


@pytest.fixture(scope="session")
def miniworld_small():
    """24 mini-world scenes at 32 px, with ground truth and nuisance metadata (not cached on disk)."""
    from mdc_widgets.data import generate_miniworld

    return generate_miniworld("pool", n=24, seed=5, image_size=32)


def conv_competitors() -> list[Any]:
    return [
        tiny_conv_competitor("conv_ss_1", "ss", seed=1),
        tiny_conv_competitor("conv_ss_2", "ss", seed=2),
        tiny_conv_competitor("conv_sod_1", "sod", seed=3),
        tiny_conv_competitor("conv_sod_2", "sod", seed=4),
    ]


@pytest.fixture(scope="session")
def gt_store(tmp_path_factory, miniworld_small):
    """Predictions of two tiny conv models per task over the small mini-world pool, made once."""
    from mdc_widgets.data import DatasetPool
    from mdc_widgets.session import Session

    store = tmp_path_factory.mktemp("gt") / "store"
    models = conv_competitors()
    pool = DatasetPool(miniworld_small, name="mw-small")
    Session(pool, store, models=models, use_registry=False, device="cpu").predict(models, chunk_size=8, batch_size=8)
    return store


@pytest.fixture
def gt_session(gt_store, miniworld_small, tmp_path):
    """A fresh Session (own labels) on the mini-world store: ground truth, metadata, Grad-CAM-able models."""
    from mdc_widgets.data import DatasetPool
    from mdc_widgets.session import Session

    return Session(
        DatasetPool(miniworld_small, name="mw-small"),
        gt_store,
        models=conv_competitors(),
        use_registry=False,
        device="cpu",
        labels=tmp_path / "labels.jsonl",
    )


@pytest.fixture
def mined_blob_session(blob_session):
    """The blob session with a joint group mined (k=6, no constraints)."""
    from mdc_widgets.mining import CompetitionGroup, Constraints, Weights

    blob_session.mine(
        CompetitionGroup(ss=MODELS["ss"], sod=MODELS["sod"]), Weights(1, 1, 1), k=6, constraints=Constraints.none()
    )
    return blob_session


def blob_images(n: int = 40, size: int = 16) -> np.ndarray:
    return random_blob_images(n, size=size)
