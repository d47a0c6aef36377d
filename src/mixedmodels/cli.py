"""Command-line interface: ``mixedmodels fit FORMULA --data NAME_OR_PATH [--family NAME]``.

``fit`` runs ``lmer``, or ``glmer`` (``glmer_nb`` for a negative binomial) given ``--family``;
``report`` does the same and writes a self-contained HTML report of the fit. ``lmer`` reads a
glob of Parquet or CSV files (``--data 'events/*.parquet'``) or a directory of Parquet files
through DuckDB, so the rows never need to fit in memory; a single file is read into memory
unless ``--engine duckdb`` says otherwise.

``mixedmodels datasets`` lists the bundled datasets, ``mixedmodels --version`` prints the
version.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import MixedModelsError


# File formats --data reads, by suffix; a compression suffix after one of them is allowed.
_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_COMPRESSED = {".gz", ".bz2", ".xz", ".zip", ".zst"}
_HINTS = {".xlsx": "save the sheet as CSV", ".xls": "save the sheet as CSV",
          ".rds": "in R: write.csv(data, 'data.csv', row.names = FALSE)",
          ".rdata": "in R: write.csv(data, 'data.csv', row.names = FALSE)",
          ".sav": "export it as CSV", ".dta": "export it as CSV"}


def _file_format(path: Path) -> tuple[str | None, str]:
    """(format name or None, the suffix that decides it) of a --data path."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        # a bare "data.gz" has always been read as gzip-compressed CSV
        inner = suffixes[-2] if len(suffixes) > 1 else ".csv"
        return _FORMATS.get(inner), inner
    last = suffixes[-1] if suffixes else ""
    return _FORMATS.get(last), last


def is_glob(source: str) -> bool:
    """Whether ``--data`` is a glob of files (``events/*.parquet``), read through DuckDB."""
    return any(ch in source for ch in "*?[")


def _parquet_directory(path: Path) -> bool:
    """Whether ``path`` is a directory holding Parquet files (as Dask and Spark write them)."""
    return path.is_dir() and any(path.glob("*.parquet"))


def fit_engine(args: argparse.Namespace) -> str:
    """"duckdb" or "memory" for ``fit``: ``--engine`` if given, else DuckDB for a glob or a
    directory of Parquet files fitted by lmer, memory otherwise (a single file, a bundled
    dataset, any glmer)."""
    if args.engine is None:
        many = is_glob(args.data) or _parquet_directory(Path(args.data))
        return "duckdb" if many and args.family is None else "memory"
    if args.engine == "duckdb" and args.family is not None:
        raise MixedModelsError("--engine duckdb fits lmer only: glmer reads the rows at every "
                               "step; drop --engine (or give --engine memory)")
    return args.engine


def read_data(source: str):
    """A bundled dataset name, or a path to a CSV, TSV or Parquet file, as a pandas DataFrame.

    Raises
    ------
    DataError
        A missing file, a directory, a file type other than CSV/TSV/Parquet (named, with a
        hint on converting it), a file that cannot be parsed, or an unknown dataset name.
    """
    from . import datasets
    from .errors import DataError

    path = Path(source)
    if is_glob(source) or _parquet_directory(path):
        # glmer and the report need the rows: DuckDB reads the files into one frame
        from .sources.duckdb import open_path

        return open_path(source).relation.df()
    kind, suffix = _file_format(path)
    if path.is_dir():
        raise DataError(f"--data {source} is a directory without Parquet files; give a CSV, "
                        f"TSV or Parquet file, or a glob of them in quotes ('{source}/*.csv')")
    if kind is None and suffix:
        hint = f" ({_HINTS[suffix]})" if suffix in _HINTS else ""
        raise DataError(f"--data {source}: unsupported file type '{suffix}'{hint}; give a CSV "
                        "(.csv, .tsv, optionally compressed: .csv.gz) or Parquet (.parquet) "
                        "file, or a bundled dataset name (mixedmodels datasets)")
    if kind is None and not path.exists():
        try:
            return datasets.load(source)
        except DataError as exc:
            raise DataError(f"--data {source}: no such file, and {exc}") from None
    if not path.exists():
        raise DataError(f"data file not found: {source}")
    import pandas as pd

    try:
        if kind == "Parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if kind == "TSV" else ",")
    except ImportError as exc:
        raise DataError(f"reading {source} needs pyarrow: pip install "
                        f"'mixedmodels[parquet]' ({exc})") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {source} as {kind or 'CSV'}: {exc}") from None


NB_NAMES = ("negative.binomial", "negbin", "nb")


def _is_negative_binomial(family: str) -> bool:
    return family.lower().replace("_", ".") in NB_NAMES


def _fit_model(args: argparse.Namespace, data):
    """lmer without ``--family``; glmer, or glmer_nb for a negative binomial, with it."""
    from .api import glmer, glmer_nb, lmer

    if args.family is None:
        if args.link is not None or args.nagq is not None:
            raise MixedModelsError("--link and --nagq apply to generalized models: give "
                                   "--family too (e.g. --family binomial)")
        return lmer(args.formula, data, reml=not args.ml, weights=args.weights)
    if args.ml:
        raise MixedModelsError("--ml does not apply with --family: glmer fits are always by "
                               "maximum likelihood (there is no REML criterion for a GLMM)")
    nagq = 1 if args.nagq is None else args.nagq
    if _is_negative_binomial(args.family):
        return glmer_nb(args.formula, data, weights=args.weights, nagq=nagq,
                        link=args.link or "log")
    return glmer(args.formula, data, family=args.family, link=args.link,
                 weights=args.weights, nagq=nagq)


