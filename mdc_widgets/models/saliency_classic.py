"""Classic saliency methods that need no weights, as real SOD competitors (batched torch, GPU-ready)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdc_widgets._kernels import gaussian_blur
from mdc_widgets.models.spec import ModelSpec

__all__ = ["FrequencyTunedSaliency", "SpectralResidualSaliency", "gaussian_blur", "rgb_to_lab"]


def _normalise(s: torch.Tensor) -> torch.Tensor:
    lo = s.amin(dim=(-2, -1), keepdim=True)
    hi = s.amax(dim=(-2, -1), keepdim=True)
    return (s - lo) / (hi - lo).clamp_min(1e-12)


class SpectralResidualSaliency(nn.Module):
    """Hou & Zhang (CVPR 2007): saliency is what the log spectrum has beyond its local average.

    The image is analysed at ``scale`` pixels (64 in the paper), and the map
    is smoothed and brought back to the input size.

    Parameters
    ----------
    scale : int, optional
        Side in pixels of the square grey image whose spectrum is analysed.
    sigma : float, optional
        Gaussian smoothing of the map in pixels at ``scale``.
    """

    def __init__(self, scale: int = 64, sigma: float = 2.5):
        super().__init__()
        self.scale, self.sigma = scale, sigma

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Spectral-residual saliency of a batch.

        Parameters
        ----------
        images : torch.Tensor
            ``(n, 3, H, W)`` float RGB in [0, 1].

        Returns
        -------
        torch.Tensor
            ``(n, 1, H, W)`` float saliency, each map min-max stretched to [0, 1].
        """
        grey = images.mean(dim=1, keepdim=True)
        small = F.interpolate(grey, size=(self.scale, self.scale), mode="area")
        spectrum = torch.fft.fft2(small)
        log_amplitude = torch.log(spectrum.abs().clamp_min(1e-8))
        phase = torch.angle(spectrum)
        residual = log_amplitude - F.avg_pool2d(F.pad(log_amplitude, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        saliency = torch.fft.ifft2(torch.exp(residual + 1j * phase)).abs() ** 2
        saliency = _normalise(gaussian_blur(saliency, self.sigma))
        return F.interpolate(saliency, size=images.shape[-2:], mode="bilinear", align_corners=False)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ``(n, 3, H, W)`` to CIE L*a*b* (D65).

    Parameters
    ----------
    rgb : torch.Tensor
        ``(n, 3, H, W)`` float sRGB in [0, 1] (gamma-encoded).

    Returns
    -------
    torch.Tensor
        ``(n, 3, H, W)``: L* in [0, 100], a* and b* roughly in [-128, 127].

    Examples
    --------
    >>> [round(v) for v in rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten().tolist()]
    [100, 0, 0]
    """
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = rgb.new_tensor(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear)
    xyz = xyz / rgb.new_tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


class FrequencyTunedSaliency(nn.Module):
    """Achanta et al. (CVPR 2009): distance of each blurred Lab pixel from the image's mean Lab colour.

    Parameters
    ----------
    sigma : float, optional
        Gaussian blur of the Lab image in pixels, which removes fine texture and noise.

    References
    ----------
    .. [1] R. Achanta, S. Hemami, F. Estrada and S. Süsstrunk, "Frequency-tuned salient region
           detection," CVPR 2009, pp. 1597-1604. https://doi.org/10.1109/CVPR.2009.5206596
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Frequency-tuned saliency of a batch.

        Parameters
        ----------
        images : torch.Tensor
            ``(n, 3, H, W)`` float RGB in [0, 1] (clipped).

        Returns
        -------
        torch.Tensor
            ``(n, 1, H, W)`` float saliency, each map min-max stretched to [0, 1].
        """
        lab = rgb_to_lab(images.clamp(0, 1))
        mean = lab.mean(dim=(-2, -1), keepdim=True)
        blurred = gaussian_blur(lab, self.sigma)
        return _normalise(((blurred - mean) ** 2).sum(1, keepdim=True).sqrt())


def model_specs() -> list[ModelSpec]:
    """The registry records of the classic saliency methods (read by ``mdc_widgets.models._builtin``)."""
    return [
        ModelSpec(
            name,
            cls,
            "sod",
            ("background", "salient"),
            description=text,
            output="probabilities",
            tags=("classic",),
        )
        for name, cls, text in (
            (
                "spectral_residual_sod",
                SpectralResidualSaliency,
                "spectral residual saliency (Hou & Zhang 2007), no weights",
            ),
            (
                "frequency_tuned_sod",
                FrequencyTunedSaliency,
                "frequency-tuned saliency (Achanta et al. 2009), no weights",
            ),
        )
    ]
