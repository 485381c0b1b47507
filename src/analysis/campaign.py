"""The campaign report's sections: what ``notebooks/10_campaign_report.ipynb`` calls.

The notebook orchestrates and narrates; every computation lives here and in the
modules it calls. :func:`open_report` validates the notebook's parameters and loads
the data; each section function takes the :class:`CampaignReport` and returns a
:class:`Section` (tables, figures, a one-sentence reading and its contribution to
``results.json``). :meth:`CampaignReport.results` assembles ``results.json``.

A section whose tables are absent from the data set, or whose analysis module is not
installed, returns ``status="not available"`` with the reason. A section that fails
for any other reason returns ``status="error"``: the error is shown in the report and
recorded in ``results.json``'s ``warnings``; with ``ANALYSIS_STRICT_SECTIONS=1`` in the
environment (as in the test suite) it is raised instead.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis._blas import single_threaded_blas
from analysis.htmlsafe import SafeTable, paragraph, safe_table
from analysis.results import empty_results, json_safe

__all__ = [
    "CampaignReport",
    "NotAvailable",
    "Parameters",
    "Section",
    "attribution",
    "campaign_summary",
    "compliance",
    "conversions",
    "data_quality",
    "kpi_tables",
    "lift",
    "open_report",
    "returning_creators",
    "scorecard",
    "sentiment",
    "time_series",
    "validate_parameters",
    "watch_time",
]

#: Environment variable that, when set to a processed directory, replaces the default ``data_dir``.
DATA_DIR_ENV = "ANALYSIS_DATA_DIR"
#: Environment variable that makes a failing section raise instead of being recorded.
STRICT_ENV = "ANALYSIS_STRICT_SECTIONS"
#: The notebook's default ``data_dir`` parameter (relative to the project root).
DEFAULT_DATA_DIR = "data/processed"
#: Environment variable that, when set, replaces the default ``out_dir``.
OUT_DIR_ENV = "ANALYSIS_OUT_DIR"
#: The notebook's default ``out_dir`` parameter (relative to the project root).
DEFAULT_OUT_DIR = "reports/notebook"

#: KPIs shown in the campaign summary table, in order (others are in the full table).
HEADLINE_KPIS = ("views", "reach", "engagements", "engagement_rate", "completion_rate", "avg_watch_time_s",
                 "follows", "link_clicks", "ctr", "orders", "revenue", "cost", "cpm", "cpe", "cpa", "roas")


class NotAvailable(Exception):
    """Raised inside a section when its data or module is absent; becomes a "not available" status."""


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameters:
    """The campaign notebook's validated parameters."""

    campaign_id: str
    data_dir: Path
    out_dir: Path
    as_of: _dt.date | None
    seed: int
    view_curve_data: Path | None = None


def _resolve_dir(value: str, *, default: str, env: str | None = None) -> Path:
    if env and value == default and os.environ.get(env):
        return Path(os.environ[env]).expanduser().resolve()
    p = Path(value).expanduser()
    return (p if p.is_absolute() else config.PROJ_ROOT / p).resolve()


