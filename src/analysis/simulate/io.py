"""Deterministic writing of simulated tables (CSV) and truth (JSON).

Formats: ids and text as written; dates ``YYYY-MM-DD``; timestamps ISO 8601 in UTC
with ``+00:00``; booleans ``true``/``false``; floats rounded to 6 decimals; missing
values empty. The same tables always give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_DECIMALS = 6


def _format_column(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        return out.where(s.notna(), "")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.dt.strftime("%Y-%m-%d")
        return out.where(s.notna(), "")
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.map({True: "true", False: "false"}).astype(object).where(s.notna(), "")
    if pd.api.types.is_float_dtype(s.dtype):
        return s.round(FLOAT_DECIMALS)
    return s


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every column converted to its canonical CSV text form."""
    return pd.DataFrame({c: _format_column(df[c]) for c in df.columns}, index=df.index)


def table_to_csv(df: pd.DataFrame, path: Path) -> None:
    """Write one table as canonical CSV (UTF-8, ``\\n`` line ends, no index)."""
    format_table(df).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def to_jsonable(obj):
    """Convert numpy/pandas scalars and containers into JSON-safe plain Python (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, np.ndarray, pd.Index)):
        items = sorted(obj) if isinstance(obj, set) else list(obj)
        return [to_jsonable(v) for v in items]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else round(f, FLOAT_DECIMALS)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat() if obj.tzinfo is not None else obj.strftime("%Y-%m-%d")
    if obj is pd.NaT or obj is None:
        return None
    return obj


def truth_to_json(truth: dict) -> str:
    """Serialise the truth dictionary deterministically."""
    return json.dumps(to_jsonable(truth), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dataset(out_dir: Path, tables: dict[str, pd.DataFrame], truth: dict) -> None:
    """Write ``<table>.csv`` for each table and ``truth.json`` into ``out_dir`` atomically.

    Everything is written to a temporary directory beside ``out_dir`` first; the
    files are then moved in one by one with :func:`os.replace`.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        names = []
        for name in sorted(tables):
            table_to_csv(tables[name], tmp / f"{name}.csv")
            names.append(f"{name}.csv")
        (tmp / "truth.json").write_text(truth_to_json(truth), encoding="utf-8")
        names.append("truth.json")
        out_dir.mkdir(parents=True, exist_ok=True)
        for fname in names:
            os.replace(tmp / fname, out_dir / fname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
