"""Small, genuinely different segmentation and saliency networks for the mini-world.

Builders follow torchvision's style: a function per architecture returning an
``nn.Module`` whose forward maps ``(n, 3, H, W)`` normalised images to
``(n, out_channels, H, W)`` logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FCN",
    "DeepLabV3Plus",
    "TokenSaliencyTransformer",
    "UNet",
    "mw_deeplabv3plus",
    "mw_fcn",
    "mw_unet",
    "mw_vst",
]


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections at every scale (Ronneberger et al. 2015), three levels.

    Parameters
    ----------
    out_channels : int
        Output channels: the number of classes for SS, 1 for SOD (a saliency logit).
    width : int, optional
        Channels of the first level; they double at each of the two lower
        levels (1/2 and 1/4 resolution).
    """

    def __init__(self, out_channels: int, width: int = 16):
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(_conv_bn_relu(3, w), _conv_bn_relu(w, w))
        self.enc2 = nn.Sequential(_conv_bn_relu(w, 2 * w), _conv_bn_relu(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_conv_bn_relu(2 * w, 4 * w), _conv_bn_relu(4 * w, 4 * w))
        self.dec2 = nn.Sequential(_conv_bn_relu(6 * w, 2 * w), _conv_bn_relu(2 * w, 2 * w))
        self.dec1 = nn.Sequential(_conv_bn_relu(3 * w, w), _conv_bn_relu(w, w))
        self.head = nn.Conv2d(w, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch; the skips are resized, so H and W need not be multiples of 4.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, H, W)`` float32 normalised images.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)`` logits at the input size.
        """
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return self.head(d1)


class FCN(nn.Module):
    """Plain strided encoder, 1x1 classifier, bilinear upsampling; no skips (Long et al. 2015, FCN-32s-like).

    Parameters
    ----------
    out_channels : int
        Output channels: the number of classes for SS, 1 for SOD (a saliency logit).
    width : int, optional
        Channels of the first stage; the encoder widens to ``4 * width`` at
        1/8 resolution.
    """

    def __init__(self, out_channels: int, width: int = 24):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn_relu(3, w, stride=2),
            _conv_bn_relu(w, w),
            _conv_bn_relu(w, 2 * w, stride=2),
            _conv_bn_relu(2 * w, 2 * w),
            _conv_bn_relu(2 * w, 4 * w, stride=2),
            _conv_bn_relu(4 * w, 4 * w),
        )
        self.classifier = nn.Conv2d(4 * w, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits computed at 1/8 resolution, upsampled bilinearly to the input size.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, H, W)`` float32 normalised images.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)`` logits at the input size.
        """
        logits = self.classifier(self.features(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class _ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))]
            + [_conv_bn_relu(cin, cout, dilation=r) for r in rates]
        )
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(
            nn.Conv2d(cout * (len(rates) + 2), cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class DeepLabV3Plus(nn.Module):
    """Dilated encoder, atrous spatial pyramid pooling and a low-level skip decoder (Chen et al. 2018).

    Parameters
    ----------
    out_channels : int
        Output channels: the number of classes for SS, 1 for SOD (a saliency logit).
    width : int, optional
        Base channels: the low-level features have ``2 * width``, the deep
        features and the ASPP ``4 * width``.
    rates : tuple of int, optional
        Dilation rates of the ASPP's 3x3 branches (besides a 1x1 branch and
        image pooling), at 1/8 resolution.
    """

    def __init__(self, out_channels: int, width: int = 16, rates: tuple[int, ...] = (2, 4, 6)):
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn_relu(3, w, stride=2), _conv_bn_relu(w, 2 * w, stride=2))  # 1/4
        self.deep = nn.Sequential(
            _conv_bn_relu(2 * w, 4 * w, stride=2), _conv_bn_relu(4 * w, 4 * w, dilation=2)
        )  # 1/8, dilated instead of further striding
        self.aspp = _ASPP(4 * w, 4 * w, rates)
        self.low_project = nn.Sequential(nn.Conv2d(2 * w, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(_conv_bn_relu(5 * w, 2 * w), _conv_bn_relu(2 * w, 2 * w))
        self.head = nn.Conv2d(2 * w, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits decoded at 1/4 resolution, upsampled bilinearly to the input size.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, H, W)`` float32 normalised images.

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)`` logits at the input size.
        """
        low = self.stem(x)
        deep = self.aspp(self.deep(low))
        deep = F.interpolate(deep, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.head(self.decoder(torch.cat([deep, self.low_project(low)], 1)))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


class TokenSaliencyTransformer(nn.Module):
    """A tiny token transformer for saliency (VST-style): patch tokens, self-attention, conv decoder.

    Parameters
    ----------
    out_channels : int, optional
        Output channels: the number of classes for SS, 1 for SOD (a saliency logit).
    dim : int, optional
        Token dimension (must be divisible by ``heads``).
    depth : int, optional
        Number of transformer encoder layers.
    heads : int, optional
        Attention heads per layer.
    patch : int, optional
        Side of the square patches in pixels (one token per patch).
    """

    def __init__(self, out_channels: int = 1, dim: int = 48, depth: int = 2, heads: int = 4, patch: int = 4):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, dim, 16, 16))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.decoder = nn.Sequential(_conv_bn_relu(dim + 3, dim // 2), nn.Conv2d(dim // 2, out_channels, 1))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Saliency logits: patch tokens attend to each other, then a conv decoder sees them with the image.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, H, W)`` float32 normalised images; H and W should be multiples of ``patch`` (the position grid, 16 x 16 tokens, is resized to other grids).

        Returns
        -------
        torch.Tensor
            ``(n, out_channels, H, W)`` logits at the input size.
        """
        tokens = self.embed(x)
        n, c, h, w = tokens.shape
        pos = (
            self.pos
            if self.pos.shape[-2:] == (h, w)
            else F.interpolate(self.pos, size=(h, w), mode="bilinear", align_corners=False)
        )
        seq = (tokens + pos).flatten(2).transpose(1, 2)
        seq = self.encoder(seq)
        grid = seq.transpose(1, 2).reshape(n, c, h, w)
        up = F.interpolate(grid, size=x.shape[-2:], mode="bilinear", align_corners=False)
        # the raw image re-enters at full resolution so edges are not lost to the patch grid
        return self.decoder(torch.cat([up, x], 1))


def mw_unet(out_channels: int, width: int = 16) -> UNet:
    """U-Net builder for the mini-world.

    Parameters
    ----------
    out_channels : int
        Number of classes (SS) or 1 (SOD).
    width : int, optional
        Channels of the first level (see :class:`UNet`).

    Returns
    -------
    UNet
        An untrained network.
    """
    return UNet(out_channels, width)


def mw_fcn(out_channels: int, width: int = 24) -> FCN:
    """FCN builder for the mini-world.

    Parameters
    ----------
    out_channels : int
        Number of classes (SS) or 1 (SOD).
    width : int, optional
        Channels of the first stage (see :class:`FCN`).

    Returns
    -------
    FCN
        An untrained network.
    """
    return FCN(out_channels, width)


def mw_deeplabv3plus(out_channels: int, width: int = 16) -> DeepLabV3Plus:
    """DeepLabv3+ builder for the mini-world.

    Parameters
    ----------
    out_channels : int
        Number of classes (SS) or 1 (SOD).
    width : int, optional
        Base channels (see :class:`DeepLabV3Plus`); ASPP rates (2, 4, 6).

    Returns
    -------
    DeepLabV3Plus
        An untrained network.
    """
    return DeepLabV3Plus(out_channels, width)


def mw_vst(out_channels: int = 1, width: int = 48) -> TokenSaliencyTransformer:
    """VST-style token transformer builder for the mini-world (``width`` is the token dimension).

    Parameters
    ----------
    out_channels : int, optional
        1 for SOD (a saliency logit), or a number of classes.
    width : int, optional
        Token dimension ``dim`` (divisible by the 4 heads); depth 2, 4 x 4 patches.

    Returns
    -------
    TokenSaliencyTransformer
        An untrained network.
    """
    return TokenSaliencyTransformer(out_channels, dim=width)