def validate_parameters(*, campaign_id: str, data_dir: str, out_dir: str, as_of: str = "",
                        seed: int = config.DEFAULT_SEED, view_curve_data: str = "") -> Parameters:
    """Check the notebook parameters and resolve paths.

    Parameters
    ----------
    campaign_id : str
        Campaign to report on; ``""`` picks the first campaign (by id) in the data set.
    data_dir : str
        Processed directory written by ``ingest``; relative paths are relative to the project root.
        When it is the default ``"data/processed"`` and ``ANALYSIS_DATA_DIR`` is set, that directory is used.
    out_dir : str
        Where ``results.json`` is written (relative to the project root unless absolute); when it is the
        default ``"reports/notebook"`` and ``ANALYSIS_OUT_DIR`` is set, that directory is used.
    as_of : str
        ``""`` or an ISO date (YYYY-MM-DD): the report says its figures are partial if the
        campaign's attribution window had not closed by then.
    seed : int
        Seed for every resampling step.
    view_curve_data : str
        ``""``, or a processed directory (relative to the project root unless absolute) whose post metrics
        were exported daily or weekly, for example an earlier campaign of the same brand: the pooled view
        curve of its posts (:func:`analysis.attribution.measured_view_curve`) replaces the published typical
        TikTok curve wherever this data set's posts were exported once (totals only), in every attribution
        of the report. Ignored where the posts' own snapshots give a curve.

    Raises
    ------
    ValueError
        With a plain-language message naming the parameter.
    """
    if not isinstance(campaign_id, str):
        raise ValueError(f"campaign_id must be a string such as 'C001', got {campaign_id!r}")
    if not isinstance(data_dir, str) or not data_dir:
        raise ValueError(f"data_dir must be a path string, got {data_dir!r}")
    if not isinstance(out_dir, str) or not out_dir:
        raise ValueError(f"out_dir must be a path string, got {out_dir!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    day = None
    if as_of:
        try:
            day = _dt.date.fromisoformat(str(as_of))
        except ValueError:
            raise ValueError(f"as_of must be an ISO date such as '2025-06-30' or empty, got {as_of!r}") from None
    data = _resolve_dir(data_dir, default=DEFAULT_DATA_DIR, env=DATA_DIR_ENV)
    if not data.is_dir():
        raise ValueError(f"data_dir {data_dir!r} is not a directory: run `make data` (or `python -m analysis "
                         "ingest --raw RAW --out DIR`) first, or pass data_dir= the processed directory")
    if not (data / "campaigns.parquet").exists():
        raise ValueError(f"data_dir {data_dir!r} has no campaigns table: is it a directory written by ingest?")
    if not isinstance(view_curve_data, str):
        raise ValueError(f"view_curve_data must be a path string or empty, got {view_curve_data!r}")
    curve_dir = None
    if view_curve_data:
        curve_dir = _resolve_dir(view_curve_data, default="")
        if not (curve_dir / "campaigns.parquet").exists():
            raise ValueError(f"view_curve_data {view_curve_data!r} is not a processed directory with a campaigns "
                             "table: pass a directory written by ingest whose post metrics were exported daily or "
                             "weekly, or leave it empty for the published curve")
    return Parameters(campaign_id=campaign_id, data_dir=data,
                      out_dir=_resolve_dir(out_dir, default=DEFAULT_OUT_DIR, env=OUT_DIR_ENV), as_of=day,
                      seed=int(seed), view_curve_data=curve_dir)


# ---------------------------------------------------------------- sections


Plotter = Callable[[Any], Any]


@dataclass(frozen=True)
class Section:
    """One section of the campaign report.

    Attributes
    ----------
    key : str
        Short name (``"kpis"``, ``"lift"``, ...).
    title : str
        Heading shown in the report.
    status : {"ok", "not available", "error"}
        Whether the section could be computed.
    reason : str
        Why not, when ``status`` is not ``"ok"``.
    reading : str
        Plain-language reading of the result (trusted text built from numbers and escaped values).
    tables : tuple of (title, DataFrame)
        Tables shown, escaped on display.
    plotters : tuple of callables
        Each draws one figure on the Axes it is given and returns it.
    contribution : dict
        What the section adds to ``results.json`` (top-level key -> value).
    result : object
        The underlying result object (e.g. a lift result), for further use.
    warnings : tuple of str
        Data-quality notes raised while computing the section.
    """

    key: str
    title: str
    status: str = "ok"
    reason: str = ""
    reading: str = ""
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()
    formatters: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
    plotters: tuple[Plotter, ...] = ()
    contribution: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> pd.DataFrame:
        """The section's first table (an empty frame when it has none)."""
        return self.tables[0][1].copy() if self.tables else pd.DataFrame()

    def plot(self, ax=None):
        """Draw the section's first figure on ``ax`` (or a new Axes) and return the Axes."""
        if not self.plotters:
            raise ValueError(f"the {self.title!r} section has no figure ({self.status}: {self.reason})")
        return self.plotters[0](ax)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record of the section: status, reason, reading and its results.json contribution."""
        return json_safe({"key": self.key, "status": self.status, "reason": self.reason,
                          "reading": self.reading, "contribution": dict(self.contribution)})

    def display_objects(self) -> list[Any]:
        """What :meth:`show` displays, in order (escaped paragraphs and tables; figures follow)."""
        out: list[Any] = []
        if self.status == "not available":
            return [paragraph(self.reason, lead="Not available:")]
        if self.status == "error":
            return [paragraph(self.reason, lead="This section failed:")]
        # a blank line in the reading separates paragraphs
        out += [paragraph(p) for p in self.reading.split("\n\n") if p.strip()]
        for title, df in self.tables:
            out.append(safe_table(df, formatters=self.formatters, index=False, caption=title))
        for note in self.warnings:
            out.append(paragraph(note, lead="Note:"))
        return out

    def show(self) -> Section:
        """Display the section in a notebook (text, escaped tables, then each figure as PNG)."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        for obj in self.display_objects():
            display(obj)
        if self.ok:
            for plotter in self.plotters:
                drawn = plotter(None)
                fig = np.ravel(np.asarray(drawn, dtype=object))[0].figure
                display(fig)
                plt.close(fig)
        return self

    def __repr__(self) -> str:
        head = f"{self.title} [{self.status}]"
        return f"{head}: {self.reason}" if self.reason else (f"{head}: {self.reading}" if self.reading else head)


class CampaignReport:
    """State shared by the sections of one campaign's report: data, parameters, warnings.

    Use :func:`open_report` to build one from the notebook's parameters.
    """

    def __init__(self, data: Any, params: Parameters, *, view_curve: np.ndarray | None = None) -> None:
        self.data = data
        self.params = params
        #: The view curve assumed for posts exported once (``None``: the published typical curve).
        self.view_curve = view_curve
        self.campaign_id = params.campaign_id
        self.sections: dict[str, Section] = {}
        self.cache: dict[str, Any] = {}
        self.warnings: list[str] = []
        campaigns = self.table("campaigns")
        row = campaigns.loc[campaigns["campaign_id"].astype(str) == self.campaign_id]
        self.campaign = row.iloc[0].to_dict()
        self.start = pd.Timestamp(self.campaign["start_date"]).normalize()
        self.end = pd.Timestamp(self.campaign["end_date"]).normalize()
        self.currency = str(self.campaign.get("currency") or "")
        if params.as_of is not None:
            closes = self.end + pd.Timedelta(days=config.ATTRIBUTION_TAIL_DAYS)
            if pd.Timestamp(params.as_of) < closes:
                self.warnings.append(
                    f"Report as of {params.as_of.isoformat()}: the campaign's attribution window closes on "
                    f"{closes.date().isoformat()}, so effects are still accruing.")

    @property
    def currency_symbol(self) -> str:
        """Symbol used when formatting money."""
        return {"USD": "$", "EUR": "€", "GBP": "£", "": "$"}.get(self.currency, f"{self.currency} ")

    # -- data access
    def has(self, name: str) -> bool:
        """Whether the processed data holds a non-empty table ``name``."""
        if hasattr(self.data, "has"):
            if not self.data.has(name):
                return False
        t = self._get(name)
        return t is not None and len(t) > 0

    def missing(self, *names: str, label: str | None = None, note: str = "") -> str:
        """Why :meth:`has` refuses the tables ``names``, in words: absent, or present without rows.

        ``label`` names the tables together (``"geo holdout"``); ``note`` is added in brackets. For example
        ``"the data set has no orders table (orders are optional)"`` or ``"the orders table of the data set
        is empty (orders are optional)"``.
        """
        gone = [n for n in names if not self.has(n)]
        empty = [n for n in gone if self._get(n) is not None]
        absent = [n for n in gone if n not in empty]
        parts = []
        for kind, group in (("absent", absent), ("empty", empty)):
            if not group:
                continue
            many = len(group) > 1 or label is not None and len(names) > 1
            what = (label or " and ".join(group)) + (" tables" if many else " table")
            parts.append(f"the data set has no {what}" if kind == "absent"
                         else f"the {what} of the data set {'are' if many else 'is'} empty")
        return "; ".join(parts) + (f" ({note})" if note else "")

    def _get(self, name: str) -> pd.DataFrame | None:
        try:
            return self.data[name]
        except (KeyError, LookupError):
            return None

    def table(self, name: str) -> pd.DataFrame:
        """The processed table ``name``; raises :class:`NotAvailable` when it is absent."""
        t = self._get(name)
        if t is None:
            raise NotAvailable(f"the data set has no {name} table")
        return t

    def campaign_rows(self, name: str) -> pd.DataFrame:
        """Rows of table ``name`` belonging to this campaign (by ``campaign_id``)."""
        t = self.table(name)
        return t.loc[t["campaign_id"].astype(str) == self.campaign_id]

    # -- sections
    def run(self, key: str, title: str, body: Callable[[], Section]) -> Section:
        """Run a section body, turning absent data/modules into "not available" and errors into "error".

        The body runs with one BLAS thread, so the section's numbers (and ``results.json``) are the same
        whatever the machine's or the kernel's thread settings (``analysis._blas``).
        """
        try:
            with single_threaded_blas():
                sec = body()
        except NotAvailable as exc:
            sec = Section(key=key, title=title, status="not available", reason=str(exc))
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("analysis"):
                raise
            sec = Section(key=key, title=title, status="not available",
                          reason=f"the {exc.name} module is not part of this installation")
        except Exception as exc:  # recorded and shown, or raised in strict mode
            if os.environ.get(STRICT_ENV):
                raise
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if f"{os.sep}analysis{os.sep}" in f.filename]
            where = (ours or frames)[-1]
            msg = f"{type(exc).__name__}: {exc} (in {Path(where.filename).name}, line {where.lineno})"
            sec = Section(key=key, title=title, status="error", reason=msg)
            self.warnings.append(f"Section '{title}' failed: {msg}")
        self.sections[key] = sec
        self.warnings.extend(w for w in sec.warnings if w not in self.warnings)
        return sec

    def fmt(self, metric: str, value: Any) -> str:
        """Format ``value`` as the registry shows ``metric``."""
        try:
            from analysis.metrics import format_value
        except ModuleNotFoundError:
            return "n/a" if value is None else f"{value:,.4g}"
        try:
            return format_value(metric, value, currency=self.currency_symbol)
        except (KeyError, ValueError):
            return "n/a" if value is None or pd.isna(value) else f"{value:,.4g}"

    def results(self) -> dict[str, Any]:
        """The ``results.json`` dictionary: contract keys filled from every section run so far."""
        d = empty_results(self.campaign_id, objective=str(self.campaign.get("objective", "")),
                          start=self.start, end=self.end)
        for sec in self.sections.values():
            for k, v in sec.contribution.items():
                d[k] = v
            if not sec.ok and sec.key in ("attribution",):
                d["followers"] = {**d["followers"], "status": sec.status, "reason": sec.reason}
            if not sec.ok and sec.key in ("sentiment", "compliance"):
                d[sec.key] = {"status": sec.status, "reason": sec.reason}
        d["sections"] = {k: {"status": s.status, "reason": s.reason} for k, s in self.sections.items()}
        d["warnings"] = list(self.warnings)
        return json_safe(d)


def _load(data_dir: Path) -> Any:
    from analysis.data import load

    return load(data_dir)


def open_report(*, campaign_id: str, data_dir: str, out_dir: str, as_of: str = "",
                seed: int = config.DEFAULT_SEED, view_curve_data: str = "") -> CampaignReport:
    """Validate the notebook parameters, load the processed data and return the report state.

    The parameters are those of :func:`validate_parameters`; with ``view_curve_data`` the view curve is
    measured once here and kept as :attr:`CampaignReport.view_curve` for every attribution of the report.

    Raises
    ------
    ValueError
        For invalid parameters, an unknown campaign id (the message lists the known ids), or a
        ``view_curve_data`` whose post metrics give no view curve.
    """
    params = validate_parameters(campaign_id=campaign_id, data_dir=data_dir, out_dir=out_dir, as_of=as_of,
                                 seed=seed, view_curve_data=view_curve_data)
    data = _load(params.data_dir)
    ids = sorted(data["campaigns"]["campaign_id"].astype(str))
    cid = params.campaign_id or (ids[0] if ids else "")
    if cid not in ids:
        raise ValueError(f"unknown campaign_id {params.campaign_id!r}; the data set holds: {', '.join(ids)}")
    curve = None
    if params.view_curve_data is not None:
        from analysis.attribution import measured_view_curve

        try:
            curve = measured_view_curve(_load(params.view_curve_data))
        except ValueError as exc:
            raise ValueError(f"view_curve_data {view_curve_data!r}: {exc}") from None
    params = replace(params, campaign_id=cid)
    return CampaignReport(data, params, view_curve=curve)


