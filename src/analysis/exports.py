"""Real export formats -> canonical raw tables (CONTRACT section 4).

``python -m analysis ingest`` calls :func:`detect_and_convert` on the raw directory before
validation: every file it recognises as an export (by its columns, not its name) is converted to
rows of the canonical tables, which then go through exactly the same validation and normalisation
as canonical files. Problems found while converting, and validation problems of converted rows,
name the export file, its row and its column.

Recognised formats (details and every mapping rule in ``docs/exports.md``):

- TikTok Studio account exports: ``Overview``, ``Content``, ``FollowerHistory``,
  ``FollowerGender``, ``FollowerTopTerritories``, ``Viewers`` (CSV or XLSX, in the raw directory
  or in a sub-folder of it) -> ``brand_account_daily``, ``posts``, ``post_metrics``, ``creators``,
  ``creator_audience`` of the brand account.
- TikTok One (Creator Marketplace) campaign reports (JSON or CSV) -> ``creators``,
  ``creator_audience``, ``posts``, ``post_metrics``.
- TikTok Research API video JSON -> ``posts``, ``post_metrics``.
- Shopify orders exports (CSV) -> ``orders``.

A ZIP archive at the top of the raw directory (TikTok Studio's "Download data" gives one) is read
as if it were a folder: its export files are extracted to a temporary directory, never beside the
raw data, and problems name them as ``archive.zip/member``.

Users who want the canonical tables without ingesting (for instance to add ``campaigns.csv``
beside a Studio export) call :func:`convert_studio`, :func:`convert_tiktok_one`,
:func:`convert_research_api` or :func:`convert_shopify`, which return ``{table: DataFrame}``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from analysis.schemas import TABLES

__all__ = ["Conversion", "convert_research_api", "convert_shopify", "convert_studio",
           "convert_tiktok_one", "detect_and_convert", "parse_day", "resolve_year",
           "video_id_from_link", "video_id_time"]

#: File types looked at (top level of the raw directory and its immediate sub-folders).
EXPORT_SUFFIXES = (".csv", ".xlsx", ".json")

#: Limits of a ZIP archive read from the raw directory (members, total uncompressed bytes).
ZIP_MAX_MEMBERS = 2_000
ZIP_MAX_BYTES = 4 * 1024**3

#: Cells that mean "no value" in exports (compared case-insensitively).
MISSING = frozenset({"", "undefined", "null", "none", "nan", "n/a", "na", "-", "--", "\u2014"})

#: Order in which formats are converted; when two exports give the same post or creator, the
#: earlier format's row is kept (a campaign report knows the campaign, a Studio export does not).
FORMAT_ORDER = ("tiktok_one", "shopify", "studio", "research_api")

FORMAT_NAMES = {"studio": "TikTok Studio export", "tiktok_one": "TikTok One campaign report",
                "research_api": "TikTok Research API video export",
                "shopify": "Shopify orders export"}

#: What each format cannot provide, for the message about a missing required table.
_LACKS = {"campaigns": "campaigns", "campaign_targets": "campaign targets",
          "contracts": "contracts (fees, codes)", "creators": "creators",
          "posts": "posts", "post_metrics": "post metrics",
          "brand_account_daily": "daily brand account statistics",
          "creator_audience": "creator audiences"}

# --- Studio file signatures (lower-cased header names) ----------------------------------------

STUDIO_FILES = {
    "Overview": {"date", "video views", "profile views"},
    "Content": {"video link", "total views"},
    "FollowerHistory": {"date", "followers", "difference in followers from previous day"},
    "FollowerGender": {"gender", "distribution"},
    "FollowerTopTerritories": {"top territories", "distribution"},
    "Viewers": {"date", "total viewers", "new viewers", "returning viewers"},
    "FollowerActivity": {"date", "hour", "active followers"},
}
SHOPIFY_COLUMNS = {"name", "email", "created at", "total", "lineitem quantity"}
TIKTOK_ONE_KEYS = {"video_id", "handle_name"}
RESEARCH_KEYS = {"id", "username", "create_time"}

_VIDEO_ID = re.compile(r"/(?:video|photo)/(\d{6,25})")
_HANDLE = re.compile(r"tiktok\.com/@([A-Za-z0-9._]+)")
_DATE_IN_NAME = re.compile(r"(?<!\d)(20\d{2})-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


# --- dates without a year -------------------------------------------------------------------------

def _fold(text: str) -> str:
    """Lower-case and strip accents (``März`` -> ``marz``, ``août`` -> ``aout``)."""
    nf = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in nf if not unicodedata.combining(ch))


_MONTH_WORDS = {
    1: "january jan enero ene januar janner jaenner janvier janv gennaio gen janeiro januari "
       "январь января янв",
    2: "february feb febrero februar fevrier fevr fev febbraio fevereiro februari февраль февраля "
       "фев",
    3: "march mar marzo marz marzo mrz mars marco maart mrt март марта",
    4: "april apr abril abr avril avr aprile апрель апреля апр",
    5: "may mayo mai maggio mag maio mei май мая",
    6: "june jun junio juni juin giugno giu junho июнь июня",
    7: "july jul julio juli juillet juil luglio lug julho июль июля",
    8: "august aug agosto ago aout augustus август августа авг",
    9: "september sep sept septiembre setiembre septembre settembre set setembro сентябрь "
       "сентября сен",
    10: "october oct octubre oktober okt octobre ottobre ott outubro out октябрь октября окт",
    11: "november nov noviembre novembre novembro ноябрь ноября ноя",
    12: "december dec diciembre dic dezember dez decembre dicembre dezembro декабрь декабря дек",
}
MONTHS: dict[str, int] = {_fold(w): m for m, words in _MONTH_WORDS.items() for w in words.split()}
_VI_MONTHS = {"mot": 1, "gieng": 1, "hai": 2, "ba": 3, "tu": 4, "bon": 4, "nam": 5, "sau": 6,
              "bay": 7, "tam": 8, "chin": 9, "muoi": 10, "muoi mot": 11, "muoi hai": 12,
              "chap": 12}
_STOP = {"de", "del", "of", "the", "le", "den", "der", "st", "nd", "rd", "th", "г", "года", "e"}
_CJK = re.compile(r"(?:(\d{4})\s*[年년]\s*)?(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]?")
_VI = re.compile(r"(\d{1,2})\s+thang\s+(\d{1,2}|muoi mot|muoi hai|[a-z]+)"
                 r"(?:\s*(?:,|nam)?\s*(\d{4}))?")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T].*)?$")
_TIME = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:am|pm)?\b")


def parse_day(value) -> dt.date | tuple[int, int] | None:
    """Parse a calendar day as exports write it.

    Parameters
    ----------
    value : object
        A cell: an ISO date (``2024-03-03``, time allowed), a ``datetime.date``, or a day with a
        month name in English, Spanish, German, French, Italian, Portuguese, Dutch, Russian or
        Vietnamese, or in Chinese/Japanese/Korean numerals (``March 3``, ``3 de marzo``,
        ``3. März``, ``3 mars``, ``18 января``, ``9月13日``), with or without a year.

    Returns
    -------
    datetime.date, (month, day) or None
        A date when the year is known, a ``(month, day)`` pair when it is not, ``None`` for a
        missing cell.

    Raises
    ------
    ValueError
        When the cell is not empty but is not a recognisable day.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if text.casefold() in MISSING:
        return None
    m = _ISO.match(text)
    if m:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    folded = _fold(text)
    m = _CJK.search(folded)
    if m:
        return _make_day(m[1], int(m[2]), int(m[3]), text)
    m = _VI.search(folded)
    if m:
        word = m[2]
        month = int(word) if word.isdigit() else _VI_MONTHS.get(word)
        if month:
            return _make_day(m[3], month, int(m[1]), text)
    folded = _TIME.sub(" ", folded)
    tokens = [t for t in re.findall(r"[^\W\d_]+|\d+", folded) if t not in _STOP]
    months = [MONTHS[t] for t in tokens if t in MONTHS]
    numbers = [t for t in tokens if t.isdigit()]
    words = [t for t in tokens if not t.isdigit() and t not in MONTHS]
    years = [n for n in numbers if len(n) == 4]
    days = [n for n in numbers if len(n) <= 2]
    if len(months) == 1 and len(days) == 1 and len(years) <= 1 and not words:
        return _make_day(years[0] if years else None, months[0], int(days[0]), text)
    raise ValueError(f"not a recognisable day: {text!r}")


