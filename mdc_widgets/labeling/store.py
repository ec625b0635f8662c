"""Human verdicts on model pairs, kept in a JSON Lines file that survives a kernel restart.

One line per verdict, in the order they were given; the last verdict on a
(sample, pair) wins. A verdict is appended with one ``write`` and an
``fsync`` while holding an exclusive lock on ``<file>.lock``, so notebooks
and processes labelling the same file at once lose nothing. A crash can only
tear the last line: reading drops such a torn tail, warns, and reports it in
:attr:`LabelStore.dropped`; the next append cuts it off before writing.
Removing a verdict rewrites the file atomically under the same lock. An
accepted mask is written (atomically) as a PNG beside the file *before* the
line that names it, so a line never points to a missing mask.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets._atomic import atomic_write_bytes, atomic_write_text
from mdc_widgets._locking import file_lock, storage_errors
from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.ranking import VERDICTS

__all__ = ["VERDICTS", "Label", "LabelStore", "canonical_pair", "parse_label_lines"]

_SWAP = {"a": "b", "b": "a", "both_wrong": "both_wrong", "both_fine": "both_fine"}
_COLUMNS = ["sample", "model_a", "model_b", "verdict", "time", "annotator", "mask", "mask_model", "note"]


@dataclass(frozen=True)
class Label:
    """One verdict: which of ``model_a`` and ``model_b`` is better on ``sample``.

    ``verdict`` is ``"a"`` (model_a is better), ``"b"``, ``"both_wrong"`` or
    ``"both_fine"``. ``mask`` is the path (relative to the store's folder) of an
    accepted mask, ``mask_model`` the model whose prediction it came from.

    Parameters
    ----------
    sample : str
        The image's sample id.
    model_a : str
        The first model of the pair (alphabetically first in a stored label).
    model_b : str
        The second model of the pair.
    verdict : {"a", "b", "both_wrong", "both_fine"}
        The judgement, relative to ``(model_a, model_b)``.
    time : float, optional
        When it was given, seconds since the epoch (0: unknown).
    annotator : str, optional
        Who gave it (free text; ``""``: not recorded).
    mask : str or None, optional
        Path of the accepted mask PNG relative to the label file's folder.
    mask_model : str or None, optional
        The model whose prediction the accepted mask was taken from.
    note : str, optional
        Free-text comment.
    """

    sample: str
    model_a: str
    model_b: str
    verdict: str
    time: float = 0.0
    annotator: str = ""
    mask: str | None = None
    mask_model: str | None = None
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """``(sample, model_a, model_b)``: what a later verdict on the same image and pair replaces."""
        return (self.sample, self.model_a, self.model_b)

    @property
    def winner(self) -> str | None:
        """The better model's name, or None for ``both_wrong`` / ``both_fine``."""
        return {"a": self.model_a, "b": self.model_b}.get(self.verdict)


def canonical_pair(model_a: str, model_b: str, verdict: str) -> tuple[str, str, str]:
    """Order a pair alphabetically, swapping an ``"a"``/``"b"`` verdict with it.

    A verdict on (B, A) is the same judgement as the swapped verdict on (A, B),
    so both land on one key and the later one wins.

    Parameters
    ----------
    model_a : str
        The first model as the annotator saw the pair.
    model_b : str
        The second model.
    verdict : {"a", "b", "both_wrong", "both_fine"}
        The judgement relative to ``(model_a, model_b)``.

    Returns
    -------
    tuple of 3 str
        ``(first, second, verdict)`` with ``first <= second``; ``"a"`` and
        ``"b"`` swap when the models were swapped.

    Raises
    ------
    MdcError
        When the verdict is unknown or both names are the same model.

    Examples
    --------
    >>> canonical_pair("unet", "fcn", "a")
    ('fcn', 'unet', 'b')
    >>> canonical_pair("fcn", "unet", "both_fine")
    ('fcn', 'unet', 'both_fine')
    """
    if verdict not in VERDICTS:
        raise MdcError(f"Unknown verdict {verdict!r}; a verdict is one of {VERDICTS}.")
    if model_a == model_b:
        raise MdcError(f"A verdict compares two different models; got {model_a!r} twice.")
    if model_a <= model_b:
        return model_a, model_b, verdict
    return model_b, model_a, _SWAP[verdict]


def _label_from(raw: Any) -> Label:
    """One parsed JSON line as a :class:`Label`; ``ValueError`` / ``TypeError`` / ``KeyError`` when it is not one."""
    if not isinstance(raw, dict):
        raise TypeError(f"a label is a JSON object, not {type(raw).__name__}")
    item = Label(**{k: raw[k] for k in _COLUMNS if k in raw})
    if not all(isinstance(v, str) for v in (item.sample, item.model_a, item.model_b)):
        raise TypeError("sample, model_a and model_b must be strings")
    if item.verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {item.verdict!r}")
    return item


def parse_label_lines(data: bytes, path: str | Path = "<labels>") -> tuple[list[Label], bytes]:
    r"""The labels in the bytes of a label file, and its torn tail (b"" when the file ends cleanly).

    Only the last line can be torn by a crash mid-append: when it lacks its
    newline and is not a whole label it is returned as the tail, not parsed.
    Any other bad line raises ``MdcError`` naming the file and the line.

    Parameters
    ----------
    data : bytes
        The whole file content (UTF-8 JSON Lines).
    path : str or pathlib.Path, optional
        The file's name, for error messages only.

    Returns
    -------
    labels : list of Label
        Every label in file order (the history, replaced verdicts included).
    torn : bytes
        The torn last line, or ``b""``.

    Raises
    ------
    MdcError
        When a line other than a torn last one is not a label (bad JSON, a
        missing field, an unknown verdict).

    Examples
    --------
    >>> good = b'{"sample": "s1", "model_a": "a", "model_b": "b", "verdict": "a"}\n'
    >>> labels, torn = parse_label_lines(good + b'{"sample": "s2", "mod')
    >>> [l.sample for l in labels], torn
    (['s1'], b'{"sample": "s2", "mod')
    """
    body, _, tail = data.rpartition(b"\n")
    if not body and not data.endswith(b"\n"):
        body, tail = b"", data
    lines = body.split(b"\n") if body else []
    torn = b""
    if tail.strip():
        try:
            _label_from(json.loads(tail.decode("utf-8")))
            lines.append(tail)  # a whole label whose newline was not written yet
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, ValueError):
            torn = tail
    history = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            history.append(_label_from(json.loads(line.decode("utf-8"))))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            raise MdcError(
                f"Line {number} of the label file {path} is not a label ({exc}); fix or delete that line."
            ) from exc
    return history, torn


