"""DiCENet for semantic segmentation (Mehta et al., "DiCENet: Dimension-wise Convolutions for Efficient
Networks", IEEE TPAMI 2020), laid out so the EdgeNets PASCAL VOC checkpoints load strictly.

The DiCE unit convolves a feature volume depth-wise along each of its three
dimensions: over channels (an ordinary depth-wise conv), and, after swapping
axes, over rows and over columns, where the *rows* (or columns) play the role
of channels. The row- and column-wise convs therefore have one filter per row
or column of the map the network was designed for, which makes their weight
shapes depend on that size: the released networks were built for 224x224
inputs, whatever size they were trained at. At any other size the feature map
is resampled to the designed number of rows (columns) for that conv and back
afterwards, as the original does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mdc_widgets.errors import MdcError
from mdc_widgets.models.edgenets.blocks import (
    ChannelShuffle,
    PackedBNPReLU,
    PackedConvBNPReLU,
    init_like_edgenets,
)
from mdc_widgets.models.edgenets.decoder import (
    BottomUpSegmentation,
)

__all__ = [
    "DESIGN_SIZE",
    "DICENET_CHANNELS",
    "DiCENetEncoder",
    "DiCENetSegmentation",
    "DimensionWiseConv",
    "ShuffleDimensionWiseBlock",
    "StridedDimensionWiseBlock",
    "dicenet_seg",
]

# output channels of encoder levels 1-4 for each width multiplier s (level 2 is a max-pool, so it equals level 1)
DICENET_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.2: (16, 16, 32, 64),
    0.5: (24, 24, 48, 96),
    0.75: (24, 24, 86, 172),
    1.0: (24, 24, 116, 232),
    1.25: (24, 24, 144, 288),
    1.5: (24, 24, 176, 352),
    1.75: (24, 24, 210, 420),
    2.0: (24, 24, 244, 488),
    2.4: (24, 24, 278, 556),
}
# the input size the dimension-wise convs were built for (the checkpoints' conv_height/conv_width shapes)
DESIGN_SIZE = 224
_BLOCKS_LEVEL3, _BLOCKS_LEVEL4 = 3, 7


def _resize_axis(x: torch.Tensor, axis: int, length: int) -> torch.Tensor:
    """Resample ``x`` along one spatial axis (2 rows, 3 columns) to ``length``: bilinear (corner-aligned)
    when growing, adaptive average pooling when shrinking, as the original does."""
    current = x.shape[axis]
    if current == length:
        return x
    size = [x.shape[2], x.shape[3]]
    size[axis - 2] = length
    if current < length:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
    return F.adaptive_avg_pool2d(x, tuple(size))


class DimensionWiseConv(nn.Module):
    """DiCE unit: depth-wise 3x3 convs along channels, rows and columns, fused and projected.

    The three ``(C, H, W)`` outputs are concatenated, normalised and interleaved
    (so each group holds one channel's three views), combined per channel by a
    grouped 1x1 conv, projected to ``out_channels`` by a grouped 3x3 conv and
    scaled by a channel gate computed from the combined volume.

    Parameters
    ----------
    in_channels : int
        Input channels (at least 4: the gate reduces them by 4).
    out_channels : int
        Output channels.
    height : int
        Rows of the feature map at the design size: the row-wise conv has
        this many channels, and other heights are resampled to it and back.
    width : int
        Columns at the design size, likewise for the column-wise conv.
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width
        self.conv_channel = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.conv_width = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.conv_height = nn.Conv2d(height, height, 3, padding=1, groups=height, bias=False)
        self.br_act = PackedBNPReLU(3 * in_channels)
        self.weight_avg_layer = PackedConvBNPReLU(3 * in_channels, in_channels, 1, groups=in_channels)
        self.proj_layer = PackedConvBNPReLU(in_channels, out_channels, 3, groups=math.gcd(in_channels, out_channels))
        self.linear_comb_layer = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, in_channels // 4, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels // 4, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.vol_shuffle = ChannelShuffle(3)

    def _along(self, x: torch.Tensor, axis: int, conv: nn.Conv2d, designed: int) -> torch.Tensor:
        """Convolve with the rows (axis 2) or columns (axis 3) as channels, at the designed length."""
        length = x.shape[axis]
        resized = _resize_axis(x, axis, designed)
        out = conv(resized.transpose(1, axis)).transpose(1, axis)
        return _resize_axis(out, axis, length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve along channels, rows and columns; fuse, project and gate.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` feature (any H, W).

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)``.
        """
        per_channel = self.conv_channel(x)
        per_row = self._along(x, 2, self.conv_height, self.height)
        per_column = self._along(x, 3, self.conv_width, self.width)
        volume = self.vol_shuffle(self.br_act(torch.cat([per_channel, per_row, per_column], dim=1)))
        combined = self.weight_avg_layer(volume)
        return self.proj_layer(combined) * self.linear_comb_layer(combined)


class StridedDimensionWiseBlock(nn.Module):
    """Halve the resolution and double the channels with two branches, concatenated and shuffled.

    One branch is a strided depth-wise + point-wise conv, the other an
    average pool and a DiCE unit.

    Parameters
    ----------
    channels : int
        Input channels; the output has ``2 * channels``.
    height : int
        Rows of the output map at the design size (for the DiCE unit).
    width : int
        Columns of the output map at the design size.
    """

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.left_layer = nn.Sequential(
            PackedConvBNPReLU(channels, channels, 3, stride=2, groups=channels),
            PackedConvBNPReLU(channels, channels, 1),
        )
        self.right_layer = nn.Sequential(
            nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
            DimensionWiseConv(channels, channels, height, width),
            PackedConvBNPReLU(channels, channels, 1),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Down-sample by two.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, channels, H, W)`` feature.

        Returns
        -------
        torch.Tensor
            ``(n, 2 * channels, ceil(H / 2), ceil(W / 2))``.
        """
        return self.shuffle(torch.cat([self.left_layer(x), self.right_layer(x)], dim=1))


class ShuffleDimensionWiseBlock(nn.Module):
    """ShuffleNetv2-style unit: half the channels pass through, the other half are transformed.

    The transformed half goes through a 1x1 conv and a DiCE unit; the halves
    are concatenated and shuffled.

    Parameters
    ----------
    in_channels : int
        Input channels; ``round(in_channels / 2)`` of them pass unchanged.
    out_channels : int
        Output channels (the transformed part has ``out_channels`` minus the kept ones).
    height : int
        Rows of the map at the design size (for the DiCE unit).
    width : int
        Columns of the map at the design size.
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int):
        super().__init__()
        self.kept = round(0.5 * in_channels)
        transformed_out = out_channels - self.kept
        self.layer_right = nn.Sequential(
            PackedConvBNPReLU(in_channels - self.kept, transformed_out, 1),
            DimensionWiseConv(transformed_out, transformed_out, height, width),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keep half the channels, transform the rest, shuffle.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` feature.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)``.
        """
        kept, transformed = x[:, : self.kept], x[:, self.kept :]
        return self.shuffle(torch.cat([kept, self.layer_right(transformed)], dim=1))


class DiCENetEncoder(nn.Module):
    """Levels 1-4 of DiCENet (strides 2, 4, 8, 16); attribute names follow the checkpoints' ``base_net``.

    Parameters
    ----------
    width : float
        Width multiplier, a key of ``DICENET_CHANNELS``; ``channels`` holds
        the four levels' channel counts.
    design_size : int, optional
        Input side the DiCE units are built for (the released checkpoints:
        ``DESIGN_SIZE``); it fixes their row/column conv sizes.
    """

    def __init__(self, width: float, design_size: int = DESIGN_SIZE):
        super().__init__()
        channels = DICENET_CHANNELS[width]
        self.channels = channels
        side3, side4 = design_size // 8, design_size // 16  # map sides of levels 3 and 4 at the design size
        self.level1 = PackedConvBNPReLU(3, channels[0], 3, stride=2)
        self.level2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.level3 = nn.Sequential(
            StridedDimensionWiseBlock(channels[1], side3, side3),
            *(
                ShuffleDimensionWiseBlock(2 * channels[1] if i == 0 else channels[2], channels[2], side3, side3)
                for i in range(_BLOCKS_LEVEL3)
            ),
        )
        self.level4 = nn.Sequential(
            StridedDimensionWiseBlock(channels[2], side4, side4),
            *(
                ShuffleDimensionWiseBlock(2 * channels[2] if i == 0 else channels[3], channels[3], side4, side4)
                for i in range(_BLOCKS_LEVEL4)
            ),
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
        level2 = self.level2(level1)
        level3 = self.level3(level2)
        return [level1, level2, level3, self.level4(level3)]


class DiCENetSegmentation(BottomUpSegmentation):
    """DiCENet encoder and bottom-up pyramid decoder; returns ``(n, num_classes, H, W)`` logits.

    The decoder attribute names carry the map sides at a 256x256 input (the original's naming).

    Parameters
    ----------
    width : float
        Width multiplier (a key of ``DICENET_CHANNELS``).
    num_classes : int, optional
        Classes of the logits (21 for PASCAL VOC).
    """

    def __init__(self, width: float, num_classes: int = 21):
        names = {
            "pools": ("eff_pool_16x16", "eff_pool_32x32", "eff_pool_64x64", "eff_pool_128x128"),
            "projections": ("proj_enc_32x32", "proj_enc_64x64", "proj_enc_128x128"),
            "norms": ("bu_br_32x32", "bu_br_64x64", "bu_br_128x128"),
        }
        super().__init__(DiCENetEncoder(width), num_classes, names)
        init_like_edgenets(self)


def dicenet_seg(width: float, num_classes: int = 21) -> nn.Module:
    """DiCENet segmentation network of width multiplier ``width`` (0.2 ... 2.4), random weights.

    Built for the 224x224 design size like the released checkpoints; the forward
    takes ImageNet-normalised ``(n, 3, H, W)`` images of any size (multiples of 32
    as in training) and returns ``(n, num_classes, H, W)`` logits.

    Parameters
    ----------
    width : float
        Width multiplier; one of the keys of ``DICENET_CHANNELS``.
    num_classes : int, optional
        Classes of the logits (21 for PASCAL VOC).

    Returns
    -------
    torch.nn.Module
        A :class:`DiCENetSegmentation` with the original random initialisation.

    Raises
    ------
    MdcError
        When ``width`` is not a released width.
    """
    width = float(width)
    if width not in DICENET_CHANNELS:
        raise MdcError(f"DiCENet has no width s={width}; choose one of {sorted(DICENET_CHANNELS)}.")
    return DiCENetSegmentation(width, num_classes)
