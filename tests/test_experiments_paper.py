"""The paper experiment's bookkeeping: honest labels, protocol check, best-first sets, byte-stable outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.experiments.paper import (
    PaperConfig,
    _picks,
    paper_table_markdown,
    set_labels,
    summarize_paper_experiment,
    write_paper_outputs,
)


def _per_seed() -> pd.DataFrame:
    rows = []
    # model a: clearly harder on the joint set; model b: the difference crosses zero
    values = {
        ("a", "joint"): [0.20, 0.21, 0.19],
        ("a", "ss_only"): [0.40, 0.42, 0.41],
        ("b", "joint"): [0.30, 0.50, 0.31],
        ("b", "ss_only"): [0.35, 0.36, 0.45],
    }
    for (model, set_name), vals in values.items():
        for seed, v in zip((1, 2, 3), vals):
            rows.append(
                {
                    "seed": seed,
                    "set": set_name,
                    "model": model,
                    "task": "ss",
                    "metric": "miou",
                    "value": v,
                    "failure_rate": 1 - v,
                    "n_images": 10,
                }
            )
    return pd.DataFrame(rows)


def test_single_task_columns_name_their_rule():
    assert set_labels("ijcv2021")["ss_only"] == "SS-only MAD (ijcv2021)"
    assert set_labels("mdc")["ss_only"] == "SS-only MAD (mdc)"
    assert set_labels("ijcv2021")["sod_only"].startswith("SOD-only MAD (ours")
    table, drops = summarize_paper_experiment(_per_seed())
    md = paper_table_markdown(table, drops, "mdc")
    assert "SS-only MAD (mdc)" in md and "SS-C" not in md


def test_drops_whose_interval_crosses_zero_do_not_hold():
    table, drops = summarize_paper_experiment(_per_seed())
    lines = paper_table_markdown(table, drops).splitlines()
    row_a = next(line for line in lines if line.startswith("| a | SS-only"))
    row_b = next(line for line in lines if line.startswith("| b | SS-only"))
    assert row_a.endswith("| yes, harder |")
    assert row_b.endswith("| no (CI crosses 0) |")


def test_protocol_and_fusion_are_checked():
    assert PaperConfig().protocol == "ijcv2021"
    with pytest.raises(MdcError, match="protocol"):
        PaperConfig(protocol="iclr")
    with pytest.raises(MdcError, match="fusion"):
        PaperConfig(fusion="mean")


def test_sets_list_picks_best_first_interleaved_over_groups():
    def result(ids, ranks):
        return xr.Dataset({"selection_rank": ("sample", np.array(ranks))}, coords={"sample": ids})

    results = {"g1": result(["a", "b", "c"], [1, 0, -1]), "g2": result(["d", "e", "f"], [0, 2, 1])}
    assert _picks(results) == ["b", "d", "a", "f", "e"]


def test_outputs_are_byte_identical_for_equal_results(tmp_path):
    table, drops = summarize_paper_experiment(_per_seed())
    result = {
        "per_seed": _per_seed(),
        "table": table,
        "drops": drops,
        "sets": {1: {"joint": ["x", "y"]}},
        "fusion_overlap": pd.DataFrame([{"fusion_a": "rank", "fusion_b": "raw", "jaccard": 1 / 3}]),
        "timings": {"total_s": 1.0},
        "config": {"protocol": "mdc"},
    }
    write_paper_outputs(result, tmp_path / "one")
    result["timings"] = {"total_s": 2.0}  # timings differ between runs; they stay out of the compared files
    write_paper_outputs(result, tmp_path / "two")
    for name in (
        "paper_table_mdc.csv",
        "paper_table_mdc.md",
        "paper_drops_mdc.csv",
        "paper_sets_mdc.json",
        "paper_fusion_overlap.csv",
    ):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert "0.333333" in (tmp_path / "one" / "paper_fusion_overlap.csv").read_text()
