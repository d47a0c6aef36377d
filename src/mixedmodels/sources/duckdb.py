"""DuckDB as a source: a relation, or a path / glob of Parquet or CSV files.

Both passes run as SQL where the data live. The first pass counts rows and missing values,
takes ``scale()`` statistics and fetches the distinct levels of every factor (nothing is
stored in the connection). The second computes every cross-product block as ``GROUP BY``
sums on the raw values of the grouping columns (one query per term and per pair of terms)
and codes the groups in Python with the first pass's levels: what comes back has one row
per level or observed pair of levels, never one per data row. Fitted values, residuals and
predictions are relations that join the rows to data frames of b, keyed by the same
raw values (``duckdb_predict.py``). ``duckdb`` is imported on first use only.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import Any

import numpy as np
import pandas as pd

from ..crossprod import CrossProducts, off_block
from ..errors import DataError
from .poly import Poly, sql_double, sql_numeric
from .spec import FACTOR, LOGICAL, NUMERIC, ColumnStats, FirstPass, Needs, SourceSpec

VIEW = "mm_src"
# DuckDB's memory limit on the connections opened for a path (its default is 80 % of RAM).
# Unbounded, the hash tables of the pair blocks' GROUP BY at 1e8 rows take about 1.3 GB;
# bounded, they spill to a private temporary directory, the pass takes as long (the scan
# dominates) and the fit's peak is the optimizer's (benchmarks/scale.py). Pass a relation of
# your own connection for other settings.
PATH_MEMORY_LIMIT = "256MB"
PARQUET = (".parquet", ".parq", ".pq")
CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
_NUMERIC_IDS = {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
                "uinteger", "ubigint", "uhugeint", "float", "double", "decimal"}
_FLOAT_IDS = {"float", "double"}


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kind(type_id: str) -> str:
    if type_id in _NUMERIC_IDS:
        return NUMERIC
    if type_id == "boolean":
        return LOGICAL
    if type_id in ("varchar", "enum"):
        return FACTOR
    return type_id.upper()


class DuckDBSource:
    """A DuckDB relation and what the passes need to query it.

    Parameters
    ----------
    relation : duckdb relation; every query runs on its connection, the relation seen as a
        view named ``mm_src``.
    label : how messages and the summary name the source (a path, or "DuckDB relation").
    files : per file (path, {column: type id}) when read from files, for the schema checks.
    """

    engine = "DuckDB"

    def __init__(self, relation: Any, label: str, files: list | None = None):
        self.relation = relation
        self.label = label
        self.files = files or []
        # what makes two fits read the same rows: the files, or the relation object itself
        self.identity = (tuple(f for f, _ in self.files) if self.files
                         else ("relation", id(relation)))
        self._types = {c: str(t.id) for c, t in zip(relation.columns, relation.types)}
        self._complete = "TRUE"

    # ---- running SQL --------------------------------------------------------------------
    def sql(self, text: str, frames: dict[str, pd.DataFrame] | None = None):
        """A relation for ``text`` (which reads ``mm_src``, and the data frames ``frames`` by
        their names); errors name the source."""
        import duckdb

        try:
            if frames:
                return _query_with_frames(self.relation, text, frames)
            return self.relation.query(VIEW, text)
        except duckdb.Error as err:
            raise DataError(f"DuckDB could not read {self.label}: {err}") from None

    def fetch(self, text: str, frames: dict[str, pd.DataFrame] | None = None
              ) -> dict[str, np.ndarray]:
        import duckdb

        try:
            return self.sql(text, frames).fetchnumpy()
        except duckdb.Error as err:
            raise DataError(f"DuckDB could not read {self.label}: {err}") from None

    # ---- schema -------------------------------------------------------------------------
    def kinds(self) -> dict[str, str]:
        """Column -> "numeric", "logical", "factor", or the DuckDB type of anything else."""
        return {c: _kind(t) for c, t in self._types.items()}

    def check_used(self, used: list[str]) -> None:
        """Every used column in every file, with types that agree (numbers may widen)."""
        for col in used:
            missing = [path for path, types in self.files if col not in types]
            if missing:
                raise DataError(f"column '{col}' is missing from {len(missing)} of "
                                f"{len(self.files)} files, e.g. {missing[0]}")
            kinds = {}
            for path, types in self.files:
                kinds.setdefault(_kind(types[col]), (path, types[col]))
            if len(kinds) > 1:
                (k1, (p1, t1)), (k2, (p2, t2)) = list(kinds.items())[:2]
                raise DataError(f"column '{col}' has different types in different files: "
                                f"{t1.upper()} in {p1}, {t2.upper()} in {p2}; cast it to one "
                                "type when writing the files, or read them as a DuckDB relation "
                                "that casts it")

    def _missing(self, col: str) -> str:
        q = quote(col)
        return f"({q} IS NULL OR isnan({q}))" if self._types[col] in _FLOAT_IDS \
            else f"({q} IS NULL)"

    def column_sql(self, col: str) -> str:
        return f"CAST({quote(col)} AS DOUBLE)"

    # ---- pass 1 ---------------------------------------------------------------------------
    def first_pass(self, needs: Needs) -> FirstPass:
        """Counts, missing values, scale() statistics and the level tables (one query for the
        numbers, one per coding for its distinct levels)."""
        present = " AND ".join(f"NOT {self._missing(c)}" for c in needs.used) or "TRUE"
        # a row is dropped, as in memory, where an expression gives NaN on present values;
        # each expression counts the rows that no earlier one dropped
        kept, items = present, []
        for i, expr in enumerate(needs.nan_exprs):
            nan = f"isnan({sql_numeric(expr, self.column_sql)})"
            items.append(f"count(*) FILTER (WHERE {kept} AND {nan}) AS nan_{i}")
            kept = f"{kept} AND NOT {nan}"
        self._complete = kept
        done = f"FILTER (WHERE {self._complete})"
        items += ["count(*) AS n_total", f"count(*) {done} AS n"]
        items += [f"count(*) FILTER (WHERE {self._missing(c)}) AS miss_{i}"
                  for i, c in enumerate(needs.used)]
        for i, c in enumerate(needs.scale):
            items += [f"avg({self.column_sql(c)}) {done} AS mean_{i}",
                      f"stddev_samp({self.column_sql(c)}) {done} AS sd_{i}"]
        for i, c in enumerate(needs.numeric):
            if self._types[c] in _FLOAT_IDS:
                items.append(f"count(*) FILTER (WHERE {self._complete} AND isinf({quote(c)})) "
                             f"AS inf_{i}")
        if needs.weights is not None:
            w = self.column_sql(needs.weights)
            items += [f"count(*) FILTER (WHERE {self._complete} AND {w} < 0) AS w_neg",
                      f"count(*) FILTER (WHERE {self._complete} AND {w} = 0) AS w_zero"]
        row = {k: v[0] for k, v in self.fetch(f"SELECT {', '.join(items)} FROM {VIEW}").items()}
        for i, c in enumerate(needs.numeric):
            if row.get(f"inf_{i}", 0):
                raise DataError(f"column '{c}' has {row[f'inf_{i}']} infinite value(s) in "
                                f"{self.label}; the model needs finite numbers")
        if needs.weights is not None:
            for key, what in (("w_neg", "negative"), ("w_zero", "zero")):
                if row[key]:
                    raise DataError(f"weights column '{needs.weights}' has {row[key]} {what} "
                                    f"value(s) in {self.label}; weights must be positive")
        distinct = {key: self._level_table(cols) for key, cols in needs.codings.items()}
        return FirstPass(
            n_total=int(row["n_total"]), n=int(row["n"]),
            missing={c: int(row[f"miss_{i}"]) for i, c in enumerate(needs.used)
                     if row[f"miss_{i}"]},
            distinct=distinct,
            scale={c: (float(row[f"mean_{i}"]), float(row[f"sd_{i}"]))
                   for i, c in enumerate(needs.scale)},
            nan_rows={e: int(row[f"nan_{i}"]) for i, e in enumerate(needs.nan_exprs)
                      if row[f"nan_{i}"]})

    def _level_table(self, cols: tuple[str, ...]) -> pd.DataFrame:
        """The distinct combinations of ``cols`` on the complete rows, named as the source's
        columns, in no particular order (``spec._coding`` puts R's order in). Nothing is
        stored in the connection: the groups of pass 2 are coded in Python."""
        names = ", ".join(quote(c) for c in cols)
        frame = self.sql(f"SELECT DISTINCT {names} FROM {VIEW} WHERE {self._complete}").df()
        for c in cols:
            # an ENUM arrives as an ordered Categorical; R would see an unordered factor
            if isinstance(frame[c].dtype, pd.CategoricalDtype):
                frame[c] = frame[c].cat.as_unordered()
        return frame

    def fix_codes(self, spec: SourceSpec) -> None:
        """Nothing to fix: no level is stored in the connection (pass 2 codes the groups with
        R's order in Python)."""

    # ---- after the fit -------------------------------------------------------------------
    def fitted(self, result, residuals: str | None = None):
        """A relation of the source's columns and ``fitted`` (or ``residual`` of the given
        type) for every row used by ``result``."""
        from .duckdb_predict import fitted_relation

        return fitted_relation(self, result, residuals)

    def residual_reader(self, result):
        from .duckdb_predict import residual_reader

        return residual_reader(self, result)

    def predict(self, result, plan, training: bool):
        """A relation of the rows' columns and ``prediction``: the rows ``result`` used
        (``training``) or every row of this source (see ``duckdb_predict``)."""
        from .duckdb_predict import predict_relation

        return predict_relation(result, self, plan, None if training else self)

    def write_predictions(self, result, path: str, plan, training: bool) -> None:
        """Those rows and their predictions written to the Parquet file ``path``."""
        from .duckdb_predict import write_predictions

        write_predictions(result, self, path, plan, None if training else self)

    # ---- pass 2 ---------------------------------------------------------------------------
    def atom_sql(self, atom: tuple, codings: dict) -> str:
        """SQL of an atom: a level indicator compares the raw columns with the level's values
        (no join: the rows are grouped by their raw values, coded afterwards)."""
        if atom[0] == "lev":
            coding = codings[atom[1]]
            if coding.boolean:
                return f"{quote(coding.columns[0])} = {'TRUE' if atom[2] else 'FALSE'}"
            row = coding.values.iloc[int(atom[2])]
            return " AND ".join(f"{quote(c)} = {_value_sql(row[c])}" for c in coding.columns)
        if atom[1] in self._types:
            return self.column_sql(atom[1])
        return sql_numeric(atom[1], self.column_sql)

    def render(self, poly: Poly, codings: dict) -> str:
        return poly.render(lambda a: self.atom_sql(a, codings))

    def rows_sql(self, joins: str = "") -> str:
        """FROM clause of the complete rows (as ``s``), with ``joins`` after it."""
        return f"(SELECT * FROM {VIEW} WHERE {self._complete}) AS s {joins}"

    def _product(self, w: str | None, a: Poly, b: Poly | None, codings: dict) -> str:
        """w * a * b, each polynomial rendered on its own: expanding a product of affine
        columns (scale()) would cancel digits that the in-memory product keeps."""
        parts = [] if w is None else [w]
        for poly in (a, b):
            if poly is not None and not poly.is_one():
                parts.append(f"({self.render(poly, codings)})")
        return " * ".join(parts) or "1.0"

    def _grouped(self, spec: SourceSpec, keys: list[str], items: list[str]
                 ) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """Sums ``items`` grouped by the raw columns of the codings ``keys``; returns each
        coding's codes (m,) int32 of the groups (R's level order, ``_lookup``) and the sums
        (m,) by name.

        A pair block can have 1e7 groups: they come back in batches (``batches``), each coded
        on arrival, so neither DuckDB's materialized result nor the raw key columns are held
        whole; the parts are joined one column at a time."""
        cols = [c for key in keys for c in spec.codings[key].columns]
        heads = [f"{quote(c)} AS k{m}" for m, c in enumerate(cols)]
        group = ", ".join(f"k{m}" for m in range(len(cols)))
        text = (f"SELECT {', '.join(heads + items)} FROM {self.rows_sql()} "
                f"GROUP BY {group} ORDER BY {group}")
        code_parts: list[list[np.ndarray]] = [[] for _ in keys]
        sum_parts: dict[str, list[np.ndarray]] = {}
        for out in self.batches(text):
            m = 0
            for k, key in enumerate(keys):
                coding = spec.codings[key]
                width = len(coding.columns)
                probe = _plain(pd.DataFrame({c: np.asarray(out[f"k{m + h}"])
                                             for h, c in enumerate(coding.columns)}))
                codes = _lookup(coding).get_indexer(
                    pd.MultiIndex.from_frame(probe) if width > 1 else probe.iloc[:, 0])
                if codes.size and codes.min() < 0:
                    raise DataError(f"a level of {', '.join(coding.columns)} was not seen in "
                                    f"the first pass over {self.label}: the source changed "
                                    "between the passes")
                code_parts[k].append(codes.astype(np.int32))
                m += width
            for c, v in out.items():
                if not c.startswith("k"):
                    sum_parts.setdefault(c, []).append(np.asarray(v, dtype=float))
        codes = [_join(parts, np.int32) for parts in code_parts]
        return codes, {c: _join(sum_parts.pop(c), float) for c in list(sum_parts)}

    def batches(self, text: str, rows: int = 1 << 20):
        """The result of ``text`` as dicts of columns of at most ``rows`` rows each, streamed
        through Arrow when pyarrow is installed (one dict of everything otherwise). Every
        column of the query is present in each dict, also when the result is empty."""
        import duckdb

        try:
            import pyarrow  # noqa: F401
        except ImportError:
            yield self.fetch(text)
            return
        try:
            reader = self.sql(text).to_arrow_reader(rows)
            empty = True
            for batch in reader:
                empty = False
                frame = batch.to_pandas()
                yield {c: frame[c].to_numpy() if not isinstance(
                    frame[c].dtype, pd.CategoricalDtype) else frame[c] for c in frame.columns}
            if empty:
                yield {name: np.empty(0) for name in reader.schema.names}
        except duckdb.Error as err:
            raise DataError(f"DuckDB could not read {self.label}: {err}") from None

    def cross_products(self, spec: SourceSpec) -> tuple[CrossProducts, np.ndarray]:
        """Pass 2: ``CrossProducts`` for every column of X (before the rank check) and the
        unweighted X'X (p, p) that R's rank check reads."""
        codings = spec.codings
        w = None if spec.weights is None else self.column_sql(spec.weights)
        V = list(spec.x) + [spec.y - spec.offset]
        p = len(spec.x)
        terms = spec.terms
        diag, xz = [], []
        for i, t in enumerate(terms):
            zi = spec.z[i]
            pairs = [(a, b) for a in range(t.p) for b in range(a + 1)]
            items = [f"sum({self._product(w, zi[a], zi[b], codings)}) AS d{a}_{b}"
                     for a, b in pairs]
            items += [f"sum({self._product(w, V[c], zi[a], codings)}) AS x{c}_{a}"
                      for c in range(p + 1) for a in range(t.p)]
            (code,), out = self._grouped(spec, [spec.group_keys[i]], items)
            if code.size != t.n_levels:
                raise DataError(f"grouping factor '{t.group_name}' has {code.size} levels "
                                f"in the second pass over {self.label} and {t.n_levels} in the "
                                "first: the source changed between the passes")
            tiles = np.empty((t.n_levels, t.p, t.p))
            block = np.empty((p + 1, t.n_levels, t.p))
            for a, b in pairs:
                tiles[code, a, b] = tiles[code, b, a] = out[f"d{a}_{b}"]
            for c in range(p + 1):
                for a in range(t.p):
                    block[c, code, a] = out[f"x{c}_{a}"]
            diag.append(tiles)
            xz.append(block.reshape(p + 1, t.q))
        off, nested = {}, {}
        for i, ti in enumerate(terms):
            for j in range(i):
                tj = terms[j]
                items = [f"sum({self._product(w, spec.z[i][a], spec.z[j][b], codings)}) "
                         f"AS o{a}_{b}" for a in range(ti.p) for b in range(tj.p)]
                (gi, gj), out = self._grouped(spec, [spec.group_keys[i], spec.group_keys[j]],
                                              items)
                tiles = np.empty((gi.size, ti.p, tj.p))
                for a in range(ti.p):
                    for b in range(tj.p):
                        tiles[:, a, b] = out.pop(f"o{a}_{b}")
                off[(i, j)] = off_block(gi, gj, tiles, (ti.q, tj.q))
                del tiles
                # pairs are unique: j is nested in i when each level of j is in one pair
                nested[(i, j)] = bool(np.bincount(gj, minlength=tj.n_levels).max(initial=0)
                                      <= 1)
        items = ["count(*) AS n", "sum(ln(" + w + ")) AS slw" if w else "0.0 AS slw",
                 f"min({self.render(V[p], codings)}) AS ymin",
                 f"max({self.render(V[p], codings)}) AS ymax"]
        for c in range(p):
            value = self.render(V[c], codings)
            items += [f"stddev_samp({value}) AS sd{c}",
                      f"bool_and(({value}) = 0 OR ({value}) = 1) AS bin{c}"]
        pairs = [(a, b) for a in range(p + 1) for b in range(a + 1)]
        items += [f"sum({self._product(w, V[a], V[b], codings)}) AS v{a}_{b}" for a, b in pairs]
        if w is not None:
            items += [f"sum({self._product(None, V[a], V[b], codings)}) AS u{a}_{b}"
                      for a, b in pairs if a < p]
        out = {k: v[0] for k, v in
               self.fetch(f"SELECT {', '.join(items)} FROM {self.rows_sql()}").items()}
        xx = np.empty((p + 1, p + 1))
        gram = np.empty((p, p))
        for a, b in pairs:
            xx[a, b] = xx[b, a] = out[f"v{a}_{b}"]
            if a < p:
                gram[a, b] = gram[b, a] = out[f"u{a}_{b}"] if w is not None else xx[a, b]
        n = int(out["n"])
        if n != spec.first.n:
            raise DataError(f"the second pass over {self.label} saw {n} complete rows and the "
                            f"first {spec.first.n}: the source changed between the passes")
        A = CrossProducts(dims=tuple((t.n_levels, t.p) for t in terms), diag=tuple(diag),
                          off=off, xz=tuple(xz), xx=xx, n=n, p=p,
                          sum_log_w=float(out["slw"] or 0.0), nested=nested)
        stats = ColumnStats(y_range=(float(out["ymin"]), float(out["ymax"])),
                            sd=np.array([out[f"sd{c}"] for c in range(p)], dtype=float),
                            binary=np.array([bool(out[f"bin{c}"]) for c in range(p)]))
        return A, gram, stats

    def residual_ss(self, spec: SourceSpec, keep: np.ndarray, coef: np.ndarray
                    ) -> tuple[float, float]:
        """(sum of w (y - offset - X[:, keep] coef)^2, sum of w (y - offset)^2): one pass."""
        codings = spec.codings
        yc = f"({self.render(spec.y - spec.offset, codings)})"
        fit = " + ".join(f"{sql_double(b)} * ({self.render(spec.x[k], codings)})"
                         for b, k in zip(coef, keep)) or "0.0"
        w = "" if spec.weights is None else f"{self.column_sql(spec.weights)} * "
        out = self.fetch(f"SELECT sum({w}pow({yc} - ({fit}), 2)) AS rss, sum({w}{yc} * {yc}) "
                         f"AS yy FROM {self.rows_sql()}")
        return float(out["rss"][0]), float(out["yy"][0])


def _value_sql(value) -> str:
    """A raw level value as a SQL literal (text quoted, numbers exact)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return sql_double(float(value))
    return _string(str(value))


def _query_with_frames(relation, text: str, frames: dict[str, pd.DataFrame]):
    """``relation.query(VIEW, text)`` where ``text`` also reads the pandas data frames of
    ``frames`` by their names (identifiers).

    DuckDB finds a data frame named in a query among the local variables of the Python frame
    that calls ``query`` (its replacement scan; not the callers above it), and the relation it
    returns holds the data frame for as long as it lives. So the call is made from a function
    whose parameters carry those names: no table is created in the relation's connection, and
    nothing has to be dropped later."""
    if not all(name.isidentifier() for name in frames):
        raise ValueError(f"data frame names must be identifiers: {list(frames)}")
    namespace: dict = {}
    exec(f"def query(relation, text, {', '.join(frames)}):\n"
         f"    return relation.query({VIEW!r}, text)\n", namespace)
    return namespace["query"](relation, text, **frames)


def _join(parts: list[np.ndarray], dtype) -> np.ndarray:
    """The parts end to end (one part: itself, no copy)."""
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as their labels (an ENUM's codes are not the levels' positions)."""
    return frame.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype)
                       else c)


