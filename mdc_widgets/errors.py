"""Errors a user can cause; each message names the item and what to do."""

from __future__ import annotations


class MdcError(Exception):
    """Base class for every error mdc-widgets raises on bad input."""


class UnknownModelError(MdcError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ImageDecodeError(MdcError, ValueError):
    """An image file that cannot be read or decoded."""


class ManifestError(MdcError, ValueError):
    """A manifest that is malformed, or whose files are missing or altered."""


class ShapeError(MdcError, ValueError):
    """An array (prediction, mask, image) whose shape does not fit."""


class WeightsNotFoundError(MdcError, FileNotFoundError):
    """Model weights that are not available offline."""


class OptionError(MdcError, ValueError):
    """An option given a value outside its choices (a measure, a mode); the message lists them."""