def _make_day(year: str | None, month: int, day: int, text: str) -> dt.date | tuple[int, int]:
    probe_year = int(year) if year else 2000  # a leap year, so February 29 is accepted
    try:
        d = dt.date(probe_year, month, day)
    except ValueError:
        raise ValueError(f"not a valid day: {text!r}") from None
    return d if year else (month, day)


def resolve_year(month: int, day: int, *, last: dt.date) -> dt.date:
    """The latest date with this month and day that is not after ``last``.

    This is the rule for days without a year: an export never holds days after its own end, and
    TikTok Studio reaches back at most a year, so a December day in an export ending in January
    belongs to the previous year.
    """
    for year in range(last.year, last.year - 9, -1):
        try:
            d = dt.date(year, month, day)
        except ValueError:  # February 29 in a common year
            continue
        if d <= last:
            return d
    raise ValueError(f"no valid date for {month}-{day} before {last}")  # pragma: no cover


def _first_on_or_after(month: int, day: int, low: dt.date) -> dt.date:
    for year in range(low.year, low.year + 9):
        try:
            d = dt.date(year, month, day)
        except ValueError:
            continue
        if d >= low:
            return d
    raise ValueError(f"no valid date for {month}-{day} after {low}")  # pragma: no cover


def video_id_from_link(link) -> str | None:
    """The numeric video id of a TikTok link (``.../@handle/video/7312345678901234567``)."""
    if link is None:
        return None
    m = _VIDEO_ID.search(str(link))
    return m[1] if m else None


def video_id_time(video_id: str) -> pd.Timestamp | None:
    """Upload time encoded in a TikTok video id (its top 32 bits are Unix seconds), in UTC.

    Returns ``None`` when the id does not encode a plausible time (before 2016 or after 2100).
    """
    try:
        seconds = int(video_id) >> 32
    except (TypeError, ValueError):
        return None
    ts = pd.Timestamp(seconds, unit="s", tz="UTC")
    if ts.year < 2016 or ts.year > 2100:
        return None
    return ts


# --- cells ----------------------------------------------------------------------------------------

_GROUPED = re.compile(r"-?\d{1,3}(?:[,.' ]\d{3})+")
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9}


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return str(v).strip().casefold() in MISSING


def _count(v) -> float | None:
    """Whole number from a cell (``5,431``, ``1.2K``, ``-3``); ``None`` if missing.

    Raises ``ValueError`` when unreadable.
    """
    if _missing(v):
        return None
    if isinstance(v, (int, np.integer)):
        return float(v)
    s = str(v).strip().replace("\u00a0", " ").replace("\u202f", " ").lstrip("+")
    if _GROUPED.fullmatch(s):
        return float(re.sub(r"[,.' ]", "", s))
    m = re.fullmatch(r"(-?\d+(?:[.,]\d+)?)\s*([kKmMbB])", s)
    if m:
        return float(round(float(m[1].replace(",", ".")) * _SUFFIX[m[2].lower()]))
    x = float(s.replace(" ", ""))
    if not np.isfinite(x) or x % 1 != 0:
        raise ValueError(v)
    return x


def _number(v) -> float | None:
    """Any number (decimal comma accepted, unit suffix ``s`` or ``%`` dropped by callers)."""
    if _missing(v):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    s = str(v).strip().replace("\u00a0", "").replace(" ", "")
    s = re.sub(r"(?i)(sec|secs|seconds|s)$", "", s)
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    x = float(s)
    if not np.isfinite(x):
        raise ValueError(v)
    return x


def _share(v) -> tuple[float | None, bool]:
    """A share (``0.59``, ``59%``, ``59,3 %``) and whether it was written as a percentage."""
    if _missing(v):
        return None, False
    s = str(v).strip()
    pct = s.endswith("%")
    return _number(s.rstrip("%").strip()), pct


