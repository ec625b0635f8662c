"""Command line: ``python -m mdc_widgets <command>`` (also installed as ``mdc-widgets``)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mdc_widgets.errors import MdcError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdc-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the paper's experiment notebook headless and write reports/")
    rep.add_argument("--output", default="reports", help="folder for the executed notebook, HTML and tables")
    rep.add_argument("--params", help="YAML file of notebook parameters")
    rep.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="one parameter (value parsed as YAML); repeatable")

    ren = sub.add_parser("render", help="run notebooks headless with papermill and collect an HTML report")
    ren.add_argument("notebooks", nargs="*", help="notebook names or paths (default: all numbered notebooks)")
    ren.add_argument("--output", default="reports")
    ren.add_argument("--params", help="YAML file of notebook parameters")
    ren.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))

    zoo = sub.add_parser("train-zoo", help="train (or reuse) the mini-world model zoo")
    zoo.add_argument("names", nargs="*", help="model names (default: all mini-world models)")

    sub.add_parser("models", help="list registered models")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
        elif args.command == "models":
            from mdc_widgets.models import list_models

            for task in ("ss", "sod"):
                print(f"{task}: {', '.join(list_models(task))}")
    except MdcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
