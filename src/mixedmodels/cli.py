"""Command-line interface: ``mixedmodels fit FORMULA --data NAME_OR_PATH``."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import MixedModelsError


def read_data(source: str):
    """A bundled dataset name, or a path to a CSV or Parquet file, as a pandas DataFrame."""
    from . import datasets

    path = Path(source)
    if path.suffix.lower() in {".csv", ".parquet", ".pq", ".gz"} or path.exists():
        import pandas as pd

        if not path.exists():
            raise MixedModelsError(f"data file not found: {source}")
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    return datasets.load(source)


def _fit(args: argparse.Namespace) -> int:
    from .api import lmer

    data = read_data(args.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lmer(args.formula, data, reml=not args.ml, weights=args.weights)
    summary = result.summary()
    summary.data_name = Path(args.data).stem if Path(args.data).suffix else args.data
    print(summary)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedmodels",
                                     description="Linear mixed-effects models with lme4's answers.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a linear mixed model and print its summary")
    fit.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    fit.add_argument("--data", required=True,
                     help="bundled dataset name (see `mixedmodels datasets`) or CSV/Parquet path")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--weights", metavar="COL", help="column of prior weights")
    fit.set_defaults(func=_fit)
    ds = sub.add_parser("datasets", help="list the bundled datasets")
    ds.set_defaults(func=lambda args: print("\n".join(__import__(
        "mixedmodels.datasets", fromlist=["names"]).names())) or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MixedModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
