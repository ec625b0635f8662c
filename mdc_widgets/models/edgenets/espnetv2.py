"""ESPNetv2 for semantic segmentation (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General
Purpose Convolutional Neural Network", CVPR 2019), laid out so the EdgeNets PASCAL VOC checkpoints load strictly.

The encoder is the ImageNet ESPNetv2 without its last level and classifier: a
strided 3x3 conv, then three down-sampling units and two stacks of EESP blocks
(reduce, split into dilated depth-wise branches, fuse hierarchically, merge).
The decoder (see :mod:`.decoder`) climbs back to half resolution; the logits
are finally upsampled to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdc_widgets.errors import MdcError
from mdc_widgets.models.edgenets.blocks import BNPReLU, ConvBN, ConvBNPReLU, init_like_edgenets
from mdc_widgets.models.edgenets.decoder import (
    BottomUpSegmentation,
)

__all__ = [
    "ESPNETV2_CHANNELS",
    "EESPBlock",
    "EESPDownsampler",
    "ESPNetv2Encoder",
    "ESPNetv2Segmentation",
    "espnetv2_seg",
]

# output channels of encoder levels 1-4 for each width multiplier s
ESPNETV2_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
_BRANCHES = 4
_BLOCKS_LEVEL3, _BLOCKS_LEVEL4 = 3, 7
# the largest effective kernel size an EESP branch may have, per encoder stage (smaller on coarser maps)
_RECEPTIVE_LIMIT_LEVEL2, _RECEPTIVE_LIMIT_LEVEL3, _RECEPTIVE_LIMIT_LEVEL4 = 13, 11, 9
_RECEPTIVE_LIMIT_LEVEL3_BLOCKS, _RECEPTIVE_LIMIT_LEVEL4_BLOCKS = 9, 7
# channels of the small conv that re-injects the (pooled) RGB image at each down-sampling
_REINFORCEMENT_CHANNELS = 3


class DepthwiseDilatedConv(nn.Module):
    """A depth-wise 3x3 convolution with dilation (key ``conv``).

    Parameters
    ----------
    channels : int
        Input and output channels (one filter each).
    dilation : int
        Dilation, which is also the padding (size kept at stride 1).
    stride : int
        1, or 2 to halve H and W.
    """

    def __init__(self, channels: int, dilation: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(
            channels, channels, 3, stride=stride, padding=dilation, dilation=dilation, groups=channels, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the dilated depth-wise convolution.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, channels, H, W)`` feature.

        Returns
        -------
        torch.Tensor
            ``(n, channels, H / stride, W / stride)`` (rounded up).
        """
        return self.conv(x)


