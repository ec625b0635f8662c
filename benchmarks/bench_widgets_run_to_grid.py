"""Time from the app's Run to a visible grid in the Browse tab, for mini-world pools of 300 and 3,000 images.

What a user waits for after pressing Run in ``MadApp``: prediction (first
run) or none (cached predictions), scoring and selection, then the app's
refresh until the Browse tab's grid holds thumbnails. The Run action is
driven programmatically (``run_panel.run(background=False)``); the moment the
status line first says the run is done and the moment the grid is populated
are stamped by observers on those widgets. The four mini-world zoo models of
the quickstart (or stand-ins of their size where the zoo is not trained) run
on the CPU; each pool size gets a fresh prediction store.

    python benchmarks/bench_widgets_run_to_grid.py [--sizes 300 3000] [--store-root /tmp]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import current_rss_mib, machine, zoo_or_standins

SS_MODELS = ["mw_unet_ss", "mw_deeplabv3plus_ss"]
SOD_MODELS = ["mw_unet_sod", "mw_vst_sod"]


def run_to_grid(app, k: int) -> dict[str, float]:
    """Press Run once and stamp: status says done, grid populated, Run returned."""
    stamps: dict[str, float] = {}
    browser, panel = app.browser, app.run_panel

    def on_status(change):
        if "done_status" not in stamps and ("Selected" in change["new"] or "Done" in change["new"]):
            stamps["done_status"] = time.perf_counter()

    def on_grid(change):
        if "grid" not in stamps and len(change["new"]):
            stamps["grid"] = time.perf_counter()

    panel.status.observe(on_status, "value")
    browser.grid.observe(on_grid, "children")
    browser.grid.children = []
    app.picker.k.value = k
    start = time.perf_counter()
    panel.run(background=False)
    stamps["returned"] = time.perf_counter()
    panel.status.unobserve(on_status, "value")
    browser.grid.unobserve(on_grid, "children")
    if panel.error is not None:
        raise RuntimeError(f"the run failed: {panel.error}")
    return {name: t - start for name, t in stamps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--store-root", default=None, help="folder for the temporary prediction stores")
    parser.add_argument("--k", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("MDC_WIDGETS_STATIC", "0")

    from mdc_widgets.session import Session
    from mdc_widgets.widgets import MadApp

    models, kind = zoo_or_standins(SS_MODELS + SOD_MODELS)
    print(machine())
    print(f"models: {kind}; Run -> grid visible, seconds (load average before each row)")
    print(f"{'images':>7} {'predictions':>12} {'status done':>12} {'grid':>8} {'all':>8} {'RSS MiB':>8}  load")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.store_root) as tmp:
            session = Session("miniworld", Path(tmp) / "store", models=models, device="cpu", n=n)
            app = MadApp(session, k=args.k)
            app.picker.task.value = "joint"
            app.picker.ss_a.value, app.picker.ss_b.value = SS_MODELS
            app.picker.sod_p.value, app.picker.sod_q.value = SOD_MODELS
            for label, k in (("computed", args.k), ("cached", args.k + 1)):
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                t = run_to_grid(app, k)
                print(
                    f"{n:>7} {label:>12} {t.get('done_status', float('nan')):>12.2f} "
                    f"{t.get('grid', float('nan')):>8.2f} {t['returned']:>8.2f} {current_rss_mib():>8.0f}  {load}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
