"""Competitors checked against independent implementations and hand-computed values.

Classic saliency against scipy/scikit-image re-implementations of the papers'
recipes, class mappings against hand-written tables, the competitor wrapper
against hand-computed softmax/bilinear values, and the heavy torchvision
builders for construction without any download.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from mdc_widgets.data import MINIWORLD_CLASSES
from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.models import Competitor, get_model, normalize_imagenet
from mdc_widgets.models.class_mapping import ClassMapping, map_labels, map_probabilities
from mdc_widgets.models.saliency_classic import FrequencyTunedSaliency, SpectralResidualSaliency, rgb_to_lab
from mdc_widgets.models.torchvision_adapters import VOC_CLASSES


def _textured_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``(n, 3, size, size)`` float64 in [0, 1]: smooth random backgrounds with one coloured square each."""
    rng = np.random.default_rng(seed)
    images = 0.3 + 0.2 * ndi.gaussian_filter(rng.random((n, 3, size, size)), (0, 0, 2, 2))
    for i in range(n):
        y, x, side = rng.integers(2, size // 2), rng.integers(2, size // 2), rng.integers(size // 8 + 2, size // 3 + 1)
        images[i, :, y : y + side, x : x + side] = rng.random(3)[:, None, None]
    return images.clip(0, 1)


def _min_max(s: np.ndarray) -> np.ndarray:
    return (s - s.min()) / (s.max() - s.min())


def _spectral_residual_reference(image: np.ndarray, sigma: float = 2.5) -> np.ndarray:
    """Hou & Zhang 2007 in numpy for a 64x64 image: residual of the log amplitude, back with the phase."""
    spectrum = np.fft.fft2(image.mean(0))
    log_amplitude = np.log(np.maximum(np.abs(spectrum), 1e-8))
    residual = log_amplitude - ndi.uniform_filter(log_amplitude, 3, mode="nearest")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    radius = round(3 * sigma)
    return _min_max(ndi.gaussian_filter(saliency, sigma, mode="mirror", truncate=radius / sigma))


def _frequency_tuned_reference(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Achanta et al. 2009 with scikit-image's Lab: distance of blurred pixels from the mean colour."""
    lab = rgb2lab(image.transpose(1, 2, 0))
    blurred = ndi.gaussian_filter(lab, (sigma, sigma, 0), mode="mirror", truncate=3)
    return _min_max(np.sqrt(((blurred - lab.mean((0, 1))) ** 2).sum(-1)))


def test_rgb_to_lab_matches_scikit_image():
    images = _textured_images(2, size=16)
    ours = rgb_to_lab(torch.from_numpy(images)).numpy()
    reference = np.stack([rgb2lab(im.transpose(1, 2, 0)).transpose(2, 0, 1) for im in images])
    np.testing.assert_allclose(ours, reference, atol=0.02)  # the sRGB matrices differ in the 5th digit
    # white is L=100, a=b=0; black is 0
    np.testing.assert_allclose(
        rgb_to_lab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten(), [100, 0, 0], atol=0.01
    )
    np.testing.assert_allclose(rgb_to_lab(torch.zeros(1, 3, 1, 1, dtype=torch.float64)).flatten(), [0, 0, 0], atol=1e-6)


def test_spectral_residual_matches_a_numpy_reference_and_is_batch_invariant():
    images = _textured_images(3)
    ours = SpectralResidualSaliency()(torch.from_numpy(images))[:, 0].numpy()
    reference = np.stack([_spectral_residual_reference(im) for im in images])
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    single = SpectralResidualSaliency()(torch.from_numpy(images[1:2]).float())[0, 0].numpy()
    np.testing.assert_allclose(single, reference[1], atol=2e-3)  # float32 FFT


def test_frequency_tuned_matches_a_scikit_image_reference():
    images = _textured_images(3)
    ours = FrequencyTunedSaliency()(torch.from_numpy(images))[:, 0].numpy()
    reference = np.stack([_frequency_tuned_reference(im) for im in images])
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_classic_saliency_of_a_flat_image_is_defined_and_bounded():
    for name in ("spectral_residual_sod", "frequency_tuned_sod"):
        sal = get_model(name, checkpoint=None).predict(torch.full((2, 3, 32, 48), 0.5))
        assert sal.shape == (2, 1, 32, 48) and torch.isfinite(sal).all()
        assert 0 <= float(sal.min()) and float(sal.max()) <= 1


def test_class_mapping_tables_by_name_and_to_foreground():
    coco_like = ["background", "person", "airplane", "motorcycle", "couch", "giraffe"]
    to_voc = ClassMapping.by_name(
        coco_like, VOC_CLASSES, {"airplane": "aeroplane", "motorcycle": "motorbike", "couch": "sofa"}
    )
    assert to_voc.table.tolist() == [0, 15, 1, 14, 18, 0]  # giraffe has no VOC class: background
    assert ClassMapping.by_name(["BACKGROUND", "Person"], VOC_CLASSES).table.tolist() == [0, 15]
    assert ClassMapping.to_foreground(VOC_CLASSES).table.tolist() == [0] + [1] * 20
    assert ClassMapping.to_foreground(MINIWORLD_CLASSES).table.tolist() == [0, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(to_voc.matrix().sum(1), np.ones(6))
    with pytest.raises(MdcError, match="not in the target classes"):
        ClassMapping.by_name(coco_like, VOC_CLASSES, {"couch": "settee"})
    with pytest.raises(MdcError, match="fallback"):
        ClassMapping.by_name(coco_like, ["sky", "road"])


def test_map_labels_and_probabilities_agree_between_numpy_and_torch():
    mapping = ClassMapping.to_foreground(MINIWORLD_CLASSES)
    labels = np.random.default_rng(0).integers(0, 6, size=(2, 5, 7)).astype(np.uint8)
    as_numpy = map_labels(labels, mapping)
    as_torch = map_labels(torch.from_numpy(labels), mapping)
    np.testing.assert_array_equal(as_numpy, (labels > 0).astype(np.int64))
    np.testing.assert_array_equal(as_torch.numpy(), as_numpy)
    probs = torch.softmax(torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(0)), 1)
    merged = map_probabilities(probs, mapping)
    torch.testing.assert_close(merged[:, 0], probs[:, 0])
    torch.testing.assert_close(merged[:, 1], probs[:, 1:].sum(1))


def test_low_resolution_logits_are_resized_bilinearly_to_the_input():
    # class-1 logits 0 and 1 on a 1x2 grid; bilinear (half-pixel) to 1x4 gives 0, .25, .75, 1
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 1, 0] = torch.tensor([0.0, 1.0])
    comp = Competitor.from_module(lambda x: (logits, "aux"), "ss", ["background", "thing"], name="coarse")
    probs = comp.predict(torch.rand(1, 3, 1, 4))
    expected = torch.sigmoid(torch.tensor([0.0, 0.25, 0.75, 1.0]))  # softmax of (0, v) is sigmoid(v)
    torch.testing.assert_close(probs[0, 1, 0], expected)
    sod = Competitor.from_module(lambda x: torch.zeros(x.shape[0], 1, 2, 2), "sod", name="flat")
    torch.testing.assert_close(sod.predict(torch.rand(2, 3, 6, 6)), torch.full((2, 1, 6, 6), 0.5))


def test_label_maps_become_one_hot_and_bad_labels_are_named():
    labels = torch.tensor([[[0, 2], [1, 2]]])
    comp = Competitor.from_module(lambda x: labels, "ss", ["background", "a", "b"], name="lut", output="labels")
    probs = comp.predict(torch.rand(1, 3, 2, 2))
    assert probs.argmax(1).tolist() == labels.tolist() and probs.sum(1).eq(1).all()
    sod = Competitor.from_module(lambda x: labels, "sod", name="lut_sod", output="labels")
    assert sod.predict(torch.rand(1, 3, 2, 2))[0, 0].tolist() == [[0.0, 1.0], [1.0, 1.0]]
    too_many = Competitor.from_module(
        lambda x: labels + 1, "ss", ["background", "a", "b"], name="off_by_one", output="labels"
    )
    with pytest.raises(ShapeError, match="'off_by_one' returned label 3"):
        too_many.predict(torch.rand(1, 3, 2, 2))


def test_fcn_resnet50_runs_at_64_pixels_and_its_default_preprocess_is_the_enum_transform():
    torch.manual_seed(0)
    model = get_model("tv_fcn_resnet50", checkpoint=None)
    x = torch.full((1, 3, 64, 96), 0.5)
    resized = model.preprocess(x)
    assert resized.shape == (1, 3, 520, 780)  # shorter side to 520, as FCN_ResNet50_Weights.transforms()
    torch.testing.assert_close(resized[0, :, 0, 0], normalize_imagenet(x)[0, :, 0, 0])
    model.preprocess = normalize_imagenet  # keep the forward pass small
    with torch.inference_mode():
        out = model.predict(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 21, 64, 64)
    torch.testing.assert_close(out.sum(1), torch.ones(2, 64, 64))
    assert model.classes == VOC_CLASSES and model.cam_layer in dict(model.module.named_modules())


@pytest.mark.parametrize("builder", ["fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101"])
def test_heavy_torchvision_builders_construct_offline(builder, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    model = get_model(f"tv_{builder}", checkpoint=None)
    head = [m for m in model.module.classifier.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert head.out_channels == len(VOC_CLASSES) == 21
    assert model.cam_layer in dict(model.module.named_modules())
    assert model.module.aux_classifier is None


def test_grad_cam_works_on_the_mobilenet_default_cam_layer():
    from mdc_widgets.explain import grad_cam

    model = get_model("tv_lraspp_mobilenet_v3_large", checkpoint=None)
    model.preprocess = normalize_imagenet
    cam = grad_cam(model, torch.rand(1, 3, 32, 32), target_class=15)
    assert cam.shape == (1, 32, 32)


def test_an_official_torchvision_checkpoint_loads_by_path(tmp_path):
    from torchvision.models import segmentation as seg

    torch.manual_seed(0)
    net = seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    path = tmp_path / "deeplabv3_mobilenet_v3_large-fc3c493d.pth"
    torch.save(net.state_dict(), path)
    model = get_model("tv_deeplabv3_mobilenet_v3_large", checkpoint=path)
    torch.testing.assert_close(model.module.classifier[4].weight, net.classifier[4].weight)
