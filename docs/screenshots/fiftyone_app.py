"""Screenshots of a mined set in the FiftyOne App, taken by headless Chromium (the README's pictures).

Mines the SOD-300 photos (``../shared/data/sod300``: photos, ground truth, the
released maps of Amulet, DSS and PiCANet) with the three maps as competitors,
exports the mined set to FiftyOne at the photos' own size, launches the App on
localhost and drives Debian's ``chromium`` with Playwright: the grid of the
mined images, then one sample opened with the ground truth and a model's
saliency heatmap. The page must show the sample count and the exported fields,
or the script fails. The folder export's ``index.html`` is photographed too.

Needs FiftyOne (``pip install 'mdc-widgets[fiftyone]'``), Playwright and
``chromium``::

    MDC_WIDGETS_HOME=.mdc_cache python docs/screenshots/fiftyone_app.py docs/images

``tests/test_export_fiftyone.py::test_the_app_shows_the_mined_set`` runs it
into a temporary folder (skipped without FiftyOne, Playwright, chromium or
the photos).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SOD300 = REPO.parent / "shared" / "data" / "sod300"
METHODS = ("amulet", "dss", "picanet")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mined_session(work: Path, photos: Path = SOD300, k: int = 12) -> Any:
    """A Session on the photos with the three released maps as competitors, the top ``k`` mined, one verdict given."""
    from mdc_widgets.export import mined_set
    from mdc_widgets.mining import CompetitionGroup, Constraints
    from mdc_widgets.session import Session

    session = Session(
        str(photos / "images"),
        work / "store",
        image_size=(160, 160),
        fit="letterbox",
        ground_truth={"saliency": str(photos / "gt")},
        maps={m: str(photos / "maps" / m) for m in METHODS},
        use_registry=False,
        device="cpu",
    )
    session.predict(list(METHODS), progress=False)
    session.mine(CompetitionGroup(sod=METHODS), k=k, constraints=Constraints.none())
    first = str(mined_set(session, size="working")["sample"].values[0])
    session.label(first, "amulet", "dss", "a")  # one verdict, so the verdicts field shows something
    return session


def sample_photos(root: Path, ids: list[str], photos: Path = SOD300) -> Path:
    """A copy of some SOD-300 photos, their masks and maps under ``root`` (the same layout), for a quick run."""
    for folder in ["images", "gt", *(f"maps/{m}" for m in METHODS)]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for sid in ids:
            source = next((photos / folder).glob(f"{sid}.*"))
            shutil.copy(source, root / folder / source.name)
    return root


def contact_sheet_screenshot(session: Any, out: Path, work: Path) -> Path:
    """Export the session's mined set as a folder and save ``export_contact_sheet.png`` of its ``index.html``.

    Raises ``AssertionError`` unless the page has one row per mined image and every picture decoded.
    """
    from playwright.sync_api import sync_playwright

    from mdc_widgets.export import export_folder, mined_set

    index = export_folder(session, work / "folder")
    k = mined_set(session, size="working").sizes["sample"]
    shot = Path(out) / "export_contact_sheet.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 640})
        try:
            page.goto(index.resolve().as_uri())
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            rows = page.locator("table tr").count()
            broken = page.evaluate("() => [...document.images].filter(i => i.naturalWidth === 0).length")
            assert rows == k + 1 and broken == 0, f"{index}: {rows - 1} rows for {k} images, {broken} broken pictures"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    return shot


def take_screenshots(out: Path, photos: Path = SOD300, k: int = 12, timeout_s: float = 240.0) -> dict[str, Path]:
    """Mine, export, and save ``export_contact_sheet.png`` (the folder export's ``index.html``),
    ``fiftyone_app.png`` (the App's grid) and ``fiftyone_app_sample.png`` (one sample opened).

    Returns ``{"contact_sheet"|"grid"|"sample": path}``. Raises when the pages
    do not show the ``k`` images and the exported fields.
    """
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")  # no analytics from a test run
    import fiftyone as fo
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium).")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"mdc-sod300-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="mdc-fiftyone-"))
    session = mined_session(work, photos, k)
    shots = {"contact_sheet": contact_sheet_screenshot(session, out, work)}
    dataset = session.export("fiftyone", name, image_dir=work / "images")
    # the grid shows the ground truth and one model's saliency heatmap over each photo
    dataset.app_config.active_fields = fo.ActiveFields(paths=["gt_saliency", "pred_amulet"])
    dataset.save()
    port = _free_port()
    app = fo.launch_app(dataset, remote=True, address="127.0.0.1", port=port, auto=False)
    shots.update(grid=out / "fiftyone_app.png", sample=out / "fiftyone_app_sample.png")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            try:
                _shoot(page, f"http://127.0.0.1:{port}/datasets/{name}", k, shots, timeout_s)
            except Exception:
                page.screenshot(path=str(out / "fiftyone_app_failed.png"))  # what the page showed, to see why
                print(page.inner_text("body")[:3000], file=sys.stderr)
                raise
            finally:
                browser.close()
    finally:
        app.close()
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
        shutil.rmtree(work, ignore_errors=True)
    return shots


def _shoot(page: Any, url: str, k: int, shots: dict[str, Path], timeout_s: float) -> None:
    """Open the App at ``url``, check what it shows, and save the grid and one opened sample."""
    page.goto(url, timeout=timeout_s * 1000)
    # the sidebar lists the exported fields once the dataset has loaded
    for field in ("pred_amulet", "gt_saliency", "score", "verdicts"):
        page.get_by_text(field, exact=True).first.wait_for(timeout=timeout_s * 1000)
    page.get_by_text(f"{k} samples").first.wait_for(timeout=timeout_s * 1000)
    for button in ("Dismiss", "Disable"):  # FiftyOne's advertisement and analytics prompts cover the grid
        prompt = page.get_by_role("button", name=button)
        if prompt.count():
            prompt.first.click()
    # the grid draws each sample onto a canvas once its image has decoded
    page.wait_for_function(
        "n => document.querySelectorAll('canvas').length >= n", arg=min(k, 6), timeout=timeout_s * 1000
    )
    time.sleep(4)  # the overlays are drawn after the images
    page.screenshot(path=str(shots["grid"]))
    page.locator("canvas").first.click()
    page.get_by_text("mdc_sample").first.wait_for(timeout=timeout_s * 1000)
    time.sleep(4)
    page.screenshot(path=str(shots["sample"]))


def compact_png(path: Path) -> None:
    """Rewrite a screenshot with 256 colours (dithered): a quarter of the bytes, as the README's other pictures."""
    from PIL import Image

    with Image.open(path) as picture:
        reduced = picture.convert("RGB").quantize(colors=256, dither=Image.Dither.FLOYDSTEINBERG)
    reduced.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the three PNGs")
    parser.add_argument("--photos", type=Path, default=SOD300, help="SOD-300 layout: images/, gt/, maps/<method>/")
    parser.add_argument("--k", type=int, default=12, help="images to mine and show")
    args = parser.parse_args(argv)
    for what, path in take_screenshots(args.out, args.photos, args.k).items():
        compact_png(path)
        print(f"{what}: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
