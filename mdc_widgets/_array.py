"""Array adapters shared by the numeric packages: numpy or torch in, torch inside, the caller's kind out.

``discrepancy`` and ``metrics`` (and anything else that accepts either kind)
import these from here, so neither depends on the other for plumbing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "like_input", "saliency_to_float"]


def as_tensor(x: Any) -> tuple[torch.Tensor, bool]:
    """A tensor view of ``x`` and whether ``x`` was numpy (wrapped without a copy where possible).

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or array-like
        The input of a batched function.

    Returns
    -------
    tuple of (torch.Tensor, bool)
        The tensor and ``was_numpy``, to hand back to :func:`like_input`.

    Examples
    --------
    >>> t, was_numpy = as_tensor(np.zeros(3, np.uint8))
    >>> t.dtype, was_numpy
    (torch.uint8, True)
    """
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.ascontiguousarray(x)), True


def like_input(x: torch.Tensor, was_numpy: bool) -> Any:
    """``x`` as the kind the caller passed in: a numpy array (on the CPU) when it gave numpy, else the tensor.

    Parameters
    ----------
    x : torch.Tensor
        A result computed on tensors (any device, dtype and shape).
    was_numpy : bool
        The flag :func:`as_tensor` returned for the caller's input.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``x`` copied to the CPU as numpy when ``was_numpy``, else ``x`` itself.

    Examples
    --------
    >>> type(like_input(torch.zeros(2), True)).__name__, type(like_input(torch.zeros(2), False)).__name__
    ('ndarray', 'Tensor')
    """
    return x.cpu().numpy() if was_numpy else x


# the short name both numeric packages used before the adapter had one home
_out = like_input


def saliency_to_float(s: torch.Tensor) -> torch.Tensor:
    """uint8 saliency (0..255) or float saliency (0..1) as float32 in [0, 1].

    Parameters
    ----------
    s : torch.Tensor
        Saliency of any shape: uint8 0..255 (divided by 255) or a float
        tensor already in [0, 1] (cast to float32, not rescaled).

    Returns
    -------
    torch.Tensor
        float32, same shape as ``s``.

    Examples
    --------
    >>> saliency_to_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist()
    [0.0, 1.0]
    """
    return s.float() / 255.0 if s.dtype == torch.uint8 else s.float()
