"""The chunk runner: predict chunks of a pool with every competitor and write them into their stores.

Shared by :func:`mdc_widgets.predictions.predict_pool` (in this process) and
:mod:`mdc_widgets.predictions.distributed` (on each Dask worker), so it imports
neither of them. It holds the run options, the cancellation check, the
channels-last switch and the read-predict-write loop; the on-disk layout it
writes into is :mod:`mdc_widgets.predictions._layout`.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from mdc_widgets._kernels import all_finite, normalized_entropy
from mdc_widgets._locking import storage_errors
from mdc_widgets.data.pool import Pool
from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.predictions._layout import chunk_sizes, prediction_store_path

__all__ = [
    "RunCancelled",
    "RunOptions",
    "first_max_index",
    "is_cancelled",
    "memory_format",
    "predict_maps",
    "put_entropy",
    "run_chunks",
    "store_logits",
]


class RunCancelled(MdcError):
    """Raised when a run is cancelled; every finished chunk is already on disk."""


@dataclass(frozen=True)
class RunOptions:
    """How :func:`~mdc_widgets.predictions.predict_pool` runs inference and what it stores.

    Only plain values, so the options travel to Dask workers as they are.
    The stored ones (``chunk_size``, ``entropy``, ``probabilities``) are part
    of a store's identity: a store made with other values is refused.

    Parameters
    ----------
    batch_size : int, optional
        Images per forward pass.
    chunk_size : int, optional
        Images per stored chunk, the unit of resumption.
    entropy : bool, optional
        Also store the per-pixel normalised predictive entropy.
    probabilities : bool, optional
        Also store SS class probabilities (float16), for the loss- and
        ensemble-based strategies.
    amp : bool, optional
        bf16 autocast on CUDA (ignored on the CPU).
    channels_last : bool, optional
        Run convolutions in channels-last layout (faster with tensor cores;
        the models are restored to their layout afterwards).

    Examples
    --------
    >>> RunOptions(batch_size=16).chunk_size
    256
    >>> RunOptions(chunk_size=0)
    Traceback (most recent call last):
    ...
    mdc_widgets.errors.MdcError: chunk_size takes a whole number of at least 1; got 0.
    """

    batch_size: int = 64
    chunk_size: int = 256
    entropy: bool = True
    probabilities: bool = False
    amp: bool = False
    channels_last: bool = False

    def __post_init__(self) -> None:
        for option in ("batch_size", "chunk_size"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise MdcError(f"{option} takes a whole number of at least 1; got {value!r}.")
            object.__setattr__(self, option, int(value))
        for option in ("entropy", "probabilities", "amp", "channels_last"):
            object.__setattr__(self, option, bool(getattr(self, option)))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order (what ``predict_pool`` still accepts as deprecated keywords)."""
        return tuple(f.name for f in fields(cls))


def _check_output(output: torch.Tensor, competitor: Any, n: int, h: int, w: int) -> None:
    n_cls = len(competitor.classes) if competitor.task == "ss" else 1
    expected = (n, n_cls, h, w)
    if tuple(output.shape) != expected:
        raise ShapeError(
            f"Model {competitor.name!r} returned a prediction of shape {tuple(output.shape)}; "
            f"expected {expected} ({competitor.task}: batch, {'classes' if competitor.task == 'ss' else 'one saliency channel'}, "
            "height, width). Fix its wrapper (Competitor.from_module) so predict() returns that shape."
        )
    # a Competitor has checked its own output; the check reads every value once more
    if not _checks_itself(competitor) and not all_finite(output):
        raise MdcError(
            f"Model {competitor.name!r} returned NaN or infinite values; check its weights "
            "and input normalisation before mining with it."
        )


def _checks_itself(competitor: Any) -> bool:
    from mdc_widgets.models import Competitor

    return type(competitor).predict is Competitor.predict


def is_cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    """Whether ``cancel`` (an Event, a callable, or None for never) asks the run to stop.

    Parameters
    ----------
    cancel : threading.Event or callable or None
        An Event (set: stop), a callable returning True to stop, or None.

    Returns
    -------
    bool
        True when the run should stop.

    Examples
    --------
    >>> is_cancelled(None), is_cancelled(lambda: True)
    (False, True)
    """
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _chunk_bounds(chunk: int, chunk_size: int, n: int) -> tuple[int, int]:
    return chunk * chunk_size, min((chunk + 1) * chunk_size, n)


