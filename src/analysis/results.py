"""The ``results.json`` a campaign report writes (CONTRACT section 3).

One builder, one validator, one writer: the report notebook assembles a plain
dictionary, :func:`validate_results` checks it against the contract's shape with
a plain-language message, and :func:`write_results` writes it deterministically
(sorted keys, no NaN, floats rounded to 12 significant digits, atomic rename), so
two runs on the same data give byte-identical files.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.fileio import atomic_write_text

__all__ = [
    "RESULTS_KEYS",
    "ResultsError",
    "dumps_results",
    "empty_results",
    "json_safe",
    "read_results",
    "validate_results",
    "write_results",
]

#: Top-level keys every results.json carries (CONTRACT section 3).
RESULTS_KEYS = ("campaign_id", "objective", "window", "kpis", "lift", "followers", "conversions",
                "sentiment", "compliance", "warnings")

_KPI_KEYS = ("value", "ci_low", "ci_high", "target", "attainment")
_LIFT_REQUIRED = ("design", "metric", "effect", "ci_low", "ci_high")
_LIFT_OPTIONAL_NUM = ("relative_effect", "p_value", "relative_ci_low", "relative_ci_high")
_SIGNIFICANT = 12
_ABS_PATH = re.compile(r"(?<![\w.])(?:/[\w.\-]+){2,}/?|[A-Za-z]:\\[^\s]+")


class ResultsError(ValueError):
    """A results dictionary does not have the contract's shape."""


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON types.

    numpy and pandas scalars become ``int``/``float``/``bool``; NaN, infinities, ``pd.NA``
    and ``NaT`` become ``None``; dates and timestamps become ISO strings (date only when the
    time is midnight); tuples become lists; mapping keys become strings; floats are rounded
    to 12 significant digits so that last-bit differences between runs cannot change the file.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.{_SIGNIFICANT}g}") if v != 0 else 0.0
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        if value == value.normalize() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return json_safe(pd.Timestamp(value))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, pd.Series):
        return {str(k): json_safe(v) for k, v in value.items()}
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    raise ResultsError(f"results.json cannot hold a value of type {type(value).__name__}: {value!r}")


def empty_results(campaign_id: str, *, objective: str = "", start: Any = None, end: Any = None) -> dict:
    """A results dictionary with every contract key and nothing measured yet."""
    return {
        "campaign_id": str(campaign_id),
        "objective": str(objective),
        "window": {"start": json_safe(start), "end": json_safe(end)},
        "kpis": {},
        "lift": [],
        "followers": {"incremental": None, "ci_low": None, "ci_high": None, "by_creator": {},
                      "status": "not available", "reason": "not computed"},
        "conversions": {"direct": {"orders": 0, "revenue": 0.0}, "incremental": None},
        "sentiment": {"status": "not available", "reason": "not computed"},
        "compliance": {"status": "not available", "reason": "not computed"},
        "warnings": [],
    }


def _num(x: Any, where: str, *, nullable: bool, problems: list[str]) -> None:
    if x is None:
        if not nullable:
            problems.append(f"{where} must be a number, got null")
        return
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        problems.append(f"{where} must be a number{' or null' if nullable else ''}, got {type(x).__name__}")
    elif not math.isfinite(float(x)):
        problems.append(f"{where} must be finite (write null instead of NaN/inf), got {x!r}")


def _date(x: Any, where: str, problems: list[str]) -> None:
    if x is None:
        problems.append(f"{where} must be an ISO date string, got null")
        return
    try:
        _dt.date.fromisoformat(str(x))
    except ValueError:
        problems.append(f"{where} must be an ISO date (YYYY-MM-DD), got {x!r}")


def _walk_strings(obj: Any, where: str, problems: list[str]) -> None:
    if isinstance(obj, str):
        if _ABS_PATH.search(obj):
            problems.append(f"{where} contains a file-system path ({obj[:60]!r}); results must not "
                            "depend on where they were computed")
    elif isinstance(obj, float) and not math.isfinite(obj):
        problems.append(f"{where} is {obj!r}; write null instead")
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _walk_strings(v, f"{where}.{k}", problems)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk_strings(v, f"{where}[{i}]", problems)


def _interval_block(block: Any, where: str, problems: list[str], *, nullable: bool) -> None:
    if not isinstance(block, Mapping):
        problems.append(f"{where} must be an object, got {type(block).__name__}")
        return
    for key in ("incremental", "ci_low", "ci_high"):
        if key not in block:
            problems.append(f"{where} is missing {key!r}")
        else:
            _num(block[key], f"{where}.{key}", nullable=nullable, problems=problems)


