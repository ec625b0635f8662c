"""Command line: ``python -m mdc_widgets <command>`` (also installed as ``mdc-widgets``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mdc_widgets.errors import MdcError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdc-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the paper's experiment notebook headless and write reports/")
    rep.add_argument("--output", default="reports", help="folder for the executed notebook, HTML and tables")
    rep.add_argument("--params", help="YAML file of notebook parameters")
    rep.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="one parameter (value parsed as YAML); repeatable",
    )

    ren = sub.add_parser("render", help="run notebooks headless with papermill and collect an HTML report")
    ren.add_argument("notebooks", nargs="*", help="notebook names or paths (default: all numbered notebooks)")
    ren.add_argument("--output", default="reports")
    ren.add_argument("--params", help="YAML file of notebook parameters")
    ren.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))

    zoo = sub.add_parser("train-zoo", help="train (or reuse) the mini-world model zoo")
    zoo.add_argument("names", nargs="*", help="model names (default: all mini-world models)")

    sub.add_parser("models", help="list registered models")

    mine = sub.add_parser(
        "mine",
        help="mine the hardest images of a folder headless: ranked.csv, summary.json, evaluation.csv",
        description="Run the competitors over a folder of images (or read their released maps), score every image "
        "and select the k on which they disagree most. Writes OUT/ranked.csv, OUT/summary.json and, "
        "with ground truth, OUT/evaluation.csv; OUT/store keeps predictions, so a rerun resumes.",
    )
    mine.add_argument("--pool", required=True, help="folder, glob, .txt list or manifest .yaml of images")
    mine.add_argument(
        "--ground-truth",
        action="append",
        default=[],
        metavar="KIND=DIR",
        help="mask folder matched by file stem; KIND is saliency or semantic (repeatable)",
    )
    mine.add_argument(
        "--maps",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a folder of released saliency maps competing as NAME (repeatable)",
    )
    mine.add_argument(
        "--label-maps",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a folder of released label maps (SS, index/palette PNG) competing as NAME; needs --classes (repeatable)",
    )
    mine.add_argument(
        "--classes",
        help="comma-separated class names of label maps and semantic masks "
        "(index 0 background); default: the 21 PASCAL VOC classes",
    )
    mine.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[=CHECKPOINT]",
        help="a registered model (see `models`), optionally with a checkpoint file (repeatable)",
    )
    mine.add_argument("--competition", required=True, choices=["ss", "sod", "cross", "joint"])
    mine.add_argument("--k", type=int, required=True, help="how many images to select")
    mine.add_argument("--image-size", default="320", help="working size: S (square canvas) or HxW (default 320)")
    mine.add_argument(
        "--fit",
        default="letterbox",
        choices=["letterbox", "stretch"],
        help="letterbox keeps each image's aspect ratio (default); stretch resizes to the canvas",
    )
    mine.add_argument("--no-constraints", action="store_true", help="plain top-k: no area bounds, no dedup")
    mine.add_argument(
        "--protocol",
        default="mdc",
        choices=["mdc", "ijcv2021"],
        help="mdc: top-k of the joint score (ours, default); ijcv2021: the published MAD rule for "
        "one SS pair (each model as defender, per-class 25th-75th percentile area band, N per "
        "class per defender), our analogue for one SOD pair",
    )
    mine.add_argument(
        "--fusion",
        default="rank",
        choices=["rank", "raw", "minmax"],
        help="how pair discrepancies are put on one scale in the joint score (default rank)",
    )
    mine.add_argument(
        "--min-confidence",
        type=float,
        metavar="C",
        help="keep only images on which every model's mean confidence over the disputed region is "
        ">= C (ICLR 2020 MAD: SOD |2s-1|, SS 1 - entropy)",
    )
    mine.add_argument(
        "--min-content",
        type=float,
        metavar="F",
        help="drop images where a map is nearly empty: content fraction < F (ijcv2021 default 0.005, "
        "on the defender's map)",
    )
    mine.add_argument("--batch-size", type=int, default=16)
    mine.add_argument("--device", default="auto")
    mine.add_argument(
        "--skip-bad-maps",
        action="store_true",
        help="leave out (and list) images whose released map is missing or unusable",
    )
    mine.add_argument("--out", required=True, help="output folder")
    mine.add_argument(
        "--export",
        action="append",
        default=[],
        choices=EXPORT_FORMATS,
        metavar="FORMAT",
        help="also hand the selected images on (repeatable): folder (PNGs + index.html), coco "
        "(CVAT), label-studio, fiftyone; files go to OUT/export/FORMAT",
    )
    mine.add_argument("--fiftyone-name", help="name of the FiftyOne dataset (default mdc-<pool>-<competition>-k<k>)")
    return parser


# the keys of mdc_widgets.export.EXPORTERS, named here so that --help does not import the exporters
EXPORT_FORMATS = ["folder", "coco", "label-studio", "fiftyone"]


def _pairs(values: Sequence[str], flag: str, allow_bare: bool = False) -> list[tuple[str, str | None]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not name or (not sep and not allow_bare) or (sep and not rest):
            raise MdcError(f"{flag} takes NAME=VALUE{' or NAME' if allow_bare else ''}; got {value!r}.")
        pairs.append((name, rest if sep else None))
    return pairs


def _image_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts, default=0) < 8:
        raise MdcError(f"--image-size takes S or HxW with sides of at least 8 pixels; got {text!r}.")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _mine(args: argparse.Namespace) -> dict:
    from pathlib import Path

    # the cheap checks come before torch is imported, so a typo is answered at once
    ground_truth = dict(_pairs(args.ground_truth, "--ground-truth"))
    size = _image_size(args.image_size)
    map_folders = _pairs(args.maps, "--maps") + _pairs(args.label_maps, "--label-maps")
    model_refs = _pairs(args.model, "--model", allow_bare=True)
    if not map_folders and not model_refs:
        raise MdcError("Give the competitors: --maps NAME=DIR, --label-maps NAME=DIR or --model NAME[=CHECKPOINT].")
    if args.k < 1:
        raise MdcError(f"--k must be at least 1; got {args.k}.")
    for flag, folder in [("--ground-truth", f) for f in ground_truth.values()] + [
        ("--maps", f) for _, f in map_folders
    ]:
        if not Path(folder).expanduser().is_dir():
            raise MdcError(f"{flag}: the folder {folder} does not exist; check the path.")

    from mdc_widgets.data import open_pool
    from mdc_widgets.mining import Constraints
    from mdc_widgets.mining.job import run_mining_job
    from mdc_widgets.models import MapCompetitor, get_model
    from mdc_widgets.models.torchvision_adapters import VOC_CLASSES

    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else VOC_CLASSES
    pool = open_pool(
        args.pool,
        size,
        ground_truth=ground_truth or None,
        classes=classes if "semantic" in ground_truth else None,
        fit=args.fit,
    )
    errors = "skip" if args.skip_bad_maps else "raise"
    models = [MapCompetitor(name, folder, "sod", errors=errors) for name, folder in _pairs(args.maps, "--maps")]
    models += [
        MapCompetitor(name, folder, "ss", classes, errors=errors)
        for name, folder in _pairs(args.label_maps, "--label-maps")
    ]
    models += [
        get_model(name, checkpoint=checkpoint or "default", device=args.device) for name, checkpoint in model_refs
    ]
    constraints = Constraints.none() if args.no_constraints else Constraints()
    constraints = Constraints(
        **{**constraints.as_dict(), "min_confidence": args.min_confidence, "min_content": args.min_content}
    )
    if "fiftyone" in args.export:
        import importlib.util

        if importlib.util.find_spec("fiftyone") is None:  # say so before minutes of predicting, not after
            raise MdcError("--export fiftyone needs fiftyone: pip install 'mdc-widgets[fiftyone]'.")
    summary = run_mining_job(
        pool,
        models,
        args.competition,
        args.k,
        args.out,
        constraints=constraints,
        protocol=args.protocol,
        fusion=args.fusion,
        batch_size=args.batch_size,
        device=args.device,
        progress=True,
        parameters={key: value for key, value in vars(args).items() if key != "command"},
    )
    if args.export:
        import json
        from pathlib import Path

        from mdc_widgets._atomic import atomic_write_text

        summary["files"].update(_export(args, pool, models, summary["result_key"]))
        atomic_write_text(Path(args.out) / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def _export(args: argparse.Namespace, pool: object, models: list, key: str) -> dict[str, str]:
    """Run each ``--export`` on the job's stored result; returns ``{"export_<format>": where}``."""
    from pathlib import Path

    from mdc_widgets.session import Session

    out = Path(args.out)
    # run_mining_job stored the result beside the predictions under this key
    session = Session(pool, out / "store", models=models, use_registry=False, device=args.device)
    result = session.result(key)
    written = {}
    for fmt in dict.fromkeys(args.export):
        if fmt == "fiftyone":
            import re

            name = args.fiftyone_name or re.sub(r"[^\w.-]", "_", f"mdc-{pool.name}-{args.competition}-k{args.k}")
            dataset = session.export(fmt, name, result=result, image_dir=out / "export" / "fiftyone", persistent=True)
            written[f"export_{fmt}"] = f"FiftyOne dataset {dataset.name!r}"
        else:
            written[f"export_{fmt}"] = str(out / "export" / fmt)
            session.export(fmt, out / "export" / fmt, result=result)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m mdc_widgets`` (``reproduce``, ``render``, ``train-zoo``, ``mine``, ``models``).

    Parameters
    ----------
    argv : sequence of str or None, optional
        The arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 after a user error (an ``MdcError``),
        which is printed as one ``error: ...`` line on stderr. Invalid
        arguments exit 2 through argparse (``SystemExit``).

    Examples
    --------
    >>> main(["models"])  # doctest: +ELLIPSIS
    ss: ...
    0
    """
    args = _parser().parse_args(argv)
    try:
        if args.command in ("reproduce", "render"):
            from mdc_widgets.headless import load_parameters, render_notebooks

            params = load_parameters(args.params, [tuple(p) for p in args.param])
            notebooks = ["04_reproduce_paper"] if args.command == "reproduce" else args.notebooks
            index = render_notebooks(notebooks, args.output, params)
            print(f"report: {index}")
        elif args.command == "train-zoo":
            import time

            from mdc_widgets.models import ZOO, load_or_train

            for name in args.names or list(ZOO):
                start = time.perf_counter()
                path = load_or_train(name, progress=sys.stderr.isatty())
                print(f"{name}: {path} ({time.perf_counter() - start:.1f} s)", flush=True)
        elif args.command == "mine":
            summary = _mine(args)
            print(
                f"selected {summary['selected']} of {summary['pool']['n_images']} images; "
                f"wrote {', '.join(summary['files'].values())}, {args.out}/summary.json"
            )
        elif args.command == "models":
            from mdc_widgets.models import list_models, unavailable_models

            for task in ("ss", "sod"):
                print(f"{task}: {', '.join(list_models(task))}")
            for plugin, why in unavailable_models().items():
                print(f"unavailable: {plugin} ({why})")
    except MdcError as exc:
        # one clear line: what is wrong and what to do
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
