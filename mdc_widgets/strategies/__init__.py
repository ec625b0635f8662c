"""The seeds' hard-example toolbox: each strategy scores every image of a pool, higher = harder.

>>> from mdc_widgets.strategies import list_strategies
>>> "entropy" in list_strategies() and "mad_joint" in list_strategies()
True
"""

from typing import Any

from mdc_widgets.strategies.mad import (
    mad_cross,
    mad_joint,
    mad_sod,
    mad_ss,
    score_mad_cross,
    score_mad_joint,
    score_mad_sod,
    score_mad_ss,
)
from mdc_widgets.strategies.ops import (
    dominant_class_index,
    entropy_histogram,
    masked_mean,
    mutual_information,
    normalized_entropy,
    percentile_from_histogram,
    pixel_cross_entropy,
    pixel_focal_loss,
    top_fraction_mean,
    u2pl_alpha,
    unreliable_ratio,
)
from mdc_widgets.strategies.perturb import (
    PERTURBATIONS,
    gaussian_blur,
    hide_and_seek,
    perturb,
    pool_mean_pixel,
    preview_perturbation,
    random_occlusion,
)
from mdc_widgets.strategies.registry import (
    UNIFORM_INPUTS,
    Strategy,
    UnknownStrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
    score_pool,
    takes_inputs,
)
from mdc_widgets.strategies.sources import StrategyInputs
from mdc_widgets.strategies.stress import (
    adversarial_erasing_depth,
    blur_stress,
    erase_until_flip,
    hide_and_seek_stress,
    occlusion_stress,
    perturbation_stress,
    prediction_change,
    score_adversarial_erasing_depth,
    score_blur_stress,
    score_hide_and_seek_stress,
    score_occlusion_stress,
)
from mdc_widgets.strategies.uncertainty import (
    ensemble_mutual_information_scores,
    entropy_scores,
    focal_scores,
    loss_scores,
    random_scores,
    score_ensemble_mutual_information,
    score_entropy,
    score_focal,
    score_loss,
    score_random,
    score_u2pl_unreliable,
    u2pl_unreliable_scores,
)

_BUILTIN = [
    ("random", score_random, False, 0, False, "uniform random order (seeded): the baseline"),
    (
        "loss",
        score_loss,
        True,
        1,
        False,
        "cross-entropy (SS) / BCE (SOD) against the labels; its top-k is OHEM's selection",
    ),
    ("focal", score_focal, True, 1, False, "mean focal loss: loss that ignores confidently right pixels"),
    ("entropy", score_entropy, False, 1, False, "mean normalised pixel entropy of one model"),
    (
        "u2pl_unreliable",
        score_u2pl_unreliable,
        False,
        1,
        False,
        "U2PL: share of pixels in the pool's top alpha_t % entropy",
    ),
    (
        "ensemble_mutual_information",
        score_ensemble_mutual_information,
        False,
        "2+ same task",
        False,
        "BALD mutual information between several models' probabilities",
    ),
    (
        "occlusion_stress",
        score_occlusion_stress,
        False,
        1,
        True,
        "prediction change under one random rectangle of random colour",
    ),
    (
        "hide_and_seek_stress",
        score_hide_and_seek_stress,
        False,
        1,
        True,
        "prediction change when random grid patches are hidden with the mean pixel",
    ),
    ("blur_stress", score_blur_stress, False, 1, True, "prediction change under Gaussian blur"),
    (
        "adversarial_erasing_depth",
        score_adversarial_erasing_depth,
        False,
        "1 ss",
        True,
        "how few Grad-CAM-guided erasures flip the dominant predicted region",
    ),
    ("mad_ss", score_mad_ss, False, "2 ss", False, "MAD: disagreement of two SS models"),
    ("mad_sod", score_mad_sod, False, "2 sod", False, "MAD: disagreement of two SOD models"),
    ("mad_cross", score_mad_cross, False, "1 ss + 1 sod", False, "MAD: SS foreground vs SOD saliency"),
    ("mad_joint", score_mad_joint, False, "2 ss + 2 sod", False, "MAD: weighted intra- and cross-task disagreement"),
]
for _name, _func, _labels, _models, _modules, _text in _BUILTIN:
    register_strategy(
        _name,
        _func,
        needs_labels=_labels,
        needs_models=_models,
        description=_text,
        needs_modules=_modules,
        overwrite=True,
    )

__all__ = [
    "PERTURBATIONS",
    "UNIFORM_INPUTS",
    "Strategy",
    "StrategyInputs",
    "UnknownStrategyError",
    "adversarial_erasing_depth",
    "blur_stress",
    "dominant_class_index",
    "ensemble_mutual_information_scores",
    "entropy_histogram",
    "entropy_scores",
    "erase_until_flip",
    "focal_scores",
    "gaussian_blur",
    "get_strategy",
    "hide_and_seek",
    "hide_and_seek_stress",
    "list_strategies",
    "loss_scores",
    "mad_cross",
    "mad_joint",
    "mad_sod",
    "mad_ss",
    "masked_mean",
    "mutual_information",
    "normalized_entropy",
    "occlusion_stress",
    "percentile_from_histogram",
    "perturb",
    "perturbation_stress",
    "pixel_cross_entropy",
    "pixel_focal_loss",
    "pool_mean_pixel",
    "prediction_change",
    "preview_perturbation",
    "random_occlusion",
    "random_scores",
    "register_strategy",
    "score_adversarial_erasing_depth",
    "score_blur_stress",
    "score_ensemble_mutual_information",
    "score_entropy",
    "score_focal",
    "score_hide_and_seek_stress",
    "score_loss",
    "score_mad_cross",
    "score_mad_joint",
    "score_mad_sod",
    "score_mad_ss",
    "score_occlusion_stress",
    "score_pool",
    "score_random",
    "score_u2pl_unreliable",
    "takes_inputs",
    "top_fraction_mean",
    "u2pl_alpha",
    "u2pl_unreliable_scores",
    "unreliable_ratio",
]


def __getattr__(name: str) -> Any:
    # strategies.dominant_class (a tensor op) is now dominant_class_index; the module warns
    if name == "dominant_class":
        from mdc_widgets.strategies import ops

        return ops.dominant_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