# ---------------------------------------------------------------- helpers


def _isnum(x: Any) -> bool:
    return x is not None and not isinstance(x, bool) and isinstance(x, (int, float, np.number)) and bool(
        np.isfinite(float(x)))


def _f(x: Any) -> float | None:
    return float(x) if _isnum(x) else None


def _window_mask(dates: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    d = pd.to_datetime(dates)
    if getattr(d.dt, "tz", None) is not None:
        d = d.dt.tz_localize(None)
    return (d >= start) & (d <= end)


def _creator_handles(rep: CampaignReport) -> pd.Series:
    creators = rep.table("creators")
    return creators.set_index(creators["creator_id"].astype(str))["handle"].astype(str)


def _with_handles(rep: CampaignReport, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each creator's handle next to its ``creator_id`` (as the other report tables show it)."""
    if "creator_id" not in df or "handle" in df:
        return df
    out = df.copy()
    out.insert(out.columns.get_loc("creator_id") + 1, "handle",
               out["creator_id"].astype(str).map(_creator_handles(rep)))
    return out


# ---------------------------------------------------------------- 1. campaign summary


def campaign_summary(rep: CampaignReport) -> Section:
    """Objective, window, budget, spend and the contracted creators."""

    def body() -> Section:
        c = rep.campaign
        contracts = rep.campaign_rows("contracts").copy()
        contracts["creator_id"] = contracts["creator_id"].astype(str)
        posts = rep.campaign_rows("posts")
        creators = rep.table("creators").assign(creator_id=lambda d: d["creator_id"].astype(str))
        roster = contracts.merge(creators, on="creator_id", how="left")
        roster["cost"] = roster["fee"].astype(float) + roster["product_cost"].astype(float)
        n_posts = posts.groupby(posts["creator_id"].astype(str)).size()
        roster["posts"] = roster["creator_id"].map(n_posts).fillna(0).astype(int)
        cols = [x for x in ("creator_id", "handle", "tier", "followers", "niche", "country", "posts", "fee",
                            "product_cost", "cost") if x in roster.columns]
        roster = roster[cols].sort_values("creator_id").reset_index(drop=True)
        budget = _f(c.get("budget"))
        spend = float(roster["cost"].sum())
        overview = pd.DataFrame([
            ("Campaign", f"{c.get('name', '')} ({rep.campaign_id})"),
            ("Brand", c.get("brand", "")),
            ("Objective", c.get("objective", "")),
            ("Window", f"{rep.start.date().isoformat()} to {rep.end.date().isoformat()} "
                       f"({(rep.end - rep.start).days + 1} days)"),
            ("Budget", rep.fmt("cost", budget)),
            ("Contracted cost (fees + product)", rep.fmt("cost", spend)),
            ("Creators", f"{len(roster)}"),
            ("Campaign posts", f"{len(posts)}"),
        ], columns=["item", "value"])
        objective = str(c.get("objective", "") or "")
        article = "an" if objective[:1].lower() in "aeiou" and objective else "a"
        reading = (f"{c.get('brand', '')} ran {article} {objective} campaign from "
                   f"{rep.start.date().isoformat()} to {rep.end.date().isoformat()} with {len(roster)} creators "
                   f"and {len(posts)} posts, for a contracted cost of {rep.fmt('cost', spend)}"
                   + (f" against a budget of {rep.fmt('cost', budget)}." if budget is not None else "."))
        warn = ()
        if budget is not None and spend > budget * 1.0001:
            warn = (f"Contracted cost {rep.fmt('cost', spend)} exceeds the budget {rep.fmt('cost', budget)}.",)
        money = {k: (lambda v: rep.fmt("cost", v)) for k in ("fee", "product_cost", "cost")}
        money["followers"] = lambda v: rep.fmt("views", v)
        return Section(key="summary", title="Campaign summary", reading=reading,
                       tables=(("Overview", overview), ("Creators", roster)), formatters=money,
                       contribution={"summary": {"budget": budget, "contracted_cost": spend, "currency": rep.currency,
                                                 "creators": roster["creator_id"].tolist(),
                                                 "posts": int(len(posts))}},
                       warnings=warn)

    return rep.run("summary", "Campaign summary", body)


# ---------------------------------------------------------------- 2. KPIs and scorecard


def _campaign_kpis(rep: CampaignReport) -> pd.Series:
    if "campaign_kpis" in rep.cache:
        return rep.cache["campaign_kpis"]
    from analysis.kpis import kpi_table

    t = kpi_table(rep.data, level="campaign", campaign_id=rep.campaign_id)
    if "campaign_id" in t.columns:
        t = t.loc[t["campaign_id"].astype(str) == rep.campaign_id]
    if len(t) != 1:
        raise ValueError(f"kpi_table returned {len(t)} campaign rows for {rep.campaign_id}")
    rep.cache["campaign_kpis"] = t.iloc[0]
    return t.iloc[0]


def _kpi_metric_names(row: pd.Series) -> list[str]:
    from analysis.metrics import REGISTRY

    return [m for m in REGISTRY if m in row.index]


def _intervals(rep: CampaignReport) -> dict[str, tuple[float | None, float | None]]:
    try:
        from analysis.kpis import kpi_intervals
    except ImportError:
        return {}
    iv = kpi_intervals(rep.data, level="campaign", campaign_id=rep.campaign_id, seed=rep.params.seed)
    if isinstance(iv, pd.DataFrame) and {"metric", "ci_low", "ci_high"} <= set(iv.columns):
        return {str(r.metric): (_f(r.ci_low), _f(r.ci_high)) for r in iv.itertuples()}
    return {}


def _targets(rep: CampaignReport) -> dict[str, float]:
    if not rep.has("campaign_targets"):
        return {}
    t = rep.campaign_rows("campaign_targets")
    return {str(k): float(v) for k, v in zip(t["kpi"], t["target"])}


def _attainment(metric: str, value: float | None, target: float | None) -> float | None:
    from analysis.metrics import metric as _metric

    if value is None or target is None or target == 0:
        return None
    if _metric(metric).direction == "lower":
        return target / value if value else None
    return value / target


def kpi_tables(rep: CampaignReport) -> Section:
    """Campaign KPIs (value, interval, target, attainment) and the creator leaderboard."""

    def body() -> Section:
        from analysis.kpis import kpi_table
        from analysis.metrics import REGISTRY

        row = _campaign_kpis(rep)
        names = _kpi_metric_names(row)
        intervals = _intervals(rep)
        targets = _targets(rep)
        try:
            att = {ln.metric: ln.attainment for ln in _scorecard(rep).lines}
        except ModuleNotFoundError:
            att = {}
        kpis: dict[str, dict[str, float | None]] = {}
        for m in names:
            value = _f(row[m])
            lo, hi = intervals.get(m, (None, None))
            target = targets.get(m)
            kpis[m] = {"value": value, "ci_low": lo, "ci_high": hi, "target": target,
                       "attainment": att.get(m, _attainment(m, value, target))}
        table = pd.DataFrame([
            {"metric": m, "label": REGISTRY[m].label, "value": rep.fmt(m, k["value"]),
             "95% interval": ("" if k["ci_low"] is None else f"[{rep.fmt(m, k['ci_low'])}, "
                              f"{rep.fmt(m, k['ci_high'])}]"),
             "target": "" if k["target"] is None else rep.fmt(m, k["target"]),
             "attainment": "" if k["attainment"] is None else f"{k['attainment']:.0%}"}
            for m, k in kpis.items()])
        creators = kpi_table(rep.data, level="creator", campaign_id=rep.campaign_id)
        creators = _with_handles(rep, creators.assign(creator_id=creators["creator_id"].astype(str)))
        lead_cols = [m for m in ("views", "engagements", "engagement_rate", "completion_rate", "follows",
                                 "orders", "revenue", "cost", "cpm", "cpe", "roas") if m in creators.columns]
        board = creators.sort_values(["views", "creator_id"], ascending=[False, True])[
            ["creator_id", "handle", *lead_cols]].reset_index(drop=True)
        fmts = {m: (lambda v, m=m: rep.fmt(m, v)) for m in lead_cols}
        headline = [m for m in HEADLINE_KPIS if m in kpis]
        reading = ("Headline figures: " + ", ".join(f"{REGISTRY[m].label.lower()} {rep.fmt(m, kpis[m]['value'])}"
                                                    for m in headline[:4]) + ".")

        def plot_board(ax=None):
            from analysis.plotting import axes, finish, format_count_axis

            ax = axes(ax)
            top = board.head(15)
            ax.barh(top["handle"].astype(str)[::-1], top["views"][::-1], color="#1f4e79")
            format_count_axis(ax, "x")
            return finish(ax, title="Views by creator", xlabel="views (count)", ylabel="creator")

        return Section(key="kpis", title="KPI tables", reading=reading,
                       tables=(("Campaign KPIs", table), ("Creator leaderboard", board)), formatters=fmts,
                       plotters=(plot_board,), contribution={"kpis": kpis}, result=row)

    return rep.run("kpis", "KPI tables", body)


def _scorecard(rep: CampaignReport) -> Any:
    if "scorecard" in rep.cache:
        return rep.cache["scorecard"]
    from analysis.scorecard import scorecard as _sc

    elapsed = 1.0
    if rep.params.as_of is not None:
        days = (rep.end - rep.start).days + 1
        elapsed = min(1.0, max(1.0 / days, ((pd.Timestamp(rep.params.as_of) - rep.start).days + 1) / days))
    targets = rep.campaign_rows("campaign_targets") if rep.has("campaign_targets") else None
    rep.cache["scorecard"] = _sc(_campaign_kpis(rep), targets, str(rep.campaign["objective"]),
                                 elapsed_share=elapsed, currency=rep.currency_symbol)
    return rep.cache["scorecard"]


def scorecard(rep: CampaignReport) -> Section:
    """The objective's primary and secondary KPIs against targets (``analysis.scorecard``)."""

    def body() -> Section:
        sc = _scorecard(rep)
        table = sc.summary()
        lines = [ln for ln in sc.lines if ln.target is not None]
        hit = sum(1 for ln in lines if ln.attainment is not None and ln.attainment >= 1)
        reading = (f"For {'an' if sc.objective[:1] in 'aeiou' else 'a'} {sc.objective} objective, {hit} of "
                   f"{len(lines)} targeted KPIs met their target."
                   if lines else f"No targets were set for this {sc.objective} campaign.")
        fm = {**number_formats(".0%", "attainment", "paced_attainment"), **number_formats(",.4g", "value", "target")}
        shown = table[["metric", "role", "status", "text", "attainment"]]
        return Section(key="scorecard", title="Objective scorecard", reading=reading,
                       tables=(("Scorecard", shown),), formatters=fm,
                       plotters=((sc.plot,) if lines else ()), contribution={"scorecard": sc.to_dict()},
                       result=sc)

    return rep.run("scorecard", "Objective scorecard", body)


# ---------------------------------------------------------------- 3. time series


def _daily(rep: CampaignReport) -> pd.DataFrame:
    """Daily campaign totals (views, engagements) from ``post_daily``, over the campaign window plus tail."""
    pdaily = rep.table("post_daily")
    posts = rep.campaign_rows("posts")
    d = pdaily.loc[pdaily["post_id"].isin(posts["post_id"])]
    cols = [c for c in ("views", "likes", "comments", "shares", "saves", "follows", "profile_views")
            if c in d.columns]
    daily = d.groupby("date")[cols].sum().sort_index()
    daily["engagements"] = daily[[c for c in ("likes", "comments", "shares", "saves") if c in daily]].sum(axis=1)
    return daily


def time_series(rep: CampaignReport) -> Section:
    """Daily views and engagements of the campaign's posts and the brand's followers, with post markers."""

    def body() -> Section:
        from analysis.plotting import PALETTE, axes, finish, format_count_axis, mark_dates, mark_window

        try:
            from analysis.kpis import daily_series

            daily = daily_series(rep.data, rep.campaign_id)
            if "date" in daily.columns:
                daily = daily.set_index("date")
        except ImportError:
            daily = _daily(rep)
        posts = rep.campaign_rows("posts")
        post_dates = pd.to_datetime(posts["posted_date"] if "posted_date" in posts else posts["posted_at"])
        if getattr(post_dates.dt, "tz", None) is not None:
            post_dates = post_dates.dt.tz_localize(None)
        brand = rep.table("brand_account_daily")
        acct = rep.campaign.get("brand_account")
        if acct is not None and "brand_account" in brand.columns:
            brand = brand.loc[brand["brand_account"].astype(str) == str(acct)]
        lo = rep.start - pd.Timedelta(days=30)
        hi = rep.end + pd.Timedelta(days=config.ATTRIBUTION_TAIL_DAYS)
        brand = brand.loc[_window_mask(brand["date"], lo, hi)].sort_values("date")

        def daily_line(x, y, color: str, label: str, title: str, ylabel: str):
            """A plotter of one daily count series with the window shaded and the posts marked."""

            def plot(ax=None):
                ax = axes(ax)
                ax.plot(x, y, color=color, label=label)
                mark_window(ax, rep.start, rep.end)
                mark_dates(ax, post_dates)
                format_count_axis(ax)
                return finish(ax, title=title, xlabel="date", ylabel=ylabel)

            return plot

        plot_views = daily_line(daily.index, daily["views"], PALETTE["observed"], "views",
                                "Daily views of the campaign's posts", "views per day (count)")
        plot_eng = daily_line(daily.index, daily["engagements"], PALETTE["effect"], "engagements",
                              "Daily engagements (likes + comments + shares + saves)", "engagements per day (count)")
        plot_followers = daily_line(pd.to_datetime(brand["date"]), brand["followers"], PALETTE["observed"],
                                    "brand followers", "Brand account followers", "followers (count)")

        peak = daily["views"].idxmax() if len(daily) else None
        reading = (f"Views peaked on {pd.Timestamp(peak).date().isoformat()} at "
                   f"{rep.fmt('views', daily['views'].max())} per day; the brand account went from "
                   f"{rep.fmt('views', brand['followers'].iloc[0])} to "
                   f"{rep.fmt('views', brand['followers'].iloc[-1])} followers over the window shown."
                   if peak is not None and len(brand) else "")
        return Section(key="time_series", title="Views, engagement and followers over time", reading=reading,
                       plotters=(plot_views, plot_eng, plot_followers), result=daily)

    return rep.run("time_series", "Views, engagement and followers over time", body)


def watch_time(rep: CampaignReport) -> Section:
    """Completion rate and average watch time per post against video length."""

    def body() -> Section:
        from analysis.plotting import axes, finish

        posts = rep.campaign_rows("posts")
        pm = rep.table("post_metrics")
        last = pm.loc[pm["post_id"].isin(posts["post_id"])].sort_values(["post_id", "date"]).groupby("post_id").tail(1)
        df = last[["post_id", "views", "completion_rate", "avg_watch_time_s"]].merge(
            posts[["post_id", "creator_id", "duration_s"]], on="post_id")
        df = df.assign(creator_id=df["creator_id"].astype(str)).sort_values("post_id").reset_index(drop=True)
        df = _with_handles(rep, df)
        df["watched_share"] = df["avg_watch_time_s"] / df["duration_s"]
        table = df[["post_id", "handle", "duration_s", "views", "completion_rate", "avg_watch_time_s",
                    "watched_share"]]

        def plot(ax=None):
            import seaborn as sns

            ax = axes(ax)

            sns.scatterplot(data=df, x="duration_s", y="completion_rate", size="views", ax=ax, legend=False,
                            color="#1f4e79")
            ax.yaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
            return finish(ax, title="Completion rate by video length (marker size: views)",
                          xlabel="video length (s)", ylabel="completion rate (%)")

        w = np.average(df["completion_rate"], weights=df["views"]) if df["views"].sum() > 0 else np.nan
        reading = (f"View-weighted completion was {w:.0%}; viewers watched on average "
                   f"{np.average(df['watched_share'], weights=df['views']) if df['views'].sum() > 0 else np.nan:.0%} "
                   f"of each video.") if np.isfinite(w) else "No views were recorded."
        fm = {"views": lambda v: rep.fmt("views", v), "completion_rate": lambda v: rep.fmt("completion_rate", v),
              "avg_watch_time_s": lambda v: rep.fmt("avg_watch_time_s", v),
              "watched_share": lambda v: "n/a" if pd.isna(v) else f"{v:.0%}"}
        return Section(key="watch_time", title="Completion and watch time", reading=reading,
                       tables=(("Posts", table),), formatters=fm, plotters=(plot,))

    return rep.run("watch_time", "Completion and watch time", body)


# ---------------------------------------------------------------- 4. conversions


def conversions(rep: CampaignReport) -> Section:
    """Directly attributed orders (discount codes, UTM links, affiliate ids)."""

    def body() -> Section:
        if not rep.has("orders"):
            raise NotAvailable(rep.missing("orders", note="orders are optional"))
        from analysis.conversions import direct_summary

        ds = direct_summary(rep.data, rep.campaign_id)
        by_creator = _with_handles(rep, ds.by_creator)
        first = ["creator_id", "handle", "orders", "revenue"]
        by_creator = by_creator[first + [c for c in by_creator.columns if c not in first]]
        counts = {c: (lambda v: f"{v:,.0f}") for c in [*by_creator.columns, "new_customers"]
                  if c.startswith(("orders", "new_customers"))}
        reading = (f"{ds.orders:,} orders worth {rep.fmt('revenue', ds.revenue)} were directly attributed to the "
                   f"campaign through discount codes, UTM links and affiliate ids; {ds.new_customers:,} were "
                   "from new customers. Direct attribution misses buyers who never used a code or link.")
        return Section(key="conversions", title="Direct conversions", reading=reading,
                       tables=(("By channel", ds.summary()), ("By creator", by_creator)),
                       formatters={**counts, **{c: (lambda v: rep.fmt("revenue", v)) for c in by_creator.columns
                                                 if c.startswith("revenue")}},
                       plotters=(lambda ax: ds.plot(ax=ax, labels=_creator_handles(rep)),),
                       contribution={"conversions": {"direct": {"orders": int(ds.orders),
                                                                "revenue": float(ds.revenue)},
                                                     "incremental": None,
                                                     "direct_detail": ds.to_dict()}},
                       result=ds, warnings=tuple(ds.notes))

    return rep.run("conversions", "Direct conversions", body)


# ---------------------------------------------------------------- 5. lift


@dataclass(frozen=True)
class ScaledLift:
    """A geo estimate made on the average treated region, reported for all treated regions together.

    ``effect`` and its interval are multiplied by ``factor`` (the number of treated regions) so that
    they are per day summed over the treated regions, as the contract's lift entries are; the
    relative effect and the p-value do not change.
    """

    result: Any
    factor: int
    label: str
    fmt: Callable[[float], str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.result.to_dict())
        for k in ("effect", "ci_low", "ci_high"):
            if d.get(k) is not None:
                d[k] = d[k] * self.factor
        d["scope"] = f"per day, summed over the {self.factor} treated regions"
        d["n_treated_regions"] = self.factor
        return d

    def plot(self, ax=None):
        drawn = self.result.plot(ax=ax)
        first = np.ravel(np.asarray(drawn, dtype=object))[0]
        first.figure.suptitle(f"{self.label.capitalize()} (average treated region)", fontsize=11)
        return drawn

    def reading(self) -> str:
        d = self.to_dict()
        rel = d.get("relative_effect")
        sig = "excludes" if (d["ci_low"] > 0 or d["ci_high"] < 0) else "includes"

        def show(v: float) -> str:
            return f"{v:+,.0f}" if self.fmt is None else ("-" if v < 0 else "+") + self.fmt(abs(v))

        return (f"{d['metric'].capitalize()} changed by {show(d['effect'])} per day across the "
                f"{self.factor} treated regions (95% interval {show(d['ci_low'])} to {show(d['ci_high'])}"
                + (f", {rel:+.1%} over the counterfactual" if rel is not None else "")
                + f"); the interval {sig} zero.")


@dataclass(frozen=True)
class WordedLift:
    """A lift result whose reading is given the outcome's units (money, regions, days) by the report."""

    result: Any
    words: Mapping[str, Any]

    def to_dict(self) -> Any:
        return self.result.to_dict()

    def summary(self) -> pd.DataFrame:
        return self.result.summary()

    def plot(self, ax=None):
        return self.result.plot(ax=ax)

    def reading(self) -> str:
        return self.result.reading(**self.words)


def _geo_tables(rep: CampaignReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not (rep.has("geo_assignment") and rep.has("geo_sales_daily")):
        raise NotAvailable(rep.missing("geo_assignment", "geo_sales_daily", label="geo holdout",
                                            note="geo_assignment, geo_sales_daily"))
    ga = rep.campaign_rows("geo_assignment")
    if ga.empty:
        raise NotAvailable("this campaign had no geo holdout")
    return rep.table("geo_sales_daily"), ga


def _staggered(ga: pd.DataFrame) -> bool:
    """Whether the treated regions adopted on different dates."""
    if "start_date" not in ga.columns:
        return False
    starts = pd.to_datetime(ga.loc[ga["group"].astype(str) == "treatment", "start_date"], errors="coerce")
    return starts.notna().any() and starts.dropna().nunique() > 1


def _lift_designs(rep: CampaignReport) -> list[tuple[str, Callable[[], Any]]]:
    """(design name, runner) for every design; a runner raises NotAvailable when the data do not support it."""
    metric = "revenue"

    def geo_parts():
        gsd, ga = _geo_tables(rep)
        if _staggered(ga):
            raise NotAvailable("regions adopted on different dates: the staggered design applies instead")
        n_treated = int(ga.loc[ga["group"].astype(str) == "treatment", "region"].nunique())
        return gsd, ga, n_treated

    geo_cache: dict[str, Any] = {}

    def geo_results():
        """Synthetic control and structural time series on the summed treated regions (validated route)."""
        if "results" not in geo_cache:
            geo_parts()
            from analysis.lift.synth import geo_lift

            geo_cache["results"] = geo_lift(rep.data, rep.campaign_id, metric=metric, treatment_start=rep.start,
                                            treatment_end=rep.end, seed=rep.params.seed)
        return geo_cache["results"]

    def geo_synth():
        return geo_results()[0]

    def geo_did():
        gsd, ga, n_treated = geo_parts()
        from analysis.lift.did import did

        x = gsd.merge(ga[["region", "group"]].drop_duplicates("region"), on="region")
        x = x.loc[pd.to_datetime(x["date"]) <= rep.end]
        x = x.assign(is_treated=(x["group"].astype(str) == "treatment").astype(int),
                     is_post=(pd.to_datetime(x["date"]) >= rep.start).astype(int))
        res = did(x, outcome=metric, treated="is_treated", post="is_post", unit="region", time="date")
        return ScaledLift(res, n_treated, "geo difference-in-differences", fmt=functools.partial(rep.fmt, metric))

    def geo_its():
        return geo_results()[1]

    def staggered():
        gsd, ga = _geo_tables(rep)
        if not _staggered(ga):
            raise NotAvailable("the treated regions all started on the same date (no staggered roll-out)")
        from analysis.lift.did import staggered_did, staggered_panel

        panel = staggered_panel(gsd, ga, rep.campaign_id, metric=metric)
        panel = panel.loc[pd.to_datetime(panel["date"]) <= rep.end]
        res = staggered_did(panel, outcome=metric, unit="region", time="date", cohort="cohort",
                            seed=rep.params.seed, post_end=rep.end)
        return WordedLift(res, {"fmt": functools.partial(rep.fmt, metric), "units": "regions", "period": "day"})

    def survey():
        if not rep.has("brand_lift_survey"):
            raise NotAvailable(rep.missing("brand_lift_survey"))
        if rep.campaign_rows("brand_lift_survey").empty:
            raise NotAvailable("this campaign ran no brand-lift survey")
        from analysis.lift.survey import survey_lift

        return survey_lift(rep.table("brand_lift_survey"), rep.campaign_id)

    return [("geo synthetic control", geo_synth), ("geo difference-in-differences", geo_did),
            ("geo structural time series", geo_its), ("staggered difference-in-differences", staggered),
            ("brand-lift survey", survey)]


def lift(rep: CampaignReport) -> Section:
    """"Did it work?": every lift design the campaign's data support, with a plot and a reading each."""

    def body() -> Section:
        from analysis.plotting import axes, finish

        results, rows, unavailable, plotters, readings = [], [], [], [], []
        for name, runner in _lift_designs(rep):
            try:
                res = runner()
            except NotAvailable as exc:
                unavailable.append((name, str(exc)))
                continue
            except ModuleNotFoundError as exc:
                if not (exc.name or "").startswith("analysis"):
                    raise
                unavailable.append((name, f"the {exc.name} module is not part of this installation"))
                continue
            results.append(res)
            entries = res.to_dict()
            for entry in (entries if isinstance(entries, list) else [entries]):
                rows.append(entry)
            if hasattr(res, "plot"):
                plotters.append(lambda ax, r=res: r.plot(ax=ax))
            if hasattr(res, "reading"):  # one paragraph per design, led by its name
                text = res.reading()
                readings.append(f"{name[:1].upper()}{name[1:]}: "
                                + (text[:1].lower() + text[1:] if text[1:2].islower() else text))
        shop = _shop_orders_reading(rep)
        if shop:
            readings.append(shop)
        table = pd.DataFrame([{k: e.get(k) for k in ("design", "metric", "effect", "ci_low", "ci_high",
                                                      "relative_effect", "p_value")} for e in rows])
        adjusted = [e.get("p_value_adjustment") for e in rows]
        if any(adjusted):  # e.g. survey questions: say which p-values are corrected for multiplicity
            table["p_value adjustment"] = [a or "no" for a in adjusted]
        na = pd.DataFrame(unavailable, columns=["design", "why not available"])
        if not rows:
            by_reason: dict[str, list[str]] = {}
            for n, why in unavailable:
                by_reason.setdefault(why, []).append(n)
            raise NotAvailable("no lift design is supported by this campaign's data: "
                               + "; ".join(f"{', '.join(ns)}: {why}" for why, ns in by_reason.items()))

        def forest(ax=None):
            ax = axes(ax)
            y = np.arange(len(table))
            ax.errorbar(table["effect"].astype(float), y, xerr=[table["effect"] - table["ci_low"],
                        table["ci_high"] - table["effect"]], fmt="o", color="#1f4e79", capsize=3)
            ax.axvline(0, color="#8c8c8c", lw=1)
            ax.set_yticks(y, [f"{d} ({m})" for d, m in zip(table["design"], table["metric"])])
            return finish(ax, title="Lift estimates with 95% intervals", xlabel="effect (metric units)",
                          ylabel="design")

        tables = ((("Lift estimates", _lift_display(rep, table)),)
                  + ((("Designs not available", na),) if len(na) else ()))
        return Section(key="lift", title="Did it work?", reading="\n\n".join(r for r in readings if r),
                       tables=tables,
                       plotters=((forest,) if len(results) > 1 else ()) + tuple(plotters),
                       contribution={"lift": [{k: v for k, v in e.items() if k != "warnings"} for e in rows],
                                     "lift_not_available": [{"design": n, "reason": w} for n, w in unavailable]},
                       result=tuple(results))

    return rep.run("lift", "Did it work?", body)


def _shop_orders_reading(rep: CampaignReport) -> str:
    """The campaign's regional design read on the shop's own orders, as one paragraph of "Did it work?".

    The designs above read ``geo_sales_daily`` (regional retail sales); the incremental orders of the
    conversions block come from the same design on the ``orders`` table. Empty without a regional design
    or orders; names the reason when the design cannot be read on the orders.
    """
    if not (rep.has("orders") and rep.has("geo_assignment")) or rep.campaign_rows("geo_assignment").empty:
        return ""
    from analysis.attribution.geo_orders import geo_incremental_orders

    lead = "Shop orders, same design: "
    try:
        geo = geo_incremental_orders(rep.data, rep.campaign_id, seed=rep.params.seed)
    except ValueError as exc:  # NoGeoHoldout or a design refusing the data: say why, as attribute_orders warns
        return (f"{lead}not read on the shop's own orders ({exc}); the incremental orders in \"Where did the "
                "followers come from?\" come from the baseline-and-exposure model.")
    est, lo, hi = geo.total("orders")
    level = int(round(100 * (1 - geo.alpha)))
    zero = " The interval includes zero: no effect on orders is detectable." if lo <= 0 <= hi else ""
    return (f"{lead}read on the shop's own orders by the customer's region (not the regional sales above), "
            f"the {geo.label} gives {est:,.0f} incremental orders over the {geo.n_days}-day conversion window "
            f"({level}% interval {lo:,.0f} to {hi:,.0f}; {geo.n_treated} treatment and {geo.n_control} control "
            f"regions).{zero} These are the campaign's incremental orders in \"Where did the followers come "
            "from?\", compared there with the orders carrying a creator's code or link.")


def _lift_display(rep: CampaignReport, table: pd.DataFrame) -> pd.DataFrame:
    """The lift table as shown: each row's effect in its metric's unit (survey answers in percentage points,
    registry metrics as the registry formats them), the relative effect in per cent, p-values to 3 digits."""
    from analysis.metrics import REGISTRY

    def unit(design: str, metric: str) -> Callable[[Any], str]:
        if str(design).startswith("survey"):
            return lambda v: f"{100 * v:+.1f} pts"
        if metric in REGISTRY:
            return functools.partial(rep.fmt, metric)
        return lambda v: f"{v:,.4g}"

    out = table.astype(object).copy()
    for i, row in table.iterrows():
        f = unit(row["design"], row["metric"])
        for c in ("effect", "ci_low", "ci_high"):
            out.at[i, c] = _or_na(row[c], f)
        out.at[i, "relative_effect"] = _or_na(row["relative_effect"], lambda v: f"{v:+.1%}")
        out.at[i, "p_value"] = _or_na(row["p_value"], lambda v: "< 0.001" if v < 0.001 else f"{v:.3f}")
    return out


def number_formats(spec: str, *columns: str) -> dict[str, Callable[[Any], str]]:
    """Table formatters: each of ``columns`` shown with the format ``spec`` (``",.1f"``, ``".1%"``), "n/a" when
    missing."""
    def fmt(v: Any) -> str:
        return "n/a" if v is None or pd.isna(v) else format(v, spec)

    return dict.fromkeys(columns, fmt)


def _or_na(v: Any, fmt: Callable[[Any], str]) -> str:
    return "n/a" if v is None or pd.isna(v) else fmt(float(v))


# ---------------------------------------------------------------- 6. follower attribution


def attribution(rep: CampaignReport) -> Section:
    """"Where did the followers come from?": incremental brand followers by creator, with retention."""

    def body() -> Section:
        from analysis.attribution import attribute_followers

        from analysis.attribution._data import BrandDataUnusable

        try:
            fa = attribute_followers(rep.data, rep.campaign_id, seed=rep.params.seed, view_curve=rep.view_curve)
        except BrandDataUnusable as exc:  # data outside the window, or weekly totals: say why
            raise NotAvailable(str(exc)) from exc
        d = fa.to_dict()
        followers = {**d, "status": "ok"}
        plotters: list[Plotter] = [lambda ax: fa.plot(ax=ax), lambda ax: fa.plot_cumulative(ax=ax),
                                   lambda ax: fa.plot_creators(ax=ax)]
        shown = fa.summary()[["outcome", "incremental", "ci_low", "ci_high", "relative_to_counterfactual",
                              "post_campaign_incremental", "kernel", "effect_half_life_days"]]
        by_post = _with_handles(rep, fa.by_post.assign(creator_id=fa.by_post["creator_id"].astype(str)))
        by_post = (by_post.assign(share=by_post["incremental"] / fa.incremental if fa.incremental else np.nan)
                   .sort_values(["incremental", "post_id"], ascending=[False, True])
                   [["post_id", "creator_id", "handle", "posted_date", "incremental", "share"]])
        tables = [("Incremental brand followers", shown),
                  ("Modelled vs TikTok-reported follows by creator", fa.comparison()),
                  ("Modelled incremental followers by post (each creator's share split by the post's exposure)",
                   by_post)]
        # paragraphs: the total, the creators, the comparison with TikTok; then retention, persistence and
        # sensitivity
        readings = [" ".join(p) for p in fa.paragraphs()]
        # the reading already says when the total's interval includes zero (results.json keeps the warning
        # in the followers block)
        from analysis.attribution.followers import ZERO_INTERVAL_WARNING

        warn = [w for w in fa.warnings if w != ZERO_INTERVAL_WARNING]
        from analysis.attribution import NoUnfollowData, follower_retention

        try:
            ret = follower_retention(rep.data, rep.campaign_id, followers=fa, view_curve=rep.view_curve)
        except NoUnfollowData as exc:
            readings.append(f"The retention of the gained followers is not available: {exc}.")
        else:
            plotters.append(lambda ax: ret.plot(ax=ax))
            tables.append(("Retention of the gained followers", ret.summary()))
            readings.append(ret.reading())
            followers["retention"] = ret.to_dict()
            warn += list(ret.warnings)
        from analysis.attribution import own_content_persistence

        try:
            pers = own_content_persistence(rep.data, rep.campaign_id)
        except ValueError as exc:
            readings.append(f"Persistence (views of the brand's own videos afterwards) is not available: {exc}.")
        else:
            plotters.append(lambda ax: pers.plot(ax=ax))
            tables.append(("Views of the brand's own videos after the campaign", pers.summary().rename(columns={
                "ratio": "after_vs_expected", "ci_low": "after_ci_low", "ci_high": "after_ci_high"})))
            readings.append(pers.reading())
            followers["persistence"] = pers.to_dict()
            warn += list(pers.warnings)
        from analysis.attribution import sensitivity

        sens = sensitivity(rep.data, rep.campaign_id, seed=rep.params.seed, view_curve=rep.view_curve)
        rep.cache["sensitivity"] = sens
        plotters.append(lambda ax: sens.plot(ax=ax))
        tables.append(("How much the answer moves: the total under alternative choices",
                       sens.summary()[["scenario", "detail", "incremental", "ci_low", "ci_high", "change_pct",
                                       "kernel"]]))
        readings.append(sens.reading())
        followers["sensitivity"] = sens.to_dict()
        contribution: dict[str, Any] = {"followers": followers}
        rsec = _returning_creators_section(rep, fa)
        rep.cache["repeat_section"] = rsec
        contribution["repeat"] = rsec.contribution["repeat"]
        warn += list(rsec.warnings)
        if rep.has("orders"):
            from analysis.attribution import attribute_orders

            oa = attribute_orders(rep.data, rep.campaign_id, seed=rep.params.seed, view_curve=rep.view_curve)
            contribution["_incremental_orders"] = oa.to_dict()
            basis = {"incremental": "incremental (model)", "incremental_geo": f"incremental ({oa.geo.label})"} \
                if oa.geo is not None else {}
            tables.append(("Orders and revenue: direct vs incremental",
                           oa.summary().assign(basis=lambda t: t["basis"].replace(basis))))
            readings.append(oa.reconciliation())
            plotters.append(lambda ax: oa.plot(ax=ax))
            if oa.orders is not None:
                plotters.append(lambda ax: oa.orders.plot(ax=ax))
            if oa.geo is not None:  # the holdout the incremental orders are read from
                plotters.append(lambda ax: oa.geo.plot(ax=ax))
            warn += list(oa.warnings)
        fm = {**number_formats(",.0f", "incremental", "ci_low", "ci_high", "modelled_incremental", "reported_follows",
                               "post_campaign_incremental"),
              **number_formats(",.1f", "effect_half_life_days"),
              **number_formats(".1%", "relative_to_counterfactual", "modelled_share", "reported_share", "share",
                               "profile_view_share", "p_top", "cohort_lost_rate", "baseline_lost_rate",
                               "new_customer_share"),
              **number_formats(".2f", "after_vs_expected", "after_ci_low", "after_ci_high", "ratio_to_reported"),
              **number_formats(",.0f", "observed_mean", "counterfactual_mean", "incremental_views", "gained",
                               "excess_lost", "net_kept", "orders", "orders_ci_low", "orders_ci_high"),
              **number_formats(".3f", "p_value"), **number_formats("+.1%", "change_pct")}
        # revenue, AOV, ROAS and ROI as the metric registry shows them
        for metric, cols in (("revenue", ("revenue", "revenue_ci_low", "revenue_ci_high")),
                             ("aov", ("aov",)), ("roas", ("roas",)), ("roi", ("roi",))):
            fm.update({c: functools.partial(rep.fmt, metric) for c in cols})
        return Section(key="attribution", title="Where did the followers come from?",
                       reading="\n\n".join(readings), tables=tuple(tables), formatters=fm, plotters=tuple(plotters),
                       contribution=contribution, result=fa, warnings=tuple(dict.fromkeys(warn)))

    sec = rep.run("attribution", "Where did the followers come from?", body)
    inc = sec.contribution.get("_incremental_orders")
    if inc is not None and "conversions" in rep.sections and rep.sections["conversions"].ok:
        conv = dict(rep.sections["conversions"].contribution["conversions"])
        conv["incremental"] = inc.get("incremental")
        conv["attribution"] = {k: v for k, v in inc.items() if k not in ("direct", "incremental")}
        rep.sections["conversions"] = Section(**{**rep.sections["conversions"].__dict__,
                                                 "contribution": {"conversions": conv}})
    if inc is not None:
        rep.sections["attribution"] = Section(**{**sec.__dict__, "contribution": {
            k: v for k, v in sec.contribution.items() if k != "_incremental_orders"}})
    return rep.sections["attribution"]


REPEAT_TITLE = "Returning creators"
#: Bootstrap replicates of the earlier campaigns' attributions run for the returning-creator comparison
#: (their per-creator and total intervals feed the comparison's interval).
REPEAT_N_BOOT = 200


def _returning_creators_section(rep: CampaignReport, fa: Any) -> Section:
    """This campaign's returning creators against their first campaign with the brand (see returning_creators)."""
    from analysis.attribution.repeat import returning_creators as _returning

    try:
        res = _returning(rep.data, rep.campaign_id, attribution=fa, seed=rep.params.seed, n_boot=REPEAT_N_BOOT,
                         cache=rep.cache.setdefault("follower_attributions", {}), view_curve=rep.view_curve)
    except Exception as exc:  # recorded and shown, or raised in strict mode
        if os.environ.get(STRICT_ENV):
            raise
        msg = f"{type(exc).__name__}: {exc}"
        return Section(key="repeat", title=REPEAT_TITLE, status="error", reason=msg,
                       contribution={"repeat": {"status": "error", "reason": msg}},
                       warnings=(f"Section '{REPEAT_TITLE}' failed: {msg}",))
    if res.n_repeat_creators == 0:
        reason = "no creator in this campaign worked with the brand before"
        return Section(key="repeat", title=REPEAT_TITLE, status="not available", reason=reason,
                       contribution={"repeat": {"status": "not available", "reason": reason, "n_repeat_creators": 0}})
    p = res.pairs
    t = res.table.set_index(["creator_id", "campaign_id"])
    rows = []
    for r in p.itertuples():
        first = t.loc[(r.creator_id, r.first_campaign)]
        now = t.loc[(r.creator_id, rep.campaign_id)]
        rows.append({"creator": r.handle, "first campaign": r.first_campaign,
                     "earlier campaigns": int(now["previous_campaigns"]),
                     "first: per 1,000 views": r.first_per_1000_views,
                     "first: interval": _per_view_interval(first),
                     "now: per 1,000 views": r.later_per_1000_views,
                     "now: interval": _per_view_interval(now),
                     "ratio now / first": r.ratio, "note": r.reason or ""})
    shown = pd.DataFrame(rows)
    n_first = len(set(p["first_campaign"]))
    paras = res.paragraphs()
    paras[0] = [f"{res.n_repeat_creators} of this campaign's creators worked with the brand before; each is "
                "compared with their own first campaign with the brand (incremental brand followers per 1,000 "
                "views).", *paras[0]]
    if res.estimated:
        paras[-1].append(
            "Read the ratio as descriptive context: these creators share this campaign's estimate and "
            f"{'their first campaign' if n_first == 1 else 'a few first campaigns'}, so the comparison is close "
            "to one of campaign-level estimates and its interval is wide (docs/validation_repeat.md). The "
            "brand-wide comparison over every campaign is in "
            "analysis.attribution.repeat_collaborations.")
    d = {**res.to_dict(), "status": "ok"}
    fm = {**dict.fromkeys(("first: per 1,000 views", "now: per 1,000 views", "ratio now / first", "ratio", "ci_low",
                           "ci_high"), _ratio_format),
          **number_formats(".3f", "p_value", "se_log"), **number_formats(".0%", "shared_share"),
          **number_formats(".2f", "alpha")}
    return Section(key="repeat", title=REPEAT_TITLE, reading="\n\n".join(" ".join(p) for p in paras),
                   tables=(("Returning creators: this campaign against their first", shown),
                           ("Later vs first: geometric-mean ratio", res.summary())),
                   formatters=fm, plotters=(lambda ax: res.plot_creators(ax=ax), lambda ax: res.plot(ax=ax)),
                   contribution={"repeat": d}, result=res, warnings=tuple(res.warnings))


def _ratio_format(v: Any) -> str:
    """Three significant digits; ratios' intervals can span orders of magnitude ("< 0.001" below that)."""
    if v is None or pd.isna(v):
        return "n/a"
    return "< 0.001" if 0 <= v < 0.001 else f"{v:,.3g}"


def _per_view_interval(row: pd.Series) -> str:
    v = row["views"]
    if not (_isnum(v) and v > 0 and _isnum(row["ci_low"]) and _isnum(row["ci_high"])):
        return "n/a"
    return f"[{1000 * row['ci_low'] / v:,.3g}, {1000 * row['ci_high'] / v:,.3g}]"


def returning_creators(rep: CampaignReport) -> Section:
    """"Returning creators", part of the attribution section: this campaign's creators who worked with the
    brand before, their incremental followers per 1,000 views now against their first campaign.

    Computed with the attribution section (it reuses this campaign's follower attribution and attributes
    only the returning creators' first campaigns); ``"not available"`` when no creator worked with the
    brand before. Contributes ``results.json["repeat"]``.
    """
    if "attribution" not in rep.sections:
        attribution(rep)
    sec = rep.cache.get("repeat_section")
    if sec is None:
        att = rep.sections["attribution"]
        return Section(key="repeat", title=REPEAT_TITLE, status="not available",
                       reason=f"the follower attribution is not available ({att.reason})")
    return sec


# ---------------------------------------------------------------- 7. sentiment and compliance


def sentiment(rep: CampaignReport) -> Section:
    """"How did the audience feel?": comment sentiment with intervals and examples (escaped)."""

    def body() -> Section:
        if not rep.has("comments"):
            raise NotAvailable(rep.missing("comments", note="comments are optional"))
        from analysis.sentiment import audience_voice

        av = audience_voice(rep.data, rep.campaign_id)
        tables = [("Sentiment shares", av.summary())]
        if hasattr(av, "examples"):
            for label in ("positive", "negative"):
                ex = av.examples(label)
                if len(ex):
                    tables.append((f"Most-liked {label} comments", _with_handles(rep, ex)))
        fm = {c: (lambda v: "n/a" if pd.isna(v) else f"{v:.1%}") for c in ("share", "ci_low", "ci_high")}
        return Section(key="sentiment", title="How did the audience feel?", reading=av.reading(),
                       tables=tuple(tables), formatters=fm,
                       plotters=(lambda ax: av.plot(ax=ax, labels=_creator_handles(rep)),),
                       contribution={"sentiment": {"status": "ok", **av.to_dict()}}, result=av,
                       warnings=tuple(getattr(av, "warnings", ())))

    return rep.run("sentiment", "How did the audience feel?", body)


def compliance(rep: CampaignReport) -> Section:
    """"Disclosure and licensing": disclosure labels and hashtags, sound licences, usage rights."""

    def body() -> Section:
        from analysis.compliance import check_compliance

        cr = check_compliance(rep.data, rep.campaign_id)
        tables = [("Compliance summary", cr.summary())]
        if hasattr(cr, "issues"):
            # a usage-rights issue belongs to a contract, not to a post
            tables.append(("Issues", _with_handles(rep, cr.issues()).astype({"post_id": object})
                           .fillna({"post_id": "(contract)"})))
        fm = number_formats(".1%", "share_ok")
        return Section(key="compliance", title="Disclosure and licensing", reading=cr.reading(),
                       tables=tuple(tables), plotters=(cr.plot,), formatters=fm,
                       contribution={"compliance": {"status": "ok", **cr.to_dict()}}, result=cr,
                       warnings=tuple(getattr(cr, "warnings", ())))

    return rep.run("compliance", "Disclosure and licensing", body)


# ---------------------------------------------------------------- 8. data quality


def data_quality(rep: CampaignReport) -> Section:
    """Data-quality notes: corrected or missing metric snapshots, absent optional tables, section problems."""

    def body() -> Section:
        posts = rep.campaign_rows("posts")
        pm = rep.table("post_metrics")
        pm = pm.loc[pm["post_id"].isin(posts["post_id"])]
        notes: list[str] = []
        rows = []
        for col, text in (("corrected", "metric snapshots corrected downwards by the platform"),
                          ("gap_before", "metric snapshots following a missing day")):
            if col in pm.columns:
                n = int(pm[col].astype(bool).sum())
                rows.append({"check": text, "count": n, "of": int(len(pm))})
        optional = ("orders", "comments", "geo_assignment", "geo_sales_daily", "brand_lift_survey",
                    "web_sessions_daily", "paid_media_daily", "mentions")
        absent = [t for t in optional if not rep.has(t)]
        if absent:
            empty = {t for t in absent if rep._get(t) is not None}
            notes.append(("Optional tables absent or empty in the data set: " if empty else
                          "Optional tables absent from the data set: ")
                         + ", ".join(t + (" (empty)" if t in empty else "") for t in absent) + ".")
        for sec in rep.sections.values():
            if sec.status == "not available":
                notes.append(f"{sec.title}: not available ({sec.reason}).")
        reading = ("No data-quality problems found." if not rows or all(r["count"] == 0 for r in rows)
                   else "Some metric snapshots were corrected or missing; the KPIs use the cleaned values.")
        return Section(key="data_quality", title="Data quality", reading=reading,
                       tables=(("Checks", pd.DataFrame(rows, columns=["check", "count", "of"])),),
                       warnings=tuple(notes[:1]))

    sec = rep.run("data_quality", "Data quality", body)
    return sec


def warnings_table(rep: CampaignReport) -> SafeTable:
    """Every warning recorded so far, as an escaped table (the report's last section)."""
    return safe_table(pd.DataFrame({"warning": rep.warnings or ["none"]}), index=False)


def section_names() -> Sequence[str]:
    """The section functions in report order."""
    return ("campaign_summary", "scorecard", "kpi_tables", "time_series", "watch_time", "conversions", "lift",
            "attribution", "sentiment", "compliance", "data_quality")


def run_all(rep: CampaignReport) -> dict[str, Section]:
    """Run every section in report order (for scripts and tests; the notebook calls them one by one)."""
    mod = importlib.import_module(__name__)
    for name in section_names():
        getattr(mod, name)(rep)
    return rep.sections