def validate_results(d: Mapping[str, Any]) -> None:
    """Check a results dictionary against CONTRACT section 3.

    Extra keys are allowed. A section that could not be computed (``followers``,
    ``sentiment``, ``compliance``) carries ``"status": "not available"`` and a ``reason``;
    the followers figures may then be null.

    Raises
    ------
    ResultsError
        Listing every problem found, one per line.
    """
    problems: list[str] = []
    if not isinstance(d, Mapping):
        raise ResultsError(f"results must be a dict, got {type(d).__name__}")
    missing = [k for k in RESULTS_KEYS if k not in d]
    if missing:
        raise ResultsError("results.json is missing required keys: " + ", ".join(missing))

    for key in ("campaign_id", "objective"):
        if not isinstance(d[key], str) or (key == "campaign_id" and not d[key]):
            problems.append(f"{key} must be a non-empty string" if key == "campaign_id"
                            else f"{key} must be a string")
    window = d["window"]
    if not isinstance(window, Mapping) or set(("start", "end")) - set(window):
        problems.append("window must be an object with 'start' and 'end'")
    else:
        _date(window["start"], "window.start", problems)
        _date(window["end"], "window.end", problems)

    if not isinstance(d["kpis"], Mapping):
        problems.append("kpis must be an object {METRIC: {...}}")
    else:
        for metric, entry in d["kpis"].items():
            if not isinstance(entry, Mapping):
                problems.append(f"kpis.{metric} must be an object")
                continue
            for key in _KPI_KEYS:
                if key not in entry:
                    problems.append(f"kpis.{metric} is missing {key!r}")
                else:
                    _num(entry[key], f"kpis.{metric}.{key}", nullable=True, problems=problems)

    if not isinstance(d["lift"], list):
        problems.append("lift must be a list")
    else:
        for i, entry in enumerate(d["lift"]):
            where = f"lift[{i}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{where} must be an object")
                continue
            for key in _LIFT_REQUIRED:
                if key not in entry:
                    problems.append(f"{where} is missing {key!r}")
                elif key in ("design", "metric"):
                    if not isinstance(entry[key], str) or not entry[key]:
                        problems.append(f"{where}.{key} must be a non-empty string")
                else:
                    _num(entry[key], f"{where}.{key}", nullable=False, problems=problems)
            for key in _LIFT_OPTIONAL_NUM:
                if key in entry:
                    _num(entry[key], f"{where}.{key}", nullable=True, problems=problems)
            for key in ("relative_effect", "p_value"):
                if key not in entry:
                    problems.append(f"{where} is missing {key!r} (null when undefined)")

    followers = d["followers"]
    available = isinstance(followers, Mapping) and followers.get("status", "ok") == "ok"
    _interval_block(followers, "followers", problems, nullable=not available)
    if isinstance(followers, Mapping):
        by_creator = followers.get("by_creator")
        if not isinstance(by_creator, Mapping):
            problems.append("followers.by_creator must be an object {CREATOR_ID: {...}}")
        else:
            for cid, block in by_creator.items():
                _interval_block(block, f"followers.by_creator.{cid}", problems, nullable=not available)

    conv = d["conversions"]
    if not isinstance(conv, Mapping) or "direct" not in conv or "incremental" not in conv:
        problems.append("conversions must be an object with 'direct' and 'incremental'")
    else:
        direct = conv["direct"]
        if not isinstance(direct, Mapping):
            problems.append("conversions.direct must be an object {orders, revenue}")
        else:
            orders = direct.get("orders")
            if isinstance(orders, bool) or not isinstance(orders, int):
                problems.append(f"conversions.direct.orders must be an integer, got {orders!r}")
            _num(direct.get("revenue"), "conversions.direct.revenue", nullable=False, problems=problems)
        inc = conv["incremental"]
        if inc is not None:
            if not isinstance(inc, Mapping):
                problems.append("conversions.incremental must be an object or null")
            else:
                for key in ("orders", "revenue", "ci_low", "ci_high"):
                    if key not in inc:
                        problems.append(f"conversions.incremental is missing {key!r}")
                    else:
                        _num(inc[key], f"conversions.incremental.{key}", nullable=True, problems=problems)

    for key in ("sentiment", "compliance"):
        if not isinstance(d[key], Mapping):
            problems.append(f"{key} must be an object")
    if not isinstance(d["warnings"], list) or not all(isinstance(w, str) for w in d["warnings"]):
        problems.append("warnings must be a list of strings")

    _walk_strings(d, "results", problems)
    if problems:
        raise ResultsError("results.json does not match the contract:\n  - " + "\n  - ".join(problems))


def dumps_results(d: Mapping[str, Any]) -> str:
    """Validate ``d`` and return its deterministic JSON text (sorted keys, two-space indent)."""
    safe = json_safe(d)
    validate_results(safe)
    return json.dumps(safe, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_results(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Validate ``results`` and write them to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Destination file (its directory is created if needed).
    results : mapping
        The results dictionary (CONTRACT section 3); numpy/pandas values are converted.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ResultsError
        When the dictionary does not match the contract (nothing is written).
    """
    return atomic_write_text(path, dumps_results(results))


def read_results(path: str | os.PathLike) -> dict:
    """Read a results.json file and validate it."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_results(d)
    return d
