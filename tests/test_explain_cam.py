"""Grad-CAM finds the evidence; overlays colour what they should."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mdc_widgets.explain import (
    colorize_labels,
    grad_cam,
    legend,
    list_cam_layers,
    overlay_heatmap,
    overlay_labels,
    saliency_explanation,
)
from mdc_widgets.models import Competitor


class BrightSquareNet(nn.Module):
    """Class 1's score everywhere is the mean brightness of the top-left quadrant (a known cause)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, :, 1, 1] = 1.0
            self.features.bias.zero_()

    def forward(self, x):
        f = torch.relu(self.features(x))
        evidence = f[:, :1, :16, :16].mean(dim=(2, 3), keepdim=True)
        background = torch.zeros_like(f[:, :1]) + 0.1
        return torch.cat([background, evidence.expand_as(f[:, :1]) * 10], 1)


def test_grad_cam_peaks_where_the_evidence_is():
    comp = Competitor.from_module(BrightSquareNet(), "ss", ["bg", "thing"], name="square", cam_layer="features")
    images = torch.zeros(2, 3, 32, 32)
    images[:, :, 4:12, 4:12] = 1.0
    heat = grad_cam(comp, images, target_class=1)
    assert heat.shape == (2, 32, 32)
    assert heat[:, 4:12, 4:12].mean() > 5 * heat[:, 20:, 20:].mean()
    assert "features" in list_cam_layers(comp)


def test_saliency_explanation_returns_the_map_and_a_cam():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    comp = Competitor.from_module(net, "sod", name="tiny_sod")
    out = saliency_explanation(comp, torch.rand(2, 3, 16, 16))
    assert out["saliency"].shape == (2, 16, 16) and out["cam"].shape == (2, 16, 16)


def test_overlays_and_legend():
    labels = np.array([[0, 1], [2, 0]])
    colours = colorize_labels(labels)
    assert colours[0, 0].tolist() == [0, 0, 0] and colours[0, 1].tolist() == [128, 0, 0]
    image = np.full((2, 2, 3), 100, np.uint8)
    blended = overlay_labels(image, labels, alpha=1.0)
    assert blended[0, 0].tolist() == [100, 100, 100] and blended[1, 0].tolist() == [0, 128, 0]
    assert overlay_heatmap(image, np.zeros((2, 2)), alpha=0.0)[0, 0].tolist() == [100, 100, 100]
    assert legend(["background", "disk", "square"], labels) == [
        ("background", "#000000"),
        ("disk", "#800000"),
        ("square", "#008000"),
    ]