def _mask_name(sample: str, model_a: str, model_b: str) -> str:
    # sample ids may be file paths; keep a readable stem and make it unique with a hash
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", sample)[-60:].strip("._") or "sample"
    digest = hashlib.sha1(f"{sample}\0{model_a}\0{model_b}".encode()).hexdigest()[:10]
    return f"{stem}-{digest}.png"


def _png_bytes(mask: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class LabelStore:
    """Verdicts of a human (or a simulated one) on model pairs, persisted in a JSON Lines file.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.jsonl`` file (created on the first label); accepted masks
        go to the folder ``<path stem>_masks`` beside it, the lock is
        ``.<file name>.lock`` beside it.
    sample_ids : collection of str or None, optional
        The pool's sample ids; a verdict on any other id raises
        ``MdcError`` (default None: any id is accepted).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.jsonl")
    >>> store = LabelStore(path)
    >>> _ = store.label("img-1", "unet", "fcn", "a")
    >>> _ = store.label("img-1", "fcn", "unet", "both_fine")   # same pair: the last verdict wins
    >>> [(l.sample, l.model_a, l.model_b, l.verdict) for l in LabelStore(path)]
    [('img-1', 'fcn', 'unet', 'both_fine')]
    """

    def __init__(self, path: str | Path, sample_ids: Collection[str] | None = None):
        self.path = Path(path)
        self.mask_dir = self.path.with_name(f"{self.path.stem}_masks")
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        # the pool's ids: a verdict on any other sample is refused (None: any id is accepted)
        self.sample_ids = None if sample_ids is None else frozenset(str(s) for s in sample_ids)
        self.dropped = b""
        self._history: list[Label] = self._read()

    # -- reading ---------------------------------------------------------------------------
    def _read(self) -> list[Label]:
        """The labels on disk; a torn last line is dropped with a warning and kept in :attr:`dropped`."""
        if not self.path.exists():
            return []
        with storage_errors(self.path, "reading"):
            data = self.path.read_bytes()
        history, torn = parse_label_lines(data, self.path)
        if torn and torn != self.dropped:
            warnings.warn(
                f"The label file {self.path} ends in a torn line ({len(torn)} bytes, from a write cut short); "
                "it was dropped and every whole label was read. Redo the last verdict if it is missing.",
                stacklevel=3,
            )
        self.dropped = torn
        return history

    def reload(self) -> LabelStore:
        """Re-read the file (labels another process wrote since)."""
        self._history = self._read()
        return self

    @property
    def history(self) -> list[Label]:
        """Every verdict ever given, in order (including those later replaced)."""
        return list(self._history)

    def _latest(self) -> dict[tuple[str, str, str], Label]:
        latest: dict[tuple[str, str, str], Label] = {}
        for item in self._history:
            latest.pop(item.key, None)  # re-insert: order of the last verdict
            latest[item.key] = item
        return latest

    def __iter__(self) -> Iterator[Label]:
        return iter(self._latest().values())

    def __len__(self) -> int:
        return len(self._latest())

    def get(self, sample: str, model_a: str, model_b: str) -> Label | None:
        """The current verdict on ``sample`` for the pair, as seen from ``(model_a, model_b)``.

        Parameters
        ----------
        sample : str
            The image's sample id.
        model_a : str
            One model of the pair.
        model_b : str
            The other model (the order does not matter for finding the verdict).

        Returns
        -------
        Label or None
            The latest verdict, with ``model_a``/``model_b`` and ``"a"``/``"b"``
            in the order asked; None when the pair was not judged on ``sample``.

        Raises
        ------
        MdcError
            When ``model_a == model_b``.
        """
        a, b, _ = canonical_pair(model_a, model_b, "a")
        found = self._latest().get((str(sample), a, b))
        if found is None or (a, b) == (model_a, model_b):
            return found
        return replace(found, model_a=model_a, model_b=model_b, verdict=_SWAP[found.verdict])

    def mask(self, sample: str, model_a: str, model_b: str) -> np.ndarray | None:
        """The accepted mask of the current verdict (uint8 ``(H, W)``), or None.

        Parameters
        ----------
        sample : str
            The image's sample id.
        model_a : str
            One model of the pair.
        model_b : str
            The other model (the order does not matter for finding the verdict).

        Returns
        -------
        numpy.ndarray or None
            ``(H, W)`` uint8 read from the mask PNG; None without a verdict or
            without an accepted mask.
        """
        found = self.get(sample, model_a, model_b)
        if found is None or not found.mask:
            return None
        from PIL import Image

        with Image.open(self.path.parent / found.mask) as im:
            return np.asarray(im.convert("L"))

    def to_frame(self, history: bool = False) -> pd.DataFrame:
        """One row per (sample, pair) with its current verdict (or every verdict with ``history``).

        Parameters
        ----------
        history : bool, optional
            True: every verdict ever given, in order (replaced ones included).

        Returns
        -------
        pandas.DataFrame
            Columns ``sample, model_a, model_b, verdict, time, annotator, mask,
            mask_model, note``; pairs in canonical (alphabetical) order.
        """
        rows = self._history if history else list(self)
        return pd.DataFrame([asdict(r) for r in rows], columns=_COLUMNS)

    # -- writing ---------------------------------------------------------------------------
    def _write(self, history: list[Label]) -> None:
        """Replace the file by ``history`` (atomic rename); call with the lock held."""
        text = "".join(json.dumps(asdict(item), sort_keys=True) + "\n" for item in history)
        with storage_errors(self.path):
            atomic_write_text(self.path, text)
        self._history = history

    def _append(self, items: list[Label]) -> None:
        """Append ``items`` with one write and an fsync under the lock, then re-read what others wrote."""
        data = "".join(json.dumps(asdict(item), sort_keys=True) + "\n" for item in items).encode("utf-8")
        with file_lock(self.lock_path, what=f"the label file {self.path}"), storage_errors(self.path):
            self._read()  # reports a torn tail before it is cut off
            with open(self.path, "ab") as handle:
                if self.dropped:
                    handle.truncate(handle.tell() - len(self.dropped))
                    self.dropped = b""
                elif handle.tell() and not self.path.read_bytes().endswith(b"\n"):
                    data = b"\n" + data  # the last label is whole but its newline was cut off
                size = handle.tell()
                try:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                except BaseException:
                    handle.truncate(size)  # a failed label leaves the file as it was, not half a line
                    raise
            self._history = self._read()

    def _check_sample(self, sample: str) -> None:
        if self.sample_ids is not None and str(sample) not in self.sample_ids:
            raise MdcError(
                f"Sample {sample!r} is not in the pool of the label file {self.path}; label a sample of "
                "this pool (see Pool.sample_ids), or open the LabelStore without sample_ids."
            )

    def _make(
        self,
        sample: str,
        model_a: str,
        model_b: str,
        verdict: str,
        *,
        mask: np.ndarray | None,
        mask_model: str | None,
        annotator: str,
        note: str,
        when: float | None,
    ) -> Label:
        self._check_sample(sample)
        a, b, v = canonical_pair(str(model_a), str(model_b), str(verdict))
        mask_path = None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim != 2:
                raise ShapeError(f"An accepted mask is one (H, W) map; got shape {mask.shape} for sample {sample!r}.")
            if mask.dtype == bool:
                mask = mask.astype(np.uint8) * 255
            if mask.min() < 0 or mask.max() > 255:
                raise ShapeError(
                    f"An accepted mask holds values 0..255; sample {sample!r} has {mask.min()}..{mask.max()}."
                )
            name = _mask_name(str(sample), a, b)
            atomic_write_bytes(self.mask_dir / name, _png_bytes(mask.astype(np.uint8)))
            mask_path = f"{self.mask_dir.name}/{name}"
        return Label(
            str(sample), a, b, v, time.time() if when is None else float(when), annotator, mask_path, mask_model, note
        )

    def label(
        self,
        sample: str,
        model_a: str,
        model_b: str,
        verdict: str,
        *,
        mask: np.ndarray | None = None,
        mask_model: str | None = None,
        annotator: str = "",
        note: str = "",
    ) -> Label:
        """Record a verdict (saved to disk before this returns); returns the stored label.

        Parameters
        ----------
        sample : str
            The image's sample id (one of ``sample_ids`` when the store has them).
        model_a : str
            The first model as shown to the annotator.
        model_b : str
            The second model.
        verdict : {"a", "b", "both_wrong", "both_fine"}
            The judgement relative to ``(model_a, model_b)``.
        mask : numpy.ndarray or None, optional
            An accepted ``(H, W)`` mask (bool, or values 0..255), written as a
            PNG into ``mask_dir`` before the label line.
        mask_model : str or None, optional
            The model whose prediction the mask was taken from.
        annotator : str, optional
            Who judged.
        note : str, optional
            Free-text comment.

        Returns
        -------
        Label
            The stored label, in canonical pair order, with its time.

        Raises
        ------
        MdcError
            When ``sample`` is not in ``sample_ids``, the verdict is unknown, or
            both models are the same.
        ShapeError
            When ``mask`` is not 2-D or holds values outside 0..255.
        StorageError
            When the file or the mask cannot be written.
        """
        item = self._make(
            sample,
            model_a,
            model_b,
            verdict,
            mask=mask,
            mask_model=mask_model,
            annotator=annotator,
            note=note,
            when=None,
        )
        # another notebook may have labelled since we read the file: append to what is on disk now
        self._append([item])
        return item

    def extend(self, labels: pd.DataFrame | Iterable[dict[str, Any]], annotator: str = "") -> int:
        """Record many verdicts with one write (columns ``sample, model_a, model_b, verdict``).

        Parameters
        ----------
        labels : pandas.DataFrame or iterable of dict
            One row per verdict with ``sample, model_a, model_b, verdict``
            and optional ``annotator`` and ``note`` (e.g. the output of
            :func:`~mdc_widgets.labeling.simulate_verdicts`). No masks.
        annotator : str, optional
            Used for rows without an ``annotator`` of their own.

        Returns
        -------
        int
            Number of verdicts recorded; none is written when a row is refused.

        Raises
        ------
        MdcError
            When a row names a sample outside ``sample_ids``, an unknown
            verdict, or the same model twice.
        """
        rows = labels.to_dict("records") if isinstance(labels, pd.DataFrame) else list(labels)
        items = [
            self._make(
                r["sample"],
                r["model_a"],
                r["model_b"],
                r["verdict"],
                mask=None,
                mask_model=None,
                annotator=str(r.get("annotator", annotator) or annotator),
                note=str(r.get("note", "") or ""),
                when=None,
            )
            for r in rows
        ]
        if items:
            self._append(items)
        return len(items)

    def remove(self, sample: str, model_a: str, model_b: str) -> bool:
        """Forget every verdict on ``sample`` for the pair; True if there was one.

        The file is rewritten atomically under the lock.

        Parameters
        ----------
        sample : str
            The image's sample id.
        model_a : str
            One model of the pair.
        model_b : str
            The other model (the order does not matter for finding the verdict).

        Returns
        -------
        bool
            Whether any verdict was removed.

        Raises
        ------
        MdcError
            When ``model_a == model_b``.
        """
        a, b, _ = canonical_pair(model_a, model_b, "a")
        with file_lock(self.lock_path, what=f"the label file {self.path}"):
            current = self._read()
            kept = [item for item in current if item.key != (str(sample), a, b)]
            if len(kept) == len(current):
                return False
            self._write(kept)
            self.dropped = b""
        return True

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r}, labels={len(self)})"