def _fit(args: argparse.Namespace) -> int:
    # DuckDB: two passes over the files, no rows in memory (lmer only); else a data frame
    data = args.data if fit_engine(args) == "duckdb" else read_data(args.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _fit_model(args, data)
    summary = result.summary()
    single = Path(args.data).suffix and not is_glob(args.data)
    summary.data_name = Path(args.data).stem if single else args.data
    summary.weights_name = args.weights
    print(summary)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return 0


def _use_agg() -> None:
    # The report subcommands only write PNGs into a file, and Agg needs no display. Once pyplot
    # is imported (a caller's session) its backend stays: switching would close its figures.
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    if args.family is None and (args.link is not None or args.nagq is not None):
        raise MixedModelsError("--link and --nagq apply to generalized models: give --family "
                               "too (e.g. --family binomial)")
    if args.family is not None and args.ml:
        raise MixedModelsError("--ml does not apply with --family: glmer fits are always by "
                               "maximum likelihood (there is no REML criterion for a GLMM)")
    _use_agg()
    data = read_data(args.data)
    name = Path(args.data).stem if Path(args.data).suffix else args.data
    # The fit's warnings are on the page; on the terminal each shows once, as one line.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(args.formula, data, args.out, data_name=name, x=args.x,
                            reml=not args.ml, family=args.family, link=args.link,
                            nagq=1 if args.nagq is None else args.nagq, seed=args.seed)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .report import run_demo

    _use_agg()
    run_demo(args.out, seed=args.seed)
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from .datasets import catalog

    table = catalog()
    sizes = [f"{rows} x {columns}" for rows, columns in zip(table["rows"], table["columns"])]
    name_width = max(len("name"), *map(len, table.index))
    size_width = max(len("rows x columns"), *map(len, sizes))
    print(f"{'name':<{name_width}}  {'rows x columns':>{size_width}}  description")
    for name, size, text in zip(table.index, sizes, table["description"]):
        print(f"{name:<{name_width}}  {size:>{size_width}}  {text}")
    return 0


def _model_options(parser, family_help: str) -> None:
    """--ml, --family, --link and --nagq, shared by ``fit`` and ``report``."""
    parser.add_argument("--ml", action="store_true",
                        help="maximum likelihood instead of REML (lmer only)")
    # No choices= for --family and --link: the library's own message lists what it knows.
    parser.add_argument("--family", metavar="NAME", help=family_help)
    parser.add_argument("--link", metavar="NAME",
                        help="link function (default: the family's, e.g. logit for binomial)")
    parser.add_argument("--nagq", type=int, metavar="N",
                        help="glmer's nAGQ: 1 Laplace (default), 0, or N > 1 adaptive "
                             "Gauss-Hermite nodes (one random-effects term only)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedmodels",
                                     description="Linear and generalized linear mixed-effects "
                                                 "models with lme4's answers.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    # Not required=True: ``mixedmodels --version`` has no subcommand; main() checks instead.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fit = sub.add_parser("fit", help="fit a linear (lmer) or generalized linear (glmer) mixed "
                                     "model and print its summary")
    fit.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    fit.add_argument("--data", required=True,
                     help="bundled dataset name (see `mixedmodels datasets`), CSV/Parquet path, "
                          "or a quoted glob ('events/*.parquet') that lmer reads through DuckDB")
    fit.add_argument("--weights", metavar="COL",
                     help="column of prior weights (binomial: the numbers of trials)")
    fit.add_argument("--engine", choices=("memory", "duckdb"),
                     help="where lmer reads the rows: 'memory' reads them into a data frame, "
                          "'duckdb' fits in two passes over the files without loading them "
                          "(Parquet or CSV; lmer only). Default: duckdb for a glob or a "
                          "directory of Parquet files, memory for a single file or a dataset")
    _model_options(fit, "fit a GLMM with glmer: binomial, poisson, Gamma, inverse.gaussian, "
                        "gaussian, or negative.binomial (nb: glmer.nb, shape estimated)")
    fit.set_defaults(func=_fit)
    report = sub.add_parser("report", help="fit a model and write a self-contained HTML report")
    report.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    report.add_argument("--data", required=True,
                        help="bundled dataset name or CSV/Parquet path")
    report.add_argument("--out", default="report.html", metavar="FILE",
                        help="HTML file to write (default: report.html)")
    report.add_argument("--x", metavar="COL",
                        help="numeric column for the x axis of the data and model-line figures "
                             "(default: the first numeric fixed-effect variable)")
    _model_options(report, "report on a GLMM fitted with glmer: binomial, poisson, Gamma, "
                           "inverse.gaussian, or negative.binomial (glmer.nb)")
    report.add_argument("--seed", type=int, default=1, metavar="N",
                        help="seed of a GLMM's simulated (DHARMa) residuals (default: 1)")
    report.set_defaults(func=_report)
    demo = sub.add_parser("demo", help="the lecture's analysis of simulated salary data, "
                                       "printed and written as an HTML report")
    demo.add_argument("--out", default="mixedmodels-demo.html", metavar="FILE",
                      help="HTML file to write (default: mixedmodels-demo.html)")
    demo.add_argument("--seed", type=int, default=2024, metavar="N",
                      help="seed of the simulated data (default: 2024)")
    demo.set_defaults(func=_demo)
    ds = sub.add_parser("datasets", help="list the bundled datasets with their size and a "
                                         "one-line description")
    ds.set_defaults(func=_datasets)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 2 when the model or data were rejected (the message goes to stderr).
        Invalid arguments exit through argparse (``SystemExit`` with status 2).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"mixedmodels {__version__}")
        return 0
    if args.command is None:
        parser.error("a command is required (fit, report, demo or datasets)")
    try:
        return args.func(args)
    except MixedModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