def _branch_dilations(branches: int, receptive_limit: int) -> list[int]:
    """Dilations of the parallel 3x3 branches: effective sizes 3, 5, 7, ... capped by the limit, ascending.

    A branch whose size would pass the limit falls back to a plain 3x3; sorting
    puts those first so hierarchical fusion adds them before the dilated ones.
    """
    sizes = sorted(3 + 2 * i if 3 + 2 * i <= receptive_limit else 3 for i in range(branches))
    return [(size - 1) // 2 for size in sizes]


class EESPBlock(nn.Module):
    """Extremely Efficient Spatial Pyramid block: reduce, split, transform, merge.

    A grouped 1x1 conv reduces to ``out/branches`` channels; each branch applies a
    depth-wise 3x3 conv of growing dilation; each branch's output adds the previous
    one's (hierarchical feature fusion, against gridding); the concatenation is
    normalised and expanded by a grouped 1x1 conv. With stride 1 and matching
    shapes a residual connection is added before the final PReLU. With stride 2
    the block is part of a down-sampler, which applies its own activation, so the
    pre-activation expansion is returned.

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels, divisible by ``branches``.
    stride : int, optional
        1, or 2 inside a down-sampler.
    branches : int, optional
        Parallel dilated branches (4 in the released networks).
    receptive_limit : int, optional
        Largest effective kernel size of a branch; larger ones fall back to a plain 3x3.

    Raises
    ------
    MdcError
        When ``out_channels`` is not divisible by ``branches``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, branches: int = _BRANCHES, receptive_limit: int = 7
    ):
        super().__init__()
        width = out_channels // branches
        if width * branches != out_channels:
            raise MdcError(f"EESP needs out_channels divisible by {branches}; got {out_channels}.")
        self.stride = stride
        self.proj_1x1 = ConvBNPReLU(in_channels, width, 1, groups=branches)
        self.spp_dw = nn.ModuleList(
            DepthwiseDilatedConv(width, d, stride) for d in _branch_dilations(branches, receptive_limit)
        )
        self.conv_1x1_exp = ConvBN(out_channels, out_channels, 1, groups=branches)
        self.br_after_cat = BNPReLU(out_channels)
        self.module_act = nn.PReLU(out_channels)  # unused when down-sampling, but kept: it is in the checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reduce, filter in parallel branches, fuse hierarchically, expand.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` feature.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H / stride, W / stride)``: activated (with the
            residual when shapes match) at stride 1, pre-activation at stride 2.
        """
        reduced = self.proj_1x1(x)
        fused = [self.spp_dw[0](reduced)]
        for branch in self.spp_dw[1:]:
            fused.append(branch(reduced) + fused[-1])
        expanded = self.conv_1x1_exp(self.br_after_cat(torch.cat(fused, dim=1)))
        if self.stride == 2:
            return expanded
        if expanded.shape == x.shape:
            expanded = expanded + x
        return self.module_act(expanded)


class EESPDownsampler(nn.Module):
    """Halve the resolution: average pooling and a strided EESP block side by side (concatenated).

    A shortcut from the input image, pooled to the same size, is added before
    the final PReLU.

    Parameters
    ----------
    in_channels : int
        Input channels (the pooled branch keeps them).
    out_channels : int
        Output channels; the EESP branch makes ``out_channels - in_channels``.
    receptive_limit : int
        Largest effective kernel size of the EESP branches.
    image_channels : int, optional
        Channels of the image shortcut's input (RGB: 3).
    branches : int, optional
        Parallel branches of the EESP block.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        receptive_limit: int,
        image_channels: int = 3,
        branches: int = _BRANCHES,
    ):
        super().__init__()
        self.eesp = EESPBlock(
            in_channels, out_channels - in_channels, stride=2, branches=branches, receptive_limit=receptive_limit
        )
        self.avg = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.inp_reinf = nn.Sequential(
            ConvBNPReLU(image_channels, _REINFORCEMENT_CHANNELS, 3),
            ConvBN(_REINFORCEMENT_CHANNELS, out_channels, 1),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Down-sample ``x`` by two, reinforced by the image.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` feature.
        image : torch.Tensor
            ``(n, image_channels, H0, W0)`` network input, pooled here to the output size.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, ceil(H / 2), ceil(W / 2))``.
        """
        pooled = self.avg(x)
        out = torch.cat([pooled, self.eesp(x)], dim=1)
        # the image is brought to this level's size by the same 3x3/stride-2 average pooling, repeated
        while image.shape[-2] > pooled.shape[-2] or image.shape[-1] > pooled.shape[-1]:
            image = F.avg_pool2d(image, kernel_size=3, stride=2, padding=1)
        return self.act(out + self.inp_reinf(image))


class ESPNetv2Encoder(nn.Module):
    """Levels 1-4 of ESPNetv2 (strides 2, 4, 8, 16); attribute names follow the checkpoints' ``base_net``.

    Parameters
    ----------
    width : float
        Width multiplier, a key of ``ESPNETV2_CHANNELS``; ``channels`` holds
        the four levels' channel counts.
    """

    def __init__(self, width: float):
        super().__init__()
        channels = ESPNETV2_CHANNELS[width]
        self.channels = channels
        self.level1 = ConvBNPReLU(3, channels[0], 3, stride=2)
        self.level2_0 = EESPDownsampler(channels[0], channels[1], _RECEPTIVE_LIMIT_LEVEL2)
        self.level3_0 = EESPDownsampler(channels[1], channels[2], _RECEPTIVE_LIMIT_LEVEL3)
        self.level3 = nn.ModuleList(
            EESPBlock(channels[2], channels[2], receptive_limit=_RECEPTIVE_LIMIT_LEVEL3_BLOCKS)
            for _ in range(_BLOCKS_LEVEL3)
        )
        self.level4_0 = EESPDownsampler(channels[2], channels[3], _RECEPTIVE_LIMIT_LEVEL4)
        self.level4 = nn.ModuleList(
            EESPBlock(channels[3], channels[3], receptive_limit=_RECEPTIVE_LIMIT_LEVEL4_BLOCKS)
            for _ in range(_BLOCKS_LEVEL4)
        )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The features at strides 2, 4, 8 and 16.

        Parameters
        ----------
        image : torch.Tensor
            ``(n, 3, H, W)`` float32 ImageNet-normalised images.

        Returns
        -------
        list of torch.Tensor
            Four features, ``(n, channels[i], H / 2**(i+1), W / 2**(i+1))`` (rounded up).
        """
        level1 = self.level1(image)
        level2 = self.level2_0(level1, image)
        level3 = self.level3_0(level2, image)
        for block in self.level3:
            level3 = block(level3)
        level4 = self.level4_0(level3, image)
        for block in self.level4:
            level4 = block(level4)
        return [level1, level2, level3, level4]


class ESPNetv2Segmentation(BottomUpSegmentation):
    """ESPNetv2 encoder and bottom-up pyramid decoder; returns ``(n, num_classes, H, W)`` logits.

    Parameters
    ----------
    width : float
        Width multiplier (a key of ``ESPNETV2_CHANNELS``).
    num_classes : int, optional
        Classes of the logits (21 for PASCAL VOC).
    """

    def __init__(self, width: float, num_classes: int = 21):
        names = {
            "pools": ("bu_dec_l1", "bu_dec_l2", "bu_dec_l3", "bu_dec_l4"),
            "projections": ("merge_enc_dec_l2", "merge_enc_dec_l3", "merge_enc_dec_l4"),
            "norms": ("bu_br_l2", "bu_br_l3", "bu_br_l4"),
        }
        super().__init__(ESPNetv2Encoder(width), num_classes, names)
        init_like_edgenets(self)


def espnetv2_seg(width: float, num_classes: int = 21) -> nn.Module:
    """ESPNetv2 segmentation network of width multiplier ``width`` (0.5, 1.0, 1.25, 1.5 or 2.0), random weights.

    The forward takes ImageNet-normalised ``(n, 3, H, W)`` images and returns
    ``(n, num_classes, H, W)`` logits; H and W should be multiples of 32, as in training.

    Parameters
    ----------
    width : float
        Width multiplier; one of the keys of ``ESPNETV2_CHANNELS``.
    num_classes : int, optional
        Classes of the logits (21 for PASCAL VOC).

    Returns
    -------
    torch.nn.Module
        An :class:`ESPNetv2Segmentation` with the original random initialisation.

    Raises
    ------
    MdcError
        When ``width`` is not a released width.
    """
    width = float(width)
    if width not in ESPNETV2_CHANNELS:
        raise MdcError(f"ESPNetv2 has no width s={width}; choose one of {sorted(ESPNETV2_CHANNELS)}.")
    return ESPNetv2Segmentation(width, num_classes)