def _fmt(x) -> str | None:
    """Canonical text of a number: whole numbers without a decimal point."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return None
    x = float(x)
    return str(int(x)) if x % 1 == 0 and abs(x) < 1e15 else repr(x)


def _iso_ts(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _norm_key(k) -> str:
    return re.sub(r"[\s\-]+", "_", str(k).strip().casefold())


# --- reading --------------------------------------------------------------------------------------


@dataclass
class _Sheet:
    """One table of an export file: its label (used in problems), header and data rows."""

    label: str
    path: Path
    header: list[str]
    rows: list[list]
    kind: str = ""

    @property
    def lower(self) -> list[str]:
        return [h.strip().casefold() for h in self.header]

    def column(self, name: str) -> int | None:
        low = self.lower
        return low.index(name) if name in low else None

    def cells(self, name: str) -> list:
        i = self.column(name)
        return [r[i] if i is not None and i < len(r) else None for r in self.rows]

    def original(self, name: str) -> str:
        i = self.column(name)
        return self.header[i] if i is not None else name


@dataclass
class _Records:
    """One JSON export: a list of records plus the top-level fields around them."""

    label: str
    path: Path
    records: list[dict]
    meta: dict
    kind: str = ""


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _csv_header(path: Path) -> list[str] | None:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error, OSError):
        try:
            return next(csv.reader(_read_text(path).splitlines()), None)
        except (UnicodeDecodeError, csv.Error, OSError):
            return None


def _excel_cell(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return v.strftime("%Y-%m-%d") if (v.hour, v.minute, v.second) == (0, 0, 0) \
            else v.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(v, float) and v % 1 == 0 and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _read_sheets(path: Path, label: str, problems: list) -> list[_Sheet]:
    from analysis.ingest import Problem

    if path.suffix.lower() == ".csv":
        try:
            rows = list(csv.reader(_read_text(path).splitlines()))
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(Problem(label, None, None, f"cannot be read as CSV text: {exc}"))
            return []
        if not rows:
            return []
        return [_Sheet(label, path, [h.strip() for h in rows[0]], rows[1:])]
    try:
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a problem of the file
        problems.append(Problem(label, None, None, f"cannot be read as an Excel workbook: {exc}"))
        return []
    sheets = []
    try:
        names = wb.sheetnames
        for name in names:
            rows = [[_excel_cell(c) for c in r] for r in wb[name].iter_rows(values_only=True)]
            rows = [r for r in rows if any(c is not None for c in r)]
            if not rows:
                continue
            header = [str(h).strip() if h is not None else "" for h in rows[0]]
            sheet_label = label if len(names) == 1 else f"{label} [{name}]"
            sheets.append(_Sheet(sheet_label, path, header, rows[1:]))
    finally:
        wb.close()
    return sheets


def _json_records(obj) -> tuple[list[dict], dict] | None:
    """Find the list of records in a JSON document (top level, ``data``, ``data.videos`` ...)."""
    if isinstance(obj, list):
        return ([r for r in obj if isinstance(r, dict)], {}) if obj and all(
            isinstance(r, dict) for r in obj) else None
    if not isinstance(obj, dict):
        return None
    meta = {k: v for k, v in obj.items() if not isinstance(v, (list, dict))}
    for key in ("videos", "data", "list", "records", "items", "results"):
        v = obj.get(key)
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            return v, meta
        if isinstance(v, dict):
            inner = _json_records(v)
            if inner:
                return inner[0], {**meta, **inner[1]}
    return None


def _read_json(path: Path, label: str) -> _Records | None:
    try:
        text = _read_text(path)
    except (UnicodeDecodeError, OSError):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:  # JSON lines
            obj = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return None
    found = _json_records(obj)
    if not found:
        return None
    return _Records(label, path, found[0], found[1])


def _kind_of_sheet(sheet: _Sheet) -> str | None:
    low = set(sheet.lower)
    for name, cols in STUDIO_FILES.items():
        if cols <= low:
            return f"studio:{name}"
    if SHOPIFY_COLUMNS <= low:
        return "shopify"
    if TIKTOK_ONE_KEYS <= {_norm_key(h) for h in sheet.header}:
        return "tiktok_one"
    return None


def _kind_of_records(rec: _Records) -> str | None:
    keys = set().union(*[{_norm_key(k) for k in r} for r in rec.records[:50]])
    if TIKTOK_ONE_KEYS <= keys:
        return "tiktok_one"
    if RESEARCH_KEYS <= keys:
        return "research_api"
    return None


def _safe_member(name: str) -> bool:
    """A ZIP member that may be extracted: relative, no ``..``, not hidden, an export file type."""
    parts = Path(name.replace("\\", "/")).parts
    return (bool(parts) and not name.startswith(("/", "\\")) and ":" not in parts[0]
            and ".." not in parts and not any(p.startswith((".", "~$", "__MACOSX")) for p in parts)
            and Path(name).suffix.lower() in EXPORT_SUFFIXES)


def _extract_zips(raw_dir: Path, into: Path, b: _Builder) -> dict[Path, str]:
    """Extract the export files of every top-level ZIP archive of ``raw_dir`` into ``into``.

    Returns the extracted paths with their labels (``archive.zip/member``). Unsafe member names
    (absolute, ``..``), hidden files and other file types are skipped; an archive that cannot be
    read or exceeds :data:`ZIP_MAX_MEMBERS` / :data:`ZIP_MAX_BYTES` is reported as a problem. File
    times are kept, since an export's date may be read from them.
    """
    out: dict[Path, str] = {}
    for z in sorted(raw_dir.iterdir()):
        if not (z.is_file() and z.suffix.lower() == ".zip" and not z.name.startswith(".")):
            continue
        try:
            with zipfile.ZipFile(z) as arc:
                infos = [i for i in arc.infolist() if not i.is_dir()]
                if len(infos) > ZIP_MAX_MEMBERS or sum(i.file_size for i in infos) > ZIP_MAX_BYTES:
                    b.problem(z.name, None, None, f"ZIP archive too large to read as an export "
                                                  f"(more than {ZIP_MAX_MEMBERS:,} files or "
                                                  f"{ZIP_MAX_BYTES // 1024**3} GiB): unzip it first")
                    continue
                for info in infos:
                    if not _safe_member(info.filename):
                        continue
                    rel = Path(info.filename.replace("\\", "/"))
                    dest = into / z.name / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with arc.open(info) as src, open(dest, "wb") as dst:
                        dst.write(src.read())
                    when = dt.datetime(*info.date_time).timestamp()
                    os.utime(dest, (when, when))
                    out[dest] = f"{z.name}/{rel.as_posix()}"
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
            b.problem(z.name, None, None, f"cannot be read as a ZIP archive: {exc}")
    return out


def _candidates(raw_dir: Path) -> list[Path]:
    out = []
    for p in sorted(raw_dir.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            out += [q for q in sorted(p.iterdir())
                    if q.is_file() and q.suffix.lower() in EXPORT_SUFFIXES
                    and not q.name.startswith((".", "~$"))]
        elif p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES and not p.name.startswith("."):
            out.append(p)
    return out


def _quick_kind(path: Path) -> bool:
    """Cheap pre-check: could this file be an export? (avoids reading canonical tables twice)."""
    if path.suffix.lower() != ".csv":
        return True
    header = _csv_header(path)
    if not header:
        return False
    return _kind_of_sheet(_Sheet("", path, [h.strip() for h in header], [])) is not None


# --- the conversion result ------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """Canonical rows converted from the export files of a raw directory.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Canonical raw tables (text cells, as a CSV would give them), one per table any export fed.
    provenance : dict of str to list of (str, int or None)
        For each table, the export file and 1-based data row each converted row came from.
    columns : dict of (str, str) to dict
        For each (table, file), the export column behind each canonical column.
    problems : list of Problem
        Problems found while converting (file, row and column of the export).
    warnings : list of (str, str)
        ``(file, message)`` notes about values changed or inferred while converting.
    inputs : dict
        Export file -> ``{"format", "tables", "rows", "sha256"}`` (the file's SHA-256; for a ZIP member,
        of the member's bytes).
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    provenance: dict[str, list] = field(default_factory=dict)
    columns: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    problems: list = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    inputs: dict[str, dict] = field(default_factory=dict)
    #: Labels under which merged tables were validated, -> table name.
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def claimed(self) -> frozenset[str]:
        """Files (relative to the raw directory) recognised as exports."""
        return frozenset(self.inputs)

    @property
    def formats(self) -> list[str]:
        return sorted({v["format"].split(":")[0] for v in self.inputs.values()})

    def summary(self) -> pd.DataFrame:
        """One row per export file: format, canonical tables fed, rows read, warnings."""
        w = Counter(f for f, _ in self.warnings)
        return pd.DataFrame(
            [{"file": f, "format": v["format"], "tables": ", ".join(v["tables"]),
              "rows": v["rows"], "warnings": w.get(f, 0)} for f, v in sorted(self.inputs.items())],
            columns=["file", "format", "tables", "rows", "warnings"])

    def to_dict(self) -> dict:
        """JSON-safe summary (no data rows)."""
        return {"inputs": {f: {**v, "tables": list(v["tables"])} for f, v in self.inputs.items()},
                "tables": {t: int(len(df)) for t, df in sorted(self.tables.items())},
                "problems": [p.to_dict() for p in self.problems],
                "warnings": [{"file": f, "message": m} for f, m in self.warnings]}

    def plot(self, ax=None):
        """Bar chart of converted rows per canonical table; returns the Axes."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 0.3 * max(len(self.tables), 3) + 1))
        s = pd.Series({t: len(df) for t, df in sorted(self.tables.items())}, dtype="float64")
        ax.barh(s.index, s.values)
        ax.set_xlabel("rows converted from exports")
        ax.invert_yaxis()
        return ax

    def warnings_for(self, file: str) -> list[str]:
        return [m for f, m in self.warnings if f == file]

    # --- hooks used by ingest ----------------------------------------------------------------

    def missing_hint(self, table: str) -> str:
        """Advice appended to "required table is missing" when exports were recognised."""
        if not self.inputs:
            return ""
        names = sorted({FORMAT_NAMES[f] for f in self.formats})
        what = _LACKS.get(table, table)
        return (f"; the {' and '.join(names)} recognised here do"
                f"{'es' if len(names) == 1 else ''} not contain {what}: add {table}.csv "
                "(see docs/exports.md)")

    def merge(self, name: str, canonical: pd.DataFrame | None, file: str | None
              ) -> tuple[pd.DataFrame, str]:
        """Join converted rows of ``name`` to the canonical file's rows (canonical rows first).

        A converted row whose key is already in the canonical file is dropped: the canonical file
        wins. Returns the table and the label to validate it under.
        """
        conv = self.tables.get(name)
        prov = list(self.provenance.get(name, []))
        if conv is None:
            return canonical, file
        if canonical is None:
            label = f"{name} (from {', '.join(sorted({f for f, _ in prov}))})"
            self.labels[label] = name
            self.provenance[label] = prov
            return conv.copy(), label
        key = [k for k in TABLES[name].key if k in canonical.columns and k in conv.columns]
        keep = np.ones(len(conv), dtype=bool)
        if key:
            have = set(canonical[key].astype("str").itertuples(index=False, name=None))
            keep = ~np.array([t in have for t in conv[key].astype("str").itertuples(
                index=False, name=None)], dtype=bool)
            if not keep.all():
                files = sorted({prov[i][0] for i in np.flatnonzero(~keep)})
                for f in files:
                    self.warnings.append((f, f"{int((~keep).sum())} {name} row(s) are also in "
                                             f"{file}; the rows of {file} were kept"))
        merged = pd.concat([canonical, conv[keep]], ignore_index=True)
        self.labels[file] = name
        self.provenance[file] = [(file, i + 1) for i in range(len(canonical))] + \
            [p for p, k in zip(prov, keep, strict=True) if k]
        return merged, file

    def locate(self, problems: list) -> list:
        """Point problems of converted rows at the export file, row and column they came from."""
        from analysis.ingest import Problem

        out = []
        for p in problems:
            table = self.labels.get(p.file)
            if table is None or p.row is None:
                out.append(p)
                continue
            prov = self.provenance[p.file]
            if not 0 < p.row <= len(prov):
                out.append(p)
                continue
            file, row = prov[p.row - 1]
            column = p.column
            if file != p.file and column is not None:
                colmap = self.columns.get((table, file), {})
                parts = [c.strip() for c in column.split(",")]
                src = [colmap.get(c) for c in parts]
                column = f"{', '.join(s or c for s, c in zip(src, parts, strict=True))} -> " \
                         f"{table}.{column}" if any(src) else f"{table}.{column}"
            out.append(Problem(file, row, column, p.rule, p.value))
        return out


class _Builder:
    """Accumulates converted rows, their provenance, problems and warnings."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[dict, tuple[str, int | None], str]]] = defaultdict(list)
        self.columns: dict[tuple[str, str], dict[str, str]] = {}
        self.problems: list = []
        self.warnings: list[tuple[str, str]] = []
        self.inputs: dict[str, dict] = {}

    def add(self, table: str, record: dict, file: str, row: int | None, fmt: str) -> None:
        self.rows[table].append((record, (file, row), fmt))
        if file in self.inputs and table not in self.inputs[file]["tables"]:
            self.inputs[file]["tables"].append(table)

    def problem(self, file: str, row: int | None, column: str | None, rule: str, value=None):
        from analysis.ingest import Problem

        self.problems.append(Problem(file, row, column, rule, value))

    def warn(self, file: str, message: str) -> None:
        self.warnings.append((file, message))

    def register(self, file: str, fmt: str, rows: int, path: Path | None = None) -> None:
        self.inputs[file] = {"format": fmt, "tables": [], "rows": int(rows)}
        if path is not None:
            self.inputs[file]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()

    def finish(self) -> Conversion:
        tables, prov = {}, {}
        for table in sorted(self.rows):
            entries = self.rows[table]
            rank = {f: i for i, f in enumerate(FORMAT_ORDER)}
            entries = sorted(entries, key=lambda e: rank.get(e[2], 99))  # stable
            spec = TABLES[table]
            if not spec.dedupe:
                seen, kept = set(), []
                for rec, src, fmt in entries:
                    k = tuple(str(rec.get(c)) for c in spec.key)
                    if k in seen:
                        continue
                    seen.add(k)
                    kept.append((rec, src, fmt))
                entries = kept
            recs = [e[0] for e in entries]
            cols = spec.column_names + sorted({c for r in recs for c in r} - set(spec.column_names))
            df = pd.DataFrame([[r.get(c) for c in cols] for r in recs], columns=cols, dtype=object)
            tables[table] = df
            prov[table] = [e[1] for e in entries]
        for f in self.inputs:
            self.inputs[f]["tables"] = sorted(self.inputs[f]["tables"])
        return Conversion(tables=tables, provenance=prov, columns=dict(self.columns),
                          problems=list(self.problems), warnings=list(self.warnings),
                          inputs=dict(self.inputs))


# --- export date ----------------------------------------------------------------------------------


def _date_in_name(*paths: Path) -> dt.date | None:
    for p in paths:
        for part in reversed(p.parts[-2:]):
            m = _DATE_IN_NAME.search(part)
            if m:
                try:
                    return dt.date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    continue
    return None


def _mtime_date(paths: Iterable[Path]) -> dt.date:
    newest = max(p.stat().st_mtime for p in paths)
    return dt.datetime.fromtimestamp(newest, dt.timezone.utc).date()


def _as_date(v) -> dt.date | None:
    if v is None:
        return None
    if isinstance(v, dt.date):
        return v if not isinstance(v, dt.datetime) else v.date()
    return pd.Timestamp(v).date()


def _export_date(b: _Builder, label: str, paths: list[Path], as_of, meta: dict | None = None
                 ) -> dt.date:
    """Date an export was taken: explicit > top-level field > date in the name > file time."""
    if as_of is not None:
        return _as_date(as_of)
    for k in ("export_date", "report_date", "snapshot_date", "stat_date", "date", "as_of"):
        v = (meta or {}).get(k)
        if v is not None:
            try:
                d = parse_day(v)
                if isinstance(d, dt.date):
                    return d
            except ValueError:
                pass
    d = _date_in_name(*paths)
    if d is not None:
        return d
    d = _mtime_date(paths)
    b.warn(label, f"the export's date is not written in it; the file's modification date {d} "
                  "was used (put the date in the folder or file name, e.g. "
                  "studio_2024-03-31, to make this explicit)")
    return d


# --- TikTok Studio ------------------------------------------------------------------------------


def _studio(b: _Builder, sheets: dict[str, _Sheet], *, brand_account: str | None = None,
            as_of=None) -> None:
    """Convert one Studio export (the files of one folder)."""
    fmt = "studio"
    paths = sorted({s.path for s in sheets.values()})
    first = next(iter(sheets.values())).label

    # --- parse every day cell -----------------------------------------------------------------
    parsed: dict[str, list] = {}
    for name in ("Overview", "FollowerHistory", "Viewers"):
        if name in sheets:
            s = sheets[name]
            parsed[name] = _parse_days(b, s, "date")
    content = sheets.get("Content")
    ids, handles, id_times, times, post_days = [], [], [], [], []
    if content is not None:
        links = content.cells("video link")
        for i, link in enumerate(links, start=1):
            vid = video_id_from_link(link)
            if vid is None:
                b.problem(content.label, i, content.original("video link"),
                          "has no video id (expected a link like "
                          "https://www.tiktok.com/@handle/video/7312345678901234567)",
                          None if _missing(link) else str(link))
            ids.append(vid)
            m = _HANDLE.search(str(link or ""))
            handles.append(m[1].lower() if m else None)
            id_times.append(video_id_time(vid) if vid else None)
        times = _parse_days(b, content, "time") if content.column("time") is not None \
            else [None] * len(links)
        post_days = _parse_days(b, content, "post time") \
            if content.column("post time") is not None else [None] * len(links)

    # --- the export's last day (reference for days without a year) ---------------------------
    ref, how = None, ""
    if as_of is not None:
        ref, how = _as_date(as_of), "given"
    if ref is None:
        ref = _date_in_name(*paths)
        how = "the folder or file name" if ref else ""
    if ref is None:
        full = [d for v in parsed.values() for d in v if isinstance(d, dt.date)]
        full += [d for d in times if isinstance(d, dt.date)]
        if full:
            ref, how = max(full), "the dates with a year in the export"
    if ref is None and any(t is not None for t in id_times):
        latest = max(t for t in id_times if t is not None).date()
        cands = [_first_on_or_after(*t, latest - dt.timedelta(days=1))
                 for t in times if isinstance(t, tuple)]
        if not cands:
            lasts = [v[-1] for v in parsed.values() if v and isinstance(v[-1], tuple)]
            cands = [_first_on_or_after(*t, latest - dt.timedelta(days=2)) for t in lasts]
        if cands:
            ref, how = max(cands), "the upload times encoded in the video ids"
        else:
            ref, how = latest, "the upload times encoded in the video ids"
    if ref is None:
        ref = _mtime_date(paths)
        b.warn(first, f"the Studio export's dates carry no year and nothing in the export tells "
                      f"it; the files' modification date {ref} was taken as the export's last "
                      "day (name the folder after the export date, e.g. studio_2024-03-31, or "
                      "call convert_studio(..., as_of=...))")
        how = "the files' modification date"

    def full_date(d):
        if d is None or isinstance(d, dt.date):
            return d
        return resolve_year(*d, last=ref)

    yearless = any(isinstance(d, tuple) for v in [*parsed.values(), times, post_days] for d in v)
    if yearless:
        b.warn(first, f"dates without a year were placed in the latest year that does not put "
                      f"them after {ref} (the export's last day, from {how})")

    # --- the brand account ------------------------------------------------------------------------
    account = brand_account
    if account is None:
        known = Counter(h for h in handles if h)
        if known:
            account = sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    if account is None:
        folder = paths[0].parent.name
        if folder.startswith("@"):
            account = folder[1:].lower()
    if account is None:
        b.problem(first, None, None,
                  "cannot tell which TikTok account this Studio export belongs to: add Content.csv "
                  "(its video links name the account), name the folder @handle, or call "
                  "convert_studio(..., brand_account='handle')")
        return
    account = account.lstrip("@")

    # --- brand_account_daily ----------------------------------------------------------------------
    daily: dict[dt.date, dict] = {}
    srcs: dict[dt.date, tuple[str, int]] = {}
    final_followers = None
    if "FollowerHistory" in sheets:
        s = sheets["FollowerHistory"]
        b.columns[("brand_account_daily", s.label)] = {
            "date": s.original("date"), "followers": s.original("followers"),
            "new_followers": s.original("difference in followers from previous day"),
            "lost_followers": s.original("difference in followers from previous day")}
        fol = _counts(b, s, "followers", negative="problem")
        diff = _counts(b, s, "difference in followers from previous day", negative="keep")
        undefined_days = []
        for i, d in enumerate(parsed["FollowerHistory"]):
            day = full_date(d)
            if day is None:
                continue
            if fol[i] is None:
                undefined_days.append(day)
                continue
            net = diff[i]
            daily[day] = {"followers": fol[i], "net_followers": net,
                          "new_followers": None if net is None else max(net, 0.0),
                          "lost_followers": None if net is None else max(-net, 0.0)}
            srcs[day] = (s.label, i + 1)
        if undefined_days:
            b.warn(s.label, f"{len(undefined_days)} day(s) without a follower count "
                            f"({', '.join(str(d) for d in sorted(undefined_days)[:5])}"
                            f"{' ...' if len(undefined_days) > 5 else ''}) were left out of "
                            "brand_account_daily")
        if daily:
            final_followers = daily[max(daily)]["followers"]
    elif "Overview" in sheets or "Viewers" in sheets:
        b.problem(first, None, None,
                  "brand_account_daily needs the daily follower count: add FollowerHistory.csv "
                  "from the same TikTok Studio export")

    for name, cols in (("Overview", {"video views": "video_views", "profile views": "profile_views",
                                     "likes": "likes", "comments": "comments",
                                     "shares": "shares"}),
                       ("Viewers", {"total viewers": "viewers", "new viewers": "new_viewers",
                                    "returning viewers": "returning_viewers"})):
        if name not in sheets or not daily:
            continue
        s = sheets[name]
        b.columns[("brand_account_daily", s.label)] = {"date": s.original("date"), **{
            canon: s.original(src) for src, canon in cols.items()}}
        values = {canon: _counts(b, s, src, negative="missing")
                  for src, canon in cols.items() if s.column(src) is not None}
        dropped = []
        for i, d in enumerate(parsed[name]):
            day = full_date(d)
            if day is None:
                continue
            if day not in daily:
                dropped.append(day)
                continue
            for canon, vals in values.items():
                daily[day][canon] = vals[i]
        if dropped:
            b.warn(s.label, f"{len(dropped)} day(s) not in FollowerHistory "
                            f"({', '.join(str(d) for d in sorted(dropped)[:5])}"
                            f"{' ...' if len(dropped) > 5 else ''}) were left out "
                            "(brand_account_daily needs the follower count of each day)")
    for day in sorted(daily):
        rec = {"brand_account": account, "date": day.isoformat(),
               **{k: _fmt(v) for k, v in daily[day].items()}}
        b.add("brand_account_daily", rec, *srcs[day], fmt)

    # --- the brand account as a creator, its audience ---------------------------------------------
    audience = []
    for name, dim, col in (("FollowerGender", "gender", "gender"),
                           ("FollowerTopTerritories", "country", "top territories")):
        if name not in sheets:
            continue
        s = sheets[name]
        b.columns[("creator_audience", s.label)] = {"bucket": s.original(col),
                                                    "share": s.original("distribution")}
        buckets = s.cells(col)
        shares = _shares(b, s, "distribution")
        got = [(str(bk).strip(), sh, i + 1) for i, (bk, sh) in enumerate(zip(buckets, shares,
                                                                               strict=True))
               if not _missing(bk) and sh is not None]
        for bucket, share, row in _with_other(got, dim):
            audience.append(({"creator_id": account, "dimension": dim, "bucket": bucket,
                              "share": _fmt(round(share, 6))}, s.label, row))
    need_creator = content is not None or audience
    if need_creator:
        src = sheets.get("FollowerHistory") or content or next(iter(sheets.values()))
        row = len(src.rows) if src.kind == "FollowerHistory" else None
        b.columns[("creators", src.label)] = {"followers": src.original("followers")}
        b.add("creators", {"creator_id": account, "handle": f"@{account}",
                           "followers": _fmt(final_followers), "niche": None, "country": None},
              src.label, row, fmt)
    for rec, label, row in audience:
        b.add("creator_audience", rec, label, row, fmt)

    # --- Content: posts and one snapshot each ---------------------------------------------------
    if content is None:
        return
    s = content
    b.columns[("posts", s.label)] = {"post_id": s.original("video link"),
                                     "creator_id": s.original("video link"),
                                     "posted_at": s.original("post time"),
                                     "caption": s.original("video title")}
    b.columns[("post_metrics", s.label)] = {
        "post_id": s.original("video link"), "date": s.original("time"),
        "views": s.original("total views"), "likes": s.original("total likes"),
        "comments": s.original("total comments"), "shares": s.original("total shares")}
    metrics = {canon: _counts(b, s, src, negative="missing")
               for src, canon in (("total views", "views"), ("total likes", "likes"),
                                  ("total comments", "comments"), ("total shares", "shares"))
               if s.column(src) is not None}
    titles = s.cells("video title")
    for i, vid in enumerate(ids):
        if vid is None:
            continue
        if id_times[i] is not None:
            posted = _iso_ts(id_times[i])
        elif post_days[i] is not None:
            posted = f"{full_date(post_days[i]).isoformat()}T12:00:00+00:00"
        else:
            b.problem(s.label, i + 1, s.original("post time"),
                      "has no post time and the video id does not encode one")
            continue
        handle = handles[i] or account
        b.add("posts", {"post_id": vid, "creator_id": handle, "campaign_id": None,
                        "posted_at": posted,
                        "caption": None if _missing(titles[i]) else str(titles[i]),
                        "disclosure_label": "none"}, s.label, i + 1, fmt)
        snap = full_date(times[i]) if times[i] is not None else ref
        b.add("post_metrics", {"post_id": vid, "date": snap.isoformat(),
                               **{k: _fmt(v[i]) for k, v in metrics.items()}},
              s.label, i + 1, fmt)


def _parse_days(b: _Builder, s: _Sheet, column: str) -> list:
    out = []
    for i, v in enumerate(s.cells(column), start=1):
        try:
            out.append(parse_day(v))
        except ValueError:
            b.problem(s.label, i, s.original(column),
                      "is not a recognisable day (e.g. 2024-03-03, March 3, 3 de marzo, 3. März)",
                      str(v))
            out.append(None)
    return out


def _counts(b: _Builder, s: _Sheet, column: str, *, negative: str) -> list:
    """Whole numbers of a column; ``negative`` is "missing" (warn), "problem" or "keep"."""
    out, neg = [], []
    for i, v in enumerate(s.cells(column), start=1):
        try:
            x = _count(v)
        except ValueError:
            b.problem(s.label, i, s.original(column), "is not a whole number", str(v))
            x = None
        if x is not None and x < 0 and negative != "keep":
            if negative == "problem":
                b.problem(s.label, i, s.original(column), "must be 0 or more", int(x))
            else:
                neg.append(i)
            x = None
        out.append(x)
    if neg:
        b.warn(s.label, f"{len(neg)} negative value(s) in '{s.original(column)}' (row"
                        f"{'s' if len(neg) > 1 else ''} {', '.join(map(str, neg[:10]))}"
                        f"{' ...' if len(neg) > 10 else ''}) are reporting artefacts and were "
                        "set to missing")
    return out


def _shares(b: _Builder, s: _Sheet, column: str) -> list:
    vals, pct = [], []
    for i, v in enumerate(s.cells(column), start=1):
        try:
            x, p = _share(v)
        except ValueError:
            b.problem(s.label, i, s.original(column), "is not a share (e.g. 0.59 or 59%)", str(v))
            x, p = None, False
        vals.append(x)
        pct.append(p)
    present = [x for x in vals if x is not None]
    percent = any(pct) or (present and sum(present) > 1.5)
    return [None if x is None else (x / 100 if percent else x) for x in vals]


def _with_other(got: list[tuple[str, float, int]], dim: str) -> list[tuple[str, float, int]]:
    """Normalise bucket names; add an ``other`` bucket for the share a top-N list leaves out."""
    out = []
    for bucket, share, row in got:
        if dim == "gender":
            bucket = bucket.casefold()
        elif dim == "country" and len(bucket) <= 3:
            bucket = bucket.upper()
        out.append((bucket, share, row))
    total = sum(sh for _, sh, _ in out)
    if out and total < 0.98:
        out.append(("other", 1.0 - total, out[-1][2]))
    return out


def convert_studio(folder: str | Path, *, brand_account: str | None = None, as_of=None
                   ) -> dict[str, pd.DataFrame]:
    """Convert a TikTok Studio export folder to canonical raw tables.

    Parameters
    ----------
    folder : str or Path
        Folder holding the export's files (``Overview.csv``, ``Content.csv``,
        ``FollowerHistory.csv``, ... or the same as ``.xlsx``).
    brand_account : str, optional
        The account's handle; by default read from the video links of ``Content``.
    as_of : date-like, optional
        The export's last day, used to give a year to days written without one; by default
        inferred (see ``docs/exports.md``).

    Returns
    -------
    dict of str to DataFrame
        ``brand_account_daily``, ``creators``, ``creator_audience``, ``posts``, ``post_metrics``
        (those the export has data for), as text cells ready to be written as CSV next to
        ``campaigns.csv`` and the other tables a Studio export does not contain.

    Raises
    ------
    ValueError
        Listing every problem, when the export cannot be converted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    b = _Builder()
    groups = _scan([p for p in sorted(folder.iterdir()) if p.is_file()], folder, b)
    studio = [g for g in groups if g[0] == "studio"]
    if not studio:
        raise ValueError(f"{folder} holds no TikTok Studio export files (Overview, Content, "
                         "FollowerHistory, ... as CSV or XLSX)")
    for _, sheets in studio:
        _studio(b, sheets, brand_account=brand_account, as_of=as_of)
    return _tables_or_raise(b.finish())


def _tables_or_raise(conv: Conversion) -> dict[str, pd.DataFrame]:
    import warnings

    if conv.problems:
        lines = [f"{len(conv.problems)} problem(s) in the export:"] + \
            [f"  {p}" for p in conv.problems]
        raise ValueError("\n".join(lines))
    for file, msg in conv.warnings:
        warnings.warn(f"{file}: {msg}", UserWarning, stacklevel=3)
    return conv.tables


# --- TikTok One / Creator Marketplace -------------------------------------------------------------

_T1 = {  # canonical -> accepted field names (normalised)
    "post_id": ("video_id", "item_id"),
    "handle": ("handle_name", "creator_handle", "handle", "username", "creator_name"),
    "campaign_id": ("campaign_id",),
    "posted_at": ("post_time", "create_time", "publish_time", "video_create_time", "posted_at"),
    "caption": ("video_description", "caption", "video_title", "title"),
    "duration_s": ("video_duration", "duration", "duration_s"),
    "followers": ("followers", "follower_count", "creator_followers", "followers_count"),
    "country": ("creator_country", "country"),
    "date": ("report_date", "stat_date", "snapshot_date", "date", "export_date"),
    "views": ("video_views", "views", "play_count"),
    "reach": ("reach",),
    "likes": ("likes", "like_count"),
    "comments": ("comments", "comment_count"),
    "shares": ("shares", "share_count"),
    "saves": ("saves", "favorites", "collects", "favorites_count"),
    "avg_watch_time_s": ("average_view_time", "avg_view_time", "average_watch_time",
                         "avg_watch_time"),
    "completion_rate": ("video_completion_rate", "completion_rate", "full_video_watched_rate"),
    "profile_views": ("profile_views", "profile_visits"),
    "follows": ("new_followers", "follows"),
    "link_clicks": ("clicks", "link_clicks"),
    "paid_views": ("paid_views", "paid_video_views"),
}
_T1_COUNTS = ("views", "reach", "likes", "comments", "shares", "saves", "profile_views",
              "follows", "link_clicks", "paid_views")
_AUDIENCE_KEYS = {"gender": ("audience_gender", "audience_genders"),
                  "age": ("audience_age", "audience_ages"),
                  "country": ("audience_country", "audience_countries", "audience_locations",
                              "audience_territories")}


def _pick(rec: dict, names: tuple[str, ...]) -> tuple[str | None, object]:
    for n in names:
        if n in rec:
            v = rec[n]
            if isinstance(v, (list, dict)) or not _missing(v):
                return n, v
    return None, None


def _timestamp(v) -> pd.Timestamp | None:
    """Unix seconds or an ISO date-time (no offset means UTC)."""
    if _missing(v):
        return None
    s = str(v).strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", s):
        return pd.Timestamp(float(s), unit="s", tz="UTC").floor("s")
    ts = pd.Timestamp(s)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _audience_of(rec: dict) -> dict[str, dict[str, float]]:
    """Audience distributions of one record: ``{dimension: {bucket: share}}``."""
    out: dict[str, dict[str, float]] = {}
    for dim, names in _AUDIENCE_KEYS.items():
        _, v = _pick(rec, names)
        d: dict[str, float] = {}
        if isinstance(v, dict):
            d = {str(k): _share(x)[0] for k, x in v.items()}
        elif isinstance(v, list):
            for item in v:
                if not isinstance(item, dict):
                    continue
                item = {_norm_key(k): x for k, x in item.items()}
                _, bucket = _pick(item, (dim, "key", "name", "bucket", "value_name", "age_range",
                                         "country_code", "location"))
                _, share = _pick(item, ("percentage", "share", "distribution", "ratio",
                                        "proportion", "value"))
                if bucket is not None and share is not None:
                    d[str(bucket)] = _share(share)[0]
        else:  # flat CSV columns: audience_gender_female, audience_age_18-24, ...
            for k, x in rec.items():
                for n in names:
                    if k.startswith(n + "_") and not _missing(x):
                        d[k[len(n) + 1:]] = _share(x)[0]
        d = {k: x for k, x in d.items() if x is not None}
        if d:
            if sum(d.values()) > 1.5:
                d = {k: x / 100 for k, x in d.items()}
            out[dim] = d
    return out


def _tiktok_one(b: _Builder, label: str, records: list[dict], meta: dict, paths: list[Path], *,
                campaign_id=None, as_of=None, single_campaign: str | None = None) -> None:
    fmt = "tiktok_one"
    recs = [{_norm_key(k): v for k, v in r.items()} for r in records]
    meta = {_norm_key(k): v for k, v in meta.items()}
    snapshot_default = None
    camp_default = campaign_id if campaign_id is not None else meta.get("campaign_id")
    if camp_default is None and not any(_pick(r, _T1["campaign_id"])[1] is not None for r in recs):
        if single_campaign is not None:
            camp_default = single_campaign
            b.warn(label, f"the report names no campaign; its posts were assigned to the only "
                          f"campaign of campaigns.csv, {single_campaign}")
        else:
            b.problem(label, None, "campaign_id",
                      "a TikTok One campaign report needs the campaign it belongs to: add a "
                      "campaign_id column (or top-level field) matching campaigns.csv")
            return
    field_of: dict[str, str] = {}
    creators: dict[str, dict] = {}
    audiences: dict[str, list[tuple[float, dict, int]]] = defaultdict(list)
    for i, r in enumerate(recs, start=1):
        def get(canon, r=r):
            name, v = _pick(r, _T1[canon])
            if name:
                field_of.setdefault(canon, name)
            return v

        vid = get("post_id")
        vid = None if _missing(vid) else re.sub(r"\.0$", "", str(vid).strip())
        if vid is None or not vid.isdigit():
            b.problem(label, i, "video_id", "must be a numeric TikTok video id", vid)
            continue
        handle = get("handle")
        if _missing(handle):
            b.problem(label, i, "handle_name", "must not be empty")
            continue
        handle = str(handle).strip().lstrip("@").lower()
        camp = get("campaign_id")
        camp = str(camp).strip() if not _missing(camp) else camp_default
        try:
            posted = _timestamp(get("posted_at")) or video_id_time(vid)
        except ValueError:
            b.problem(label, i, field_of.get("posted_at"), "is not a date-time",
                      str(get("posted_at")))
            continue
        if posted is None:
            b.problem(label, i, "post_time", "no post time and the video id does not encode one")
            continue
        vals = {}
        for canon in (*_T1_COUNTS, "avg_watch_time_s", "completion_rate", "duration_s",
                      "followers"):
            v = get(canon)
            try:
                if canon in ("avg_watch_time_s", "duration_s"):
                    x = _number(v)
                elif canon == "completion_rate":
                    x, pct = _share(v)
                    x = x / 100 if x is not None and (pct or x > 1) else x
                else:
                    x = _count(v)
            except ValueError:
                b.problem(label, i, field_of.get(canon, canon), "is not a number", str(v))
                x = None
            vals[canon] = x
        d = get("date")
        try:
            snap = parse_day(d) if d is not None else None
        except ValueError:
            snap = None
        if not isinstance(snap, dt.date):
            if snapshot_default is None:
                snapshot_default = _export_date(b, label, paths, as_of, meta)
            snap = snapshot_default
        cap = get("caption")
        b.add("posts", {"post_id": vid, "creator_id": handle, "campaign_id": camp,
                        "posted_at": _iso_ts(posted),
                        "caption": None if _missing(cap) else str(cap),
                        "duration_s": _fmt(vals["duration_s"]),
                        "disclosure_label": "paid_partnership"}, label, i, fmt)
        b.add("post_metrics", {"post_id": vid, "date": snap.isoformat(),
                               **{k: _fmt(vals[k]) for k in (*_T1_COUNTS, "avg_watch_time_s",
                                                             "completion_rate")}},
              label, i, fmt)
        country = get("country")
        c = creators.setdefault(handle, {"row": i, "followers": None, "country": None})
        if vals["followers"] is not None:
            c["followers"] = max(c["followers"] or 0, vals["followers"])
        if not _missing(country) and c["country"] is None:
            c["country"] = str(country).strip()
        try:
            aud = _audience_of(r)
        except ValueError:
            b.problem(label, i, "audience", "audience shares are not numbers")
            aud = {}
        if aud:
            audiences[handle].append((vals["views"] or 0.0, aud, i))
    cols = {canon: name for canon, name in field_of.items()}
    b.columns[("posts", label)] = {"post_id": cols.get("post_id", "video_id"),
                                   "creator_id": cols.get("handle", "handle_name"),
                                   "posted_at": cols.get("posted_at", "video_id")}
    b.columns[("post_metrics", label)] = {k: v for k, v in cols.items()}
    b.columns[("creators", label)] = {"creator_id": cols.get("handle", "handle_name"),
                                      "followers": cols.get("followers", "followers")}
    for handle in sorted(creators):
        c = creators[handle]
        b.add("creators", {"creator_id": handle, "handle": f"@{handle}",
                           "followers": _fmt(c["followers"]), "niche": None,
                           "country": c["country"]}, label, c["row"], fmt)
    for handle in sorted(audiences):
        items = audiences[handle]
        weights = np.array([w for w, _, _ in items], dtype=float)
        if weights.sum() <= 0:
            weights = np.ones(len(items))
        for dim in _AUDIENCE_KEYS:
            per = [(w, a[dim], row) for w, (_, a, row) in zip(weights, items, strict=True)
                   if dim in a]
            if not per:
                continue
            tot_w = sum(w for w, _, _ in per) or 1.0
            buckets = sorted({k for _, d, _ in per for k in d})
            mixed = [(k, sum(w * d.get(k, 0.0) for w, d, _ in per) / tot_w, per[0][2])
                     for k in buckets]
            for bucket, share, row in _with_other(mixed, dim):
                b.add("creator_audience", {"creator_id": handle, "dimension": dim,
                                           "bucket": bucket, "share": _fmt(round(share, 6))},
                      label, row, fmt)


def convert_tiktok_one(path: str | Path, *, campaign_id: str | None = None, as_of=None
                       ) -> dict[str, pd.DataFrame]:
    """Convert a TikTok One (Creator Marketplace) campaign report (JSON or CSV).

    Parameters
    ----------
    path : str or Path
        The report file.
    campaign_id : str, optional
        Campaign the report belongs to, when it has no ``campaign_id`` field.
    as_of : date-like, optional
        Date of the report (the snapshot date of its metrics) when no row gives one.

    Returns
    -------
    dict of str to DataFrame
        ``creators``, ``creator_audience``, ``posts`` and ``post_metrics``.
    """
    path = Path(path)
    b = _Builder()
    for kind, obj in _scan([path], path.parent, b):
        if kind == "tiktok_one":
            _tiktok_one(b, obj.label, *_rows_and_meta(obj), [path], campaign_id=campaign_id,
                        as_of=as_of)
            return _tables_or_raise(b.finish())
    raise ValueError(_not_recognised(path, b, "a TikTok One campaign report (fields video_id and "
                                              "handle_name)"))


def _rows_and_meta(obj) -> tuple[list[dict], dict]:
    if isinstance(obj, _Records):
        return obj.records, obj.meta
    return [dict(zip(obj.header, r, strict=False)) for r in obj.rows], {}


def _not_recognised(path: Path, b: _Builder, what: str) -> str:
    if b.problems:
        return "\n".join(str(p) for p in b.problems)
    return f"{path.name} is not {what}"


# --- TikTok Research API --------------------------------------------------------------------------


def _research(b: _Builder, label: str, records: list[dict], meta: dict, paths: list[Path], *,
              as_of=None) -> None:
    fmt = "research_api"
    snap = _export_date(b, label, paths, as_of, meta)
    b.columns[("posts", label)] = {"post_id": "id", "creator_id": "username",
                                   "posted_at": "create_time", "caption": "video_description",
                                   "duration_s": "video_duration"}
    b.columns[("post_metrics", label)] = {"post_id": "id", "views": "view_count",
                                          "likes": "like_count", "comments": "comment_count",
                                          "shares": "share_count", "saves": "favorites_count"}
    for i, r in enumerate(records, start=1):
        vid = r.get("id")
        vid = None if _missing(vid) else str(vid).strip()
        if vid is None or not vid.isdigit():
            b.problem(label, i, "id", "must be a numeric TikTok video id", vid)
            continue
        user = r.get("username")
        if _missing(user):
            b.problem(label, i, "username", "must not be empty")
            continue
        try:
            posted = _timestamp(r.get("create_time"))
        except ValueError:
            posted = None
        if posted is None:
            b.problem(label, i, "create_time", "must be Unix seconds (e.g. 1710000000)",
                      r.get("create_time"))
            continue
        vals = {}
        for canon, name in (("views", "view_count"), ("likes", "like_count"),
                            ("comments", "comment_count"), ("shares", "share_count"),
                            ("saves", "favorites_count")):
            v = r.get(name, r.get("collect_count") if name == "favorites_count" else None)
            try:
                vals[canon] = _count(v)
            except ValueError:
                b.problem(label, i, name, "is not a whole number", str(v))
                vals[canon] = None
        try:
            duration = _number(r.get("video_duration"))
        except ValueError:
            duration = None
        tags = r.get("hashtag_names")
        rec = {"post_id": vid, "creator_id": str(user).strip().lstrip("@").lower(),
               "campaign_id": None, "posted_at": _iso_ts(posted),
               "caption": None if _missing(r.get("video_description"))
               else str(r.get("video_description")),
               "duration_s": _fmt(duration), "disclosure_label": "none",
               "sound_id": None if _missing(r.get("music_id")) else str(r.get("music_id"))}
        if isinstance(tags, list):
            rec["hashtags"] = " ".join(str(t) for t in tags)
        if not _missing(r.get("region_code")):
            rec["region_code"] = str(r.get("region_code"))
        b.add("posts", rec, label, i, fmt)
        b.add("post_metrics", {"post_id": vid, "date": snap.isoformat(),
                               **{k: _fmt(v) for k, v in vals.items()}}, label, i, fmt)


def convert_research_api(path: str | Path, *, as_of=None) -> dict[str, pd.DataFrame]:
    """Convert a TikTok Research API video query result (JSON or JSON lines).

    Parameters
    ----------
    path : str or Path
        The JSON file (a list of videos, or the API's ``{"data": {"videos": [...]}}``).
    as_of : date-like, optional
        Date the query was run (the snapshot date of the counts); by default a date in the file
        name, else the file's modification date (with a warning).

    Returns
    -------
    dict of str to DataFrame
        ``posts`` (organic, ``campaign_id`` empty) and ``post_metrics`` (one snapshot).
    """
    path = Path(path)
    b = _Builder()
    for kind, obj in _scan([path], path.parent, b):
        if kind == "research_api":
            _research(b, obj.label, obj.records, obj.meta, [path], as_of=as_of)
            return _tables_or_raise(b.finish())
    raise ValueError(_not_recognised(path, b, "a TikTok Research API video export (fields id, "
                                              "username, create_time)"))


# --- Shopify --------------------------------------------------------------------------------------

_UTM_COLUMNS = ("landing site", "landing page", "landing_site", "landing page url",
                "referring site", "referring_site", "note attributes")


def _utm(values: list) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if _missing(v):
            continue
        s = str(v)
        q = parse_qs(urlparse(s).query) if "?" in s else {}
        if not q:  # "utm_source: tiktok" lines (note attributes)
            for k, x in re.findall(r"(utm_[a-z]+)\s*[:=]\s*([^\s&;,]+)", s):
                q.setdefault(k, [x])
        for k in ("utm_source", "utm_campaign", "utm_content"):
            if k in q and k not in out and q[k][0]:
                out[k] = q[k][0]
    return out


def _shopify(b: _Builder, s: _Sheet) -> None:
    fmt = "shopify"
    label = s.label
    names = s.cells("name")
    by_order: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if _missing(n):
            b.problem(label, i + 1, s.original("name"), "must not be empty (the order number)")
            continue
        by_order.setdefault(str(n).strip(), []).append(i)
    b.columns[("orders", label)] = {"order_id": s.original("name"),
                                    "created_at": s.original("created at"),
                                    "customer_id": s.original("email"),
                                    "revenue": s.original("total"),
                                    "discount_code": s.original("discount code"),
                                    "region": s.original("shipping province")}

    cache: dict[str, list] = {}

    def cells(col):
        if col not in cache:
            cache[col] = s.cells(col) if s.column(col) is not None else [None] * len(s.rows)
        return cache[col]

    def first(rows, col):
        vals = cells(col)
        for r in rows:
            if not _missing(vals[r]):
                return str(vals[r]).strip(), r
        return None, rows[0]

    utm_cols = [c for c in _UTM_COLUMNS if s.column(c) is not None]
    cancelled = 0
    orders = []
    for order, rows in by_order.items():
        total, trow = first(rows, "total")
        totals = {str(cells("total")[r]).strip() for r in rows if not _missing(cells("total")[r])}
        if len(totals) > 1:
            b.problem(label, rows[1] + 1, s.original("total"),
                      f"order {order} has different totals on its rows", ", ".join(sorted(totals)))
            continue
        created, crow = first(rows, "created at")
        try:
            ts = _timestamp(created)
        except ValueError:
            ts = None
        if ts is None:
            b.problem(label, crow + 1, s.original("created at"),
                      "is not a date-time (e.g. 2024-03-05 10:00:00 +0100)", created)
            continue
        try:
            revenue = _number(total)
        except ValueError:
            revenue = None
            b.problem(label, trow + 1, s.original("total"), "is not a number", total)
            continue
        if revenue is None:
            b.problem(label, trow + 1, s.original("total"), "must not be empty")
            continue
        if first(rows, "cancelled at")[0] is not None:
            cancelled += 1
            continue
        qty = 0.0
        for r in rows:
            try:
                qty += _count(cells("lineitem quantity")[r]) or 0.0
            except ValueError:
                b.problem(label, r + 1, s.original("lineitem quantity"), "is not a whole number",
                          cells("lineitem quantity")[r])
        email, _ = first(rows, "email")
        code, _ = first(rows, "discount code")
        region = first(rows, "shipping province")[0] or first(rows, "billing province")[0]
        utm = _utm([cells(c)[r] for c in utm_cols for r in rows])
        rec = {"order_id": order, "created_at": _iso_ts(ts),
               "customer_id": email.casefold() if email else None, "revenue": _fmt(revenue),
               "discount_code": code, "utm_source": utm.get("utm_source"),
               "utm_campaign": utm.get("utm_campaign"), "utm_content": utm.get("utm_content"),
               "affiliate_id": None, "region": region, "items": _fmt(qty)}
        for col, canon in (("discount amount", "discount_amount"), ("subtotal", "subtotal"),
                           ("currency", "currency"), ("financial status", "financial_status"),
                           ("refunded amount", "refunded_amount")):
            v = first(rows, col)[0]
            if v is not None:
                rec[canon] = v
        orders.append((ts, order, rec, rows[0] + 1))
    # new_customer: the customer's first order in the export (ties broken by order number)
    seen = set()
    for ts, order, rec, row in sorted(orders, key=lambda t: (t[0], t[1])):
        cust = rec["customer_id"]
        rec["new_customer"] = None if cust is None else ("false" if cust in seen else "true")
        if cust is not None:
            seen.add(cust)
    for ts, order, rec, row in sorted(orders, key=lambda t: t[3]):
        b.add("orders", rec, label, row, fmt)
    if cancelled:
        b.warn(label, f"{cancelled} cancelled order(s) were left out")
    if orders and not utm_cols:
        b.warn(label, "no landing-site column: utm_source, utm_campaign and utm_content are "
                      "empty (attribution relies on discount codes)")


def convert_shopify(path: str | Path) -> dict[str, pd.DataFrame]:
    """Convert a Shopify orders export (CSV, one row per line item) to canonical ``orders``.

    ``customer_id`` holds the lower-cased e-mail address; :func:`analysis.ingest.ingest`
    pseudonymises it, so write the result only into the raw directory. Names, addresses and
    phone numbers are not carried over.

    Returns
    -------
    dict of str to DataFrame
        ``{"orders": ...}``, one row per order.
    """
    path = Path(path)
    b = _Builder()
    for kind, obj in _scan([path], path.parent, b):
        if kind == "shopify":
            _shopify(b, obj)
            return _tables_or_raise(b.finish())
    raise ValueError(_not_recognised(path, b, "a Shopify orders export (columns Name, Email, "
                                              "Created at, Total, Lineitem quantity)"))


# --- detection ------------------------------------------------------------------------------------


def _scan(paths: list[Path], root: Path, b: _Builder,
          labels: dict[Path, str] | None = None) -> list[tuple[str, object]]:
    """Recognise export files; return ``(kind, object)`` groups, Studio files grouped by folder."""
    out: list[tuple[str, object]] = []
    studio: dict[Path, dict[str, _Sheet]] = {}
    labels = labels or {}
    for p in paths:
        label = labels.get(p) or (p.relative_to(root).as_posix() if p.is_relative_to(root)
                                  else p.name)
        if p.suffix.lower() == ".json":
            rec = _read_json(p, label)
            kind = _kind_of_records(rec) if rec else None
            if kind:
                rec.kind = kind
                b.register(label, kind, len(rec.records), p)
                out.append((kind, rec))
            continue
        if not _quick_kind(p):
            continue
        problems: list = []
        sheets = _read_sheets(p, label, problems)
        kinds = [(s, _kind_of_sheet(s)) for s in sheets]
        kinds = [(s, k) for s, k in kinds if k]
        if not kinds:
            continue
        b.problems.extend(problems)
        b.register(label, ", ".join(sorted({k for _, k in kinds})),
                   sum(len(s.rows) for s, _ in kinds), p)
        for s, k in kinds:
            if k.startswith("studio:"):
                name = k.split(":")[1]
                s.kind = name
                group = studio.setdefault(p.parent, {})
                if name in group:
                    b.problem(s.label, None, None, f"the Studio export's {name} table is given "
                                                   f"twice (also in {group[name].label}); keep one")
                    continue
                group[name] = s
            else:
                s.kind = k
                out.append((k, s))
    for folder in sorted(studio):
        group = {k: v for k, v in studio[folder].items() if k != "FollowerActivity"}
        if "FollowerActivity" in studio[folder]:
            b.warn(studio[folder]["FollowerActivity"].label,
                   "follower activity by hour has no canonical table and is not used")
        if group:
            out.append(("studio", group))
    return out


def _single_campaign(raw_dir: Path) -> str | None:
    p = raw_dir / "campaigns.csv"
    if not p.is_file():
        return None
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        ids = sorted(set(df["campaign_id"].str.strip()) - {""})
    except Exception:  # noqa: BLE001 - ingest reports problems of campaigns.csv itself
        return None
    return ids[0] if len(ids) == 1 else None


def detect_and_convert(raw_dir: str | Path) -> Conversion:
    """Recognise every export file of ``raw_dir`` and convert it to canonical rows.

    Files are looked for at the top of ``raw_dir``, one folder down (a Studio export is
    usually a folder) and inside top-level ZIP archives (see :func:`_extract_zips`); they are recognised
    by their columns, never by their names, so a Shopify export saved as ``orders.csv`` is recognised too.
    Canonical tables are not touched here.

    Parameters
    ----------
    raw_dir : str or Path
        The raw directory given to ``ingest``.

    Returns
    -------
    Conversion
        Converted tables with the provenance of every row, problems and warnings.
    """
    raw_dir = Path(raw_dir)
    b = _Builder()
    if not raw_dir.is_dir():
        return b.finish()
    with tempfile.TemporaryDirectory(prefix="exports-") as tmp:
        extracted = _extract_zips(raw_dir, Path(tmp), b)
        _convert_all(b, raw_dir, _candidates(raw_dir) + sorted(extracted), extracted)
    return b.finish()


def _convert_all(b: _Builder, raw_dir: Path, paths: list[Path], labels: dict[Path, str]) -> None:
    groups = _scan(paths, raw_dir, b, labels)
    single = None
    for kind, obj in sorted(groups, key=lambda g: FORMAT_ORDER.index(g[0])):
        try:
            if kind == "studio":
                _studio(b, obj)
            elif kind == "tiktok_one":
                if single is None:
                    single = _single_campaign(raw_dir) or ""
                _tiktok_one(b, obj.label, *_rows_and_meta(obj), [obj.path],
                            single_campaign=single or None)
            elif kind == "research_api":
                _research(b, obj.label, obj.records, obj.meta, [obj.path])
            elif kind == "shopify":
                _shopify(b, obj)
        except Exception as exc:  # noqa: BLE001 - never a traceback for bad input
            label = next(iter(obj.values())).label if isinstance(obj, dict) else obj.label
            b.problem(label, None, None, f"could not be converted (please report this): "
                                         f"{type(exc).__name__}: {exc}")
