"""The bottom-up segmentation decoder that ESPNetv2 and DiCENet share.

Each decoder stage upsamples the coarser decoder output by two, adds a gated
projection of the encoder feature at that resolution, normalises the sum and
refines it with an efficient pyramid pooling module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mdc_widgets.models.edgenets.blocks import ChannelShuffle, PackedBNPReLU, PackedConvBNPReLU

__all__ = [
    "PYRAMID_SCALES",
    "EfficientPyramidPool",
    "GatedProjection",
    "decode_stage",
    "decoder_widths",
    "normalisation",
    "upsample_to",
]

# the pyramid's relative resolutions, largest first (the order of the ``stages`` keys in the checkpoints)
PYRAMID_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)
# below this many rows or columns a pyramid level is not shrunk further
_MIN_PYRAMID_SIDE = 5


def decoder_widths(num_classes: int, base: int = 16) -> tuple[tuple[int, int, int, int], int]:
    """Output channels of the four decoder stages and the pyramid's projection width (PASCAL VOC: base 16).

    Parameters
    ----------
    num_classes : int
        Classes of the last stage's logits.
    base : int, optional
        Channel unit of the stages: ``4, 3, 2`` times ``base``, then ``num_classes``.

    Returns
    -------
    stages : tuple of 4 int
        Output channels of the four pyramid stages, coarse to fine.
    projection : int
        Channels every pyramid projects to: ``min(num_classes // 2, base)``.
    """
    return (4 * base, 3 * base, 2 * base, num_classes), min(num_classes // 2, base)


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear (corner-aligned) upsampling to ``like``'s spatial size: the original's "scale by two".

    Written by size so that inputs whose side is not a multiple of 32 still
    line up with the skip feature.

    Parameters
    ----------
    x : torch.Tensor
        ``(n, c, h, w)`` coarse feature.
    like : torch.Tensor
        A tensor ``(..., H, W)`` whose spatial size is the target.

    Returns
    -------
    torch.Tensor
        ``(n, c, H, W)``.
    """
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


class EfficientPyramidPool(nn.Module):
    """Project to a few channels, filter at five resolutions with depth-wise 3x3 convs, merge.

    Resolutions above 1 are reached by bilinear upsampling and brought back by
    average pooling; those below 1 the other way round. The merge is one big
    batch norm, a channel shuffle so each group sees every scale, a grouped 3x3
    conv and a 1x1 conv; the last decoder stage keeps the 1x1 conv's bias and
    skips the final batch norm, since its output is the class logits.

    Parameters
    ----------
    in_channels : int
        Channels of the input feature.
    proj_channels : int
        Channels of the projection filtered at every resolution (see
        :func:`decoder_widths`).
    out_channels : int
        Output channels (the class count for the last stage).
    final_norm : bool, optional
        End with batch norm + PReLU (True) or with the biased 1x1 conv (False,
        the logits stage).
    """

    def __init__(self, in_channels: int, proj_channels: int, out_channels: int, final_norm: bool = True):
        super().__init__()
        n_scales = len(PYRAMID_SCALES)
        self.projection_layer = PackedConvBNPReLU(in_channels, proj_channels, 1)
        self.stages = nn.ModuleList(
            nn.Conv2d(proj_channels, proj_channels, 3, padding=1, groups=proj_channels, bias=False)
            for _ in PYRAMID_SCALES
        )
        self.merge_layer = nn.Sequential(
            PackedBNPReLU(proj_channels * n_scales),
            ChannelShuffle(n_scales),
            PackedConvBNPReLU(proj_channels * n_scales, proj_channels, 3, groups=proj_channels),
            nn.Conv2d(proj_channels, out_channels, 1, bias=not final_norm),
        )
        if final_norm:
            self.br = PackedBNPReLU(out_channels)
        self.final_norm = final_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` at the five pyramid resolutions and merge.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` feature.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)``.
        """
        x = self.projection_layer(x)
        height, width = x.shape[-2:]
        levels = []
        for scale, stage in zip(PYRAMID_SCALES, self.stages):
            size = (max(math.ceil(height * scale), _MIN_PYRAMID_SIDE), max(math.ceil(width * scale), _MIN_PYRAMID_SIDE))
            if scale < 1.0:
                level = stage(F.adaptive_avg_pool2d(x, size))
                level = F.interpolate(level, (height, width), mode="bilinear", align_corners=True)
            elif scale > 1.0:
                level = stage(F.interpolate(x, size, mode="bilinear", align_corners=True))
                level = F.adaptive_avg_pool2d(level, (height, width))
            else:
                level = stage(x)
            levels.append(level)
        out = self.merge_layer(torch.cat(levels, dim=1))
        return self.br(out) if self.final_norm else out


class GatedProjection(nn.Module):
    """Bring an encoder feature to the decoder's width with a gated grouped 3x3 conv.

    The conv's output is scaled per channel by a sigmoid gate computed from
    the feature's global average (squeeze-and-excitation style).

    Parameters
    ----------
    in_channels : int
        Channels of the encoder feature.
    out_channels : int
        Channels of the decoder stage it joins.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.wt_layer = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.expansion_layer = PackedConvBNPReLU(
            in_channels, out_channels, 3, groups=math.gcd(in_channels, out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project and gate an encoder feature.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` encoder feature.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)``.
        """
        return self.expansion_layer(x) * self.wt_layer(x)


def decode_stage(
    coarse: torch.Tensor,
    skip: torch.Tensor,
    projection: GatedProjection,
    norm: nn.Module,
    pyramid: EfficientPyramidPool,
) -> torch.Tensor:
    """One bottom-up step: upsample ``coarse`` to the skip's size, add the projected skip, normalise, refine.

    Parameters
    ----------
    coarse : torch.Tensor
        ``(n, c, h, w)`` output of the previous (coarser) stage.
    skip : torch.Tensor
        ``(n, c_enc, H, W)`` encoder feature of the next finer level.
    projection : GatedProjection
        Brings ``skip`` to ``c`` channels.
    norm : torch.nn.Module
        Batch norm + PReLU over ``c`` channels (:func:`normalisation`).
    pyramid : EfficientPyramidPool
        The stage's refinement.

    Returns
    -------
    torch.Tensor
        ``(n, pyramid's out_channels, H, W)``.
    """
    return pyramid(norm(projection(skip) + upsample_to(coarse, skip)))


def normalisation(channels: int) -> nn.Sequential:
    """Batch norm and PReLU applied to the decoder's sum (keys ``0.*`` and ``1.weight``).

    Parameters
    ----------
    channels : int
        Channels of the sum.

    Returns
    -------
    torch.nn.Sequential
        ``BatchNorm2d`` then ``PReLU`` (one slope per channel).
    """
    return nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))


class BottomUpSegmentation(nn.Module):
    """An encoder of four levels and the bottom-up pyramid decoder both EdgeNets networks share.

    ``names`` gives the decoder's attribute names, which differ between the
    two released checkpoint families: ``pools`` (4, coarse to fine),
    ``projections`` (3) and ``norms`` (3). Returns ``(n, num_classes, H, W)``
    logits at the input size (bilinear, ``align_corners=True`` as released).

    Parameters
    ----------
    encoder : torch.nn.Module
        Returns four feature levels (strides 2 to 16 of the input, fine to
        coarse) and has ``channels``, their channel counts.
    num_classes : int
        Classes of the logits.
    names : dict of {str: tuple of str}
        Attribute names under ``"pools"``, ``"projections"`` and ``"norms"``
        (how the released state dicts spell them).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, names: dict[str, tuple[str, ...]]):
        super().__init__()
        self.base_net = encoder
        enc = encoder.channels
        dec, proj = decoder_widths(num_classes)
        self._names = names
        inputs = (enc[3], dec[0], dec[1], dec[2])
        for i, name in enumerate(names["pools"]):
            setattr(self, name, EfficientPyramidPool(inputs[i], proj, dec[i], final_norm=i < 3))
        for i, name in enumerate(names["projections"]):
            setattr(self, name, GatedProjection(enc[2 - i], dec[i]))
        for i, name in enumerate(names["norms"]):
            setattr(self, name, normalisation(dec[i]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits at the input size.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, H, W)`` float32 images, ImageNet-normalised.

        Returns
        -------
        torch.Tensor
            ``(n, num_classes, H, W)`` logits.
        """
        levels = self.base_net(x)
        pools, projections, norms = (self._names[k] for k in ("pools", "projections", "norms"))
        out = getattr(self, pools[0])(levels[3])
        for i in range(3):
            out = decode_stage(
                out, levels[2 - i], getattr(self, projections[i]), getattr(self, norms[i]), getattr(self, pools[i + 1])
            )
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
