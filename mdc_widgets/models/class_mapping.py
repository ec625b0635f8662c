"""Making models with different label sets compete: explicit mappings to a common set or to foreground."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mdc_widgets.errors import MdcError

__all__ = ["FOREGROUND", "ClassMapping", "map_labels", "map_probabilities", "remap_competitor"]

FOREGROUND = ("background", "foreground")


@dataclass(frozen=True)
class ClassMapping:
    """Maps each source class to a target class (by name); unmapped classes go to ``fallback``.

    Build it with :meth:`by_name` or :meth:`to_foreground`.

    Parameters
    ----------
    source : tuple of str
        The model's class names, index 0 background.
    target : tuple of str
        The common class names, index 0 background.
    table : numpy.ndarray
        ``(len(source),)`` int64: the target index of each source index.

    Examples
    --------
    >>> m = ClassMapping.by_name(["background", "cat", "dog", "car"], ["background", "animal", "vehicle"],
    ...                          {"cat": "animal", "dog": "animal", "car": "vehicle"})
    >>> m.table.tolist()
    [0, 1, 1, 2]
    >>> ClassMapping.to_foreground(["background", "cat", "dog"]).table.tolist()
    [0, 1, 1]
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    table: np.ndarray  # source index -> target index

    @classmethod
    def by_name(
        cls,
        source: Sequence[str],
        target: Sequence[str],
        mapping: Mapping[str, str] | None = None,
        fallback: str = "background",
    ) -> ClassMapping:
        """Same-named classes map to each other (case-insensitive); ``mapping`` adds or overrides pairs.

        Parameters
        ----------
        source : sequence of str
            The model's class names.
        target : sequence of str
            The common class names.
        mapping : mapping of {str: str} or None, optional
            ``{source name: target name}`` for classes named differently (case-insensitive).
        fallback : str, optional
            The target class of every source class left unmapped.

        Returns
        -------
        ClassMapping
            The mapping.

        Raises
        ------
        MdcError
            When ``fallback`` or a value of ``mapping`` is not a target class.
        """
        target_index = {t.lower(): i for i, t in enumerate(target)}
        if fallback.lower() not in target_index:
            raise MdcError(f"The fallback class {fallback!r} is not in the target classes {list(target)}.")
        explicit = {k.lower(): v.lower() for k, v in (mapping or {}).items()}
        unknown = [v for v in explicit.values() if v not in target_index]
        if unknown:
            raise MdcError(f"Mapping targets {unknown} are not in the target classes {list(target)}.")
        table = np.array(
            [target_index.get(explicit.get(s.lower(), s.lower()), target_index[fallback.lower()]) for s in source],
            dtype=np.int64,
        )
        return cls(tuple(source), tuple(target), table)

    @classmethod
    def to_foreground(cls, source: Sequence[str], background: str = "background") -> ClassMapping:
        """Every class but ``background`` becomes ``foreground`` (what the cross-task term compares).

        Parameters
        ----------
        source : sequence of str
            The model's class names.
        background : str, optional
            The source class that stays background (exact name).

        Returns
        -------
        ClassMapping
            A mapping onto ``FOREGROUND`` (``("background", "foreground")``).
        """
        return cls(tuple(source), FOREGROUND, np.array([0 if s == background else 1 for s in source], np.int64))

    def matrix(self) -> np.ndarray:
        """``(C_source, C_target)`` 0/1 matrix: probabilities of merged classes add up."""
        out = np.zeros((len(self.source), len(self.target)), np.float32)
        out[np.arange(len(self.source)), self.table] = 1.0
        return out


def map_labels(labels: np.ndarray | torch.Tensor, mapping: ClassMapping) -> np.ndarray | torch.Tensor:
    """Relabel a label map through the mapping's lookup table (vectorised).

    Parameters
    ----------
    labels : numpy.ndarray or torch.Tensor
        Source class indices, any shape (each below ``len(mapping.source)``).
    mapping : ClassMapping
        The mapping to apply.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Target class indices (int64), same shape and kind (and device) as ``labels``.
    """
    if isinstance(labels, torch.Tensor):
        return torch.as_tensor(mapping.table, device=labels.device)[labels.long()]
    return mapping.table[np.asarray(labels, np.int64)]


def map_probabilities(probs: torch.Tensor, mapping: ClassMapping) -> torch.Tensor:
    """Sum ``(n, C_source, H, W)`` probabilities into ``(n, C_target, H, W)``.

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, C_source, H, W)`` class probabilities.
    mapping : ClassMapping
        The mapping; merged classes' probabilities add up.

    Returns
    -------
    torch.Tensor
        ``(n, C_target, H, W)``, same dtype and device; still sums to 1 per pixel.
    """
    matrix = torch.as_tensor(mapping.matrix(), device=probs.device, dtype=probs.dtype)
    return torch.einsum("nchw,ct->nthw", probs, matrix)


def remap_competitor(competitor, mapping: ClassMapping, name: str | None = None):
    """A competitor that predicts in the mapping's target classes (e.g. VOC and COCO models on one set).

    Parameters
    ----------
    competitor : Competitor
        An SS competitor whose ``classes`` equal ``mapping.source``.
    mapping : ClassMapping
        The mapping to the common classes.
    name : str or None, optional
        The new competitor's name; default ``"<name>@<C_target>cls"``.

    Returns
    -------
    Competitor
        An SS competitor predicting ``(n, C_target, H, W)`` probabilities
        (no CAM layer).

    Raises
    ------
    MdcError
        When the competitor's classes are not the mapping's source classes.
    """
    from mdc_widgets.models.competitor import Competitor

    if tuple(competitor.classes) != mapping.source:
        raise MdcError(f"The mapping is from {list(mapping.source)[:4]}..., not from {competitor.name!r}'s classes.")

    def module(images: torch.Tensor) -> torch.Tensor:
        return map_probabilities(competitor.predict(images), mapping)

    mapped = Competitor(
        name or f"{competitor.name}@{len(mapping.target)}cls",
        "ss",
        mapping.target,
        module,
        output="probabilities",
        description=f"{competitor.name} mapped to {list(mapping.target)}",
    )
    mapped.cam_layer = None
    return mapped
