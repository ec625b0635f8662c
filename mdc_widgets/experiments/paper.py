"""The paper's experiment in miniature: joint (GHS-CV-style) vs single-task (SS-C, SOD-C) vs random sets.

For each seed a fresh pool is generated, every competitor predicts it once,
and four sets of equal size are mined from it:

- ``joint``: one competition group per (SS pair, SOD pair), joint score with
  all three terms, disjoint across groups (GHS-CV),
- ``ss_only``: one group per SS pair, SS term only, mined with the
  published IJCV 2021 MAD rule (``protocol="ijcv2021"``: each model in turn
  the defender, per-class candidates in the defender's 25th-75th percentile
  area band) or with our own top-k rule (``protocol="mdc"``),
- ``sod_only``: one group per SOD pair, SOD term only, with our analogue of
  that rule on the salient area (no published MAD rule exists for SOD), or
  with our top-k rule under ``protocol="mdc"``,
- ``random``: the same number of valid images drawn at random.

Near-duplicate suppression (``dedup_threshold``) compares thumbnails of the
pool's *images*, never of the prediction maps; it applies to the ``mdc``
rule only (the published rule has its own per-class quota and no dedup).
The joint set is always mined with our rule (no published rule mines three
terms); ``fusion_overlap`` measures how much it depends on the score fusion.

Every model is then evaluated on every set against the ground truth, and the
relative drop of its score on the joint set against each other set is
reported, with a confidence interval over seeds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field, fields, replace
from itertools import combinations, product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.experiments.paper_tables import (  # their home; importable from here as before
    SET_LABELS,
    SET_NAMES,
    _ci,  # noqa: F401 (the tests' import path)
    paper_table_markdown,
    set_labels,
    summarize_paper_experiment,
    write_paper_outputs,
)
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, mine_groups, pool_features, selected_samples

__all__ = [
    "SET_LABELS",
    "SET_NAMES",
    "PaperConfig",
    "fusion_overlap",
    "mine_paper_sets",
    "paper_table_markdown",
    "run_paper_experiment",
    "set_labels",
    "summarize_paper_experiment",
    "write_paper_outputs",
]

PROTOCOLS = ("ijcv2021", "mdc")
FUSIONS = ("rank", "raw", "minmax")


class _FromConstraints:
    """The default of a constraint keyword of :class:`PaperConfig`: take the value ``constraints`` holds."""

    def __repr__(self) -> str:
        return "<from constraints>"


_FROM_CONSTRAINTS: Any = _FromConstraints()
# the constraint fields PaperConfig has always taken as keywords; their values live in ``constraints``
_CONSTRAINT_KEYWORDS = ("foreground_area", "dedup_threshold", "max_per_class")


@dataclass
class PaperConfig:
    """Parameters of the miniature reproduction (all papermill parameters of notebook 04).

    ``constraints`` are those of our (``mdc``) rule, by default
    ``Constraints()``; near-duplicate suppression compares thumbnails of the
    pool's images. ``foreground_area``, ``dedup_threshold`` and
    ``max_per_class`` are still accepted as keywords (they replace that field
    of ``constraints``) and read back as attributes.

    Parameters
    ----------
    pool : str, optional
        The pool name passed to ``open_pool`` (one pool of ``pool_size`` images per seed).
    pool_size : int, optional
        Images per pool.
    ss_models : sequence of str, optional
        The SS competitors (registry names); every pair of them competes.
    sod_models : sequence of str, optional
        The SOD competitors (registry names); every pair of them competes.
    set_size : int, optional
        Images per mined set (split evenly over the set's groups).
    weights : tuple of 3 float, optional
        ``(ss, sod, cross)`` term weights of the joint set.
    seeds : sequence of int, optional
        One pool, one random set and one row of results per seed.
    constraints : Constraints, optional
        The diversity constraints of the ``mdc`` rule.
    protocol : str, optional
        Rule of the single-task sets: ``"ijcv2021"`` (published) or ``"mdc"`` (ours).
    fusion : str, optional
        Score fusion of the joint set: ``"rank"``, ``"raw"`` or ``"minmax"``.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...; resolved by ``resolve_device``.
    store : str or None, optional
        Folder of the prediction stores; None for ``<cache>/stores``.
    foreground_area : tuple of 2 float or None, optional
        Replaces ``constraints.foreground_area`` when given.
    dedup_threshold : float or None, optional
        Replaces ``constraints.dedup_threshold`` when given.
    max_per_class : int or None, optional
        Replaces ``constraints.max_per_class`` when given.

    Raises
    ------
    MdcError
        When ``protocol`` or ``fusion`` is not one of the values above.

    Examples
    --------
    >>> PaperConfig(dedup_threshold=None).constraints.dedup_threshold is None
    True
    >>> PaperConfig().dedup_threshold == Constraints().dedup_threshold
    True
    """

    pool: str = "miniworld"
    pool_size: int = 3000
    ss_models: Sequence[str] = ("mw_unet_ss", "mw_fcn_ss", "mw_deeplabv3plus_ss")
    sod_models: Sequence[str] = ("mw_unet_sod", "mw_fcn_sod", "mw_vst_sod")
    set_size: int = 90
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seeds: Sequence[int] = (1, 2, 3)
    constraints: Constraints = field(default_factory=Constraints)
    protocol: str = "ijcv2021"  # rule of the single-task sets: "ijcv2021" (published) or "mdc" (ours)
    fusion: str = "rank"  # score fusion of the joint set: "rank", "raw" or "minmax"
    device: str = "auto"
    store: str | None = None
    foreground_area: InitVar[tuple[float, float] | None] = _FROM_CONSTRAINTS
    dedup_threshold: InitVar[float | None] = _FROM_CONSTRAINTS
    max_per_class: InitVar[int | None] = _FROM_CONSTRAINTS

    def __post_init__(self, foreground_area: Any, dedup_threshold: Any, max_per_class: Any) -> None:
        from mdc_widgets.errors import MdcError

        if self.protocol not in PROTOCOLS:
            raise MdcError(f"protocol must be one of {PROTOCOLS}; got {self.protocol!r}.")
        if self.fusion not in FUSIONS:
            raise MdcError(f"fusion must be one of {FUSIONS}; got {self.fusion!r}.")
        given = dict(zip(_CONSTRAINT_KEYWORDS, (foreground_area, dedup_threshold, max_per_class)))
        given = {name: value for name, value in given.items() if value is not _FROM_CONSTRAINTS}
        if given:
            self.constraints = replace(self.constraints, **given)

    def as_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values (``constraints`` as :meth:`Constraints.as_dict`)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "constraints": self.constraints.as_dict()}

    def groups(self) -> dict[str, list[CompetitionGroup]]:
        """The competition groups of each mined set: every SS pair, every SOD pair, and each (SS pair, SOD pair).

        Returns
        -------
        dict of {str: list of CompetitionGroup}
            ``joint``, ``ss_only`` and ``sod_only``.
        """
        ss_pairs = list(combinations(self.ss_models, 2))
        sod_pairs = list(combinations(self.sod_models, 2))
        return {
            "joint": [CompetitionGroup(ss=s, sod=p) for s, p in product(ss_pairs, sod_pairs)],
            "ss_only": [CompetitionGroup(ss=s) for s in ss_pairs],
            "sod_only": [CompetitionGroup(sod=p) for p in sod_pairs],
        }


# the single-task sets have one term; the joint set takes the configured weights
_SET_KINDS = {"ss_only": "ss", "sod_only": "sod"}


def _set_weights(name: str, weights: tuple[float, float, float]) -> Weights:
    return Weights.for_kind(_SET_KINDS[name]) if name in _SET_KINDS else Weights.coerce(weights)


def _picks(results: dict[str, xr.Dataset]) -> list[str]:
    """The groups' picks best first, interleaved over the groups (every group's best, then every second, ...)."""
    per_group = [selected_samples(r) for r in results.values()]
    out: list[str] = []
    for rank in range(max((len(p) for p in per_group), default=0)):
        out += [p[rank] for p in per_group if rank < len(p)]
    return out


def mine_paper_sets(
    predictions: xr.Dataset,
    config: PaperConfig,
    seed: int,
    discrepancy: xr.DataArray | None = None,
    pool: Pool | None = None,
    features: np.ndarray | None = None,
) -> dict[str, list[str]]:
    """Mine the joint, single-task and random sets of equal size from one pool's predictions.

    ``features`` (or the ``pool``, whose image thumbnails are computed once)
    drive near-duplicate suppression; with neither, dedup is switched off
    rather than run on thumbnails of the prediction maps. Each set lists its
    ids best first (interleaved over its groups); ``random`` is sorted.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool (every model of ``config``).
    config : PaperConfig
        Models, set size, weights, constraints, protocol and fusion.
    seed : int
        Seed of the random set.
    discrepancy : xarray.DataArray or None, optional
        ``compute_discrepancies(predictions)``, computed when None.
    pool : Pool or None, optional
        The pool, for near-duplicate features when ``features`` is None.
    features : numpy.ndarray or None, optional
        ``(sample, d)`` image features for near-duplicate suppression.

    Returns
    -------
    dict of {str: list of str}
        ``joint``, ``ss_only``, ``sod_only`` and ``random``, all of the size of the shortest.
    """
    from mdc_widgets.discrepancy import compute_discrepancies

    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions)
    if features is None and pool is not None and config.constraints.dedup_threshold is not None:
        features = pool_features(pool)
    constraints = _constraints(config, features)
    sets: dict[str, list[str]] = {}
    for name, groups in config.groups().items():
        # equal-sized sets: the set size is split evenly over the set's groups
        k = max(1, config.set_size // len(groups))
        protocol = "mdc" if name == "joint" else config.protocol
        results = mine_groups(
            predictions,
            groups,
            _set_weights(name, config.weights),
            k,
            constraints,
            disjoint=True,
            discrepancy=discrepancy,
            save=False,
            protocol=protocol,
            fusion=config.fusion if name == "joint" else "rank",
            features=features,
            # ijcv2021: the pair's budget k is filled round-robin over its (defender, class) cells, i.e.
            # N = ceil(k / cells) per class per defender with the last round cut at k (N = 20 for PASCAL)
            n_per_class=k if protocol == "ijcv2021" else None,
        )
        sets[name] = _picks(results)
    # equal sizes: a set that came up short (too few candidates) cuts the others to its size, best first
    size = min(len(v) for v in sets.values())
    sets = {name: ids[:size] for name, ids in sets.items()}
    valid_ids = predictions["sample"].values[predictions["valid"].values].astype(str)
    rng = np.random.default_rng(seed)
    sets["random"] = sorted(rng.choice(valid_ids, size=size, replace=False).tolist())
    return sets


def _constraints(config: PaperConfig, features: np.ndarray | None) -> Constraints:
    """The configured constraints; without image features, no dedup (never on thumbnails of the maps)."""
    return config.constraints if features is not None else replace(config.constraints, dedup_threshold=None)


def fusion_overlap(
    predictions: xr.Dataset,
    config: PaperConfig,
    discrepancy: xr.DataArray | None = None,
    features: np.ndarray | None = None,
    fusions: Sequence[str] = FUSIONS,
) -> pd.DataFrame:
    """How much the joint set changes with the score fusion: overlap and Jaccard of its ids, per pair of fusions.

    Mining only (no evaluation): the joint set of ``config`` is mined once per
    fusion on the same predictions. The single-task sets have one term, so
    the fusion cannot change them.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool.
    config : PaperConfig
        Models, set size, weights and constraints of the joint set.
    discrepancy : xarray.DataArray or None, optional
        ``compute_discrepancies(predictions)``, computed when None.
    features : numpy.ndarray or None, optional
        ``(sample, d)`` image features; without them dedup is off.
    fusions : sequence of str, optional
        The fusions compared, every pair of them.

    Returns
    -------
    pandas.DataFrame
        One row per pair of fusions: ``set``, ``fusion_a``, ``fusion_b``, ``n_a``, ``n_b``,
        ``overlap`` (common ids) and ``jaccard``.
    """
    from mdc_widgets.discrepancy import compute_discrepancies

    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions)
    constraints = _constraints(config, features)
    groups = config.groups()["joint"]
    k = max(1, config.set_size // len(groups))
    picked = {}
    for fusion in fusions:
        results = mine_groups(
            predictions,
            groups,
            _set_weights("joint", config.weights),
            k,
            constraints,
            disjoint=True,
            discrepancy=discrepancy,
            save=False,
            fusion=fusion,
            features=features,
        )
        picked[fusion] = set(_picks(results))
    rows = []
    for a, b in combinations(fusions, 2):
        common = len(picked[a] & picked[b])
        union = len(picked[a] | picked[b])
        rows.append(
            {
                "set": "joint",
                "fusion_a": a,
                "fusion_b": b,
                "n_a": len(picked[a]),
                "n_b": len(picked[b]),
                "overlap": common,
                "jaccard": common / union if union else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _weights_key(models: Sequence[Any]) -> str:
    """A short hash of the competitors' weights: a retrained zoo never reuses another zoo's stored predictions."""
    digest = hashlib.sha256()
    for model in models:
        digest.update(str(getattr(model, "name", model)).encode())
        module = getattr(model, "module", None)
        if module is None:
            continue
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def _evaluate_sets(predictions: xr.Dataset, ground_truth: xr.Dataset, sets: dict[str, list[str]]) -> pd.DataFrame:
    from mdc_widgets.metrics import evaluate, summarize

    union = sorted({s for ids in sets.values() for s in ids})
    per_image = evaluate(predictions.sel(sample=union), ground_truth.sel(sample=union))
    rows = []
    for set_name, ids in sets.items():
        summary = summarize(per_image, ids)
        for model in summary["model"].values:
            task = str(predictions["task"].sel(model=model).values)
            metric = "miou" if task == "ss" else "fbeta_max"
            images = per_image[metric].sel(model=model, sample=ids).values
            # a failure: the image's own score is below one half
            rows.append(
                {
                    "set": set_name,
                    "model": str(model),
                    "task": task,
                    "metric": metric,
                    "value": float(summary[metric].sel(model=model)),
                    "failure_rate": float(np.nanmean(images < 0.5)),
                    "n_images": len(ids),
                    **{f"{m}": float(summary[m].sel(model=model)) for m in summary.data_vars},
                }
            )
    return pd.DataFrame(rows)


def run_paper_experiment(
    config: PaperConfig | None = None,
    output: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the miniature reproduction and (optionally) write its tables to ``output``.

    Bit-for-bit reproducible on one machine: pools, training and the random
    set are seeded, and discrepancies, mining and evaluation run on a fixed
    number of CPU threads (``torch.set_num_threads(1)``, restored after), so
    floating-point sums do not depend on the machine's core count.

    Parameters
    ----------
    config : PaperConfig or None, optional
        The experiment; None for ``PaperConfig()``.
    output : str or pathlib.Path or None, optional
        Folder for the tables (:func:`write_paper_outputs`); None writes nothing.
    progress : bool, optional
        Show prediction progress bars.

    Returns
    -------
    dict of {str: object}
        Dict with ``per_seed`` (one row per seed, set and model), ``table`` (mean
        and 95% CI over seeds of each model's score on each set), ``drops`` (the
        joint set's relative drop against each other set, in %, with CI),
        ``sets`` (the mined sample ids per seed, best first), ``fusion_overlap``
        (the joint set under each pair of fusions, first seed, mining only),
        ``stores`` (the prediction store per seed), ``timings`` (seconds).
    """
    import torch

    from mdc_widgets.config import cache_dir, resolve_device
    from mdc_widgets.data import open_pool
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.models import get_model
    from mdc_widgets.predictions import predict_pool

    config = config or PaperConfig()
    device = resolve_device(config.device)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    models = [get_model(name, device=device) for name in [*config.ss_models, *config.sod_models]]
    weights_key = _weights_key(models)
    timings["load_or_train_models_s"] = time.perf_counter() - t0

    frames, all_sets, stores = [], {}, {}
    overlap = pd.DataFrame()
    for seed in config.seeds:
        t = time.perf_counter()
        pool = open_pool(config.pool, n=config.pool_size, seed=seed)
        # keyed by the weights too: predictions of an earlier zoo are never reused
        store = Path(config.store or cache_dir() / "stores") / f"{pool.fingerprint}-{weights_key}"
        predictions = predict_pool(pool, models, store, device=device, progress=progress)
        timings[f"seed{seed}_predict_s"] = time.perf_counter() - t
        t = time.perf_counter()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            discrepancy = compute_discrepancies(predictions, device=device)
            features = pool_features(pool) if config.constraints.dedup_threshold is not None else None
            sets = mine_paper_sets(predictions, config, seed, discrepancy, features=features)
            timings[f"seed{seed}_mine_s"] = time.perf_counter() - t
            if seed == config.seeds[0]:
                t = time.perf_counter()
                overlap = fusion_overlap(predictions, config, discrepancy, features)
                timings["fusion_overlap_s"] = time.perf_counter() - t
            frame = _evaluate_sets(predictions, pool.ground_truth(), sets)
        finally:
            torch.set_num_threads(previous_threads)
        frame.insert(0, "seed", seed)
        frames.append(frame)
        all_sets[seed] = sets
        stores[seed] = str(store)
    per_seed = pd.concat(frames, ignore_index=True)
    table, drops = summarize_paper_experiment(per_seed)
    timings["total_s"] = time.perf_counter() - t0
    result = {
        "per_seed": per_seed,
        "table": table,
        "drops": drops,
        "sets": all_sets,
        "fusion_overlap": overlap,
        "stores": stores,
        "timings": timings,
        "config": config.as_dict(),
    }
    if output is not None:
        write_paper_outputs(result, output)
    return result


def _constraint_attribute(name: str) -> property:
    return property(lambda self: getattr(self.constraints, name), doc=f"``constraints.{name}`` (read only).")


# the constraint keywords read back from ``constraints``: one value, no second copy on the config
for _name in _CONSTRAINT_KEYWORDS:
    setattr(PaperConfig, _name, _constraint_attribute(_name))
