"""Fuzz: random and damaged bytes as images, maps, masks, label files and manifests.

Every failure must be an ``MdcError`` with a message, never another exception
type; every success must be a well-formed result (never a silent half-read).
"""

from __future__ import annotations

import io
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mdc_widgets.data import open_pool
from mdc_widgets.data.io import decode_image, decode_mask
from mdc_widgets.data.manifest import load_manifest
from mdc_widgets.errors import MdcError
from mdc_widgets.labeling import LabelStore
from mdc_widgets.models import MapCompetitor

# derandomized and without an example database: the same inputs on every run and machine, no folder left behind
FUZZ = settings(
    max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (12, 10, 3 if mode == "RGB" else 1), np.uint8).squeeze()
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (no pixel data follows): a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


BOMB = _png_claiming(20000, 20000)
SEEDS = [
    BOMB,
    _encoded("PNG"),
    _encoded("JPEG"),
    _encoded("GIF"),
    _encoded("BMP"),
    _encoded("TIFF"),
    _encoded("PNG", "L"),
]


@st.composite
def damaged_files(draw) -> bytes:
    """Random bytes, or a valid image file truncated, with bytes overwritten, or both."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def _expect_mdc_error_or(check, run):
    """Run ``run()``: an MdcError with a message passes; another exception fails; a result must pass ``check``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run()
    except MdcError as exc:
        assert str(exc).strip(), "an MdcError without a message"
        return
    check(result)


def _is_rgb(image):
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3 and min(image.shape[:2]) > 0


def _is_map(values):
    assert values.dtype == np.uint8 and values.ndim == 2 and min(values.shape) > 0


@FUZZ
@example(data=BOMB, suffix=".png")
@given(data=damaged_files(), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif"]))
def test_fuzzed_images_decode_or_raise_a_named_error(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        path.write_bytes(data)
        _expect_mdc_error_or(_is_rgb, lambda: decode_image(path))
        pool = open_pool(folder, image_size=(8, 8))  # a pool never raises for a bad file: it lists it
        images, valid = pool.read_images(0, 1)
        assert images.shape == (1, 8, 8, 3)
        assert valid[0] or ("x" in pool.errors and pool.errors["x"].strip())
        if not valid[0]:
            assert not images.any()  # an invalid image is never served as content


@FUZZ
@example(data=BOMB, kind="grey")
@given(data=damaged_files(), kind=st.sampled_from(["labels", "grey"]))
def test_fuzzed_masks_decode_or_raise_a_named_error(data, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.png"
        path.write_bytes(data)
        _expect_mdc_error_or(_is_map, lambda: decode_mask(path, kind))


@FUZZ
@example(data=BOMB, task="sod")
@given(data=damaged_files(), task=st.sampled_from(["sod", "ss"]))
def test_fuzzed_released_maps_are_used_or_refused_by_name(data, task):
    with tempfile.TemporaryDirectory() as folder:
        images, maps = Path(folder) / "images", Path(folder) / "maps"
        images.mkdir()
        maps.mkdir()
        Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(images / "a.png")
        (maps / "a.png").write_bytes(data)
        pool = open_pool(images, image_size=(8, 8))
        classes = ["background", "a", "b"] if task == "ss" else None

        def run():
            competitor = MapCompetitor("fuzz", maps, task, classes)
            competitor.check_pool(pool)
            return competitor.predict_samples(pool, 0, 1)

        def check(result):
            output, ok = result
            assert ok.tolist() == [True] and output.shape[-2:] == (8, 8) and bool(np.isfinite(output).all())

        _expect_mdc_error_or(check, run)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=300).map(str.encode)))
def test_fuzzed_label_files_read_or_raise_a_named_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.jsonl"
        path.write_bytes(data)

        def check(store):
            for label in store:
                assert isinstance(label.sample, str) and label.verdict in ("a", "b", "both_wrong", "both_fine")

        _expect_mdc_error_or(check, lambda: LabelStore(path))


MANIFEST_PARTS = st.sampled_from(
    [
        b"name: fuzz\n",
        b"root: .\n",
        b"root: ../..\n",
        b"files:\n",
        b"  - path: a.png\n",
        b"  - ../../etc/passwd\n",
        b"  - {path: 3}\n",
        b"images: '*.png'\n",
        b"images: 7\n",
        b"saliency_mask: '{stem}.png'\n",
        b"saliency_mask: '{nope}'\n",
        b"classes: [a, 1]\n",
        b"generator: 5\n",
        b"files: {a: 1}\n",
        b"- x\n",
        b"name: [1, 2]\n",
        b"  - {path: a.png, sha256: 12}\n",
        b"\xff\xfe",
        b": :\n",
    ]
)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), st.lists(MANIFEST_PARTS, max_size=8).map(b"".join)))
def test_fuzzed_manifests_load_or_raise_a_named_error(data):
    with tempfile.TemporaryDirectory() as folder:
        Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(Path(folder) / "a.png")
        path = Path(folder) / "m.yaml"
        path.write_bytes(data)

        def check(manifest):
            root = manifest.root.resolve()
            for entry in manifest.entries:
                assert (manifest.root / entry["path"]).resolve().is_relative_to(root)

        _expect_mdc_error_or(check, lambda: load_manifest(path))
        _expect_mdc_error_or(lambda pool: pool.read_images(0, len(pool)), lambda: open_pool(str(path)))
