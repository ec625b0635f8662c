"""Every hard-example strategy head to head with MAD, on the mini-world where ground truth says what is hard.

For each seed a fresh pool is generated and every strategy picks ``k``
images. A pick is judged by

- **hardness**: each model's score on the picked images against a random set
  of the same size (relative change, %; negative = harder),
- **diversity**: how many nuisance factors and dominant classes the picks cover,
- **labels needed** before selecting (MAD and the unsupervised strategies: none;
  loss-based: the whole pool),
- **cost**: seconds to score the pool,
- **closing the loop**: the gain in mIoU on a held-out hard test set after
  fine-tuning the weakest segmentation model on the ``k`` picks (with their
  mini-world labels).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdc_widgets._atomic import atomic_write_text

__all__ = [
    "DEFAULT_STRATEGIES",
    "StrategyStudyConfig",
    "finetune_gain",
    "run_strategy_study",
    "strategy_table_markdown",
]

DEFAULT_STRATEGIES = (
    "random",
    "loss",
    "focal",
    "entropy",
    "u2pl_unreliable",
    "ensemble_mutual_information",
    "occlusion_stress",
    "hide_and_seek_stress",
    "blur_stress",
    "adversarial_erasing_depth",
    "mad_ss",
    "mad_sod",
    "mad_cross",
    "mad_joint",
)
HARD_FACTORS = {
    "small": lambda md: md["object_scale"] < 0.09,
    "occlusion": lambda md: md["occlusion"] > 0,
    "blur": lambda md: md["blur"] > 0,
    "noise": lambda md: md["noise"] > 0,
    "low_contrast": lambda md: md["contrast"] < 1,
    "camouflage": lambda md: md["camouflage"] > 0,
    "clutter": lambda md: md["clutter"] >= 3,
}


@dataclass
class StrategyStudyConfig:
    """Parameters of the strategy comparison (the papermill parameters of notebook 07).

    Parameters
    ----------
    pool_size : int, optional
        Mini-world images per pool (one pool per seed).
    k : int, optional
        Images each strategy picks.
    seeds : sequence of int, optional
        One pool and one random pick per seed.
    strategies : sequence of str, optional
        Registered strategy names compared (``random`` among them by default).
    ss_models : sequence of str, optional
        SS models predicted (the first two form the MAD SS pair).
    sod_models : sequence of str, optional
        SOD models predicted (the first two form the MAD SOD pair).
    target_model : str, optional
        The SS model scored by single-model strategies and fine-tuned.
    finetune_steps : int, optional
        Optimizer steps of :func:`finetune_gain`.
    finetune_lr : float, optional
        Learning rate of :func:`finetune_gain`.
    test_size : int, optional
        Images of the ``test_hard`` split the fine-tuned model is scored on.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    store : str or None, optional
        Folder of the prediction stores; None for ``<cache>/stores``.
    """

    pool_size: int = 1000
    k: int = 60
    seeds: Sequence[int] = (1, 2, 3)
    strategies: Sequence[str] = DEFAULT_STRATEGIES
    ss_models: Sequence[str] = ("mw_fcn_ss", "mw_unet_ss", "mw_deeplabv3plus_ss")
    sod_models: Sequence[str] = ("mw_unet_sod", "mw_vst_sod", "mw_fcn_sod")
    target_model: str = "mw_fcn_ss"  # the weakest SS model on the validation split: scored and fine-tuned
    finetune_steps: int = 120
    finetune_lr: float = 1e-3
    test_size: int = 600
    device: str = "auto"
    store: str | None = None


def _strategy_kwargs(name: str, config: StrategyStudyConfig, discrepancy: Any) -> dict[str, Any]:
    from mdc_widgets.strategies import get_strategy

    params = get_strategy(name).params
    wanted = {
        "model": config.target_model,
        "ss_models": tuple(config.ss_models[:2]),
        "sod_models": tuple(config.sod_models[:2]),
        "discrepancy": discrepancy,
    }
    if name == "ensemble_mutual_information":
        wanted["members"] = tuple(config.ss_models)
    return {k: v for k, v in wanted.items() if k in params}


def _finetune_data(pool: Any, ids: Sequence[str], ground_truth: Any) -> tuple[torch.Tensor, torch.Tensor]:
    index = {s: i for i, s in enumerate(pool.sample_ids)}
    rows = [index[s] for s in ids]
    images = np.stack([pool.read_images(i, i + 1)[0][0] for i in rows])
    labels = ground_truth["semantic"].sel(sample=list(ids)).values
    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels.astype(np.int64)))


def finetune_gain(
    competitor: Any,
    picked: tuple[torch.Tensor, torch.Tensor],
    replay: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    lr: float,
    seed: int,
) -> tuple[float, float]:
    """Fine-tune a copy of an SS competitor on the picked images and return its test mIoU before and after.

    Each batch is half picks, half replay of its training data, so it does not
    forget; the competitor itself is not changed.

    Parameters
    ----------
    competitor : Competitor
        An SS competitor with an ``nn.Module``.
    picked : tuple of 2 torch.Tensor
        The picked images ``(n, 3, H, W)`` float in [0, 1] and their labels ``(n, H, W)`` int64.
    replay : tuple of 2 torch.Tensor
        Training images and labels, in the same layout.
    test : tuple of 2 torch.Tensor
        Test images and labels, in the same layout.
    steps : int
        Optimizer steps (batches of 16 picks and 16 replays).
    lr : float
        AdamW learning rate.
    seed : int
        Seed of the batch draws and of torch.

    Returns
    -------
    before : float
        Test mIoU of the unchanged network.
    after : float
        Test mIoU after fine-tuning.
    """
    from mdc_widgets.metrics import miou

    n_cls = len(competitor.classes)

    def test_miou(module: torch.nn.Module) -> float:
        module.eval()
        with torch.inference_mode():
            pred = torch.cat(
                [module(competitor.preprocess(test[0][i : i + 256])).argmax(1) for i in range(0, len(test[0]), 256)]
            )
        return float(miou(pred, test[1], n_cls, per_image=False))

    module = copy.deepcopy(competitor.module).cpu()
    before = test_miou(module)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    module.train()
    half = 16
    for _ in range(steps):
        i = torch.randint(0, len(picked[0]), (half,), generator=generator)
        j = torch.randint(0, len(replay[0]), (half,), generator=generator)
        x = torch.cat([picked[0][i], replay[0][j]])
        y = torch.cat([picked[1][i], replay[1][j]])
        loss = F.cross_entropy(module(competitor.preprocess(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return before, test_miou(module)


def _diversity(metadata: Any, ids: Sequence[str]) -> dict[str, float]:
    md = metadata.sel(sample=list(ids))
    flags = {name: np.asarray(test(md)) for name, test in HARD_FACTORS.items()}
    covered = sum(int(f.any()) for f in flags.values())
    per_image = np.sum(list(flags.values()), axis=0)
    classes = np.asarray(md["dominant_class"].values)
    return {
        "factors_covered": covered,
        "factors_per_image": float(per_image.mean()),
        "classes_covered": int(len(np.unique(classes[classes > 0]))),
        **{f"share_{name}": float(f.mean()) for name, f in flags.items()},
    }


def run_strategy_study(
    config: StrategyStudyConfig | None = None, output: str | Path | None = None, progress: bool = False
) -> dict[str, Any]:
    """Run the comparison; returns ``per_seed`` rows, the summary ``table`` and the ``config``.

    Parameters
    ----------
    config : StrategyStudyConfig or None, optional
        The study; None for ``StrategyStudyConfig()``.
    output : str or pathlib.Path or None, optional
        Folder (created) for ``strategies_per_seed.csv``, ``strategies_table.csv`` and ``.md``;
        None writes nothing.
    progress : bool, optional
        Show prediction progress bars.

    Returns
    -------
    dict of {str: object}
        ``per_seed`` (pandas.DataFrame, one row per seed and strategy), ``table``
        (:func:`summarize_strategy_study`) and ``config`` (the configuration as a dict).
    """
    from mdc_widgets.config import cache_dir, resolve_device
    from mdc_widgets.data import generate_miniworld, open_pool
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.metrics import evaluate
    from mdc_widgets.mining import Constraints, select_top_k
    from mdc_widgets.models import get_model
    from mdc_widgets.predictions import predict_pool
    from mdc_widgets.strategies import get_strategy, score_pool

    config = config or StrategyStudyConfig()
    device = resolve_device(config.device)
    names = [*config.ss_models, *config.sod_models]
    models = [get_model(n, device=device) for n in names]
    target = next(m for m in models if m.name == config.target_model)
    test_ds = generate_miniworld("test_hard", n=config.test_size, seed=0)
    test = (
        torch.from_numpy(test_ds["image"].values).permute(0, 3, 1, 2).float() / 255.0,
        torch.from_numpy(test_ds["semantic"].values.astype(np.int64)),
    )
    train_ds = generate_miniworld("train", n=800, seed=0)
    replay = (
        torch.from_numpy(train_ds["image"].values).permute(0, 3, 1, 2).float() / 255.0,
        torch.from_numpy(train_ds["semantic"].values.astype(np.int64)),
    )
    rows = []
    for seed in config.seeds:
        pool = open_pool("miniworld", n=config.pool_size, seed=seed)
        store = Path(config.store or cache_dir() / "stores") / pool.fingerprint
        predictions = predict_pool(pool, models, store, device=device, progress=progress)
        ground_truth = pool.ground_truth()
        metadata = pool.metadata()
        t0 = time.perf_counter()
        discrepancy = compute_discrepancies(predictions, device=device)
        discrepancy_seconds = time.perf_counter() - t0  # MAD's scoring cost, shared by its four strategies
        per_image = evaluate(predictions, ground_truth)
        metric = {m: ("miou" if m in config.ss_models else "fbeta_max") for m in names}
        valid_ids = np.array([str(s) for s in predictions["sample"].values])[predictions["valid"].values]
        random_ids = np.random.default_rng(seed).choice(valid_ids, size=config.k, replace=False)
        baseline = {m: float(per_image[metric[m]].sel(model=m, sample=list(random_ids)).mean()) for m in names}
        for name in config.strategies:
            strategy = get_strategy(name)
            t0 = time.perf_counter()
            scores = score_pool(
                name,
                pool=pool,
                predictions=predictions,
                models=models,
                ground_truth=ground_truth if strategy.needs_labels else None,
                seed=seed,
                device=device,
                **_strategy_kwargs(name, config, discrepancy),
            )
            seconds = time.perf_counter() - t0 + (discrepancy_seconds if name.startswith("mad_") else 0.0)
            picked = select_top_k(scores, config.k, Constraints.none()).samples
            row = {
                "seed": seed,
                "strategy": name,
                "seconds": seconds,
                "labels_needed": config.pool_size if strategy.needs_labels else 0,
                "k": len(picked),
            }
            drops = []
            for m in names:
                value = float(per_image[metric[m]].sel(model=m, sample=picked).mean())
                row[f"score_{m}"] = value
                drops.append(100.0 * (value - baseline[m]) / max(baseline[m], 1e-9))
            row["hardness_drop_pct"] = float(np.mean(drops))
            row.update(_diversity(metadata, picked))
            before, after = finetune_gain(
                target,
                _finetune_data(pool, picked, ground_truth),
                replay,
                test,
                config.finetune_steps,
                config.finetune_lr,
                seed,
            )
            row.update({"test_miou_before": before, "test_miou_after": after, "finetune_gain": after - before})
            rows.append(row)
    per_seed = pd.DataFrame(rows)
    table = summarize_strategy_study(per_seed)
    result = {"per_seed": per_seed, "table": table, "config": asdict(config)}
    if output is not None:
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / "strategies_per_seed.csv", per_seed.to_csv(index=False))
        atomic_write_text(output / "strategies_table.csv", table.to_csv(index=False))
        atomic_write_text(output / "strategies_table.md", strategy_table_markdown(table))
    return result


def summarize_strategy_study(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI over seeds of hardness and fine-tuning gain; means of diversity, labels and cost.

    Parameters
    ----------
    per_seed : pandas.DataFrame
        :func:`run_strategy_study`'s ``per_seed``.

    Returns
    -------
    pandas.DataFrame
        One row per strategy.
    """
    from mdc_widgets.experiments.paper import _ci

    rows = []
    for name, grp in per_seed.groupby("strategy", sort=False):
        hard, hard_lo, hard_hi = _ci(grp["hardness_drop_pct"].values)
        gain, gain_lo, gain_hi = _ci(grp["finetune_gain"].values)
        rows.append(
            {
                "strategy": name,
                "hardness_drop_pct": hard,
                "hardness_ci_low": hard_lo,
                "hardness_ci_high": hard_hi,
                "finetune_gain": gain,
                "gain_ci_low": gain_lo,
                "gain_ci_high": gain_hi,
                "factors_covered": grp["factors_covered"].mean(),
                "factors_per_image": grp["factors_per_image"].mean(),
                "classes_covered": grp["classes_covered"].mean(),
                "labels_needed": int(grp["labels_needed"].iloc[0]),
                "seconds": grp["seconds"].mean(),
            }
        )
    return pd.DataFrame(rows)


def strategy_table_markdown(table: pd.DataFrame) -> str:
    """The strategy table as Markdown, hardest picks first.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`summarize_strategy_study`'s table.

    Returns
    -------
    str
        One Markdown table.
    """

    def ci(lo: float, hi: float, fmt: str) -> str:
        return "" if np.isnan(lo) else f" [{lo:{fmt}}, {hi:{fmt}}]"

    lines = [
        "| strategy | score vs random, % | fine-tune gain (test mIoU) | factors covered (of 7) | "
        "factors per image | classes | labels before selection | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.sort_values("hardness_drop_pct").iterrows():
        lines.append(
            f"| {r['strategy']} | {r['hardness_drop_pct']:.1f}{ci(r['hardness_ci_low'], r['hardness_ci_high'], '.1f')} "
            f"| {r['finetune_gain']:+.3f}{ci(r['gain_ci_low'], r['gain_ci_high'], '+.3f')} "
            f"| {r['factors_covered']:.1f} | {r['factors_per_image']:.2f} | {r['classes_covered']:.1f} "
            f"| {r['labels_needed']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"
