"""RunOptions replaces predict_pool's run keywords; the old keywords and get_model(weights=) still work, with a warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import ThresholdCompetitor

from mdc_widgets.errors import MdcError
from mdc_widgets.models import get_model, unavailable_models
from mdc_widgets.predictions import RunOptions, predict_pool


def test_run_options_give_the_same_store_as_the_deprecated_keywords(tmp_path, blob_pool):
    options = RunOptions(batch_size=7, chunk_size=16, probabilities=True)
    new = predict_pool(blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path / "new", options, progress=False)
    with pytest.warns(DeprecationWarning, match=r"options=RunOptions\(batch_size=7, chunk_size=16"):
        old = predict_pool(
            blob_pool,
            [ThresholdCompetitor("ss_a", "ss", 0.3)],
            tmp_path / "old",
            batch_size=7,
            chunk_size=16,
            probabilities=True,
            progress=False,
        )
    np.testing.assert_array_equal(new["prediction"].values, old["prediction"].values)
    assert new["prediction"].chunks[0] == old["prediction"].chunks[0] == (16, 16, 8)


def test_run_options_refuse_bad_values_and_unknown_keywords(tmp_path, blob_pool):
    with pytest.raises(MdcError, match="batch_size takes a whole number"):
        RunOptions(batch_size=0)
    with pytest.raises(TypeError, match="'batchsize'"):
        predict_pool(blob_pool, [], tmp_path, batchsize=4, progress=False)


def test_get_model_takes_checkpoint_and_still_accepts_weights_with_a_warning():
    torch.manual_seed(0)
    random_init = get_model("mw_fcn_ss", checkpoint=None)
    state = random_init.module.state_dict()
    with pytest.warns(DeprecationWarning, match="checkpoint="):
        aliased = get_model("mw_fcn_ss", weights=state)
    for name, tensor in aliased.module.state_dict().items():
        torch.testing.assert_close(tensor, state[name])


def test_every_built_in_plugin_loads_here():
    # a failing plugin is reported here (and warned about), never silently dropped
    assert unavailable_models() == {}


def test_a_built_in_plugin_that_fails_to_import_is_warned_about_and_listed(monkeypatch):
    from mdc_widgets.models import _builtin, registry

    def broken() -> list:
        raise ImportError("No module named 'missing_dependency'")

    monkeypatch.setattr(_builtin, "BUILTIN_PLUGINS", (*_builtin.BUILTIN_PLUGINS, ("mdc_widgets.models.broken", broken)))
    monkeypatch.setattr(registry, "_BUILTINS_LOADED", False)
    monkeypatch.setattr(registry, "_UNAVAILABLE", {})
    monkeypatch.setattr(registry, "_REGISTRY", {})
    with pytest.warns(UserWarning, match="mdc_widgets.models.broken are unavailable"):
        names = registry.list_models()
    assert "mw_unet_ss" in names
    assert registry.unavailable_models() == {
        "mdc_widgets.models.broken": "ImportError: No module named 'missing_dependency'"
    }
