"""ESPNetv2 and DiCENet (EdgeNets) PASCAL VOC competitors: strict checkpoint loading, weight lookup, real photos.

Tests that need the released checkpoints or the SOD-300 photos look for them in
``../shared`` beside the repository and are skipped when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mdc_widgets.errors import MdcError, WeightsNotFoundError
from mdc_widgets.models import get_model, list_models, model_spec
from mdc_widgets.models.edgenets import CHECKPOINTS, WEIGHTS_ENV, dicenet_seg, espnetv2_seg, working_size
from mdc_widgets.models.torchvision_adapters import VOC_CLASSES

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEIGHTS_DIR = SHARED / "weights" / "edgenets"
PERSON_PHOTO = SHARED / "data" / "sod300" / "images" / "181018.jpg"  # a woman, upright, 321x481 (WxH)
PERSON = VOC_CLASSES.index("person")

# learnable parameters per file, from the table in shared/weights/edgenets/README.md
README_PARAMS = {
    ("espnetv2", 0.5): 80_353,
    ("espnetv2", 1.0): 234_021,
    ("espnetv2", 1.5): 468_373,
    ("espnetv2", 2.0): 789_253,
    ("dicenet", 0.2): 46_927,
    ("dicenet", 0.5): 76_359,
    ("dicenet", 0.75): 189_663,
    ("dicenet", 1.0): 283_387,
    ("dicenet", 1.25): 389_415,
    ("dicenet", 1.75): 807_951,
}
BUILDERS = {"espnetv2": espnetv2_seg, "dicenet": dicenet_seg}


def _checkpoint_file(file_name: str) -> Path:
    if not WEIGHTS_DIR.is_dir():
        pytest.skip(
            f"the EdgeNets checkpoints are not here: {WEIGHTS_DIR} is missing (a clone with ../shared beside it)"
        )
    path = WEIGHTS_DIR / file_name
    if not path.is_file():
        pytest.skip(f"checkpoint {path} is not present")
    return path


@pytest.fixture(scope="module")
def person_photo() -> torch.Tensor:
    """181018 resized to a 320x480 (WxH) working size, as a (1, 3, 480, 320) batch in [0, 1]."""
    if not PERSON_PHOTO.is_file():
        pytest.skip(f"the SOD-300 photo is not here: {PERSON_PHOTO} is missing (a clone with ../shared beside it)")
    from PIL import Image

    image = Image.open(PERSON_PHOTO).convert("RGB").resize((320, 480), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


def test_every_checkpoint_is_registered_as_a_voc_competitor():
    names = set(list_models(tag="edgenets"))
    assert names == {c.model_name for c in CHECKPOINTS} and len(names) == 20
    assert {"espnetv2_s2.0_voc384", "dicenet_s1.75_voc256", "dicenet_s0.2_voc256"} <= names
    for name in names:
        spec = model_spec(name)
        assert spec.task == "ss" and spec.classes == VOC_CLASSES and spec.tags == ("edgenets",)
        assert "mIoU" in spec.description and spec.cam_layer and spec.preprocess is not None


@pytest.mark.parametrize(("family", "width"), sorted(README_PARAMS))
def test_parameter_counts_equal_the_readme_table(family, width):
    module = BUILDERS[family](width)
    assert sum(p.numel() for p in module.parameters()) == README_PARAMS[(family, width)]
    assert model_spec(f"{family}_s{width}_voc256").cam_layer in dict(module.named_modules())


@pytest.mark.parametrize("checkpoint", CHECKPOINTS, ids=lambda c: c.model_name)
def test_checkpoint_loads_strictly_from_a_path_and_from_the_env_var(checkpoint, tmp_path, monkeypatch):
    path = _checkpoint_file(checkpoint.file_name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    fresh = BUILDERS[checkpoint.family](checkpoint.width)
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    from_path = get_model(checkpoint.model_name, checkpoint=path)
    # an empty folder first: the lookup goes on to the next folder of the list
    monkeypatch.setenv(WEIGHTS_ENV, os.pathsep.join([str(tmp_path), str(WEIGHTS_DIR)]))
    from_env = get_model(checkpoint.model_name)
    head = "bu_dec_l4" if checkpoint.family == "espnetv2" else "eff_pool_128x128"
    key = f"{head}.merge_layer.3.weight"  # the 21-class logits conv
    for model in (from_path, from_env):
        torch.testing.assert_close(model.module.state_dict()[key], state[key])


def test_missing_weights_name_the_file_the_env_var_and_the_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as unset:
        get_model("espnetv2_s2.0_voc384")
    message = str(unset.value)
    assert "espnetv2_s_2.0_pascal_384x384.pth" in message and WEIGHTS_ENV in message and "unset" in message
    assert "checkpoint=None" in message and "checkpoint='/path/to/" in message and "never downloaded" in message

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))  # read at call time, not at import time
    with pytest.raises(WeightsNotFoundError) as empty:
        get_model("dicenet_s0.2_voc256")
    message = str(empty.value)
    assert "dicenet_s_0.2_pascal_256x256.pth" in message and str(tmp_path) in message and WEIGHTS_ENV in message


@pytest.mark.parametrize("name", ["espnetv2_s0.5_voc256", "dicenet_s0.2_voc384"])
def test_random_weights_predict_at_input_size(name):
    torch.manual_seed(0)
    model = get_model(name, checkpoint=None)
    probs = model.predict(torch.rand(1, 3, 64, 96))
    assert probs.shape == (1, 21, 64, 96)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 64, 96))
    # sides that are not multiples of 32 go through the preprocess's resize and come back at input size
    assert model.predict(torch.rand(2, 3, 50, 70)).shape == (2, 21, 50, 70)


@pytest.mark.parametrize("builder", [espnetv2_seg, dicenet_seg])
def test_networks_return_logits_at_any_multiple_of_32(builder):
    module = builder(1.0).eval()
    with torch.no_grad():
        for size in [(32, 32), (64, 96), (256, 160)]:
            assert module(torch.randn(1, 3, *size)).shape == (1, 21, *size)


def test_working_size_rounds_each_side_to_a_multiple_of_32():
    assert working_size(481, 321) == (480, 320)
    assert working_size(50, 70) == (64, 64)
    assert working_size(10, 600) == (32, 608)
    with pytest.raises(MdcError):
        espnetv2_seg(0.75)
    with pytest.raises(MdcError):
        dicenet_seg(3.0)


@pytest.mark.parametrize(
    "name", ["espnetv2_s2.0_voc384", "dicenet_s1.75_voc384", "espnetv2_s0.5_voc256", "dicenet_s0.2_voc256"]
)
def test_released_weights_see_the_woman_as_a_person(name, person_photo):
    checkpoint = next(c for c in CHECKPOINTS if c.model_name == name)
    model = get_model(name, checkpoint=_checkpoint_file(checkpoint.file_name))
    labels = model.predict(person_photo).argmax(1)
    assert float((labels == PERSON).float().mean()) > 0.4


def test_random_weights_do_not_see_the_person(person_photo):
    torch.manual_seed(0)
    for name in ("espnetv2_s2.0_voc384", "dicenet_s1.75_voc384"):
        labels = get_model(name, checkpoint=None).predict(person_photo).argmax(1)
        assert float((labels == PERSON).float().mean()) < 0.4


@pytest.mark.parametrize("name", ["espnetv2_s0.5_voc256", "dicenet_s0.2_voc256"])
def test_grad_cam_runs_on_the_registered_layer(name):
    pytest.importorskip("pytorch_grad_cam")
    from mdc_widgets.explain import grad_cam

    torch.manual_seed(0)
    heat = grad_cam(get_model(name, checkpoint=None), torch.rand(1, 3, 64, 64))
    assert heat.shape == (1, 64, 64) and np.isfinite(heat).all()
