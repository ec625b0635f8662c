"""Competitors, the registry, weights from files, and training reproducibility."""

from __future__ import annotations

import pytest
import torch

from mdc_widgets.errors import MdcError, ShapeError, UnknownModelError, WeightsNotFoundError
from mdc_widgets.models import ZOO, Competitor, get_model, list_models, register_model


def test_zoo_has_three_models_per_task_with_different_architectures():
    assert set(list_models("ss", tag="miniworld")) == {"mw_unet_ss", "mw_fcn_ss", "mw_deeplabv3plus_ss"}
    assert set(list_models("sod", tag="miniworld")) == {"mw_unet_sod", "mw_fcn_sod", "mw_vst_sod"}
    assert len({ZOO[n].architecture for n in list_models("ss", tag="miniworld")}) == 3
    assert len({ZOO[n].architecture for n in list_models("sod", tag="miniworld")}) == 3


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_architecture_predicts_probabilities_at_input_size(name):
    torch.manual_seed(0)
    model = get_model(name, checkpoint=None)
    out = model.predict(torch.rand(2, 3, 64, 64))
    if model.task == "ss":
        assert out.shape == (2, 6, 64, 64)
        torch.testing.assert_close(out.sum(1), torch.ones(2, 64, 64))
    else:
        assert out.shape == (2, 1, 64, 64) and 0 <= out.min() and out.max() <= 1
    # the CAM layer must name a module of the network that holds a convolution (Grad-CAM weights its feature maps)
    layers = dict(model.module.named_modules())
    assert model.cam_layer in layers, model.cam_layer
    assert any(isinstance(m, torch.nn.Conv2d) for m in layers[model.cam_layer].modules()), model.cam_layer


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean mw_unet_ss") as info:
        get_model("mw_unet_sss")
    assert "register_model" in str(info.value)


def test_state_dict_round_trip_through_a_local_file(tmp_path):
    torch.manual_seed(1)
    model = get_model("mw_fcn_ss", checkpoint=None)
    path = tmp_path / "fcn.pt"
    torch.save(model.module.state_dict(), path)
    again = get_model("mw_fcn_ss", checkpoint=path)
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model.predict(x), again.predict(x))
    with pytest.raises(WeightsNotFoundError, match="nope.pt"):
        get_model("mw_fcn_ss", checkpoint=tmp_path / "nope.pt")
    torch.save(get_model("mw_unet_ss", checkpoint=None).module.state_dict(), tmp_path / "unet.pt")
    with pytest.raises(MdcError, match="do not fit"):
        get_model("mw_fcn_ss", checkpoint=tmp_path / "unet.pt")


def test_any_module_can_compete_and_bad_outputs_are_named():
    labels_net = lambda x: (x[:, 0] > 0.5).long() * 2  # noqa: E731  a callable returning a label map
    comp = Competitor.from_module(labels_net, "ss", ["bg", "a", "b"], name="thresh", output="labels")
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0, :2] = 1
    probs = comp.predict(x)
    assert probs.argmax(1)[0].tolist() == [[2] * 4] * 2 + [[0] * 4] * 2
    two_channels = Competitor.from_module(torch.nn.Conv2d(3, 2, 1), "ss", ["bg", "a", "b"], name="short")
    with pytest.raises(ShapeError, match="'short' returned 2 channels"):
        two_channels.predict(x)
    nan_net = Competitor.from_module(lambda t: t[:, :1] * float("nan"), "sod", name="nan_sod")
    with pytest.raises(MdcError, match="NaN"):
        nan_net.predict(x)
    # a dict output and a lower-resolution output (torchvision style) are handled
    low_res = Competitor.from_module(lambda t: {"out": torch.zeros(t.shape[0], 3, 2, 2)}, "ss", ["bg", "a", "b"])
    assert low_res.predict(x).shape == (1, 3, 4, 4)


def test_registering_twice_needs_overwrite():
    register_model("test_tmp_model", lambda: torch.nn.Conv2d(3, 1, 1), "sod", ("background", "salient"), overwrite=True)
    with pytest.raises(MdcError, match="already registered"):
        register_model("test_tmp_model", lambda: torch.nn.Conv2d(3, 1, 1), "sod", ("background", "salient"))


@pytest.mark.slow
def test_training_reproduces_the_stated_quality(tmp_path, monkeypatch):
    """Two runs of the same config give identical weights, and the model is good on easy, worse on hard."""
    import dataclasses

    from mdc_widgets.models.training import train
    from mdc_widgets.models.zoo import _builder, normalize_half

    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    config = dataclasses.replace(ZOO["mw_fcn_ss"])  # the real config of the fastest model
    path_a = train("mw_fcn_ss", config, _builder(config), normalize_half, 6, progress=False)
    weights_a = torch.load(path_a)
    path_a.unlink()
    path_b = train("mw_fcn_ss", config, _builder(config), normalize_half, 6, progress=False)
    weights_b = torch.load(path_b)
    for key in weights_a:
        torch.testing.assert_close(weights_a[key], weights_b[key], rtol=0, atol=0)
    import json

    quality = json.loads(path_b.with_suffix(".json").read_text())["quality"]
    assert quality["val"]["miou"] > 0.6
    assert quality["test_hard"]["miou"] < quality["val"]["miou"] - 0.15
