"""Shared fixtures over the stand-ins of ``_helpers.py``: blob pools, threshold and tiny conv competitors, sessions.

Nothing here trains or downloads anything, except ``trained_zoo`` (the cached mini-world zoo).
"""

from __future__ import annotations

import os

import pytest
import torch
from _helpers import (
    BLOB_POOL,
    MODELS,
    ArrayPool,
    ThresholdCompetitor,
    conv_competitors,
    random_blob_images,
    threshold_competitors,
)

os.environ.setdefault("MDC_WIDGETS_HOME", os.path.join(os.path.dirname(__file__), "..", ".mdc_cache"))
torch.set_num_threads(1)


@pytest.fixture
def blob_pool() -> ArrayPool:
    return ArrayPool(random_blob_images(40))


@pytest.fixture
def threshold_models() -> list[ThresholdCompetitor]:
    return threshold_competitors()


@pytest.fixture(scope="session")
def trained_zoo():
    """The six mini-world models, trained once per cache (a lock keeps xdist workers from training twice)."""
    from filelock import FileLock

    from mdc_widgets.config import cache_dir
    from mdc_widgets.models import train_zoo

    with FileLock(str(cache_dir() / "train_zoo.lock")):
        return train_zoo()


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
