"""Objectives, targets and scorecards.

Each campaign objective maps to primary KPIs (what the campaign is judged on) and secondary
KPIs (what explains them); the shipped mapping is ``resources/objectives.yaml``. A
:class:`Scorecard` compares KPI values with the campaign's targets:

- attainment is direction-aware: value / target for higher-is-better metrics and
  target / value for lower-is-better ones (a CPM of 8 against a target of 10 is 125%);
- while a campaign runs (``elapsed_share`` < 1), totals are judged against the pro-rata target
  (target x elapsed share); rates and cost ratios against the full target;
- status: while running, ``on track`` when the paced attainment is at least 100% and ``at risk``
  below that; once finished, ``met`` at 100% or more and ``missed`` below. A metric with an undefined value is
  ``undefined``; one without a target has no status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis.config import RESOURCES_DIR
from analysis.metrics import REGISTRY, format_value, metric

OBJECTIVES_FILE = RESOURCES_DIR / "objectives.yaml"
STATUSES = ("met", "on track", "at risk", "missed", "undefined")


def objectives(mapping: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, list[str]]]:
    """The objective -> {primary, secondary} KPI mapping (shipped, or ``mapping`` validated)."""
    raw = mapping if mapping is not None else yaml.safe_load(OBJECTIVES_FILE.read_text())
    out = {}
    for obj, spec in raw.items():
        prim, sec = list(spec.get("primary", [])), list(spec.get("secondary", []))
        for name in prim + sec:
            metric(name)  # raises with the known names
        out[str(obj)] = {"primary": prim, "secondary": sec, "description": spec.get("description", "")}
    return out


@dataclass(frozen=True)
class ScoreLine:
    """One metric of a scorecard."""

    metric: str
    role: str
    value: float | None
    target: float | None
    attainment: float | None
    paced_attainment: float | None
    status: str | None
    text: str


def _none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else x


@dataclass(frozen=True)
class Scorecard:
    """KPI values against targets for one objective."""

    objective: str
    elapsed_share: float
    lines: tuple[ScoreLine, ...]

    def summary(self) -> pd.DataFrame:
        """One row per metric: role, value, target, attainment, paced attainment, status, text."""
        return pd.DataFrame([ln.__dict__ for ln in self.lines],
                            columns=["metric", "role", "value", "target", "attainment", "paced_attainment",
                                     "status", "text"])

    def line(self, name: str) -> ScoreLine:
        """The line of metric ``name``."""
        for ln in self.lines:
            if ln.metric == name:
                return ln
        raise KeyError(name)

    def plot(self, ax=None):
        """Horizontal bars of attainment per targeted metric, coloured by status, 100% marked."""
        from analysis.plotting import axes

        rows = [ln for ln in self.lines if ln.attainment is not None]
        ax = axes(ax, figsize=(7, 1.4 + 0.45 * max(len(rows), 1)))
        colours = {"met": "#2a9d8f", "on track": "#2a9d8f", "at risk": "#e9c46a", "missed": "#e76f51", None: "#999999"}
        att = [100 * (ln.paced_attainment if ln.paced_attainment is not None else ln.attainment) for ln in rows]
        bars = ax.barh([REGISTRY[ln.metric].label for ln in rows], att,
                       color=[colours.get(ln.status, "#999") for ln in rows])
        ax.bar_label(bars, labels=[f" {a:.0f}% {ln.status or ''}" for a, ln in zip(att, rows)], fontsize=8)
        ax.axvline(100, color="black", lw=1)
        ax.set_xlim(0, max([110.0, *att]) * 1.25)
        ax.set_xlabel("attainment (%)" + (" (paced)" if self.elapsed_share < 1 else ""))
        ax.set_title(f"Scorecard: {self.objective}")
        ax.invert_yaxis()
        return ax

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {"objective": self.objective, "elapsed_share": float(self.elapsed_share),
                "lines": [dict(ln.__dict__) for ln in self.lines]}


def _status(paced: float | None, finished: bool) -> str | None:
    if paced is None:
        return None
    if finished:
        return "met" if paced >= 1.0 else "missed"
    return "on track" if paced >= 1.0 else "at risk"


def _text(name: str, value: float | None, target: float | None, att: float | None, status: str | None,
          finished: bool, currency: str, paced: float | None = None) -> str:
    m = REGISTRY[name]
    if value is None:
        return f"{m.label} is undefined (no data or a zero denominator)."
    v = format_value(name, value, currency=currency)
    if target is None:
        return f"{m.label}: {v} (no target)."
    t = format_value(name, target, currency=currency)
    if finished:
        return f"{m.label}: {v} against a target of {t} ({att * 100:.0f}%): {status}."
    pace = f", {paced * 100:.0f}% of the pro-rata target" if paced is not None and paced != att else ""
    return f"{m.label} so far: {v} against a target of {t} ({att * 100:.0f}% of it{pace}): {status}."


def scorecard(kpis: Mapping[str, Any] | pd.Series | pd.DataFrame, targets: pd.DataFrame | Mapping[str, float] | None,
              objective: str, *, elapsed_share: float = 1.0,
              objectives_map: Mapping[str, Mapping[str, Any]] | None = None,
              currency: str = "$") -> Scorecard:
    """Score KPI values against targets for an objective.

    Parameters
    ----------
    kpis : mapping, Series or one-row DataFrame
        Metric values (e.g. a row of :func:`analysis.kpis.kpi_table` at campaign level).
    targets : DataFrame or mapping, optional
        ``campaign_targets`` rows (``kpi``, ``target``; filtered to the row's ``campaign_id`` where
        both have one) or a ``{metric: target}`` mapping.
    objective : {"awareness", "launch", "traffic", "engagement", "conversions"}
        The campaign's objective (or any key of ``objectives_map``).
    elapsed_share : float
        Share of the campaign window elapsed (1 once finished); totals are paced pro rata.
    objectives_map : mapping, optional
        Another objective -> {primary, secondary} mapping.
    currency : str
        Currency symbol for the plain-language lines.

    Returns
    -------
    Scorecard
        Primary metrics first, then secondary ones, then any other targeted metric.
    """
    if not 0 < elapsed_share <= 1:
        raise ValueError(f"elapsed_share must be in (0, 1], got {elapsed_share}")
    objs = objectives(objectives_map)
    if objective not in objs:
        raise ValueError(f"unknown objective {objective!r}; known objectives: {', '.join(objs)}")
    if isinstance(kpis, pd.DataFrame):
        if len(kpis) != 1:
            raise ValueError(f"scorecard needs one row of KPIs, got {len(kpis)}")
        kpis = kpis.iloc[0]
    values = dict(kpis)
    if targets is None:
        tmap: dict[str, float] = {}
    elif isinstance(targets, pd.DataFrame):
        t = targets
        if "campaign_id" in t and values.get("campaign_id") is not None:
            t = t[t["campaign_id"] == values["campaign_id"]]
        tmap = {str(k): float(v) for k, v in zip(t["kpi"], t["target"])}
    else:
        tmap = {str(k): float(v) for k, v in targets.items()}
    for name in tmap:
        metric(name)
    finished = elapsed_share >= 1.0
    order = [(n, "primary") for n in objs[objective]["primary"]]
    order += [(n, "secondary") for n in objs[objective]["secondary"] if n not in dict(order)]
    order += [(n, "targeted") for n in tmap if n not in dict(order)]
    lines = []
    for name, role in order:
        m = REGISTRY[name]
        value = _none(values.get(name))
        target = _none(tmap.get(name))
        att = paced = status = None
        if value is not None and target is not None:
            if m.direction == "higher":
                att = value / target if target != 0 else None
            else:
                att = target / value if value != 0 else None
            if att is not None:
                paced = att / elapsed_share if (m.additive and m.direction == "higher") else att
                status = _status(paced, finished)
        elif value is None and target is not None:
            status = "undefined"
        lines.append(ScoreLine(name, role, value, target, att, paced, status,
                               _text(name, value, target, att, status, finished, currency, paced)))
    return Scorecard(objective=objective, elapsed_share=float(elapsed_share), lines=tuple(lines))
