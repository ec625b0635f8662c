"""Choose the memory layout, batch size and thread count of a prediction run from explicit inputs.

Pure functions of the models, the image size, a memory budget and the
device (nothing is timed here, nothing global is changed)::

    settings = choose_run_settings(models, pool.image_size)
    print(settings.summary())
    torch.set_num_threads(settings.threads)
    predict_pool(pool, models, store, settings.run_options())

Measured on the 2-core CPU host at 320 px (``benchmarks/RESULTS.md``):
channels-last made the whole run 36 % faster on CPU too, and the logits
of a 21-class batch of 32 are 700 MB, which page-faulted anew every batch;
the batch is therefore sized from a memory budget, not fixed at 64.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["RunSettings", "choose_run_settings", "default_memory_budget"]

# float32 activations a network holds per input pixel at its peak, as a multiple of the 3 input channels;
# measured for ESPNetv2/DiCENet and the torchvision MobileNets at 320 px (peak RSS / pixels / 12 bytes)
_ACTIVATION_FACTOR = 24
_MIN_BATCH, _MAX_BATCH = 1, 256
# on the CPU, a batch's output (float32 logits) stays under this: glibc serves larger blocks by a fresh mmap,
# page-faulted anew every batch. ESPNetv2 at 320 px, 1 thread: batch 16 spent 2.3 s of 4.5 s CPU in the kernel
# (617k page faults per 16 images); batch 4 spent 0.4 s of 3.1 s (136k); see benchmarks/RESULTS.md (e)
_CPU_OUTPUT_CAP = 64 * 2**20


@dataclass(frozen=True)
class RunSettings:
    """What a prediction run will use, and why.

    Parameters
    ----------
    batch_size : int
        Images per forward pass.
    channels_last : bool
        Convolutions in channels-last layout.
    threads : int
        ``torch.set_num_threads`` for the run (CPU only).
    amp : bool
        bf16 autocast (CUDA only).
    bytes_per_image : int
        Estimated peak bytes one image costs in the heaviest model.
    resolutions : dict of {str: int}
        ``{model: px}`` for models that resize inputs to their own size.
    device : str, optional
        The device the settings are for (``"cpu"``, ``"cuda"``, ...).
    budget : int, optional
        The memory budget in bytes the batch size was chosen within.
    """

    batch_size: int
    channels_last: bool
    threads: int
    amp: bool
    bytes_per_image: int
    resolutions: dict[str, int]
    device: str = "cpu"
    budget: int = 0

    def run_options(self, **stored: Any) -> Any:
        """These choices as ``predict_pool``'s :class:`~mdc_widgets.predictions.RunOptions` (``stored``: the rest).

        Parameters
        ----------
        **stored : object
            The options that are part of a store's identity (``chunk_size``,
            ``entropy``, ``probabilities``); never chosen here.

        Returns
        -------
        RunOptions
            Batch size, layout and precision from these settings, plus ``stored``.

        Examples
        --------
        >>> RunSettings(8, True, 1, False, 1, {}).run_options(chunk_size=64).batch_size
        8
        """
        from mdc_widgets.predictions._runner import RunOptions

        return RunOptions(batch_size=self.batch_size, channels_last=self.channels_last, amp=self.amp, **stored)

    def summary(self) -> str:
        """One line naming every choice.

        Examples
        --------
        >>> RunSettings(32, True, 2, False, 2**20, {"tv_a": 520}, "cpu", 2**30).summary()
        'predict on cpu: batch 32 (1.0 MiB an image, budget 1024 MiB), channels-last, 2 threads, fp32; tv_a runs at 520 px'
        """
        parts = [
            f"predict on {self.device}: batch {self.batch_size} ({self.bytes_per_image / 2**20:.1f} MiB an image, "
            f"budget {self.budget / 2**20:.0f} MiB)",
            "channels-last" if self.channels_last else "NCHW",
            f"{self.threads} thread{'s' if self.threads != 1 else ''}",
            "bf16 autocast" if self.amp else "fp32",
        ]
        line = ", ".join(parts)
        if self.resolutions:
            line += "; " + ", ".join(f"{m} runs at {px} px" for m, px in self.resolutions.items())
        else:
            line += "; every model at the pool's working resolution"
        return line


def default_memory_budget(device: str = "cpu") -> int:
    """Bytes a run may use for activations: a quarter of free RAM (CPU) or half of free GPU memory.

    Parameters
    ----------
    device : str, optional
        ``"cpu"`` or a CUDA device.

    Returns
    -------
    int
        The budget in bytes (2 GiB where free memory cannot be read).
    """
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free // 2)
    try:  # POSIX: available physical pages, no extra package needed
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4)
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


def _num_outputs(model: Any) -> int:
    classes = getattr(model, "classes", None) or ()
    return 1 if getattr(model, "task", "ss") == "sod" else max(1, len(classes))


def choose_run_settings(
    models: Sequence[Any],
    image_size: tuple[int, int],
    *,
    device: str = "cpu",
    memory_budget: int | None = None,
    cpu_count: int | None = None,
    batch_size: int | None = None,
    channels_last: bool | None = None,
    threads: int | None = None,
    amp: bool | None = None,
) -> RunSettings:
    """Batch size, layout, threads and precision for ``models`` on ``image_size`` images.

    Any argument given explicitly is kept; the others are chosen:

    - batch: as many images as the budget holds for the heaviest model
      (input, activations, the ``C`` output maps and their float copies),
      on the CPU at most 64 MiB of output a batch (larger blocks are
      page-faulted anew every batch), rounded down to a power of two,
      between 1 and 256;
    - layout: channels-last for convolutional models (faster on CPU and GPU),
      NCHW for modules without 4-D convolutions;
    - threads: all CPUs when the machine is idle, 1 when its load average
      already fills it (OpenMP spin-waits on oversubscribed cores);
    - bf16 autocast on CUDA only.

    Parameters
    ----------
    models : sequence
        Competitors (``task``, ``classes``, ``module``, optional ``preprocess``).
    image_size : tuple of int
        The pool's working ``(H, W)``.
    device : str, optional
        ``"cpu"`` or ``"cuda"``.
    memory_budget : int, optional
        Bytes for activations; default :func:`default_memory_budget`.
    cpu_count : int, optional
        CPUs to plan for; default ``os.cpu_count()``.
    batch_size, channels_last, threads, amp : optional
        Fixed values that override the choice.

    Returns
    -------
    RunSettings
        The batch size, layout, threads and precision chosen, with the budget
        and per-image estimate behind them; ``summary()`` says it in one line.

    Examples
    --------
    >>> class M:
    ...     task, classes, module = "ss", tuple("abc"), torch.nn.Conv2d(3, 3, 1)
    >>> s = choose_run_settings([M()], (320, 320), memory_budget=2**30, cpu_count=2)
    >>> s.batch_size, s.channels_last, s.amp
    (32, True, False)
    """
    from mdc_widgets.models.torchvision_adapters import internal_resolution

    device = str(device)
    budget = int(memory_budget if memory_budget is not None else default_memory_budget(device))
    h, w = (int(image_size[0]), int(image_size[1]))
    resolutions: dict[str, int] = {}
    per_image = 0
    output_bytes = 0
    for model in models:
        px = internal_resolution(model)
        mh, mw = h, w
        if px:
            resolutions[str(getattr(model, "name", model))] = int(px)
            scale = px / min(h, w)
            mh, mw = round(h * scale), round(w * scale)
        # input + activations at the model's size, its C logits at the model's size and again resized back
        outputs = _num_outputs(model)
        cost = 4 * mh * mw * (3 + _ACTIVATION_FACTOR + outputs) + 4 * h * w * 2 * outputs
        per_image = max(per_image, cost)
        output_bytes = max(output_bytes, 4 * outputs * max(mh * mw, h * w))
    if batch_size is None:
        fit = max(_MIN_BATCH, min(_MAX_BATCH, budget // max(per_image, 1)))
        if not device.startswith("cuda"):
            fit = max(_MIN_BATCH, min(fit, _CPU_OUTPUT_CAP // max(output_bytes, 1)))
        batch_size = 1 << (int(fit).bit_length() - 1)
    if channels_last is None:
        channels_last = any(
            isinstance(layer, torch.nn.Conv2d)
            for model in models
            if isinstance(getattr(model, "module", None), torch.nn.Module)
            for layer in model.module.modules()
        )
    if threads is None:
        cpus = int(cpu_count or os.cpu_count() or 1)
        try:
            busy = os.getloadavg()[0]
        except OSError:  # pragma: no cover - not on Linux/macOS
            busy = 0.0
        threads = 1 if device.startswith("cuda") else max(1, min(cpus, int(cpus - busy + 0.5)))
    if amp is None:
        amp = device.startswith("cuda")
    return RunSettings(
        batch_size=int(batch_size),
        channels_last=bool(channels_last),
        threads=int(threads),
        amp=bool(amp),
        bytes_per_image=int(per_image),
        resolutions=resolutions,
        device=device,
        budget=budget,
    )
