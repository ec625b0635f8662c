"""Small building blocks shared by ESPNetv2 and DiCENet: conv + batch-norm + PReLU units and channel shuffle.

The released checkpoints were saved from two helper libraries of the original
code that name the same conv/BN/PReLU unit differently: one keeps the three
layers as attributes (``conv``, ``bn``, ``act``), the other packs them in an
``nn.Sequential`` (``cbr.0``, ``cbr.1``, ``cbr.2``). Both spellings are kept
here, as separate classes, so that ``load_state_dict(strict=True)`` finds
every key where the checkpoint put it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "BNPReLU",
    "ChannelShuffle",
    "ConvBN",
    "ConvBNPReLU",
    "PackedBNPReLU",
    "PackedConvBNPReLU",
    "init_like_edgenets",
]


def _same_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size - 1) // 2 * dilation


class ConvBNPReLU(nn.Module):
    """Convolution, batch norm, PReLU; keys ``conv``/``bn``/``act`` (the ESPNetv2 encoder's spelling).

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Square kernel side; "same" padding ``(k - 1) // 2``.
    stride : int, optional
        Convolution stride (2 halves H and W, rounding up).
    groups : int, optional
        Convolution groups (``in_channels`` for a depth-wise convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=_same_padding(kernel_size),
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve, normalise, activate.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` float.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H / stride, W / stride)`` (rounded up).
        """
        return self.act(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """Convolution and batch norm without activation; keys ``conv``/``bn``.

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Square kernel side; "same" padding ``(k - 1) // 2``.
    stride : int, optional
        Convolution stride (2 halves H and W, rounding up).
    groups : int, optional
        Convolution groups (``in_channels`` for a depth-wise convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=_same_padding(kernel_size),
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve and normalise.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` float.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H / stride, W / stride)`` (rounded up).
        """
        return self.bn(self.conv(x))


class BNPReLU(nn.Module):
    """Batch norm and PReLU; keys ``bn``/``act``.

    Parameters
    ----------
    channels : int
        Channels normalised (one PReLU slope per channel).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise and activate.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, channels, H, W)`` float.

        Returns
        -------
        torch.Tensor
            Same shape.
        """
        return self.act(self.bn(x))


class PackedConvBNPReLU(nn.Module):
    """Convolution, batch norm, PReLU packed as ``cbr.0``/``cbr.1``/``cbr.2`` (DiCENet and the decoders).

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Square kernel side; "same" padding ``(k - 1) // 2``.
    stride : int, optional
        Convolution stride (2 halves H and W, rounding up).
    groups : int, optional
        Convolution groups (``in_channels`` for a depth-wise convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=_same_padding(kernel_size),
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve, normalise, activate.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_channels, H, W)`` float.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H / stride, W / stride)`` (rounded up).
        """
        return self.cbr(x)


class PackedBNPReLU(nn.Module):
    """Batch norm and PReLU packed as ``br.0``/``br.1``.

    Parameters
    ----------
    channels : int
        Channels normalised (one PReLU slope per channel).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise and activate.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, channels, H, W)`` float.

        Returns
        -------
        torch.Tensor
            Same shape.
        """
        return self.br(x)


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` equal channel groups (ShuffleNet), so later grouped convs mix information.

    Parameters
    ----------
    groups : int
        Number of groups; the channel count must be divisible by it.
    """

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Interleave the channel groups.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, C, H, W)`` float.

        Returns
        -------
        torch.Tensor
            Same shape, channels reordered.
        """
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def init_like_edgenets(module: nn.Module) -> None:
    """The original random initialisation: He-normal (fan-out) convs, zero biases, unit batch norms.

    Parameters
    ----------
    module : torch.nn.Module
        Initialised in place, every submodule included.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
