"""Reproducible training of the mini-world zoo on the CPU, cached by a hash of the config."""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mdc_widgets._atomic import atomic_write_bytes, atomic_write_json
from mdc_widgets.config import cache_dir

__all__ = ["TRAINING_VERSION", "TrainConfig", "augment", "config_hash", "train", "weights_path"]

TRAINING_VERSION = "1"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a trained mini-world model; its hash names the cached weights.

    Parameters
    ----------
    architecture : str
        The builder's name, e.g. ``"unet"``, ``"fcn"``, ``"deeplabv3plus"``, ``"vst"``.
    task : {"ss", "sod"}
        Trained with cross-entropy (SS) or BCE + soft IoU (SOD).
    width : int
        The builder's width (see :mod:`mdc_widgets.models.architectures`).
    epochs : int, optional
        Passes over the training split.
    batch_size : int, optional
        Images per optimiser step.
    lr : float, optional
        Peak learning rate of AdamW under a one-cycle schedule.
    train_size : int, optional
        Images of the mini-world ``"train"`` split.
    augment : tuple of str, optional
        Augmentations, any of ``"flip"``, ``"color"``, ``"contrast"``,
        ``"blur"``, ``"noise"`` (see :func:`augment`).
    seed : int, optional
        Seeds the initialisation, batch order and augmentations.
    data_seed : int, optional
        Seed of the generated training and validation data.
    image_size : int, optional
        Side of the square training images in pixels.
    threads : int, optional
        CPU threads while training; a fixed count keeps the weights
        bit-identical across machines (1: sequential sums).
    """

    architecture: str
    task: str
    width: int
    epochs: int = 5
    batch_size: int = 32
    lr: float = 3e-3
    train_size: int = 2000
    augment: tuple[str, ...] = ()
    seed: int = 0
    data_seed: int = 0
    image_size: int = 64
    # CPU threads during training: parallel gradient reductions sum in a thread-dependent order, so one
    # fixed count (1: a sequential, bit-reproducible sum) makes the weights independent of the machine's cores
    threads: int = 1


def config_hash(config: TrainConfig) -> str:
    """A short stable hash of the config, the generator version and the training code version.

    Parameters
    ----------
    config : TrainConfig
        The training configuration.

    Returns
    -------
    str
        12 hex digits; changes when any field, ``GENERATOR_VERSION`` or
        ``TRAINING_VERSION`` changes.
    """
    from mdc_widgets.data.miniworld import GENERATOR_VERSION

    body = json.dumps({**asdict(config), "generator": GENERATOR_VERSION, "training": TRAINING_VERSION}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def weights_path(name: str, config: TrainConfig) -> Path:
    """Where the weights of ``name`` trained with ``config`` are cached (the file may not exist yet).

    Parameters
    ----------
    name : str
        The model's registry name.
    config : TrainConfig
        Its training configuration.

    Returns
    -------
    pathlib.Path
        ``<cache>/weights/<name>-<config hash>.pt``; the metadata is the same
        path with ``.json``.
    """
    return cache_dir() / "weights" / f"{name}-{config_hash(config)}.pt"


def augment(
    images: torch.Tensor, targets: torch.Tensor, kinds: tuple[str, ...], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched, seeded augmentations: ``flip``, ``color`` (jitter), ``contrast``, ``blur``, ``noise``.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float RGB in [0, 1].
    targets : torch.Tensor
        ``(n, H, W)`` labels or saliency; flipped with their images, never
        otherwise changed.
    kinds : tuple of str
        The augmentations to apply, in the order above, each to a random
        subset of the batch.
    generator : torch.Generator
        The source of randomness, so a seed fixes every draw.

    Returns
    -------
    images : torch.Tensor
        Augmented images, same shape, in [0, 1].
    targets : torch.Tensor
        Targets, flipped where their images were.
    """
    n = images.shape[0]

    def coin(p: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) < p

    if "flip" in kinds:
        flip = coin(0.5)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        targets = torch.where(flip.view(-1, *[1] * (targets.ndim - 1)), targets.flip(-1), targets)
    if "color" in kinds:
        gain = 1 + 0.25 * (torch.rand(n, 3, 1, 1, generator=generator) - 0.5)
        images = (images * gain).clamp(0, 1)
    if "contrast" in kinds:
        c = torch.where(coin(0.4), 0.3 + 0.6 * torch.rand(n, generator=generator), torch.ones(n))
        images = 0.5 + c[:, None, None, None] * (images - 0.5)
    if "blur" in kinds:
        blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        images = torch.where(coin(0.3)[:, None, None, None], blurred, images)
    if "noise" in kinds:
        std = torch.where(coin(0.3), 0.05 + 0.1 * torch.rand(n, generator=generator), torch.zeros(n))
        images = (images + std[:, None, None, None] * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    return images, targets


def _quality(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, task: str, n_cls: int, preprocess: Any
) -> dict[str, float]:
    """Validation quality: SS mIoU from the set's confusion; SOD IoU of the adaptively binarised maps."""
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(preprocess(images[i : i + 128])) for i in range(0, len(images), 128)])
    if task == "ss":
        pred = out.argmax(1)
        conf = torch.bincount((targets.long() * n_cls + pred).flatten(), minlength=n_cls * n_cls).reshape(n_cls, n_cls)
        inter = conf.diag().float()
        union = conf.sum(0).float() + conf.sum(1).float() - inter
        present = union > 0
        return {"miou": float((inter[present] / union[present]).mean())}
    sal = out.sigmoid()[:, 0]
    thr = (2 * sal.mean(dim=(1, 2), keepdim=True)).clamp(max=1)
    binary = (sal >= thr) & (sal > 0)
    gt = targets > 0.5
    inter = (binary & gt).sum(dim=(1, 2)).float()
    union = (binary | gt).sum(dim=(1, 2)).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    mae = (sal - targets.float()).abs().mean()
    return {"iou": float(iou.mean()), "mae": float(mae)}


