"""Validated ingest: raw tables -> processed Parquet (``python -m analysis ingest``).

Every table in the raw directory is read (CSV, Parquet or XLSX), coerced to its canonical types,
validated against its pandera schema (:mod:`analysis.schemas`) and against the rules across tables.
Every problem is collected before anything is written; when there is one, :class:`IngestError`
lists them all (file, row, column, rule, value) and the output directory is left untouched.
Otherwise the tables are normalised (UTC timestamps plus local dates, de-duplicated and cleaned
snapshots, daily increments, creator tiers, pseudonymised customer ids) and written as Parquet to a
temporary directory that then replaces the output directory.

Rows are numbered as data rows of the file, starting at 1 after the header (row 1 is line 2 of a
CSV file without line breaks inside cells).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import __version__, config, exports
from analysis.fileio import atomic_write_text, share_dir
from analysis.progress import progress
from analysis.schemas import (
    CUMULATIVE_COUNTS,
    CUMULATIVE_DROP_ABS,
    CUMULATIVE_DROP_REL,
    SHARE_SUM_TOLERANCE,
    TABLES,
    ColumnSpec,
    table_schema,
)

__all__ = ["IngestError", "Manifest", "Problem", "cli", "ingest", "pseudonymise", "read_salt",
           "validate"]

#: Readers by file suffix.
SUFFIXES = (".csv", ".parquet", ".xlsx")

#: At most this many rows are listed for one file, column and rule; the rest are counted.
MAX_ROWS_PER_RULE = 20

#: Environment variable that overrides the salt file (deterministic pseudonyms in tests).
SALT_ENV = "ANALYSIS_SALT"

MANIFEST = "manifest.json"

#: Start of the rule of a problem raised by an unexpected failure while checking a table.
INTERNAL = "could not be checked (please report this)"


# --- problems -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem found in the raw data.

    Attributes
    ----------
    file : str
        File name inside the raw directory.
    row : int or None
        1-based data row (the header is not counted), ``None`` for a problem of the whole file
        or column.
    column : str or None
        Column concerned, if any.
    rule : str
        The rule broken, in plain words.
    value : object
        The offending value, if any.
    """

    file: str
    row: int | None
    column: str | None
    rule: str
    value: object = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = f"{', '.join(where)}: {self.rule}"
        if self.value is not None:
            shown = repr(self.value) if isinstance(self.value, str) else str(self.value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            text += f" (found {shown})"
        return text

    def to_dict(self) -> dict:
        """JSON-safe plain dictionary."""
        value = self.value
        if value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        return {"file": self.file, "row": self.row, "column": self.column, "rule": self.rule,
                "value": value}


class IngestError(ValueError):
    """The raw data broke at least one rule; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the raw data; nothing was written:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class _Collector:
    """Collects problems, listing at most ``MAX_ROWS_PER_RULE`` rows per file, column and rule."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._extra: dict[tuple, int] = defaultdict(int)
        self._listed: dict[tuple, int] = defaultdict(int)

    def add(self, problem: Problem) -> None:
        key = (problem.file, problem.column, problem.rule)
        if problem.row is not None and self._listed[key] >= MAX_ROWS_PER_RULE:
            self._extra[key] += 1
            return
        if problem.row is not None:
            self._listed[key] += 1
        self.problems.append(problem)

    def rows(self, file: str, column: str | None, rule: str, rows: np.ndarray,
             values: list | np.ndarray | pd.Series | None = None) -> None:
        """Add one problem per row (``rows`` are 0-based positions in the file)."""
        vals = list(values) if values is not None else [None] * len(rows)
        for r, v in zip(list(rows), vals, strict=True):
            self.add(Problem(file, int(r) + 1, column, rule, _plain(v)))

    def finish(self) -> list[Problem]:
        out = list(self.problems)
        for (file, column, rule), n in self._extra.items():
            out.append(Problem(file, None, column, f"{rule}: {n} more row{'s' if n != 1 else ''} "
                                                    "like the ones above"))
        return out


def _plain(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


# --- manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What ingest wrote: input files with their SHA-256, rows per table, package version.

    Attributes
    ----------
    path : pathlib.Path
        The processed directory.
    inputs : dict
        Raw file name -> ``{"sha256", "table", "rows"}``.
    tables : dict
        Processed table -> ``{"rows", "columns"}``.
    main_timezone : str
        Time zone used for local dates of rows without a campaign.
    version : str
        Package version that wrote the directory.
    """

    path: Path
    inputs: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    main_timezone: str = "UTC"
    version: str = __version__

    def to_dict(self) -> dict:
        """JSON-safe dictionary, as written to ``manifest.json`` (no path, no timestamps)."""
        return {"version": self.version, "main_timezone": self.main_timezone,
                "inputs": self.inputs, "tables": self.tables}

    def summary(self) -> pd.DataFrame:
        """One row per processed table: name, rows, columns, raw file."""
        sources: dict[str, list[str]] = defaultdict(list)  # an export file may feed many tables
        for k, v in self.inputs.items():
            for t in str(v["table"]).split(", "):
                sources[t].append(k)
        source = {t: f[0] + (f" +{len(f) - 1} more" if len(f) > 1 else "")
                  for t, f in sources.items()}
        return pd.DataFrame(
            [{"table": t, "rows": v["rows"], "columns": len(v["columns"]), "source": source.get(t)}
             for t, v in self.tables.items()],
            columns=["table", "rows", "columns", "source"])

    def plot(self, ax=None):
        """Bar chart of rows per processed table (log scale); returns the Axes."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 0.3 * max(len(self.tables), 4) + 1))
        s = self.summary().set_index("table")["rows"]
        ax.barh(s.index, s.clip(lower=1).values)
        ax.set_xscale("log")
        ax.set_xlabel("rows")
        ax.invert_yaxis()
        return ax

    @classmethod
    def read(cls, data_dir: str | Path) -> Manifest:
        """Read ``manifest.json`` of a processed directory."""
        d = json.loads((Path(data_dir) / MANIFEST).read_text(encoding="utf-8"))
        return cls(Path(data_dir), d.get("inputs", {}), d.get("tables", {}),
                   d.get("main_timezone", "UTC"), d.get("version", ""))


# --- reading ------------------------------------------------------------------------------------


def _find_files(raw_dir: Path, col: _Collector,
                conversion: exports.Conversion | None = None) -> dict[str, Path]:
    found: dict[str, list[Path]] = defaultdict(list)
    claimed = conversion.claimed if conversion is not None else frozenset()  # export files
    for p in sorted(raw_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in SUFFIXES and p.stem in TABLES \
                and p.name not in claimed:
            found[p.stem].append(p)
    files = {}
    for name, paths in found.items():
        if len(paths) > 1:
            col.add(Problem(paths[0].name, None, None,
                            f"table '{name}' is given more than once "
                            f"({', '.join(p.name for p in paths)}); keep one file per table"))
        files[name] = paths[0]
    for name, spec in TABLES.items():
        if name not in files and not spec.optional and \
                (conversion is None or name not in conversion.tables):
            hint = conversion.missing_hint(name) if conversion is not None else ""
            col.add(Problem(f"{name}.csv", None, None,
                            f"required table '{name}' is missing (expected {name}.csv, "
                            f"{name}.parquet or {name}.xlsx){hint}"))
    return files


def _ragged_rows(path: Path, col: _Collector) -> bool:
    """Report rows with more fields than the header; return whether any was found."""
    found = False
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        for i, row in enumerate(reader, start=1):
            if len(row) > len(header):
                found = True
                col.add(Problem(path.name, i, None,
                                f"row has {len(row)} fields but the header has {len(header)}"))
    return found


def _read_csv(path: Path, col: _Collector) -> pd.DataFrame | None:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
        if header is None:
            col.add(Problem(path.name, None, None, "file is empty (no header row)"))
            return None
        names = [h.strip() for h in header]
        dupes = sorted({h for h in names if names.count(h) > 1 and h})
        for h in dupes:
            col.add(Problem(path.name, None, h, "column appears more than once in the header"))
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig", header=0, names=names if not dupes else None)
        if dupes:
            return None
        return df
    except UnicodeDecodeError as exc:
        col.add(Problem(path.name, None, None,
                        f"file is not UTF-8 text (undecodable byte at position {exc.start}); "
                        "save it as UTF-8"))
    except pd.errors.EmptyDataError:
        col.add(Problem(path.name, None, None, "file is empty (no header row)"))
    except pd.errors.ParserError as exc:
        try:
            if not _ragged_rows(path, col):
                col.add(Problem(path.name, None, None, f"cannot be read as CSV: {exc}"))
        except (csv.Error, UnicodeDecodeError) as exc2:
            col.add(Problem(path.name, None, None, f"cannot be read as CSV: {exc2}"))
    except (csv.Error, ValueError, OSError) as exc:
        col.add(Problem(path.name, None, None, f"cannot be read as CSV: {exc}"))
    return None


def _read(path: Path, col: _Collector) -> pd.DataFrame | None:
    """Read one raw file; record problems and return ``None`` when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = _read_csv(path, col)
    else:
        try:
            if suffix == ".parquet":
                df = pd.read_parquet(path)
            else:
                df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[""])
        except Exception as exc:  # noqa: BLE001 - any reader failure is a problem of the file
            kind = "Parquet" if suffix == ".parquet" else "an Excel workbook"
            col.add(Problem(path.name, None, None, f"cannot be read as {kind}: {exc}"))
            return None
    if df is None:
        return None
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


# --- coercion -----------------------------------------------------------------------------------

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}

_UNREADABLE = {
    "count": "is not a whole number",
    "score": "is not a whole number",
    "binary": "is not 0 or 1",
    "amount": "is not a number",
    "number": "is not a number",
    "share": "is not a number",
    "rate": "is not a number",
    "flag": "is not true or false",
    "date": "is not a valid date (use ISO 8601, e.g. 2024-03-31)",
    "timestamp": "is not a valid date-time (use ISO 8601, e.g. 2024-03-31T14:05:00+02:00)",
}


def _is_text(s: pd.Series) -> bool:
    if s.dtype == object:
        return bool(s.dropna().map(type).eq(str).all())
    return pd.api.types.is_string_dtype(s.dtype)


def _as_text(s: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype):
        # Parquet/Excel ids stored as numbers: 7.0 -> "7"
        whole = s.notna() & (s % 1 == 0)
        out = s.astype("str")
        out[whole] = s[whole].astype("int64").astype("str")
    else:
        out = s.astype("str")
    out = out.where(s.notna())
    out = out.str.strip()
    return out.where(out != "")


def _coerce(s: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, np.ndarray]:
    """Return the column in its canonical dtype and the positions of unreadable cells."""
    k = spec.kind
    if _is_text(s):
        st = _as_text(s)
    else:
        st = s
    present = st.notna().to_numpy()
    if k in ("id", "text", "category", "timezone", "currency"):
        out = _as_text(s)
        return out, np.zeros(len(s), dtype=bool)
    if k in ("count", "score", "binary", "amount", "number", "share", "rate"):
        if pd.api.types.is_bool_dtype(st.dtype):
            st = st.astype("float64")
        num = pd.to_numeric(st, errors="coerce").astype("float64")
        bad = present & ~np.isfinite(num.to_numpy(na_value=np.nan))
        if k in ("count", "score", "binary"):
            frac = np.isfinite(num.to_numpy()) & (num.to_numpy() % 1 != 0)
            bad |= frac
            num = num.where(~pd.Series(bad, index=s.index))
            return num.astype("Int64"), bad
        return num.where(~pd.Series(bad, index=s.index)), bad
    if k == "flag":
        if pd.api.types.is_bool_dtype(st.dtype):
            return st.astype("boolean"), np.zeros(len(s), dtype=bool)
        low = _as_text(st).str.lower()
        out = pd.Series(pd.NA, index=s.index, dtype="boolean")
        out[low.isin(_TRUE).to_numpy()] = True
        out[low.isin(_FALSE).to_numpy()] = False
        bad = present & out.isna().to_numpy()
        return out, bad
    if k in ("date", "timestamp"):
        ts = _parse_datetime(st, utc=(k == "timestamp"))
        bad = present & ts.isna().to_numpy()
        if k == "date":
            not_midnight = ts.notna() & (ts != ts.dt.normalize())
            bad |= not_midnight.to_numpy()
            ts = ts.where(~not_midnight)
            return ts.astype("datetime64[ms]"), bad
        return ts.astype("datetime64[ms, UTC]"), bad
    raise ValueError(f"unknown column kind {k!r}")


def _parse_datetime(s: pd.Series, *, utc: bool) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC") if utc else s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize("UTC") if utc else s
    if not _is_text(s):
        parsed = pd.to_datetime(s, errors="coerce", utc=True)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
            except (ValueError, OverflowError):
                parsed = s.map(_parse_one)
                parsed = pd.to_datetime(parsed, utc=True)
    if not utc:
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_one(v):
    try:
        return pd.Timestamp(v) if isinstance(v, str) else pd.NaT
    except (ValueError, OverflowError):
        return pd.NaT


def _coerce_table(name: str, df: pd.DataFrame, file: str, col: _Collector
                  ) -> tuple[pd.DataFrame, set[tuple[str, int]]]:
    """Coerce the canonical columns of one table; return it and the (column, row) cells reported."""
    spec = TABLES[name]
    out = df.copy()
    reported: set[tuple[str, int]] = set()
    for c in spec.columns:
        if c.name not in df.columns:
            continue
        typed, bad = _coerce(df[c.name], c)
        out[c.name] = typed
        if bad.any():
            rows = np.flatnonzero(bad)
            col.rows(file, c.name, _UNREADABLE[c.kind], rows, df[c.name].to_numpy()[rows])
            reported.update((c.name, int(r)) for r in rows)
    return out, reported


# --- validation ---------------------------------------------------------------------------------


def _pandera_problems(name: str, df: pd.DataFrame, file: str, col: _Collector,
                      reported: set[tuple[str, int]]) -> None:
    import pandera.errors as pe

    spec = TABLES[name]
    schema = table_schema(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema.validate(df, lazy=True)
        return
    except pe.SchemaErrors as exc:
        fc = exc.failure_cases
    except pe.SchemaError as exc:  # pragma: no cover - lazy validation raises SchemaErrors
        col.add(Problem(file, None, None, str(exc)))
        return
    dup_rows: set[int] = set()
    for rec in fc.to_dict("records"):
        check = str(rec.get("check"))
        column = rec.get("column")
        column = None if column is None or (isinstance(column, float) and np.isnan(column)) else column
        idx = rec.get("index")
        row = None if idx is None or (isinstance(idx, float) and np.isnan(idx)) else int(idx)
        value = _plain(rec.get("failure_case"))
        if check == "column_in_dataframe":
            col.add(Problem(file, None, str(value), "required column is missing"))
        elif check in ("multiple_fields_uniqueness", "field_uniqueness"):
            if row is not None:
                dup_rows.add(row)
        elif check == "not_nullable":
            if row is not None and (column, row) not in reported:
                col.add(Problem(file, row + 1, column, "must not be empty"))
        elif check.startswith("dtype("):
            col.add(Problem(file, None, column, f"has the wrong type (expected {check[6:-1]})",
                            value))
        else:
            if row is not None and (column, row) in reported:
                continue
            if column is None and name == "campaigns":
                column = "end_date"
                value = _plain(df["end_date"].iloc[row]) if row is not None else None
            col.add(Problem(file, None if row is None else row + 1, column, check, value))
    if dup_rows:
        rows = np.array(sorted(dup_rows))
        key = [k for k in spec.key if k in df.columns]
        values = [", ".join(str(_plain(v)) for v in t)
                  for t in df[key].iloc[rows].itertuples(index=False)]
        col.rows(file, ", ".join(key), f"duplicate key: another row has the same "
                 f"{' + '.join(key)}", rows, values)


def _check_foreign_keys(tables: dict[str, pd.DataFrame], files: dict[str, str],
                        col: _Collector) -> None:
    for name, spec in TABLES.items():
        if name not in tables:
            continue
        df = tables[name]
        for fk in spec.foreign_keys:
            ref = tables.get(fk.ref_table)
            cols = list(fk.columns)
            if ref is None or any(c not in df.columns for c in cols) or \
                    any(c not in ref.columns for c in fk.ref_columns):
                continue
            sub = df[cols]
            mask = sub.notna().all(axis=1).to_numpy()
            if not mask.any():
                continue
            left = pd.MultiIndex.from_frame(sub[mask].astype("str"))
            right = pd.MultiIndex.from_frame(ref[list(fk.ref_columns)].dropna().astype("str"))
            right = right.set_names(left.names)
            missing = ~left.isin(right)
            if missing.any():
                rows = np.flatnonzero(mask)[missing]
                values = [", ".join(t) for t in left[missing]]
                what = " + ".join(cols)
                col.rows(files[name], ", ".join(cols),
                         f"{what} not found in {fk.ref_table}", rows, values)


def _check_share_sums(df: pd.DataFrame, file: str, col: _Collector) -> None:
    if not {"creator_id", "dimension", "share"} <= set(df.columns):
        return
    d = df[["creator_id", "dimension", "share"]].dropna()
    if d.empty:
        return
    g = d.groupby(["creator_id", "dimension"], sort=True)
    sums = g["share"].sum()
    first = d.assign(_row=d.index).groupby(["creator_id", "dimension"], sort=True)["_row"].min()
    bad = (sums - 1).abs() > SHARE_SUM_TOLERANCE
    for (creator, dim), total in sums[bad].items():
        col.add(Problem(file, int(first[(creator, dim)]) + 1, "share",
                        f"shares of creator {creator}, dimension {dim} sum to {total:.3f} "
                        f"(must be 1 within {SHARE_SUM_TOLERANCE})"))


def _sorted_snapshots(df: pd.DataFrame) -> pd.DataFrame:
    """post_metrics de-duplicated (last row wins) and sorted by post and date, file rows kept."""
    d = df.assign(_row=np.arange(len(df)))
    d = d.sort_values(["post_id", "date", "_row"], kind="stable")
    return d.drop_duplicates(["post_id", "date"], keep="last")


def _check_cumulative(df: pd.DataFrame, file: str, col: _Collector) -> None:
    if not {"post_id", "date"} <= set(df.columns):
        return
    d = _sorted_snapshots(df.dropna(subset=["post_id", "date"]))
    same = (d["post_id"] == d["post_id"].shift()).to_numpy()
    for c in CUMULATIVE_COUNTS:
        if c not in d.columns:
            continue
        cur = d[c].astype("float64").to_numpy()
        prev = np.where(same, np.roll(cur, 1), np.nan)
        drop = prev - cur
        with np.errstate(invalid="ignore"):
            bad = (drop > CUMULATIVE_DROP_REL * prev) & (drop > CUMULATIVE_DROP_ABS)
        if bad.any():
            idx = np.flatnonzero(bad)
            rows = d["_row"].to_numpy()[idx]
            values = [f"{int(p)} -> {int(v)}" for p, v in zip(prev[idx], cur[idx], strict=True)]
            col.rows(file, c, f"cumulative {c} falls by more than {CUMULATIVE_DROP_REL:.0%} and "
                     f"more than {CUMULATIVE_DROP_ABS} since the previous snapshot", rows, values)


def validate(raw_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Path], list[Problem]]:
    """Read, coerce and validate every table of ``raw_dir`` (export files included).

    Parameters
    ----------
    raw_dir : str or Path
        Directory holding one file per canonical table.

    Returns
    -------
    tables : dict of str to DataFrame
        Typed tables (canonical dtypes), in file row order.
    files : dict of str to Path
        Raw file of each table.
    problems : list of Problem
        Every problem found (empty when the data is valid).
    """
    tables, paths, problems, _ = _validate(raw_dir)
    return tables, paths, problems


def _validate(raw_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Path],
                                            list[Problem], exports.Conversion]:
    raw_dir = Path(raw_dir)
    col = _Collector()
    if not raw_dir.is_dir():
        return {}, {}, [Problem(str(raw_dir.name or raw_dir), None, None,
                                "raw directory does not exist or is not a directory")], \
            exports.Conversion()
    # --- real export formats (analysis.exports): converted rows join the canonical tables -----
    conversion = exports.detect_and_convert(raw_dir)
    for p in conversion.problems:
        col.add(p)
    paths = _find_files(raw_dir, col, conversion)
    tables: dict[str, pd.DataFrame] = {}
    files = {name: p.name for name, p in paths.items()}
    names = list(paths) + [n for n in TABLES if n in conversion.tables and n not in paths]
    for name in progress(names, desc="validating tables"):
        df = _read(paths[name], col) if name in paths else None
        if df is None and name in paths:
            continue
        df, files[name] = conversion.merge(name, df, files.get(name))
        # --- end of export handling --------------------------------------------------------
        try:
            typed, reported = _coerce_table(name, df, files[name], col)
            _pandera_problems(name, typed, files[name], col, reported)
        except Exception as exc:  # noqa: BLE001 - never a traceback for bad input
            col.add(Problem(files[name], None, None, f"{INTERNAL}: {type(exc).__name__}: {exc}"))
            continue
        tables[name] = typed
    try:
        _check_foreign_keys(tables, files, col)
        if "creator_audience" in tables:
            _check_share_sums(tables["creator_audience"], files["creator_audience"], col)
        if "post_metrics" in tables:
            _check_cumulative(tables["post_metrics"], files["post_metrics"], col)
    except Exception as exc:  # noqa: BLE001 - never a traceback for bad input
        col.add(Problem(raw_dir.name, None, None, f"{INTERNAL}: {type(exc).__name__}: {exc}"))
    return tables, paths, conversion.locate(col.finish()), conversion


# --- pseudonymisation ---------------------------------------------------------------------------


def read_salt() -> str:
    """Return the pseudonymisation salt: ``$ANALYSIS_SALT``, else the salt file (created if absent)."""
    env = os.environ.get(SALT_ENV)
    if env:
        return env
    path = Path(config.SALT_FILE)
    if path.exists():
        salt = path.read_text(encoding="utf-8").strip()
        if salt:
            return salt
    salt = secrets.token_hex(32)
    atomic_write_text(path, salt + "\n", mode=0o600)  # a secret: readable by its owner only
    return salt


def pseudonymise(values: pd.Series, *, prefix: str, salt: str, length: int = 16) -> pd.Series:
    """Replace each value by ``prefix`` + the first ``length`` hex digits of SHA-256(salt, value).

    Missing values stay missing; equal values get equal pseudonyms.
    """
    uniq = values.dropna().unique()
    mapping = {v: prefix + hashlib.sha256(f"{salt}:{v}".encode()).hexdigest()[:length] for v in uniq}
    return values.map(mapping).astype("str").where(values.notna())


# --- normalisation ------------------------------------------------------------------------------


def _main_timezone(tables: dict[str, pd.DataFrame]) -> str:
    camp = tables.get("campaigns")
    if camp is None or camp["timezone"].dropna().empty:
        return "UTC"
    counts = camp["timezone"].value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


def _local_date(ts: pd.Series, tz: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ms]")
    for zone in sorted(tz.dropna().unique()):
        m = (tz == zone).to_numpy()
        out[m] = ts[m].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize().astype("datetime64[ms]")
    return out


def _complete_columns(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Add absent optional columns (empty, canonical dtype); canonical columns first."""
    spec = TABLES[name]
    for c in spec.columns:
        if c.name not in df.columns:
            df[c.name] = pd.Series(pd.NA if c.dtype in ("Int64", "boolean") else None,
                                   index=df.index, dtype=c.dtype)
    canon = spec.column_names
    return df[canon + [c for c in df.columns if c not in canon]]


def _tier(followers: pd.Series) -> pd.Series:
    bounds = [t[1] for t in config.TIERS] + [config.TIERS[-1][2]]
    labels = [t[0] for t in config.TIERS]
    cut = pd.cut(followers.astype("float64"), bins=bounds, labels=labels, right=False)
    return cut.astype("str").where(cut.notna())


def _clean_post_metrics(df: pd.DataFrame) -> pd.DataFrame:
    d = _sorted_snapshots(df).drop(columns="_row").reset_index(drop=True)
    rev = d.iloc[::-1]
    counts = [c for c in CUMULATIVE_COUNTS if c in d.columns]
    cleaned = rev.groupby("post_id", sort=False)[counts].cummin().iloc[::-1]
    changed = (cleaned.astype("float64") != d[counts].astype("float64")) & d[counts].notna()
    d[counts] = cleaned.astype("Int64")
    d["corrected"] = changed.any(axis=1).astype("bool")
    same = d["post_id"].eq(d["post_id"].shift())
    gap = (d["date"] - d["date"].shift()) > pd.Timedelta(days=1)
    d["gap_before"] = (same & gap).astype("bool")
    return d


def _post_daily(pm: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    counts = [c for c in CUMULATIVE_COUNTS if c in pm.columns]
    first = pm.groupby("post_id", sort=True)["date"].agg(["min", "max"])
    n = ((first["max"] - first["min"]).dt.days + 1).to_numpy()
    post_ids = np.repeat(first.index.to_numpy(), n)
    starts = np.repeat(first["min"].to_numpy(), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    grid = pd.DataFrame({"post_id": pd.array(post_ids, dtype="str"),
                         "date": (starts + offsets.astype("timedelta64[D]")).astype("datetime64[ms]")})
    obs = pm[["post_id", "date", *counts]].assign(observed=True)
    d = grid.merge(obs, on=["post_id", "date"], how="left", sort=False)
    d["observed"] = d["observed"].fillna(False).astype("bool")
    same = d["post_id"].eq(d["post_id"].shift()).to_numpy()
    for c in counts:
        cum = d[c].astype("float64")
        # ffill within post: each post's first row is observed, so a plain ffill never leaks;
        # a count missing at the start of a post stays missing until it is first reported
        filled = cum.ffill().where(~(cum.isna() & ~same))
        filled = filled.groupby(d["post_id"], sort=False).ffill() if filled.isna().any() else filled
        prev = filled.shift().where(same)
        inc = filled - prev.fillna(0)
        d[c] = inc.round().astype("Int64")
    meta = posts.set_index("post_id")[["creator_id", "campaign_id"]]
    d = d.join(meta, on="post_id")
    return d[["post_id", "creator_id", "campaign_id", "date", "observed", *counts]]


def _sort(name: str, df: pd.DataFrame) -> pd.DataFrame:
    key = list(TABLES[name].key) if name in TABLES else ["post_id", "date"]
    key = [k for k in key if k in df.columns]
    return df.sort_values(key, kind="stable", na_position="last").reset_index(drop=True)


def normalise(tables: dict[str, pd.DataFrame], *, salt: str) -> tuple[dict[str, pd.DataFrame], str]:
    """Normalise validated tables (see the module docstring); return them and the main time zone."""
    out = {name: _complete_columns(name, df.copy()) for name, df in tables.items()}
    main_tz = _main_timezone(out)
    camp_tz = out["campaigns"].set_index("campaign_id")["timezone"] if "campaigns" in out else \
        pd.Series(dtype="str")

    if "creators" in out:
        c = out["creators"]
        c.insert(c.columns.get_loc("followers") + 1, "tier", _tier(c["followers"]))
    if "posts" in out:
        p = out["posts"]
        tz = p["campaign_id"].map(camp_tz).fillna(main_tz)
        p.insert(p.columns.get_loc("posted_at") + 1, "posted_date", _local_date(p["posted_at"], tz))
    if "comments" in out:
        cm = out["comments"]
        post_campaign = out["posts"].set_index("post_id")["campaign_id"] if "posts" in out else None
        tz = cm["post_id"].map(post_campaign).map(camp_tz).fillna(main_tz) \
            if post_campaign is not None else pd.Series(main_tz, index=cm.index)
        cm.insert(cm.columns.get_loc("created_at") + 1, "created_date",
                  _local_date(cm["created_at"], tz))
        cm["author_id"] = pseudonymise(cm["author_id"], prefix="user_", salt=salt)
    for name in ("orders", "mentions"):
        if name in out:
            t = out[name]
            t.insert(t.columns.get_loc("created_at") + 1, "created_date",
                     _local_date(t["created_at"], pd.Series(main_tz, index=t.index)))
    if "orders" in out:
        out["orders"]["customer_id"] = pseudonymise(out["orders"]["customer_id"], prefix="cust_",
                                                    salt=salt)
    for name, t in out.items():  # e-mail addresses never reach processed data
        for c in [c for c in t.columns if "email" in c.lower() or "e-mail" in c.lower()]:
            t[c] = pseudonymise(_as_text(t[c]), prefix="cust_" if name == "orders" else "user_",
                                salt=salt)
    if "post_metrics" in out:
        out["post_metrics"] = _clean_post_metrics(out["post_metrics"])
        if "posts" in out:
            out["post_daily"] = _post_daily(out["post_metrics"], out["posts"])
    return {name: _sort(name, df) for name, df in out.items()}, main_tz


# --- writing ------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd")


def _check_out_dir(raw_dir: Path, out_dir: Path) -> None:
    r, o = raw_dir.resolve(), out_dir.resolve()
    if r == o or o in r.parents:
        raise ValueError(f"The output directory {out_dir} must not contain the raw directory "
                         "(raw data are never overwritten).")
    if o.exists() and not o.is_dir():
        raise ValueError(f"The output path {out_dir} exists and is not a directory.")
    if o.is_dir() and any(p.name not in _PLACEHOLDERS for p in o.iterdir()) and not (o / MANIFEST).exists():
        raise ValueError(f"The output directory {out_dir} is not empty and holds no {MANIFEST}: "
                         "refusing to replace a directory that ingest did not write.")


#: Files a fresh project keeps in an otherwise empty processed directory (kept across re-runs).
_PLACEHOLDERS = (".gitkeep",)


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    share_dir(tmp)  # mkdtemp made it private (0700); processed data are shared like any directory
    for name in _PLACEHOLDERS:
        if (out_dir / name).exists():
            shutil.copy2(out_dir / name, tmp / name)
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            os.replace(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def ingest(raw_dir: str | Path, out_dir: str | Path) -> Manifest:
    """Validate every raw table and write the processed Parquet directory atomically.

    Parameters
    ----------
    raw_dir : str or Path
        Directory of raw tables (``<table>.csv``, ``.parquet`` or ``.xlsx``); never modified.
    out_dir : str or Path
        Processed directory to (re)write. It is replaced as a whole, only after every table was
        validated and written.

    Returns
    -------
    Manifest
        Input hashes, rows per table and package version (also written to ``manifest.json``).

    Raises
    ------
    IngestError
        When the raw data break any rule; ``.problems`` lists every problem and nothing is written.
    ValueError
        When ``out_dir`` is unsafe to replace (holds the raw directory, or a directory ingest did not
        write).
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    _check_out_dir(raw_dir, out_dir)
    tables, paths, problems, conversion = _validate(raw_dir)
    if problems:
        raise IngestError(problems)
    processed, main_tz = normalise(tables, salt=read_salt())

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for name in progress(sorted(processed), desc="writing Parquet"):
            _write_parquet(processed[name], tmp / f"{name}.parquet")
        inputs = {p.name: {"sha256": _sha256(p), "table": name, "rows": int(len(tables[name]))}
                  for name, p in sorted(paths.items(), key=lambda kv: kv[1].name)}
        for f, info in sorted(conversion.inputs.items()):  # export files (analysis.exports)
            inputs[f] = {"sha256": info.get("sha256") or _sha256(raw_dir / f), "table": ", ".join(info["tables"]),
                         "rows": info["rows"], "format": info["format"],
                         "warnings": conversion.warnings_for(f)}
        manifest = Manifest(out_dir, inputs=inputs,
                            tables={n: {"rows": int(len(df)), "columns": list(df.columns)}
                                    for n, df in sorted(processed.items())},
                            main_timezone=main_tz)
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def cli(args) -> int:
    """``python -m analysis ingest --raw DIR --out DIR``: 0 on success, 2 on invalid input."""
    from analysis.cli import CommandError

    try:
        manifest = ingest(args.raw, args.out)
    except IngestError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    s = manifest.summary()
    print(f"Ingested {len(manifest.inputs)} raw files into {args.out}:")
    print(s.to_string(index=False))
    for f, info in manifest.inputs.items():  # notes on converted export files
        for w in info.get("warnings", []):
            print(f"note: {f}: {w}")
    return 0
