"""``mine --export``: the headless job hands its selected images on as a folder, COCO and Label Studio files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mdc_widgets.cli import main


@pytest.fixture
def photo_folder(tmp_path):
    """Six small photos, two folders of released saliency maps and ground-truth masks, matched by stem."""
    rng = np.random.default_rng(3)
    folders = {name: tmp_path / name for name in ("images", "gt", "map_a", "map_b")}
    for folder in folders.values():
        folder.mkdir()
    yy, xx = np.mgrid[:24, :24]
    for i in range(6):
        disk = (yy - rng.integers(6, 18)) ** 2 + (xx - rng.integers(6, 18)) ** 2 <= rng.integers(9, 40)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folders["images"] / f"p{i}.png")
        Image.fromarray(np.where(disk, 255, 0).astype(np.uint8)).save(folders["gt"] / f"p{i}.png")
        for name, noise in (("map_a", 40), ("map_b", 120)):
            soft = np.clip(disk * 200 + rng.integers(0, noise, (24, 24)), 0, 255).astype(np.uint8)
            Image.fromarray(soft).save(folders[name] / f"p{i}.png")
    return folders


def test_mine_export_writes_folder_coco_and_label_studio(photo_folder, tmp_path, capsys):
    pytest.importorskip("pycocotools")
    out = tmp_path / "out"
    args = [
        "mine",
        "--pool",
        str(photo_folder["images"]),
        "--ground-truth",
        f"saliency={photo_folder['gt']}",
        "--maps",
        f"a={photo_folder['map_a']}",
        "--maps",
        f"b={photo_folder['map_b']}",
        "--competition",
        "sod",
        "--k",
        "3",
        "--image-size",
        "24",
        "--out",
        str(out),
        "--export",
        "folder",
        "--export",
        "coco",
        "--export",
        "label-studio",
    ]
    assert main(args) == 0, capsys.readouterr().err
    ranked = pd.read_csv(out / "ranked.csv", dtype={"sample_id": str})
    chosen = ranked.loc[ranked["selected"] == 1, "sample_id"].tolist()
    exported = pd.read_csv(out / "export" / "folder" / "ranked.csv", dtype={"sample_id": str})
    assert exported["sample_id"].tolist() == chosen and list(exported.columns) == list(ranked.columns)
    assert sorted(p.stem for p in (out / "export" / "folder" / "a").glob("*.png")) == sorted(chosen)
    assert (out / "export" / "folder" / "ground_truth" / "saliency" / f"{chosen[0]}.png").exists()
    assert "<table>" in (out / "export" / "folder" / "index.html").read_text()
    coco = json.loads((out / "export" / "coco" / "annotations" / "b.json").read_text())
    assert sorted(im["file_name"] for im in coco["images"]) == sorted(f"{s}.png" for s in chosen)
    tasks = json.loads((out / "export" / "label-studio" / "tasks.json").read_text())
    assert [t["data"]["mdc_sample"] for t in tasks] == chosen
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"]["export_coco"] == str(out / "export" / "coco")


def test_mine_export_fiftyone_without_fiftyone_says_how_to_install(photo_folder, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("fiftyone") is not None:
        pytest.skip("fiftyone is installed here")
    args = [
        "mine",
        "--pool",
        str(photo_folder["images"]),
        "--maps",
        f"a={photo_folder['map_a']}",
        "--maps",
        f"b={photo_folder['map_b']}",
        "--competition",
        "sod",
        "--k",
        "2",
        "--image-size",
        "24",
        "--out",
        str(tmp_path / "out"),
        "--export",
        "fiftyone",
    ]
    assert main(args) == 2
    assert "mdc-widgets[fiftyone]" in capsys.readouterr().err
    assert not (tmp_path / "out" / "ranked.csv").exists()  # refused before any work


def test_mine_export_fiftyone_creates_the_named_dataset(photo_folder, tmp_path, capsys):
    import os

    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    fo = pytest.importorskip("fiftyone")
    name = f"mdc-cli-test-{os.getpid()}"
    args = [
        "mine",
        "--pool",
        str(photo_folder["images"]),
        "--maps",
        f"a={photo_folder['map_a']}",
        "--maps",
        f"b={photo_folder['map_b']}",
        "--competition",
        "sod",
        "--k",
        "2",
        "--image-size",
        "24",
        "--out",
        str(tmp_path / "out"),
        "--export",
        "fiftyone",
        "--fiftyone-name",
        name,
    ]
    try:
        assert main(args) == 0, capsys.readouterr().err
        dataset = fo.load_dataset(name)
        assert len(dataset) == 2 and dataset.persistent
        ranked = pd.read_csv(tmp_path / "out" / "ranked.csv", dtype={"sample_id": str})
        assert dataset.sort_by("rank").values("mdc_sample") == ranked["sample_id"].tolist()[:2]
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def test_the_cli_offers_every_exporter():
    from mdc_widgets.cli import EXPORT_FORMATS
    from mdc_widgets.export import EXPORTERS

    assert EXPORT_FORMATS == list(EXPORTERS)