def _lookup(coding) -> pd.Index:
    """The levels of a coding as an index: ``get_indexer`` maps raw values to codes."""
    values = _plain(coding.values)
    if len(coding.columns) == 1:
        return pd.Index(values.iloc[:, 0])
    return pd.MultiIndex.from_frame(values)


# ---- opening files ------------------------------------------------------------------------
READ_FIRST = ("read other files first (pandas.read_csv, pandas.read_excel, ...) or load a "
              "bundled dataset (mixedmodels.datasets.load(name))")


def _format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(PARQUET):
        return "parquet"
    if lower.endswith(CSV):
        return "csv"
    raise DataError(f"data '{path}' is not a Parquet or CSV file (a path or glob of *.parquet or "
                    f"*.csv files is read by DuckDB); {READ_FIRST}")


def open_path(path: str | os.PathLike) -> DuckDBSource:
    """A ``DuckDBSource`` over the Parquet or CSV files that ``path`` names (a file, a glob such
    as ``events/*.parquet``, or a directory of Parquet files), on a new in-memory connection.

    Raises
    ------
    DataError
        No file matches, files of mixed formats, or a file DuckDB cannot read (named).
    """
    import duckdb

    text = os.fspath(path)
    if os.path.isdir(text):
        text = os.path.join(text, "*.parquet")
    spill = tempfile.mkdtemp(prefix="mixedmodels-duckdb-")
    con = duckdb.connect(config={"memory_limit": PATH_MEMORY_LIMIT, "temp_directory": spill})
    try:
        files = sorted(r[0] for r in con.execute("SELECT file FROM glob(?)", [text]).fetchall())
    except duckdb.Error as err:
        raise DataError(f"cannot list the files of '{text}': {err}") from None
    if not files:
        from ..datasets import names

        bundled = {n.casefold(): n for n in names()}.get(text.casefold())
        if bundled is not None:
            raise DataError(f"no file matches '{text}'; '{bundled}' is a bundled dataset: "
                            f"pass mixedmodels.datasets.load('{bundled}') as data")
        if not os.path.splitext(text)[1]:
            raise DataError(f"no file matches '{text}' (a path or glob of Parquet or CSV files "
                            f"is read by DuckDB); {READ_FIRST}")
        _format(text)
        raise DataError(f"no file matches '{text}' (a path or glob of Parquet or CSV files)")
    formats = {_format(f) for f in files}
    if len(formats) > 1:
        raise DataError(f"'{text}' matches both Parquet and CSV files; fit from one format")
    fmt = formats.pop()
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    schemas = []
    for f in files:
        try:
            rel = con.sql(f"SELECT * FROM {reader}({_string(f)})")
            schemas.append((f, {c: str(t.id) for c, t in zip(rel.columns, rel.types)}))
        except duckdb.Error as err:
            raise DataError(f"cannot read '{f}' as {fmt.upper()}: {err}") from None
    listing = "[" + ", ".join(_string(f) for f in files) + "]"
    relation = con.sql(f"SELECT * FROM {reader}({listing}, union_by_name = true)")
    label = text if len(files) > 1 or any(ch in text for ch in "*?[") else files[0]
    source = DuckDBSource(relation, label, schemas)
    source.connection = con        # keep the connection alive as long as the source
    weakref.finalize(source, shutil.rmtree, spill, ignore_errors=True)
    return source
