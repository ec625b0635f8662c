"""Real architectures, hub weights without downloads, classic saliency and class mappings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdc_widgets.errors import WeightsNotFoundError
from mdc_widgets.models import get_model, list_models, normalize_imagenet
from mdc_widgets.models.class_mapping import ClassMapping, map_labels, remap_competitor
from mdc_widgets.models.torchvision_adapters import TORCHVISION_SEGMENTATION, VOC_CLASSES, hub_checkpoint_path


def test_every_torchvision_builder_is_registered_with_voc_classes():
    assert set(list_models(tag="torchvision")) == {f"tv_{n}" for n in TORCHVISION_SEGMENTATION}
    assert len(VOC_CLASSES) == 21


@pytest.mark.parametrize("name", ["tv_lraspp_mobilenet_v3_large", "tv_deeplabv3_mobilenet_v3_large"])
def test_torchvision_models_run_with_random_weights(name):
    torch.manual_seed(0)
    model = get_model(name, checkpoint=None)
    model.preprocess = normalize_imagenet  # skip the 520-pixel resize to keep the test fast
    out = model.predict(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 21, 64, 64)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 64, 64))


def test_missing_hub_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        get_model("tv_lraspp_mobilenet_v3_large")
    message = str(info.value)
    assert "lraspp_mobilenet_v3_large-d234d4ea.pth" in message and str(tmp_path / "checkpoints") in message


def test_hub_cache_and_local_file_weights_load(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(3)
    reference = get_model("tv_lraspp_mobilenet_v3_large", checkpoint=None)
    _, enum, _ = TORCHVISION_SEGMENTATION["lraspp_mobilenet_v3_large"]
    path = hub_checkpoint_path(enum.DEFAULT)
    path.parent.mkdir(parents=True)
    torch.save(reference.module.state_dict(), path)
    from_hub = get_model("tv_lraspp_mobilenet_v3_large")
    from_file = get_model("tv_lraspp_mobilenet_v3_large", checkpoint=path)
    x = torch.rand(1, 3, 32, 32)
    for m in (reference, from_hub, from_file):
        m.preprocess = normalize_imagenet
    torch.testing.assert_close(from_hub.predict(x), reference.predict(x))
    torch.testing.assert_close(from_file.predict(x), reference.predict(x))


def test_spectral_residual_and_frequency_tuned_find_a_lone_square():
    # a small red square on a fine random texture: the texture's flat spectrum is not salient, the square is
    generator = torch.Generator().manual_seed(0)
    image = 0.4 + 0.1 * torch.rand((1, 3, 64, 64), generator=generator)
    image[0, :, 28:36, 30:38] = torch.tensor([0.95, 0.1, 0.1])[:, None, None]
    for name in ("spectral_residual_sod", "frequency_tuned_sod"):
        sal = get_model(name).predict(image)[0, 0]
        around, far = sal[26:38, 28:40].mean(), torch.cat([sal[:16].flatten(), sal[48:].flatten()]).mean()
        assert around > 2.5 * far, name


def test_class_mapping_merges_labels_and_probabilities():
    coco_like = ["background", "cat", "dog", "car", "bus"]
    common = ["background", "animal", "vehicle"]
    mapping = ClassMapping.by_name(
        coco_like, common, {"cat": "animal", "dog": "animal", "car": "vehicle", "bus": "vehicle"}
    )
    np.testing.assert_array_equal(map_labels(np.array([[0, 1, 2, 3, 4]]), mapping), [[0, 1, 1, 2, 2]])
    net = torch.nn.Conv2d(3, 5, 1)
    from mdc_widgets.models import Competitor

    comp = Competitor.from_module(net, "ss", coco_like, name="coco_net")
    mapped = remap_competitor(comp, mapping)
    x = torch.rand(2, 3, 4, 4)
    p, q = comp.predict(x), mapped.predict(x)
    torch.testing.assert_close(q[:, 1], p[:, 1] + p[:, 2])
    torch.testing.assert_close(q.sum(1), torch.ones(2, 4, 4))
    assert ClassMapping.to_foreground(VOC_CLASSES).table.sum() == 20