def _split_tensors(
    split: str, n: int | None, seed: int, image_size: int, task: str
) -> tuple[torch.Tensor, torch.Tensor]:
    from mdc_widgets.data.miniworld import generate_miniworld

    ds = generate_miniworld(split, n=n, seed=seed, image_size=image_size)
    images = torch.from_numpy(ds["image"].values).permute(0, 3, 1, 2).float() / 255.0
    if task == "ss":
        return images, torch.from_numpy(ds["semantic"].values.astype(np.int64))
    return images, torch.from_numpy((ds["saliency"].values > 0).astype(np.float32))


def train(name: str, config: TrainConfig, build: Any, preprocess: Any, n_classes: int, progress: bool = True) -> Path:
    """Train one model from ``config`` and save ``state_dict`` + metadata atomically; returns the weights path.

    Same config, same weights, bit for bit on one machine (and across machines
    with the same torch build and CPU instruction set): seeds fix the data, the
    initialisation, the batch order and the augmentations, deterministic
    algorithms are switched on, and training runs on ``config.threads`` CPU
    threads (restored afterwards).

    Parameters
    ----------
    name : str
        The model's registry name (names the cached file).
    config : TrainConfig
        What to train.
    build : callable
        ``build()`` returns the untrained network.
    preprocess : callable
        Maps [0, 1] images to the network's input.
    n_classes : int
        Classes for the SS validation mIoU (ignored for SOD).
    progress : bool, optional
        Show a tqdm bar of the steps.

    Returns
    -------
    pathlib.Path
        The weights file (:func:`weights_path`); its ``.json`` sibling holds
        the config, training time and validation quality on ``val`` and
        ``test_hard``.
    """
    path = weights_path(name, config)
    with _deterministic(config.threads):
        return _train(path, name, config, build, preprocess, n_classes, progress)


def _train(
    path: Path, name: str, config: TrainConfig, build: Any, preprocess: Any, n_classes: int, progress: bool
) -> Path:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    images, targets = _split_tensors("train", config.train_size, config.data_seed, config.image_size, config.task)
    model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = config.epochs * (-(-len(images) // config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train {name}", unit="step", leave=False)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model.train()
        for _ in range(config.epochs):
            order = torch.randperm(len(images), generator=generator)
            for lo in range(0, len(images), config.batch_size):
                idx = order[lo : lo + config.batch_size]
                x, y = augment(images[idx], targets[idx], config.augment, generator)
                logits = model(preprocess(x))
                if config.task == "ss":
                    loss = F.cross_entropy(logits, y)
                else:
                    prob = logits[:, 0].sigmoid()
                    inter = (prob * y).sum(dim=(1, 2))
                    soft_iou = 1 - (inter + 1) / (prob.sum(dim=(1, 2)) + y.sum(dim=(1, 2)) - inter + 1)
                    loss = F.binary_cross_entropy_with_logits(logits[:, 0], y) + soft_iou.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    train_seconds = time.perf_counter() - t0
    quality = {}
    for split in ("val", "test_hard"):
        x, y = _split_tensors(split, None, config.data_seed, config.image_size, config.task)
        quality[split] = _quality(model, x, y, config.task, n_classes, preprocess)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_json(
        path.with_suffix(".json"),
        {
            "name": name,
            "config": asdict(config),
            "config_hash": config_hash(config),
            "train_seconds": round(train_seconds, 2),
            "quality": quality,
            "torch": torch.__version__,
        },
    )
    return path


class _deterministic:
    """Deterministic algorithms and a fixed CPU thread count inside; the caller's settings restored after."""

    def __init__(self, threads: int = 1):
        if threads < 1:
            raise ValueError(f"TrainConfig.threads must be at least 1; got {threads}.")
        self.threads = int(threads)

    def __enter__(self) -> None:
        self.previous = torch.are_deterministic_algorithms_enabled()
        self.previous_threads = torch.get_num_threads()
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        torch.use_deterministic_algorithms(self.previous)
        torch.set_num_threads(self.previous_threads)
