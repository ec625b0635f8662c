"""User inputs: manifests confined and verified, parameters checked up front, stable sample ids, odd files."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from mdc_widgets import cli
from mdc_widgets.data import manifest as manifest_module
from mdc_widgets.data import open_pool
from mdc_widgets.data.io import decode_image
from mdc_widgets.data.manifest import load_manifest, write_file_manifest
from mdc_widgets.errors import ImageDecodeError, ManifestError, MdcError
from mdc_widgets.models import MapCompetitor


def _image(path, value=120, size=(6, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


# -- manifests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["../../outside.png", "/etc/hostname", "images/../../outside.png"])
def test_a_manifest_entry_outside_its_root_is_refused_naming_the_entry(tmp_path, entry):
    _image(tmp_path / "outside.png")
    root = tmp_path / "data" / "set"
    _image(root / "images" / "a.png")
    body = {"name": "confined", "root": str(root), "files": [{"path": "images/a.png"}, {"path": entry}]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(body))
    with pytest.raises(ManifestError, match=r"entry 2 \(path\): .* lies outside the manifest's root"):
        load_manifest(tmp_path / "m.yaml")


def test_a_mask_outside_the_root_is_not_used_as_ground_truth(tmp_path):
    root = tmp_path / "set"
    _image(root / "a.png")
    _image(tmp_path / "elsewhere" / "a.png")
    body = {"name": "m", "root": str(root), "files": [{"path": "a.png", "saliency_mask": "../elsewhere/a.png"}]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(body))
    with pytest.raises(ManifestError, match=r"entry 1 \(saliency_mask\)"):
        open_pool(str(tmp_path / "m.yaml"))


def test_verify_on_a_checksum_mismatch_exits_2_with_one_line(tmp_path, capsys):
    _image(tmp_path / "a.png")
    manifest = write_file_manifest(tmp_path / "m.yaml", "one", tmp_path, ["a.png"])
    _image(tmp_path / "a.png", value=7)
    assert manifest_module.main(["--verify", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Manifest m.yaml (one): 1 with a wrong SHA-256") and err.count("\n") == 1
    done = subprocess.run(
        [sys.executable, "-m", "mdc_widgets.data.manifest", "--verify", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "wrong SHA-256" in done.stderr


# -- notebook and command-line parameters --------------------------------------------------------
@pytest.mark.parametrize(
    "name, value, message",
    [
        ("pool_size", "-5", "'pool_size' of notebook 04_reproduce_paper must be at least 1; got -5"),
        ("pool_size", "many", "'pool_size' of notebook 04_reproduce_paper takes a whole number"),
        ("seeds", "[1, -2]", "'seeds' of notebook 04_reproduce_paper must be at least 0"),
        ("pool_sz", "5", "No notebook takes the parameter(s) ['pool_sz']"),
    ],
)
def test_reproduce_refuses_bad_parameters_before_running_anything(tmp_path, capsys, name, value, message):
    assert cli.main(["reproduce", "--output", str(tmp_path / "out"), "-p", name, value]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# -- files -----------------------------------------------------------------------------------------
def test_a_permission_error_says_permission_not_re_download(tmp_path, monkeypatch):
    path = _image(tmp_path / "a.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(ImageDecodeError, match="no permission to read") as info:
        decode_image(path)
    assert "download" not in str(info.value)


def test_an_animated_gif_uses_its_first_frame_with_a_warning(tmp_path):
    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    pool = open_pool(tmp_path, image_size=(6, 8))
    images, valid = pool.read_images(0, 1)
    assert valid.all() and abs(int(images[0].mean()) - 10) <= 2
    assert "2 frames; only the first is used" in pool.warnings["anim"]


# -- sample ids --------------------------------------------------------------------------------------
def test_folder_ids_are_stable_when_a_file_with_a_repeated_stem_is_added_and_when_the_folder_moves(tmp_path):
    folder = tmp_path / "photos"
    for name in ("0001", "0002"):
        _image(folder / f"{name}.jpg")
    before = list(open_pool(folder).sample_ids)
    assert before == ["0001", "0002"]  # a flat folder keeps plain stems
    _image(folder / "more" / "0001.png")
    assert list(open_pool(folder).sample_ids) == ["0001", "0002", "more/0001"]
    moved = shutil.move(str(folder), str(tmp_path / "elsewhere"))
    assert list(open_pool(moved).sample_ids) == ["0001", "0002", "more/0001"]


def test_two_files_differing_only_in_extension_are_refused(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "a.jpg")
    with pytest.raises(MdcError, match="would share the sample id 'a'"):
        open_pool(tmp_path)


def test_released_maps_match_nested_ids_by_relative_path_else_stem(tmp_path):
    images, maps = tmp_path / "images", tmp_path / "maps"
    _image(images / "x.jpg")
    _image(images / "cats" / "1.jpg")
    _image(images / "dogs" / "1.jpg")
    _image(maps / "x.png", value=10)
    _image(maps / "cats" / "1.png", value=50)
    _image(maps / "1.png", value=90)  # the flat map of any '1' without its own subfolder map
    pool = open_pool(images, image_size=(6, 8))
    assert list(pool.sample_ids) == ["cats/1", "dogs/1", "x"]
    competitor = MapCompetitor("m", maps, "sod")
    assert competitor.check_pool(pool) == {}
    output, ok = competitor.predict_samples(pool, 0, 3)
    assert ok.all()
    assert [round(float(v) * 255) for v in output[:, 0].mean(dim=(1, 2))] == [50, 90, 10]


def test_mine_with_a_zero_batch_size_exits_2_with_one_line(tmp_path, capsys):
    _image(tmp_path / "images" / "a.png")
    _image(tmp_path / "maps_p" / "a.png", value=30)
    _image(tmp_path / "maps_q" / "a.png", value=200)
    argv = [
        "mine",
        "--pool",
        str(tmp_path / "images"),
        "--maps",
        f"p={tmp_path / 'maps_p'}",
        "--maps",
        f"q={tmp_path / 'maps_q'}",
        "--competition",
        "sod",
        "--k",
        "1",
        "--batch-size",
        "0",
        "--out",
        str(tmp_path / "out"),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "batch_size takes a whole number of at least 1" in err and err.count("\n") == 1