@contextmanager
def memory_format(competitors: Sequence[Any], channels_last: bool) -> Iterator[None]:
    """Convolution weights in channels-last layout for the run, restored afterwards.

    Parameters
    ----------
    competitors : sequence of object
        The run's competitors; those with an ``nn.Module`` ``module`` are converted.
    channels_last : bool
        False leaves every module as it is.

    Yields
    ------
    None
        Control to the block; the modules are contiguous again after it.
    """
    modules = [c.module for c in competitors if isinstance(getattr(c, "module", None), torch.nn.Module)]
    if not channels_last:
        yield
        return
    for module in modules:
        module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for module in modules:
            module.to(memory_format=torch.contiguous_format)


def _empty_maps(
    comp: Any, n: int, h: int, w: int, options: RunOptions, entropy_dtype: Any = np.uint8
) -> dict[str, np.ndarray]:
    maps = {"prediction": np.zeros((n, h, w), dtype=np.uint8)}
    if options.entropy:
        maps["entropy"] = np.zeros((n, h, w), dtype=entropy_dtype)
    if options.probabilities and comp.task == "ss":
        maps["probability"] = np.zeros((n, len(comp.classes), h, w), dtype=np.float16)
    return maps


def _store_output(maps: dict[str, np.ndarray], lo: int, hi: int, out: torch.Tensor, comp: Any) -> None:
    """Write one batch of competitor output ``(n, C, H, W)`` (probabilities) into the chunk's maps."""
    # post-processing in float32 whatever the autocast did inside the model
    out = out.float()
    if comp.task == "ss":
        # max().indices is argmax (first maximum) without argmax's slow strided CPU kernel (7x here)
        torch.from_numpy(maps["prediction"][lo:hi]).copy_(out.max(dim=1).indices)
    else:
        maps["prediction"][lo:hi] = (out[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    # copy_ converts straight into the chunk's numpy maps: no float16 temporary per batch
    if "entropy" in maps:
        put_entropy(maps["entropy"][lo:hi], normalized_entropy(out))
    if "probability" in maps:
        torch.from_numpy(maps["probability"][lo:hi]).copy_(out)


def put_entropy(target: np.ndarray, entropy: torch.Tensor) -> None:
    """Write entropy in [0, 1] into the stored array: ``round(255 H)`` for uint8, else as it is (float16).

    Parameters
    ----------
    target : numpy.ndarray
        The store's entropy rows (uint8 or float16), written in place.
    entropy : torch.Tensor
        Normalised entropy in [0, 1], of ``target``'s shape, on the CPU.

    Examples
    --------
    >>> target = np.zeros(3, np.uint8)
    >>> put_entropy(target, torch.tensor([0.0, 0.5, 1.0]))
    >>> target.tolist()
    [0, 128, 255]
    """
    if target.dtype == np.uint8:
        entropy = entropy.mul(255.0).round_()
    torch.from_numpy(target).copy_(entropy)


def _logits_fast_path(comp: Any) -> bool:
    """Whether the runner may take ``comp``'s SS logits and do its softmax itself, fused with label and entropy."""
    return _checks_itself(comp) and comp.task == "ss" and getattr(comp, "output", "") == "logits"


def store_logits(
    maps: dict[str, np.ndarray], lo: int, hi: int, logits: torch.Tensor, scratch: dict[str, torch.Tensor]
) -> None:
    """Write one batch of SS logits ``(n, C, H, W)`` into the chunk's maps: label, entropy, probabilities.

    One pass over the logits instead of softmax, then ``entr`` (a ``log`` per
    class and pixel), then the label: with ``m = max z``, ``e = exp(z - m)``
    and ``s = sum e``, the label is where ``z`` is largest and the entropy
    is ``H = log s + m - sum(e z) / s``, no logarithm per class. ``e`` lives
    in ``scratch``, reused by every batch of a chunk, and the results are
    written straight into the chunk's numpy maps. Equal to
    ``normalized_entropy(softmax(z))`` within float16 rounding.

    Parameters
    ----------
    maps : dict
        The chunk's ``prediction``, optional ``entropy`` and ``probability`` arrays.
    lo, hi : int
        The batch's rows in them.
    logits : torch.Tensor
        ``(hi - lo, C, H, W)`` on the CPU, any memory layout.
    scratch : dict
        Buffers kept between batches (start with ``{}``).

    Examples
    --------
    >>> z = torch.tensor([[[[0.0]], [[0.0]]], [[[2.0]], [[-2.0]]]])  # uniform, then fairly sure
    >>> maps = {"prediction": np.zeros((2, 1, 1), np.uint8), "entropy": np.zeros((2, 1, 1), np.float16)}
    >>> store_logits(maps, 0, 2, z, {})
    >>> maps["prediction"].ravel().tolist(), maps["entropy"].ravel().astype(float).round(2).tolist()
    ([0, 0], [1.0, 0.13])
    """
    z = logits.float()
    labels = torch.from_numpy(maps["prediction"][lo:hi])
    if z.is_contiguous() and z.shape[1] <= 256:
        # NCHW: max-with-indices over the strided class axis is a slow scalar loop (40 ms for 4 x 21 x 320^2
        # here); amax is vectorised (4 ms) and the label is then where z equals it, in 24 ms for the two
        top = z.amax(dim=1, keepdim=True)
        first_max_index(z, top[:, 0], out=labels)
    else:
        top, label = z.max(dim=1, keepdim=True)
        labels.copy_(label[:, 0])
    if "entropy" not in maps and "probability" not in maps:
        return
    buffer = scratch.get("exp")
    # one buffer per chunk in the logits' own layout (channels-last stays channels-last: no transposing copy)
    if buffer is None or buffer.shape[0] < z.shape[0] or buffer.shape[1:] != z.shape[1:] or not _same_layout(buffer, z):
        buffer = scratch["exp"] = torch.empty_like(z)
    e = buffer[: z.shape[0]]
    torch.sub(z, top, out=e).exp_()
    total = e.sum(dim=1)
    if "probability" in maps:
        torch.from_numpy(maps["probability"][lo:hi]).copy_(e / total[:, None])
    if "entropy" in maps:
        mean_logit = e.mul_(z).sum(dim=1).div_(total)
        entropy = total.log_().add_(top[:, 0]).sub_(mean_logit).div_(math.log(max(z.shape[1], 2))).clamp_(0, 1)
        put_entropy(maps["entropy"][lo:hi], entropy)


def first_max_index(z: torch.Tensor, top: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    """The first class index where ``z (n, C, H, W)`` equals its maximum ``top (n, H, W)``, into uint8 ``out``.

    What ``z.max(dim=1).indices`` gives (ties: the smallest index), with one
    vectorised comparison per class plane instead of a strided reduction.

    Parameters
    ----------
    z : torch.Tensor
        ``(n, C, H, W)`` finite scores, ``C`` at most 256.
    top : torch.Tensor
        ``(n, H, W)``, ``z.amax(dim=1)``.
    out : torch.Tensor
        ``(n, H, W)`` uint8, overwritten.

    Returns
    -------
    torch.Tensor
        ``out``.

    Examples
    --------
    >>> z = torch.tensor([[[[1.0, 5.0]], [[3.0, 5.0]], [[2.0, 0.0]]]])  # (1, 3, 1, 2); pixel 2 is a tie
    >>> first_max_index(z, z.amax(dim=1), out=torch.empty(1, 1, 2, dtype=torch.uint8)).tolist()
    [[[1, 0]]]
    """
    equal = torch.empty(top.shape, dtype=torch.bool)
    # from the last class down to 0, so the smallest index of a tie is written last
    for c in range(z.shape[1] - 1, -1, -1):
        torch.eq(z[:, c], top, out=equal)
        out.masked_fill_(equal, c)
    return out


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.is_contiguous(memory_format=torch.channels_last) == b.is_contiguous(memory_format=torch.channels_last)


def predict_maps(
    comp: Any, images: torch.Tensor, options: RunOptions, device: str, entropy_dtype: Any = np.uint8
) -> dict[str, np.ndarray]:
    """The stored maps of one chunk ``images (n, 3, H, W)`` uint8, batch by batch on ``device``.

    Parameters
    ----------
    comp : Competitor
        The model (``predict`` on float [0, 1] images).
    images : torch.Tensor
        ``(n, 3, H, W)`` uint8 RGB on the CPU (pinned for CUDA).
    options : RunOptions
        Batch size, what to store, amp and channels-last.
    device : str
        The torch device the competitor is on.
    entropy_dtype : numpy.dtype, optional
        The store's entropy type: uint8 ``round(255 H)`` (new stores) or
        float16 (stores made before).

    Returns
    -------
    dict of {str: numpy.ndarray}
        ``prediction (n, H, W)`` uint8 (SS argmax, SOD saliency 0..255), and
        per ``options`` ``entropy (n, H, W)`` (``entropy_dtype``; H in [0, 1]) and SS
        ``probability (n, C, H, W)`` float16.

    Raises
    ------
    ShapeError
        When the competitor's output is not ``(n, C, H, W)`` for its classes.
    MdcError
        When it returns NaN or infinite values.
    """
    n, _, h, w = images.shape
    maps = _empty_maps(comp, n, h, w, options, entropy_dtype)
    on_cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (options.amp and on_cuda) else nullcontext()
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    # a Competitor's SS logits: their softmax is fused with the label and the entropy (store_logits)
    fused = _logits_fast_path(comp)
    scratch: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for lo in range(0, n, options.batch_size):
            hi = min(lo + options.batch_size, n)
            x = images[lo:hi].to(device, non_blocking=True).float().div_(255.0).contiguous(memory_format=layout)
            with autocast:
                out = comp.forward_logits(x) if fused else comp.predict(x)
            if fused:
                _check_logits(out, comp, hi - lo, h, w)
                store_logits(maps, lo, hi, out.cpu(), scratch)
            else:
                _check_output(out.float(), comp, hi - lo, h, w)
                _store_output(maps, lo, hi, out.cpu(), comp)
    return maps


def _check_logits(logits: torch.Tensor, competitor: Any, n: int, h: int, w: int) -> None:
    """What ``Competitor.predict`` checks of the logits it would softmax (shape, finite), for the fused path."""
    _check_output(logits, competitor, n, h, w)
    if not all_finite(logits):  # before labels are taken: NaN cast to an integer is a silent 0
        raise MdcError(f"Model {competitor.name!r} returned NaN or infinite values; check its weights and input.")


def _read_released_maps(
    comp: Any, pool: Pool, start: int, stop: int, options: RunOptions, entropy_dtype: Any = np.uint8
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The stored maps of one chunk of a released-maps competitor: read from its files, no inference."""
    out, ok = comp.predict_samples(pool, start, stop)
    h, w = (int(s) for s in pool.image_size)
    _check_output(out, comp, stop - start, h, w)
    maps = _empty_maps(comp, stop - start, h, w, options, entropy_dtype)
    _store_output(maps, 0, stop - start, out, comp)
    return maps, np.asarray(ok, bool)


def _clear_padding(maps: dict[str, np.ndarray], boxes: np.ndarray) -> None:
    """Letterbox pads are background in every map, so they never count as disagreement or foreground."""
    h, w = maps["prediction"].shape[-2:]
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        if (y0, y1, x0, x1) == (0, h, 0, w):
            continue
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        for values in maps.values():
            values[i][..., ~inside] = 0


def _write_chunk(
    path: Path,
    arrays: dict[str, zarr.Array],
    chunk: int,
    start: int,
    stop: int,
    maps: dict[str, np.ndarray],
    valid: np.ndarray,
) -> None:
    invalid = ~valid
    with storage_errors(path):
        for name, values in maps.items():
            if name in arrays:
                values[invalid] = 0
                arrays[name][start:stop] = values
        arrays["valid"][start:stop] = valid
        # the sizes as written, so a file deleted or replaced later is noticed on open
        if "chunk_bytes" in arrays:
            arrays["chunk_bytes"][chunk] = chunk_sizes(path, arrays, chunk)
        arrays["chunk_done"][chunk] = True  # last: marks the chunk complete


def run_chunks(
    pool: Pool,
    competitors: Sequence[Any],
    arrays: dict[str, dict[str, zarr.Array]],
    todo: dict[str, Sequence[int]],
    options: RunOptions,
    device: str,
    *,
    on_chunk: Callable[[str, int], None] | None = None,
    cancel: Any = None,
    store: Path,
) -> dict[str, str]:
    """Predict the chunks ``todo[model]`` and write them; returns ``{model: why}`` of failed models.

    Chunk-major: each chunk of images is decoded once for all models. Reading
    the next chunk and writing the previous one overlap with inference (one
    I/O thread each); a chunk's done flag is written after its maps, and all
    queued writes reach the disk before this returns or raises.

    Parameters
    ----------
    pool : Pool
        The images.
    competitors : sequence of object
        Competitors or released-map competitors, by name in ``arrays``/``todo``.
    arrays : dict of {str: dict of {str: zarr.Array}}
        Each model's open store arrays (:func:`open_arrays`).
    todo : dict of {str: sequence of int}
        The chunk indices each model still needs.
    options : RunOptions
        Chunk and batch size, what to store, how to run.
    device : str
        The torch device of the competitors.
    on_chunk : callable or None, optional
        ``on_chunk(model, chunk)`` after each chunk is on disk (progress).
    cancel : object, optional
        An Event or callable (see :func:`is_cancelled`), checked between chunks.
    store : pathlib.Path
        The store folder (for error messages and chunk files).

    Returns
    -------
    dict of {str: str}
        ``{model: "chunk N (samples a-b): message"}`` for the models that failed;
        the others' chunks are all written.

    Raises
    ------
    RunCancelled
        When ``cancel`` asks to stop; every finished chunk is on disk.
    """
    n = len(pool)
    wanted = {name: {int(c) for c in chunks} for name, chunks in todo.items()}
    chunk_order = sorted(set().union(*wanted.values())) if wanted else []
    total = sum(len(v) for v in wanted.values())
    pin = device.startswith("cuda") and torch.cuda.is_available()
    failures: dict[str, str] = {}

    def read(chunk: int) -> tuple[torch.Tensor, np.ndarray]:
        images, valid = pool.read_images(*_chunk_bounds(chunk, options.chunk_size, n))
        batch = torch.from_numpy(np.ascontiguousarray(images))
        if pin:
            batch = batch.pin_memory()
        return batch.permute(0, 3, 1, 2), np.asarray(valid, dtype=bool).copy()

    done = 0
    # at most two chunks wait for the disk, so memory stays a few chunks whatever the pool size
    max_queued = 2
    with (
        ThreadPoolExecutor(1, thread_name_prefix="mdc-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="mdc-write") as writer,
    ):
        queued: deque[Future] = deque()
        next_read = reader.submit(read, chunk_order[0]) if chunk_order else None
        try:
            for position, chunk in enumerate(chunk_order):
                if is_cancelled(cancel):
                    raise RunCancelled(
                        f"Prediction cancelled; {done} of {total} chunks were stored in {store}. "
                        "Run predict_pool again to resume."
                    )
                images, valid = next_read.result()
                following = position + 1
                next_read = reader.submit(read, chunk_order[following]) if following < len(chunk_order) else None
                start, stop = _chunk_bounds(chunk, options.chunk_size, n)
                boxes = pool.content_boxes(start, stop)
                for comp in competitors:
                    if comp.name in failures or chunk not in wanted.get(comp.name, ()):
                        continue
                    chunk_valid = valid
                    # the dtype the store was made with (float16 in stores made before uint8 entropy)
                    entropy_dtype = arrays[comp.name]["entropy"].dtype if "entropy" in arrays[comp.name] else np.uint8
                    try:
                        if hasattr(comp, "predict_samples"):
                            maps, ok = _read_released_maps(comp, pool, start, stop, options, entropy_dtype)
                            chunk_valid = valid & ok
                        else:
                            maps = predict_maps(comp, images, options, device, entropy_dtype)
                    except Exception as exc:  # any model's failure is its own; the others go on
                        failures[comp.name] = _failure(comp.name, chunk, start, stop, exc)
                        continue
                    if boxes is not None:
                        _clear_padding(maps, boxes)
                    while len(queued) >= max_queued:
                        queued.popleft().result()
                    queued.append(
                        writer.submit(
                            _write_chunk,
                            prediction_store_path(store, comp.name),
                            arrays[comp.name],
                            chunk,
                            start,
                            stop,
                            maps,
                            chunk_valid,
                        )
                    )
                    done += 1
                    if on_chunk is not None:
                        on_chunk(comp.name, chunk)
        finally:
            while queued:
                queued.popleft().result()
    return failures


def _failure(model: str, chunk: int, start: int, stop: int, exc: BaseException) -> str:
    """Why ``model`` failed on a chunk, for :class:`PredictionRunError` and ``attrs["failures"]``.

    Examples
    --------
    >>> _failure("unet", 3, 768, 1024, RuntimeError("expected 4 channels"))
    'chunk 3 (samples 768-1023): RuntimeError: expected 4 channels'
    """
    why = str(exc) if isinstance(exc, MdcError) else f"{type(exc).__name__}: {exc}"
    return f"chunk {chunk} (samples {start}-{stop - 1}): {why}"
