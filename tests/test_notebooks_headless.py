"""The notebooks run headless: papermill with small parameters, and the report collects them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mdc_widgets.errors import MdcError
from mdc_widgets.headless import list_notebooks, load_parameters, render_notebooks, run_notebook

pytestmark = pytest.mark.notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_notebooks_write_to_a_temporary_folder_under_quick(monkeypatch):
    """nbval runs the notebooks with their default parameters: under MDC_WIDGETS_QUICK=1 nothing goes to reports/."""
    import nbformat

    from mdc_widgets.config import report_dir

    monkeypatch.setenv("MDC_WIDGETS_QUICK", "1")
    first, second = report_dir("../reports"), report_dir("../reports")
    assert first != second and Path(first).is_dir() and "reports" not in Path(first).name.split("_")[-1]
    monkeypatch.setenv("MDC_WIDGETS_QUICK", "0")
    assert report_dir("../reports") == "../reports"
    for path in list_notebooks():
        params = next(
            c
            for c in nbformat.read(str(path), as_version=4).cells
            if "parameters" in c.get("metadata", {}).get("tags", [])
        )
        assert 'output_dir = report_dir("../reports")' in params.source, path.name
        assert '"../reports' not in params.source.replace('report_dir("../reports")', ""), path.name


def test_every_notebook_has_a_parameters_cell_and_no_stored_outputs():
    import nbformat

    notebooks = list_notebooks()
    assert notebooks, "no numbered notebooks found"
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one papermill parameters cell"
        assert "output_dir" in tagged[0].source, f"{path.name} must take an output_dir parameter"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


def test_parameters_come_from_yaml_then_command_line(tmp_path):
    params_file = tmp_path / "p.yaml"
    params_file.write_text("pool_size: 100\nseeds: [1, 2]\nnotebooks:\n  04_reproduce_paper: {set_size: 9}\n")
    params = load_parameters(params_file, [("pool_size", "250"), ("weights", "[1, 0, 2]")])
    assert params["pool_size"] == 250 and params["seeds"] == [1, 2] and params["weights"] == [1, 0, 2]
    assert params["notebooks"]["04_reproduce_paper"]["set_size"] == 9
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(MdcError, match="mapping"):
        load_parameters(bad)
    with pytest.raises(MdcError, match="No notebook 'nope'"):
        run_notebook("nope", tmp_path)


@pytest.mark.slow
def test_reproduction_notebook_runs_headless_with_small_parameters(tmp_path, trained_zoo):
    params = {"pool_size": 240, "set_size": 18, "seeds": [1, 2], "output_dir": str(tmp_path)}
    index = render_notebooks(["04_reproduce_paper"], tmp_path, params)
    assert index.exists() and "04_reproduce_paper.html" in index.read_text()
    # the default protocol of the single-task sets is the published one, and the files say so
    table = pd.read_csv(tmp_path / "paper_table_ijcv2021.csv")
    assert set(table["set"]) == {"joint", "ss_only", "sod_only", "random"}
    assert len(table) == 6 * 4
    assert table["mean"].between(0, 1).all()
    assert "SS-only MAD (ijcv2021)" in (tmp_path / "paper_table_ijcv2021.md").read_text()
    assert (tmp_path / "mined_samples.png").stat().st_size > 1000
    assert (tmp_path / "mined_samples_ss_only_ijcv2021.png").stat().st_size > 1000
    sets = json.loads((tmp_path / "paper_sets_ijcv2021.json").read_text())
    assert sets["config"]["protocol"] == "ijcv2021"
    for seed_sets in sets["sets"].values():
        assert len({len(v) for v in seed_sets.values()}) == 1, "sets must have equal size"
    overlap = pd.read_csv(tmp_path / "paper_fusion_overlap.csv")
    assert len(overlap) == 3 and overlap["jaccard"].between(0, 1).all()
